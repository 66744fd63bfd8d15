// training_session_impl.h -- the state of a TrainingSession (fastae/training.h): every buffer a
// step touches, allocated once, and the step's parts as members (training.cpp; the parameter
// slices' parts in training_slices.cpp). The epoch loop
// (trainer.cpp) drives a session through the public calls only.
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <vector>

#include "deferred_gradient.h"
#include "fastae/training.h"
#include "model_impl.h"
#include "network.h"
#include "optimizer.h"
#include "shared_weights.h"
#include "thread_mode.h"
#include "worker_pool.h"
#include "zero_pages.h"

namespace fastae {

namespace detail {
using Clock = std::chrono::steady_clock;

// Start of part t when `total` items are cut into `parts` near-equal contiguous parts (a batch's
// shards, the parameter buffer's slices).
inline std::size_t part_begin(std::size_t total, int parts, int t) {
    return total * std::size_t(t) / std::size_t(parts);
}
}  // namespace detail

struct TrainingSession::Impl {
    Impl(Model::Impl& model, const TrainingData& data, const OptimizerConfig& optimizer, const TrainOptions& options);

    // Step parts, run by the pool's threads.
    void shard_gradient(int shard);                     // gather, check, noise; then all, or phase 1
    void shard_backward(int shard, int forward_done);   // (the rest of) forward, head and backward
    double batch_statistics(const std::exception_ptr& failed);  // between the phases: means and the KL
    detail::StepContext& step_context(int shard);
    void sum_slice(std::size_t p0, std::size_t p1);  // leaves summed_ranges alone
    void sum_deferred();                    // the deferred dWs, summed before sum_slice
    void sum_first_layer(int slice, int member);     // the first layer's dW, rows of one slice
    struct Tile;
    void sum_tile(const Tile& tile, int member);     // a deferred dW's tile
    bool next_solo();  // this step on the calling thread alone (TrainOptions::thread_mode)
    void update_slice(int slice);
    void penalise_slice(int slice);  // sums (unless reduced) and adds the penalties into grads[0]
    void clip_norm();                // with options.clipnorm: the gradient's norm, clipped
    void check_rows(std::size_t b, const float* x, const float* y, const float* w, const std::size_t* rows,
                    std::size_t first) const;
    TrainingDiverged diverged(double loss, const char* what) const;
    // Sizes the evaluation buffers for data of this many samples (before the first step, so that
    // a fit that cannot have them fails before changing anything).
    void reserve_evaluation(const TrainingData& val);
    void choose_deferred(int shard_capacity);  // the constructor's choice of deferred dWs
    void zero_shard_gradient(int shard);  // an empty shard's buffer, where the sum reads it

    Model::Impl& model;
    const detail::Network& net;
    float* params;
    std::size_t n_params;
    TrainingData data;
    TrainOptions options;
    detail::Optimizer opt;
    std::int64_t steps_before;
    Eigen::Index d_in, d_out;
    std::size_t batch_capacity;
    int n_shards;
    detail::WorkerPool pool;
    bool targets_are_inputs;

    // A penalty term on a parameter range (a layer's W): l1 * sum |w| + l2 * sum w^2.
    struct Penalty {
        std::size_t begin, end;
        float l1, l2;
    };
    std::vector<Penalty> penalties;
    // The ranges of the flat buffer the optimizer updates: those of the trainable layers, merged.
    struct Range {
        std::size_t begin, end;
    };
    std::vector<Range> trainable;

    // With more than one shard: the layers' W packed once a step for all of them (shared_weights.h).
    std::unique_ptr<detail::SharedWeights> shared_weights;
    std::vector<detail::ZeroPages> grads;  // one per shard; grads[0] holds the sum after reduce
    // The first layer's dW, summed over the shards in the sum's pass (sum_first_layer) from
    // kDeferShards shards on: each shard defers it (a sparse pass's rows, sparse_input.h:
    // set_defer; a dense pass's product, deferred_gradient.h) or, when it cannot, writes it into
    // its buffer. Its range of the parameters, a row per thread, each (slice, shard)'s time.
    bool defer_first_layer = false;
    std::size_t dw1_begin = 0, dw1_end = 0;
    std::vector<detail::AlignedFloats> row_scratch;
    std::vector<double> pass_seconds;
    // Layers after the first whose dW the sum computes over the whole batch from the columns the
    // shards kept (deferred_gradient.h: by layer, null where not deferred), what each shard keeps
    // (the first layer's dense product, as above), and the tiles of the layers' dWs that the
    // sum's tasks compute (about n_shards a layer).
    std::vector<int> deferred_layers;
    std::vector<std::unique_ptr<detail::BatchWeightGradient>> batch_products;
    std::vector<detail::DeferredGradients> shard_products;
    struct Tile {
        int layer, r0, r1, c0, c1;  // rows [r0, r1), columns [c0, c1) of the layer's dW
    };
    std::vector<Tile> tiles;
    // Whether this step's deferred dWs are summed, and their parameter ranges (sorted, fixed by
    // choose_deferred), which sum_slice leaves alone.
    bool deferred_summed = false;
    std::vector<Range> summed_ranges;
    std::vector<double> shard_loss;
    std::vector<std::exception_ptr> shard_error;
    // The weights before the current update, so that a step that makes any of them non-finite
    // can be undone (saved slice by slice by the update itself, UpdateRule::apply).
    detail::AlignedFloats previous;
    std::vector<char> slice_finite;
    std::vector<double> slice_penalty;
    std::vector<double> slice_square_sum;  // clipnorm: each slice's sum of squared gradients
    float clip_factor = 1.0f;
    std::vector<detail::Workspace> ws;      // one per shard, also per member for evaluation
    detail::AlignedFloats xb, yb, wb;       // the batch's gathered inputs, targets, weights
    detail::AlignedFloats nb;               // the batch's noisy inputs (LayerSpec::noise)
    // A shard's columns of the current batch, as shard_gradient found them.
    struct ShardData {
        const float* x = nullptr;     // clean inputs (the targets of an autoencoder)
        const float* x_in = nullptr;  // what the first layer reads (noisy, or x)
        const float* y = nullptr;
        const float* w = nullptr;
        const std::size_t* rows = nullptr;
        std::size_t first = 0;
        Eigen::Index cols = 0;
    };
    std::vector<ShardData> shard_data;
    std::vector<detail::StepContext> shard_contexts;
    std::vector<double> shard_terms;                         // activity terms' values per shard
    std::vector<double> shard_kl;                            // a variational code's KL sums per shard
    double kl_part = 0.0, reconstruction_part = 0.0;         // the last batch's (loss_parts)
    std::vector<std::vector<detail::AlignedFloats>> shard_sums;  // [shard][l + 1]: column sums
    std::vector<detail::AlignedFloats> batch_means;          // [l + 1]: the whole batch's means
    std::vector<double> chunk_sums;         // evaluation
    detail::AlignedFloats val_buffers;      // evaluation of 8-bit data: one chunk per member
    detail::ThreadModeChooser& chooser;  // the model's (Model::Impl::thread_mode_for)

    // The current step.
    Batch batch;
    std::int64_t step_in_epoch = 0;
    float grad_scale = 1.0f;
    bool reduced = true;
    bool solo = false;
    detail::Clock::time_point step_start;
    double penalty = 0.0;
    bool check_data = true;
    bool discard_state = false;  // set by Model::fit when bad data undoes the fit
    std::unique_ptr<detail::Writing> claim;  // the model, for a session a host made
};

}  // namespace fastae
