// deferred_gradient.h -- the layers' weight gradients left from a training step's shards to
// its sum.
//
// With many shards, each writing its whole dW = dZ A_in^T into a gradient buffer of its own and
// the sum reading every buffer back costs O(parameters) a shard, which does not shrink as the
// shards do (docs/performance-log.md, issue 16, sixth pass). A shard's deferred layer keeps what its
// product needs instead, and the step's sum (training_deferred.cpp: sum_deferred) runs the
// products, each thread a part of dW: a layer after the first over the whole batch at once
// (BatchWeightGradient), the first layer's dense pass shard by shard (ShardWeightGradient),
// beside other shards' sparse rows.
#pragma once

#include <algorithm>
#include <memory>
#include <vector>

#include "eigen_types.h"
#include "gemm.h"

namespace fastae::detail {

// A layer after the first: its dW over the whole batch, dW = dZ A^T with k the batch's samples,
// from the shards' columns of dZ and of the input, each shard copying its own in (keep). The sum
// runs the product tile by tile (product), one gemm a tile: the bits are those of the layer's
// product in a one-shard step of the same batch, whatever the shards.
class BatchWeightGradient {
public:
    // For a layer of n_in inputs and n_out outputs and batches of up to `capacity` samples.
    BatchWeightGradient(int n_in, int n_out, std::size_t capacity)
        : n_in_(n_in), n_out_(n_out), dz_(std::size_t(n_out) * capacity), a_in_(std::size_t(n_in) * capacity) {}

    // A shard's columns [first, first + cols) of the batch: its dZ (n_out, cols) and input
    // (n_in, cols), copied (the backward pass overwrites the input with the layer below's dZ);
    // dZ only when it is not there already (dz_columns).
    void keep(std::size_t first, const float* dz, const float* a_in, int cols) {
        float* kept = dz_columns(first);
        if (dz != kept) std::copy(dz, dz + std::size_t(n_out_) * std::size_t(cols), kept);
        std::copy(a_in, a_in + std::size_t(n_in_) * std::size_t(cols), a_in_.data() + first * std::size_t(n_in_));
    }
    // Where the batch's dZ columns from `first` on are kept: a shard's backward can write its dZ
    // there in the first place (network.h: Workspace::bind_act), which keep then does not copy.
    float* dz_columns(std::size_t first) { return dz_.data() + first * std::size_t(n_out_); }
    // Rows [r0, r1) and columns [c0, c1) of dW over the batch's first `samples` columns, written
    // into c, dW's element (r0, c0) (leading dimension n_out).
    void product(int r0, int r1, int c0, int c1, int samples, float* c, GemmWorkspace& ws) const {
        gemm(false, true, r1 - r0, c1 - c0, samples, 1.0f, dz_.data() + r0, n_out_, a_in_.data() + c0, n_in_, 0.0f,
             c, n_out_, ws);
    }

private:
    int n_in_, n_out_;
    AlignedFloats dz_, a_in_;  // (n_out, capacity) and (n_in, capacity)
};

// The first layer's dense pass: one shard's dZ packed (gemm's op(A), SharedPackedA, packed while
// in cache) and its input pointed to (the step's data, which stays). The sum adds the shards'
// products by feature columns, in shard order and mixed with other shards' sparse rows
// (training_deferred.cpp: sum_first_layer): shard 0's written, the others' added with beta = 1.
// A product whose k is one of gemm's k-runs (gemm.h: gemm_k_block) adds that run to C, so the
// bits are those of the shards' buffers summed in shard order.
class ShardWeightGradient {
public:
    // For a layer of n_out outputs, shards of at most `capacity` columns (one k-run) and dZ in
    // `dz` (the shard's workspace, as far as it knows now: keep() names it each step).
    ShardWeightGradient(int n_in, int n_out, int capacity, const float* dz)
        : n_in_(n_in), n_out_(n_out), dz_(false, n_out, capacity, dz, n_out) {}

    // The shard's dZ (n_out, cols) packed and its input (n_in, cols) pointed to; the input must
    // stay as it is until the sum has run.
    void keep(const float* dz, const float* a_in, int cols) {
        a_in_ = a_in;
        dz_.reset(dz, cols);
        dz_.pack();
        cols_ = cols;
    }
    // Nothing kept this step (an empty shard, a sparse pass, or a shard that failed before its
    // backward pass).
    void clear() { cols_ = 0; }
    int cols() const { return cols_; }

    // Columns [c0, c1) of this shard's dW into c, dW's element (0, c0) (leading dimension
    // n_out): c = product (beta 0) or c + product (beta 1).
    void product(int c0, int c1, float beta, float* c, GemmWorkspace& ws) const {
        gemm_shared_a(dz_, /*trans_b=*/true, c1 - c0, a_in_ + c0, n_in_, beta, c, n_out_, ws);
    }

private:
    int n_in_, n_out_;
    SharedPackedA dz_;
    const float* a_in_ = nullptr;
    int cols_ = 0;
};

// What a shard keeps of its deferred layers: the first layer's product (null unless deferred),
// the session's batch-wide gradients by layer (null where the shard writes the layer's dW
// itself), and where the shard's columns start in the batch.
struct DeferredGradients {
    std::unique_ptr<ShardWeightGradient> first;
    const std::vector<std::unique_ptr<BatchWeightGradient>>* layers = nullptr;  // the session's
    std::size_t column = 0;
    BatchWeightGradient* layer(int l) const {
        return layers && std::size_t(l) < layers->size() ? (*layers)[std::size_t(l)].get() : nullptr;
    }
};

}  // namespace fastae::detail
