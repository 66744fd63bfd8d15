// value_checks.h -- one vectorised pass telling whether every value of a float array is finite
// or inside a range (the checks of caller data, model_impl.h; the first layer's products,
// network.h: forward_batch). Only the answer: naming the first bad value is the caller's slower
// scan, run when the answer is no.
#pragma once

#include <cstddef>
#include <limits>

#include "simd.h"

namespace fastae::detail {

// Whether every x[0..n) lies in [lo, hi] (so is finite, for finite bounds; NaN never is), in one
// pass: Eigen's allFinite, minCoeff and maxCoeff took three, 8% of a checked MNIST epoch (the
// first epoch of a fit; every epoch of a partial_fit).
inline bool values_within(std::size_t n, const float* x, float lo, float hi) {
#ifdef FASTAE_HAVE_AVX2_MATH
    using V = simd::Widest;
    const auto vlo = V::set1(lo), vhi = V::set1(hi);
    auto bad = V::no_lanes();
    simd::sweep<V>(n, [&](const auto& at) {
        const auto v = at.load(x);  // ordered compares are false for NaN: not_finite catches it
        const auto out = V::mask_or(V::not_finite(v), V::mask_or(V::greater(vlo, v), V::greater(v, vhi)));
        bad = V::mask_or(bad, at.keep_mask(out));
    });
    return !V::any(bad);
#else
    for (std::size_t i = 0; i < n; ++i) {
        if (!(x[i] >= lo && x[i] <= hi)) return false;
    }
    return true;
#endif
}

// Whether every x[0..n) is finite (neither infinite nor NaN).
inline bool all_finite(std::size_t n, const float* x) {
    return values_within(n, x, -std::numeric_limits<float>::max(), std::numeric_limits<float>::max());
}

}  // namespace fastae::detail
