// fastae/training.h -- one training step in three public calls, for hosts that run their own loop
// (data-parallel training over MPI, custom schedules):
//
//   TrainingSession s(model, data, optimizer, options);
//   for each batch:
//       s.compute_gradients(batch);   // 1. loss and gradient of this process's rows of the batch
//       s.reduce();                   // 2. the threads' buffers summed into s.gradient()
//       /* host: allreduce s.gradient() (sum) and the returned loss across processes */
//       s.apply(global_loss);         // 3. penalties, the update, the finiteness checks
//
// Model::fit runs the same calls (with steps 2 and 3 fused into one pass when no host sits
// between them). Standard library only; layouts as in fastae/layout.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "fastae/config.h"
#include "fastae/model.h"

namespace fastae {

// The rows of one batch, as indices into the session's TrainingData.
struct Batch {
    const std::size_t* rows = nullptr;  // rows[0..size), or null for first, first + 1, ...
    std::size_t first = 0;
    std::size_t size = 0;
    // The samples of the whole batch across every process (0: size). Losses and gradients are
    // means over the whole batch, so the parts computed by several processes add up to them.
    std::size_t global_size = 0;
    int epoch = 1;  // 1-based; with the dataset rows it keys the dropout masks
};

class TrainingSession {
public:
    // Allocates every buffer the steps use (none is allocated per step) and claims the model:
    // until the session ends, other calls that change or read the model are refused as during
    // fit (model.h, "Threads"). The data must outlive the session. Throws std::invalid_argument
    // for bad options or data shapes. The optimizer starts fresh, or from the model's saved state
    // with options.resume_optimizer (as Model::fit).
    TrainingSession(Model& model, const TrainingData& data, const OptimizerConfig& optimizer,
                    const TrainOptions& options);
    ~TrainingSession();  // leaves the optimizer state (if a step was applied) in the model
    TrainingSession(const TrainingSession&) = delete;
    TrainingSession& operator=(const TrainingSession&) = delete;

    // 1. Runs forward and backward over the batch's rows on the session's threads. Returns this
    // part's share of the batch's mean data loss (sample-weighted); the gradient shares wait in
    // per-thread buffers. Checks the rows (NaN/inf, target ranges) when options asked for it
    // (check_data), throwing std::invalid_argument naming the first bad row and column.
    double compute_gradients(const Batch& batch);
    // 2. Sums the threads' buffers into gradient().
    void reduce();
    float* gradient();
    std::size_t n_params() const;
    // 3. Adds the penalty terms (layer l1/l2) to the gradient, clips it to options.clipnorm (its
    // global L2 norm, when set), then updates the weights. `loss`
    // is the batch's whole mean data loss (after any cross-process sum); returns it with the
    // penalties added. Throws TrainingDiverged when the loss or the new weights are not finite
    // (the weights are then those before this step). Without reduce() before it, it sums the
    // threads' buffers itself in the same pass as the update.
    double apply(double loss);

    // The weights (n_params() floats, layout.h) as the steps leave them; set_params copies
    // n_params() values in (e.g. the best epoch's, kept by the host).
    const float* params() const;
    void set_params(const float* values);

    double learning_rate() const;
    void set_learning_rate(double lr);  // >= 0 and finite (a schedule may end at 0); used from the next apply
    std::int64_t steps() const;         // updates applied (Adam's t)
    double last_penalty() const;        // the penalty terms' value added by the last apply
    // The named parts of the last compute_gradients' data loss that the network reports: a
    // variational network's "reconstruction" (summed over the outputs) and "kl" (the KL term
    // before its weight beta), each a share of the batch's mean as the loss is. Writes up to
    // kMaxLossParts names and values; returns their count (0 for other networks).
    static constexpr int kMaxLossParts = 2;
    int loss_parts(const char** names, double* values) const;
    // Mean loss of other data (validation) with the current weights, no penalties, no dropout.
    double evaluate(const TrainingData& data);
    // When true (the default), compute_gradients checks each batch's values before using them.
    void set_check_data(bool check);

    struct Impl;  // internal (src/training_session_impl.h)

private:
    friend class Model;
    struct Unclaimed {};
    // For Model::fit, which holds the model's guard itself.
    TrainingSession(Model::Impl& model, const TrainingData& data, const OptimizerConfig& optimizer,
                    const TrainOptions& options, Unclaimed);
    std::unique_ptr<Impl> impl_;
};

}  // namespace fastae
