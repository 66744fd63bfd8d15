// vector_math.h -- the few transcendental functions the output pass needs, on 8 floats at once,
// and FASTAE_HAVE_AVX2_MATH, the one switch for every hand-vectorised kernel (output pass, Adam,
// sparse input): AVX2 + FMA builds only; other builds use their Eigen or scalar versions. Each
// function is a fixed sequence of IEEE operations, so a lane's result depends only on its input:
// never on the lane, the vector it sits in or the buffer's address.
#pragma once

#if defined(__AVX2__) && defined(__FMA__)
#define FASTAE_HAVE_AVX2_MATH 1
#include <immintrin.h>

namespace fastae::detail::avx2 {

// exp(a) for a <= 0, within 2 ulp of the correctly rounded float (tests check against std::exp).
// Inputs below -87 (where exp nears float's smallest normal) give exp(-87) ~ 1.6e-38 instead
// of a subnormal or 0: the callers add it to 1 or 2, where it vanishes. NaN stays NaN.
// Cody-Waite reduction a = n ln2 + r, |r| <= ln2 / 2, and Cephes' degree-6 polynomial for
// exp(r); 2^n is built in the exponent bits.
inline __m256 exp_nonpositive(__m256 a) {
    a = _mm256_max_ps(_mm256_set1_ps(-87.0f), a);  // max_ps returns its second operand for NaN
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(a, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), a);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // 2^n: n in [-126, 0], so n + 127 is a valid biased exponent; at n = -126, r >= 0.33 and
    // p >= 1.4, so the product stays normal.
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

// log(1 + e) for e in [0, 1]: 2 atanh(t) with t = e / (2 + e) in [0, 1/3], summed as its odd
// series to t^13 (truncation error below 2e-8 relative).
inline __m256 log1p_unit(__m256 e) {
    const __m256 t = _mm256_div_ps(e, _mm256_add_ps(e, _mm256_set1_ps(2.0f)));
    const __m256 t2 = _mm256_mul_ps(t, t);
    __m256 s = _mm256_set1_ps(1.0f / 13);
    s = _mm256_fmadd_ps(s, t2, _mm256_set1_ps(1.0f / 11));
    s = _mm256_fmadd_ps(s, t2, _mm256_set1_ps(1.0f / 9));
    s = _mm256_fmadd_ps(s, t2, _mm256_set1_ps(1.0f / 7));
    s = _mm256_fmadd_ps(s, t2, _mm256_set1_ps(1.0f / 5));
    s = _mm256_fmadd_ps(s, t2, _mm256_set1_ps(1.0f / 3));
    s = _mm256_fmadd_ps(s, t2, _mm256_set1_ps(1.0f));
    return _mm256_mul_ps(_mm256_add_ps(t, t), s);
}

// Sum of the 8 lanes, in a fixed order.
inline float horizontal_sum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Mask for the first `count` (0..8) lanes, for maskload/maskstore of a tail.
inline __m256i first_lanes(int count) {
    const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), index);
}

}  // namespace fastae::detail::avx2

#if defined(__AVX512F__)
#define FASTAE_HAVE_AVX512_MATH 1

namespace fastae::detail::avx512 {

// The same functions on 16 floats: the same IEEE operations in the same order lane by lane, so a
// lane's result is bit for bit the 8-lane version's (tests compare the builds' outputs).
inline __m512 exp_nonpositive(__m512 a) {
    a = _mm512_max_ps(_mm512_set1_ps(-87.0f), a);  // max returns its second operand for NaN
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(a, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), a);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 r2 = _mm512_mul_ps(r, r);
    p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

inline __m512 log1p_unit(__m512 e) {
    const __m512 t = _mm512_div_ps(e, _mm512_add_ps(e, _mm512_set1_ps(2.0f)));
    const __m512 t2 = _mm512_mul_ps(t, t);
    __m512 s = _mm512_set1_ps(1.0f / 13);
    s = _mm512_fmadd_ps(s, t2, _mm512_set1_ps(1.0f / 11));
    s = _mm512_fmadd_ps(s, t2, _mm512_set1_ps(1.0f / 9));
    s = _mm512_fmadd_ps(s, t2, _mm512_set1_ps(1.0f / 7));
    s = _mm512_fmadd_ps(s, t2, _mm512_set1_ps(1.0f / 5));
    s = _mm512_fmadd_ps(s, t2, _mm512_set1_ps(1.0f / 3));
    s = _mm512_fmadd_ps(s, t2, _mm512_set1_ps(1.0f));
    return _mm512_mul_ps(_mm512_add_ps(t, t), s);
}

// The two 8-lane halves of v, low first.
inline __m256 low_half(__m512 v) { return _mm512_castps512_ps256(v); }
inline __m256 high_half(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }

}  // namespace fastae::detail::avx512
#endif

#endif
