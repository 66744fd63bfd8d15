// training_slices.cpp -- a training step's second half, on the parameter buffer cut into
// n_threads fixed slices (training.cpp runs the shards' first half): the shards' gradients summed
// into grads[0] in shard order (sum_slice; the deferred dWs, sum_deferred), the penalty terms
// added, the global norm clipped, the optimizer applied.
#include "training_session_impl.h"

#include <algorithm>
#include <cmath>

namespace fastae {

using detail::part_begin;

// Slice `slice` of the parameters: the shards' gradients summed into grads[0] (unless reduce()
// did it) and the penalty terms added: l1 * sign(w) + 2 l2 w on penalised weights.
void TrainingSession::Impl::penalise_slice(int slice) {
    const std::size_t p0 = part_begin(n_params, n_shards, slice), p1 = part_begin(n_params, n_shards, slice + 1);
    if (!reduced) sum_slice(p0, p1);
    float* g = grads[0].data();
    double penalty = 0.0;
    for (const Penalty& term : penalties) {
        const std::size_t a = std::max(p0, term.begin), e = std::min(p1, term.end);
        for (std::size_t i = a; i < e; ++i) {
            const float w = params[i];
            penalty += double(term.l1) * std::fabs(w) + double(term.l2) * double(w) * double(w);
            g[i] += term.l1 * float((w > 0.0f) - (w < 0.0f)) + 2.0f * term.l2 * w;
        }
    }
    slice_penalty[std::size_t(slice)] = penalty;
}

// The whole step on one slice: the gradient completed (penalise_slice), scaled by the clip factor
// when clipping ran before, and the update applied.
void TrainingSession::Impl::update_slice(int slice) {
    const std::size_t p0 = part_begin(n_params, n_shards, slice), p1 = part_begin(n_params, n_shards, slice + 1);
    float* g = grads[0].data();
    if (options.clipnorm > 0.0) {
        if (clip_factor != 1.0f) {
            for (std::size_t i = p0; i < p1; ++i) g[i] *= clip_factor;
        }
    } else {
        penalise_slice(slice);
    }
    bool finite = true;
    for (const Range& r : trainable) {  // frozen layers' parameters and optimizer slots stay as they are
        const std::size_t a = std::max(p0, r.begin), e = std::min(p1, r.end);
        if (a < e) finite = opt.apply(params, g, a, e, previous.data()) && finite;
    }
    slice_finite[std::size_t(slice)] = finite;
}

// clipnorm: the gradient (penalties included) is completed in a pass of its own, its global L2
// norm summed slice by slice in slice order, and the factor min(1, clipnorm / norm) kept for the
// update pass (torch.nn.utils.clip_grad_norm_ and Keras' clipnorm; a norm of 0 is left alone).
void TrainingSession::Impl::clip_norm() {
    if (!reduced) sum_deferred();
    auto task = [this](int slice, int) {
        penalise_slice(slice);
        const std::size_t p0 = part_begin(n_params, n_shards, slice), p1 = part_begin(n_params, n_shards, slice + 1);
        double sum = 0.0;
        const float* g = grads[0].data();
        for (std::size_t i = p0; i < p1; ++i) sum += double(g[i]) * double(g[i]);
        slice_square_sum[std::size_t(slice)] = sum;
    };
    pool.run(task, n_shards);
    reduced = true;
    double total = 0.0;
    for (double v : slice_square_sum) total += v;
    const double norm = std::sqrt(total);
    clip_factor = norm > options.clipnorm ? float(options.clipnorm / norm) : 1.0f;
}

// Slice [p0, p1) of the shards' gradients summed into grads[0], in shard order, but for the
// deferred dWs sum_deferred summed before (summed_ranges).
void TrainingSession::Impl::sum_slice(std::size_t p0, std::size_t p1) {
    float* g0 = grads[0].data();
    auto add = [&](std::size_t a, std::size_t e) {
        for (int s = 1; s < n_shards; ++s) {
            const float* gs = grads[std::size_t(s)].data();
            for (std::size_t i = a; i < e; ++i) g0[i] += gs[i];
        }
    };
    std::size_t at = p0;
    for (const Range& r : summed_ranges) {
        const std::size_t a = std::max(at, r.begin), e = std::min(p1, r.end);
        if (a >= e) continue;
        add(at, a);
        at = e;
    }
    add(at, p1);
}

// The deferred dWs summed over the shards into grads[0], in a pass of their own (they cost the
// weight gradients' FMAs, which a slice of the parameters would not share evenly): each task a
// part of a deferred layer's dW (sum_first_layer's slices, then the other layers' tiles). Then
// sum_slice leaves them alone. Each shard's time on its first-layer part goes to its path choice (network.h:
// FirstLayerPath), as the step's time it adds: all of it when one thread ran the pass, a share
// for each of the threads that ran it side by side.
void TrainingSession::Impl::sum_deferred() {
    if (deferred_summed) return;
    deferred_summed = true;
    if (defer_first_layer) summed_ranges.push_back({dw1_begin, dw1_end});
    for (int l : deferred_layers) summed_ranges.push_back({net.layer(l).offset, net.layer(l).bias_offset()});
    if (summed_ranges.empty()) return;
    std::sort(summed_ranges.begin(), summed_ranges.end(),
              [](const Range& a, const Range& b) { return a.begin < b.begin; });
    const int first_slices = defer_first_layer ? n_shards : 0;
    auto task = [&](int item, int member) {
        if (item < first_slices) {
            sum_first_layer(item, member);
        } else {
            sum_tile(tiles[std::size_t(item - first_slices)], member);
        }
    };
    pool.run(task, first_slices + int(tiles.size()));
    if (!defer_first_layer) return;
    for (int s = 0; s < n_shards; ++s) {
        if (shard_data[std::size_t(s)].cols == 0) continue;
        double seconds = 0.0;
        for (int slice = 0; slice < n_shards; ++slice) seconds += pass_seconds[std::size_t(slice * n_shards + s)];
        ws[std::size_t(s)].first_layer().add(solo ? seconds : seconds / n_shards);
    }
}

// Slice `slice` of the first layer's dW: its feature rows [f0, f1), each shard's part added in
// shard order (shard 0's written), as the buffers' sum would, whichever way the shard has it:
// rows of a sparse pass computed here (sparse_input.h: feature_row, with the bits its own pass
// would have written), a dense pass's product (deferred_gradient.h), or the rows in its buffer
// (a sparse pass that does not sum by feature; an empty shard's zeros).
void TrainingSession::Impl::sum_first_layer(int slice, int member) {
    const auto n_out = std::size_t(net.layer(0).n_out);
    const auto d = std::size_t(net.layer(0).n_in);
    const std::size_t f0 = part_begin(d, n_shards, slice), f1 = part_begin(d, n_shards, slice + 1);
    float* block = grads[0].data() + dw1_begin + f0 * n_out;
    float* row = row_scratch[std::size_t(slice)].data();
    for (int s = 0; s < n_shards; ++s) {
        const auto start = detail::Clock::now();
        const detail::ShardWeightGradient* kept =
            shard_products.empty() ? nullptr : shard_products[std::size_t(s)].first.get();
        const detail::SparseInput& sparse = ws[std::size_t(s)].sparse();
        if (kept && kept->cols() > 0) {
            kept->product(int(f0), int(f1), s == 0 ? 0.0f : 1.0f, block, ws[std::size_t(member)].gemm());
        } else if (sparse.deferred()) {
            for (std::size_t f = f0; f < f1; ++f) {
                float* sum = block + (f - f0) * n_out;
                sparse.feature_row(int(f), s == 0 ? sum : row);
                if (s > 0) {
                    for (std::size_t o = 0; o < n_out; ++o) sum[o] += row[o];
                }
            }
        } else if (s > 0) {
            const float* part = grads[std::size_t(s)].data() + dw1_begin + f0 * n_out;
            for (std::size_t i = 0; i < (f1 - f0) * n_out; ++i) block[i] += part[i];
        }
        const std::chrono::duration<double> spent = detail::Clock::now() - start;
        pass_seconds[std::size_t(slice * n_shards + s)] = spent.count();
    }
}

// A tile of a deferred layer's dW, over the whole batch at once (deferred_gradient.h:
// BatchWeightGradient), from the columns its shards kept.
void TrainingSession::Impl::sum_tile(const Tile& tile, int member) {
    const detail::DenseLayer& layer = net.layer(tile.layer);
    float* c = grads[0].data() + layer.offset + std::size_t(tile.c0) * std::size_t(layer.n_out) + std::size_t(tile.r0);
    batch_products[std::size_t(tile.layer)]->product(tile.r0, tile.r1, tile.c0, tile.c1, int(batch.size), c,
                                                     ws[std::size_t(member)].gemm());
}

}  // namespace fastae
