// deferred_gradient.h -- a dense layer's weight gradient left from a training step's shards to
// its sum.
//
// With many shards, each writing its whole dW = dZ A_in^T into a gradient buffer of its own and
// the sum reading every buffer back costs O(parameters) a shard, which does not shrink as the
// shards do (docs/performance.md, issue 16, sixth pass). A shard's deferred layer keeps what its
// product needs instead: its dZ, and a copy of its input, which the backward pass overwrites
// with the layer below's dZ. The step's sum (training_slices.cpp: sum_deferred) then runs the
// products, each thread a tile of dW, shard after shard into the summed gradient: shard 0's
// product written, the others' added with beta = 1. A product whose k is one of gemm's k-runs
// (gemm.h: gemm_k_block) adds that run to C, so the bits are those of the buffers summed in
// shard order.
#pragma once

#include <algorithm>
#include <memory>
#include <vector>

#include "eigen_types.h"
#include "gemm.h"

namespace fastae::detail {

class DeferredWeightGradient {
public:
    // For a layer of n_in inputs and n_out outputs, shards of at most `capacity` columns and dZ
    // in `dz` (the shard's workspace, as far as it knows now: keep() names it each step).
    // copy_input: whether keep copies the input, which the backward pass overwrites (a layer's
    // but the first's, whose input is the step's data). pack_dz: whether keep packs dZ for
    // products of all its rows (the first layer's: the sum cuts its dW by columns only).
    DeferredWeightGradient(int n_in, int n_out, int capacity, const float* dz, bool copy_input, bool pack_dz)
        : n_in_(n_in), n_out_(n_out), copy_(copy_input ? std::size_t(n_in) * std::size_t(capacity) : 0) {
        if (pack_dz) packed_ = std::make_unique<SharedPackedA>(false, n_out, capacity, dz, n_out);
    }

    // The shard's dZ (n_out, cols) and input (n_in, cols) kept: the input copied or pointed to,
    // dZ pointed to (and packed). dz, and an input not copied, must stay as they are until the
    // sum has run.
    void keep(const float* dz, const float* a_in, int cols) {
        a_in_ = a_in;
        if (!copy_.empty()) {
            std::copy(a_in, a_in + std::size_t(n_in_) * std::size_t(cols), copy_.data());
            a_in_ = copy_.data();
        }
        dz_ = dz;
        if (packed_) {
            packed_->reset(dz, cols);
            packed_->pack();
        }
        cols_ = cols;
    }
    // Nothing kept this step (an empty shard, or one that failed before its backward pass).
    void clear() { cols_ = 0; }
    int cols() const { return cols_; }

    // Rows [r0, r1) and columns [c0, c1) of this shard's dW into c, dW's element (r0, c0)
    // (leading dimension n_out): c = product (beta 0) or c + product (beta 1).
    void product(int r0, int r1, int c0, int c1, float beta, float* c, GemmWorkspace& ws) const {
        if (packed_ && r0 == 0 && r1 == n_out_) {
            gemm_shared_a(*packed_, /*trans_b=*/true, c1 - c0, a_in_ + c0, n_in_, beta, c, n_out_, ws);
        } else {
            gemm(false, true, r1 - r0, c1 - c0, cols_, 1.0f, dz_ + r0, n_out_, a_in_ + c0, n_in_, beta, c, n_out_,
                 ws);
        }
    }

private:
    int n_in_, n_out_;
    std::unique_ptr<SharedPackedA> packed_;
    AlignedFloats copy_;
    const float* dz_ = nullptr;
    const float* a_in_ = nullptr;
    int cols_ = 0;
};

// A shard's deferred layers: layer(l) is null where the shard writes layer l's dW itself.
struct DeferredGradients {
    std::vector<std::unique_ptr<DeferredWeightGradient>> layers;
    DeferredWeightGradient* layer(int l) const {
        return std::size_t(l) < layers.size() ? layers[std::size_t(l)].get() : nullptr;
    }
    void clear() {
        for (auto& d : layers) {
            if (d) d->clear();
        }
    }
};

}  // namespace fastae::detail
