// vector_math.h -- the few transcendental functions the output pass needs, written once over the
// vector traits of simd.h (Vec8, Vec16, Twin16): the same IEEE operations in the same order lane
// by lane at every width, so a lane's result is the same bits whatever the width, and depends only
// on its input: never on the lane, the vector it sits in or the buffer's address. simd.h also
// defines FASTAE_HAVE_AVX2_MATH, the one switch for every hand-vectorised kernel (AVX2 + FMA
// builds; other builds use their Eigen or scalar versions).
#pragma once

#include "simd.h"

#ifdef FASTAE_HAVE_AVX2_MATH

namespace fastae::detail::simd {

// exp(a) for a <= 0, within 2 ulp of the correctly rounded float (tests check against std::exp).
// Inputs below -87 (where exp nears float's smallest normal) give exp(-87) ~ 1.6e-38 instead
// of a subnormal or 0: the callers add it to 1 or 2, where it vanishes. NaN stays NaN.
// Cody-Waite reduction a = n ln2 + r, |r| <= ln2 / 2, and Cephes' degree-6 polynomial for
// exp(r); 2^n is built in the exponent bits.
template <class V>
inline typename V::type exp_nonpositive(typename V::type a) {
    a = V::max(V::set1(-87.0f), a);  // max returns its second operand for NaN
    const auto n = V::round(V::mul(a, V::set1(1.44269504088896341f)));
    auto r = V::fnmadd(n, V::set1(0.693359375f), a);
    r = V::fnmadd(n, V::set1(-2.12194440e-4f), r);
    auto p = V::set1(1.9875691500e-4f);
    p = V::fma(p, r, V::set1(1.3981999507e-3f));
    p = V::fma(p, r, V::set1(8.3334519073e-3f));
    p = V::fma(p, r, V::set1(4.1665795894e-2f));
    p = V::fma(p, r, V::set1(1.6666665459e-1f));
    p = V::fma(p, r, V::set1(5.0000001201e-1f));
    const auto r2 = V::mul(r, r);
    p = V::fma(p, r2, V::add(r, V::set1(1.0f)));
    // 2^n: n in [-126, 0], so n + 127 is a valid biased exponent; at n = -126, r >= 0.33 and
    // p >= 1.4, so the product stays normal.
    return V::mul(p, V::pow2(V::to_int(n)));
}

// log(1 + e) for e in [0, 1]: 2 atanh(t) with t = e / (2 + e) in [0, 1/3], summed as its odd
// series to t^13 (truncation error below 2e-8 relative).
template <class V>
inline typename V::type log1p_unit(typename V::type e) {
    const auto t = V::div(e, V::add(e, V::set1(2.0f)));
    const auto t2 = V::mul(t, t);
    auto s = V::set1(1.0f / 13);
    s = V::fma(s, t2, V::set1(1.0f / 11));
    s = V::fma(s, t2, V::set1(1.0f / 9));
    s = V::fma(s, t2, V::set1(1.0f / 7));
    s = V::fma(s, t2, V::set1(1.0f / 5));
    s = V::fma(s, t2, V::set1(1.0f / 3));
    s = V::fma(s, t2, V::set1(1.0f));
    return V::mul(V::add(t, t), s);
}

// log(x) on 8 lanes, for x in [1, 2^126] (NaN stays NaN): x = 2^k m with m in [1, 2), and
// log x = k ln 2 + log(1 + (m - 1)), k ln 2 in Cody-Waite's two parts. For the BCE column's
// products of 1 + e terms (head.h).
inline __m256 log_at_least_one8(__m256 x) {
    const __m256i bits = _mm256_castps_si256(x);
    const __m256 k = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127)));
    const __m256 m = _mm256_castsi256_ps(
        _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f800000)));
    const __m256 low = Vec8::fma(k, Vec8::set1(-2.12194440e-4f), log1p_unit<Vec8>(Vec8::sub(m, Vec8::set1(1.0f))));
    const __m256 log = Vec8::fma(k, Vec8::set1(0.693359375f), low);
    return Vec8::add(log, Vec8::sub(x, x));  // + NaN where x is NaN (the bits above lose it), else + 0
}

}  // namespace fastae::detail::simd

#endif
