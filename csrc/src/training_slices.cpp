// training_slices.cpp -- a training step's second half, on the parameter buffer cut into
// n_threads fixed slices (training.cpp runs the shards' first half): the shards' gradients summed
// into grads[0] in shard order (sum_slice; the deferred dWs before it, training_deferred.cpp),
// the penalty terms added, the global norm clipped, the optimizer applied.
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

}  // namespace fastae
