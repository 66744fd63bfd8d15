// widths.h -- runs a test's body at every vector geometry of simd.h that the build has.
#pragma once

#include "simd.h"

namespace fastae_test {

// Calls f(V{}, name) for Vec8 (the reference of the bit-for-bit comparisons), Twin16 (Vec16's
// geometry on AVX2) and, in AVX-512 builds, Vec16; for none in builds without AVX2.
template <class F>
void for_each_width([[maybe_unused]] F&& f) {
#ifdef FASTAE_HAVE_AVX2_MATH
    f(fastae::detail::simd::Vec8{}, "Vec8");
    f(fastae::detail::simd::Twin16{}, "Twin16");
#endif
#ifdef FASTAE_HAVE_AVX512_MATH
    f(fastae::detail::simd::Vec16{}, "Vec16");
#endif
}

}  // namespace fastae_test
