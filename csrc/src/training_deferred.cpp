// training_deferred.cpp -- the weight gradients a training step of many shards leaves to its sum
// (deferred_gradient.h): which layers defer (choose_deferred, at the session's construction), and
// the sum's pass that computes them (sum_deferred), before the parameter slices sum the rest
// (training_slices.cpp: sum_slice).
#include "training_session_impl.h"

#include <algorithm>
#include <chrono>

namespace fastae {

using detail::AlignedFloats;
using detail::part_begin;

namespace {

// From this many shards the layers' weight gradients are deferred to the sum (Impl::sum_deferred;
// measured at choose_deferred).
constexpr int kDeferShards = 4;

}  // namespace

// The weight gradients deferred to the sum (sum_deferred), from kDeferShards shards on, of the
// layers that write their dW with their own product alone (not tied, no contractive term added
// after it, not the Gaussian code layer), with gemm's FMA kernels (whose bits depend on the
// product's sizes alone, gemm.h). The first layer's sparse pass keeps its lists and dZ
// (sparse_input.h: set_defer), its dense pass its product (deferred_gradient.h), with shards of
// one k-run: then the sum has the bits of the shards' buffers summed. The other layers' dW is
// computed over the whole batch (BatchWeightGradient), with the bits of a one-shard step's.
// The T shards of a deep-model step on one core (epoch_bench --deep --solo, Zen 5, s an epoch),
// every layer deferred (each shard's products added in shard order, the first version) against
// the first layer's sparse rows alone: T = 16 0.77-0.80 against 0.90-1.24; T = 8 0.67-0.71
// against 0.72-0.91; T = 4 0.58-0.65 against 0.60-0.68 with nothing deferred; the tutorial model
// even at 4-16. At 2 threads on 2 cores, slower: deep medians 0.335 / 0.318 and 0.351 / 0.343 (5
// pairs each), where the sum is one add per parameter a thread and the pass adds a fork/join.
// The products over the whole batch then, against that first version: T = 64 1.69-1.77 against
// 2.27-2.41, T = 16 0.76-1.00 against 0.79-1.06 (medians 0.80 / 0.95), T = 4 even.
void TrainingSession::Impl::choose_deferred(int shard_capacity) {
    if (n_shards < kDeferShards) return;
    auto own_product = [](const detail::DenseLayer& layer) {
        return layer.trainable && layer.tied_to < 0 && !layer.tied_by && !layer.gaussian && layer.contractive == 0.0f;
    };
    const detail::DenseLayer& first = net.layer(0);
    defer_first_layer = own_product(first);
    if (defer_first_layer) {
        dw1_begin = first.offset;
        dw1_end = first.bias_offset();
        row_scratch.assign(std::size_t(n_shards), AlignedFloats(std::size_t(first.n_out)));
        pass_seconds.assign(std::size_t(n_shards) * std::size_t(n_shards), 0.0);
        for (detail::Workspace& w : ws) w.sparse().set_defer(true);
        summed_ranges.push_back({dw1_begin, dw1_end});  // sum_slice leaves it to the sum's pass
    }
    if (!detail::gemm_sums_in_k_runs()) return;
    shard_products.resize(std::size_t(n_shards));
    batch_products.resize(std::size_t(net.n_layers()));
    for (int l = 1; l < net.n_layers(); ++l) {
        const detail::DenseLayer& layer = net.layer(l);
        if (!own_product(layer)) continue;
        deferred_layers.push_back(l);
        summed_ranges.push_back({layer.offset, layer.bias_offset()});
        batch_products[std::size_t(l)] =
            std::make_unique<detail::BatchWeightGradient>(layer.n_in, layer.n_out, batch_capacity);
    }
    const bool first_product = defer_first_layer && detail::gemm_k_block(shard_capacity) >= shard_capacity;
    for (int t = 0; t < n_shards; ++t) {
        detail::DeferredGradients& kept = shard_products[std::size_t(t)];
        kept.layers = &batch_products;
        if (first_product) {
            kept.first = std::make_unique<detail::ShardWeightGradient>(first.n_in, first.n_out, shard_capacity,
                                                                        ws[std::size_t(t)].act(1, 0).data());
        }
    }
    // Each layer's dW in about n_shards tiles: its rows in parts of whole 16-row units (the
    // micro-kernels' rows: 32 or 16), then, while fewer parts than shards, its columns in parts
    // of 8-column units. Cut by rows, each tile's product packs only its own rows of dZ.
    auto cut = [](int total, int unit, int parts, int p) {
        const int units = (total + unit - 1) / unit;
        return std::min(total, unit * int(part_begin(std::size_t(units), parts, p)));
    };
    for (int l : deferred_layers) {
        const detail::DenseLayer& layer = net.layer(l);
        const int row_parts = std::min(n_shards, (layer.n_out + 15) / 16);
        const int col_parts = std::min(std::max(1, n_shards / row_parts), (layer.n_in + 7) / 8);
        for (int r = 0; r < row_parts; ++r) {
            for (int c = 0; c < col_parts; ++c) {
                tiles.push_back({l, cut(layer.n_out, 16, row_parts, r), cut(layer.n_out, 16, row_parts, r + 1),
                                 cut(layer.n_in, 8, col_parts, c), cut(layer.n_in, 8, col_parts, c + 1)});
            }
        }
    }
    std::sort(summed_ranges.begin(), summed_ranges.end(),
              [](const Range& a, const Range& b) { return a.begin < b.begin; });  // (layout.h: in layer order)
    // The products' packing room, in every thread's workspace: a step allocates nothing.
    for (detail::Workspace& w : ws) {
        for (const Tile& tile : tiles) w.gemm().reserve(tile.r1 - tile.r0, tile.c1 - tile.c0, int(batch_capacity));
        if (first_product) w.gemm().reserve(first.n_out, (first.n_in + n_shards - 1) / n_shards, shard_capacity);
    }
}

// An empty shard's gradient buffer zeroed where the sum reads it: all but the summed ranges (the
// deferred layers' dWs, which sum_tile computes from the kept columns into grads[0], and the
// deferred first layer's, whose zeros sum_first_layer adds without reading them), but for shard
// 0's first-layer range, which is the sum's own. The shards' copies of the others are never
// written or read, so their pages take no memory (zero_pages.h).
void TrainingSession::Impl::zero_shard_gradient(int shard) {
    float* grad = grads[std::size_t(shard)].data();
    std::size_t at = 0;
    for (const Range& r : summed_ranges) {  // sorted, disjoint
        if (shard == 0 && defer_first_layer && r.begin == dw1_begin) continue;
        std::fill(grad + at, grad + r.begin, 0.0f);
        at = r.end;
    }
    std::fill(grad + at, grad + n_params, 0.0f);
}

// The deferred dWs summed over the shards into grads[0], in a pass of their own (they cost the
// weight gradients' FMAs, which a slice of the parameters would not share evenly): each task a
// part of a deferred layer's dW (sum_first_layer's slices, then the other layers' tiles). Then
// sum_slice leaves them alone. Each shard's time on its first-layer part goes to its path choice
// (network.h: FirstLayerPath), as the step's time it adds: all of it when one thread ran the
// pass, a share for each of the threads that ran it side by side.
void TrainingSession::Impl::sum_deferred() {
    if (deferred_summed || summed_ranges.empty()) return;
    deferred_summed = true;
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
    // One clock read per shard's part, each part timed from the end of the one before: a slice
    // of T shards reads the clock T + 1 times, not 2T (T slices a step: at 64 shards 8192 reads a
    // step on one core took 5% of a solo epoch, 23 ns each).
    auto start = detail::Clock::now();
    for (int s = 0; s < n_shards; ++s) {
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
        } else if (s > 0 && shard_data[std::size_t(s)].cols == 0) {  // an empty shard's zeros (a -0 turns +0)
            for (std::size_t i = 0; i < (f1 - f0) * n_out; ++i) block[i] += 0.0f;
        } else if (s > 0) {
            const float* part = grads[std::size_t(s)].data() + dw1_begin + f0 * n_out;
            for (std::size_t i = 0; i < (f1 - f0) * n_out; ++i) block[i] += part[i];
        }
        const auto end = detail::Clock::now();
        pass_seconds[std::size_t(slice * n_shards + s)] = std::chrono::duration<double>(end - start).count();
        start = end;
    }
}

// A tile of a deferred layer's dW, over the whole batch at once (deferred_gradient.h:
// BatchWeightGradient), from the columns its shards kept.
void TrainingSession::Impl::sum_tile(const Tile& tile, int member) {
    const detail::DenseLayer& layer = net.layer(tile.layer);
    float* c =
        grads[0].data() + layer.offset + std::size_t(tile.c0) * std::size_t(layer.n_out) + std::size_t(tile.r0);
    batch_products[std::size_t(tile.layer)]->product(tile.r0, tile.r1, tile.c0, tile.c1, int(batch.size), c,
                                                     ws[std::size_t(member)].gemm());
}

}  // namespace fastae
