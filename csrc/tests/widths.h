// widths.h -- runs a test's body at every vector geometry of simd.h that the build has, with
// what such tests share: the lengths with every tail, and bit-for-bit comparison.
#pragma once

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

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

inline const float kNaN = std::numeric_limits<float>::quiet_NaN();
inline const float kInf = std::numeric_limits<float>::infinity();

// Lengths with every tail size of both geometries, and some past 64.
inline std::vector<int> lengths() {
    std::vector<int> n;
    for (int k = 0; k <= 31; ++k) n.push_back(k);
    for (int k : {63, 64, 65, 71, 79, 80, 100, 784}) n.push_back(k);
    return n;
}

// The same bits, or both NaN. A NaN's sign and payload are not part of any kernel's contract:
// when two NaNs meet in an addition (a column sum over +NaN and -NaN), x86 returns the first
// operand's, and the compiler orders the operands of commutative operations as it likes, so two
// compilations of the same code may give NaNs of either sign. Every other value is compared bit
// for bit, signed zeros included.
inline bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0 || (std::isnan(a) && std::isnan(b)); }
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!same_bits(a[i], b[i])) return false;
    }
    return true;
}

}  // namespace fastae_test
