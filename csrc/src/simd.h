// simd.h -- the small vector abstraction the hand-vectorised kernels outside the GEMM are written
// against (the output pass, the optimizers, the sparse first layer): one traits struct per vector
// geometry, each with the same static operations, so a kernel is one template over the traits.
//
//   Vec8    8 floats in one __m256 (AVX2 + FMA)
//   Vec16   16 floats in one __m512 (AVX-512F builds only)
//   Twin16  16 floats held as two __m256: Vec16's geometry (16-lane loops, tails of up to 15, the
//           masks, the order of the sums) on any AVX2 + FMA machine. Every operation is the same
//           IEEE operation per lane as Vec16's, so a kernel on Twin16 gives Vec16's bits: the tests
//           run the 16-lane code paths through it on machines without AVX-512.
//   Widest  the widest of Vec16 / Vec8 this build has: what production kernels use.
//
// Every operation is lane by lane and exactly rounded (no estimate instructions), so a lane's
// result depends only on its inputs: never on the lane, the vector it sits in or the address.
// "The same bits" excludes a NaN's sign and payload: where two NaNs meet (a sum over +NaN and
// -NaN lanes), x86 returns the first operand's, and compilers order the operands of commutative
// operations freely; a NaN stays a NaN at every width.
// max/min return their second operand when either is NaN (and for +0 vs -0), as the x86
// instructions do. to_int and round use round-to-nearest-even (the default MXCSR mode).
//
// Switches: FASTAE_HAVE_AVX2_MATH (AVX2 + FMA: Vec8, Twin16) and FASTAE_HAVE_AVX512_MATH
// (AVX-512F: Vec16); builds without AVX2 use their Eigen or scalar versions of each kernel.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>

#if defined(__AVX2__) && defined(__FMA__)
#define FASTAE_HAVE_AVX2_MATH 1
#include <immintrin.h>

namespace fastae::detail::simd {

// lanes[m]: the indices of the set bits of m, in increasing order, packed to the front (Vec8's
// compress_store).
struct PackTable {
    alignas(32) std::int32_t lanes[256][8];
    constexpr PackTable() : lanes() {
        for (int m = 0; m < 256; ++m) {
            int k = 0;
            for (int bit = 0; bit < 8; ++bit) {
                if (m >> bit & 1) lanes[m][k++] = bit;
            }
        }
    }
};
inline constexpr PackTable kPackTable{};

struct Vec8 {
    using type = __m256;
    using itype = __m256i;
    using mask = __m256;  // all ones in the lanes that are set
    static constexpr int lanes = 8;

    static type zero() { return _mm256_setzero_ps(); }
    static type set1(float x) { return _mm256_set1_ps(x); }
    static type load(const float* p) { return _mm256_load_ps(p); }  // 32-byte aligned
    static type loadu(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, type v) { _mm256_store_ps(p, v); }
    static void storeu(float* p, type v) { _mm256_storeu_ps(p, v); }
    // A non-temporal store (32-byte aligned): past the caches, without reading the line first.
    static void stream(float* p, type v) { _mm256_stream_ps(p, v); }
    // The first count (0..8) lanes; a masked load reads nothing past them and zeroes the rest.
    static mask first_lanes(int count) {
        const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(count), index));
    }
    static type load_masked(const float* p, mask m) { return _mm256_maskload_ps(p, _mm256_castps_si256(m)); }
    static void store_masked(float* p, mask m, type v) { _mm256_maskstore_ps(p, _mm256_castps_si256(m), v); }

    static type add(type a, type b) { return _mm256_add_ps(a, b); }
    static type sub(type a, type b) { return _mm256_sub_ps(a, b); }
    static type mul(type a, type b) { return _mm256_mul_ps(a, b); }
    static type div(type a, type b) { return _mm256_div_ps(a, b); }
    static type fma(type a, type b, type c) { return _mm256_fmadd_ps(a, b, c); }      // a b + c
    static type fnmadd(type a, type b, type c) { return _mm256_fnmadd_ps(a, b, c); }  // c - a b
    static type max(type a, type b) { return _mm256_max_ps(a, b); }
    static type min(type a, type b) { return _mm256_min_ps(a, b); }
    static type sqrt(type a) { return _mm256_sqrt_ps(a); }
    static type round(type a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
    static type abs(type a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
    static type negative_abs(type a) { return _mm256_or_ps(a, _mm256_set1_ps(-0.0f)); }  // -|a|

    static itype to_int(type a) { return _mm256_cvtps_epi32(a); }
    static type to_float(itype n) { return _mm256_cvtepi32_ps(n); }
    // 2^n for integers n in [-126, 127], built in the exponent bits.
    static type pow2(itype n) {
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
    }

    static mask greater(type a, type b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
    static mask greater_equal(type a, type b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
    static mask not_finite(type a) {  // inf or NaN
        return _mm256_cmp_ps(abs(a), _mm256_set1_ps(std::numeric_limits<float>::infinity()), _CMP_NLT_UQ);
    }
    static mask no_lanes() { return _mm256_setzero_ps(); }
    static mask mask_and(mask a, mask b) { return _mm256_and_ps(a, b); }
    static mask mask_or(mask a, mask b) { return _mm256_or_ps(a, b); }
    static bool any(mask m) { return _mm256_movemask_ps(m) != 0; }
    static type select(mask m, type if_set, type if_clear) { return _mm256_blendv_ps(if_clear, if_set, m); }

    // Sums of 8 running lanes: v's lanes added to sum8 (for wider vectors, 8 lanes at a time,
    // low first), and the 8 sums added across in a fixed order. mul_into8: products likewise.
    // Compaction (the sparse first layer's lists): the lanes that are not zero (NaN included) as
    // bits, and compress_store: the lanes set in `bits` packed to the front, their values into
    // values[0, n) and first + their lane into index[0, n) (n = popcount(bits)), whole vectors
    // stored (lanes - n entries of slack past n written too).
    static unsigned nonzero_bits(type v) {
        return unsigned(_mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NEQ_UQ)));
    }
    static void compress_store(float* values, std::uint32_t* index, type v, unsigned bits, int first) {
        const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(kPackTable.lanes[bits]));
        _mm256_storeu_ps(values, _mm256_permutevar8x32_ps(v, perm));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(index), _mm256_add_epi32(perm, _mm256_set1_epi32(first)));
    }

    static __m256 add_to_sums8(__m256 sum8, type v) { return _mm256_add_ps(sum8, v); }
    static __m256 mul_into8(__m256 product8, type v) { return _mm256_mul_ps(product8, v); }
    static float sum_across8(__m256 s8) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
    }
    static float horizontal_sum(type v) { return sum_across8(add_to_sums8(_mm256_setzero_ps(), v)); }
};

// Vec16's geometry on two Vec8 halves: each operation is Vec8's on the low and the high half.
struct Twin16 {
    struct type { __m256 lo, hi; };
    struct itype { __m256i lo, hi; };
    using mask = type;
    static constexpr int lanes = 16;

    static type zero() { return {Vec8::zero(), Vec8::zero()}; }
    static type set1(float x) { return {Vec8::set1(x), Vec8::set1(x)}; }
    static type load(const float* p) { return {Vec8::load(p), Vec8::load(p + 8)}; }
    static type loadu(const float* p) { return {Vec8::loadu(p), Vec8::loadu(p + 8)}; }
    static void store(float* p, type v) {
        Vec8::store(p, v.lo);
        Vec8::store(p + 8, v.hi);
    }
    static void storeu(float* p, type v) {
        Vec8::storeu(p, v.lo);
        Vec8::storeu(p + 8, v.hi);
    }
    static void stream(float* p, type v) {
        Vec8::stream(p, v.lo);
        Vec8::stream(p + 8, v.hi);
    }
    static mask first_lanes(int count) { return {Vec8::first_lanes(count), Vec8::first_lanes(count - 8)}; }
    static type load_masked(const float* p, mask m) {
        return {Vec8::load_masked(p, m.lo), Vec8::load_masked(p + 8, m.hi)};
    }
    static void store_masked(float* p, mask m, type v) {
        Vec8::store_masked(p, m.lo, v.lo);
        Vec8::store_masked(p + 8, m.hi, v.hi);
    }

    static type add(type a, type b) { return {Vec8::add(a.lo, b.lo), Vec8::add(a.hi, b.hi)}; }
    static type sub(type a, type b) { return {Vec8::sub(a.lo, b.lo), Vec8::sub(a.hi, b.hi)}; }
    static type mul(type a, type b) { return {Vec8::mul(a.lo, b.lo), Vec8::mul(a.hi, b.hi)}; }
    static type div(type a, type b) { return {Vec8::div(a.lo, b.lo), Vec8::div(a.hi, b.hi)}; }
    static type fma(type a, type b, type c) { return {Vec8::fma(a.lo, b.lo, c.lo), Vec8::fma(a.hi, b.hi, c.hi)}; }
    static type fnmadd(type a, type b, type c) {
        return {Vec8::fnmadd(a.lo, b.lo, c.lo), Vec8::fnmadd(a.hi, b.hi, c.hi)};
    }
    static type max(type a, type b) { return {Vec8::max(a.lo, b.lo), Vec8::max(a.hi, b.hi)}; }
    static type min(type a, type b) { return {Vec8::min(a.lo, b.lo), Vec8::min(a.hi, b.hi)}; }
    static type sqrt(type a) { return {Vec8::sqrt(a.lo), Vec8::sqrt(a.hi)}; }
    static type round(type a) { return {Vec8::round(a.lo), Vec8::round(a.hi)}; }
    static type abs(type a) { return {Vec8::abs(a.lo), Vec8::abs(a.hi)}; }
    static type negative_abs(type a) { return {Vec8::negative_abs(a.lo), Vec8::negative_abs(a.hi)}; }

    static itype to_int(type a) { return {Vec8::to_int(a.lo), Vec8::to_int(a.hi)}; }
    static type to_float(itype n) { return {Vec8::to_float(n.lo), Vec8::to_float(n.hi)}; }
    static type pow2(itype n) { return {Vec8::pow2(n.lo), Vec8::pow2(n.hi)}; }

    static mask greater(type a, type b) { return {Vec8::greater(a.lo, b.lo), Vec8::greater(a.hi, b.hi)}; }
    static mask greater_equal(type a, type b) {
        return {Vec8::greater_equal(a.lo, b.lo), Vec8::greater_equal(a.hi, b.hi)};
    }
    static mask not_finite(type a) { return {Vec8::not_finite(a.lo), Vec8::not_finite(a.hi)}; }
    static mask no_lanes() { return {Vec8::no_lanes(), Vec8::no_lanes()}; }
    static mask mask_and(mask a, mask b) { return {Vec8::mask_and(a.lo, b.lo), Vec8::mask_and(a.hi, b.hi)}; }
    static mask mask_or(mask a, mask b) { return {Vec8::mask_or(a.lo, b.lo), Vec8::mask_or(a.hi, b.hi)}; }
    static bool any(mask m) { return Vec8::any(Vec8::mask_or(m.lo, m.hi)); }
    static type select(mask m, type a, type b) { return {Vec8::select(m.lo, a.lo, b.lo), Vec8::select(m.hi, a.hi, b.hi)}; }

    static unsigned nonzero_bits(type v) { return Vec8::nonzero_bits(v.lo) | Vec8::nonzero_bits(v.hi) << 8; }
    static void compress_store(float* values, std::uint32_t* index, type v, unsigned bits, int first) {
        Vec8::compress_store(values, index, v.lo, bits & 0xFFu, first);
        const int n = __builtin_popcount(bits & 0xFFu);
        Vec8::compress_store(values + n, index + n, v.hi, bits >> 8, first + 8);
    }

    static __m256 add_to_sums8(__m256 sum8, type v) { return Vec8::add(Vec8::add(sum8, v.lo), v.hi); }
    static __m256 mul_into8(__m256 product8, type v) { return Vec8::mul(Vec8::mul(product8, v.lo), v.hi); }
    static float sum_across8(__m256 s8) { return Vec8::sum_across8(s8); }
    static float horizontal_sum(type v) { return sum_across8(add_to_sums8(_mm256_setzero_ps(), v)); }
};

#if defined(__AVX512F__)
#define FASTAE_HAVE_AVX512_MATH 1

// AVX-512F only (no DQ/BW/VL instructions), so that every AVX-512 CPU runs it.
struct Vec16 {
    using type = __m512;
    using itype = __m512i;
    using mask = __mmask16;
    static constexpr int lanes = 16;

    static type zero() { return _mm512_setzero_ps(); }
    static type set1(float x) { return _mm512_set1_ps(x); }
    static type load(const float* p) { return _mm512_load_ps(p); }  // 64-byte aligned
    static type loadu(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, type v) { _mm512_store_ps(p, v); }
    static void storeu(float* p, type v) { _mm512_storeu_ps(p, v); }
    static void stream(float* p, type v) { _mm512_stream_ps(p, v); }  // 64-byte aligned
    static mask first_lanes(int count) { return mask((1u << unsigned(count)) - 1u); }  // count 0..16
    static type load_masked(const float* p, mask m) { return _mm512_maskz_loadu_ps(m, p); }
    static void store_masked(float* p, mask m, type v) { _mm512_mask_storeu_ps(p, m, v); }

    static type add(type a, type b) { return _mm512_add_ps(a, b); }
    static type sub(type a, type b) { return _mm512_sub_ps(a, b); }
    static type mul(type a, type b) { return _mm512_mul_ps(a, b); }
    static type div(type a, type b) { return _mm512_div_ps(a, b); }
    static type fma(type a, type b, type c) { return _mm512_fmadd_ps(a, b, c); }
    static type fnmadd(type a, type b, type c) { return _mm512_fnmadd_ps(a, b, c); }
    static type max(type a, type b) { return _mm512_max_ps(a, b); }
    static type min(type a, type b) { return _mm512_min_ps(a, b); }
    static type sqrt(type a) { return _mm512_sqrt_ps(a); }
    static type round(type a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
    static type abs(type a) { return _mm512_abs_ps(a); }
    static type negative_abs(type a) {
        return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_set1_epi32(int(0x80000000u))));
    }

    static itype to_int(type a) { return _mm512_cvtps_epi32(a); }
    static type to_float(itype n) { return _mm512_cvtepi32_ps(n); }
    static type pow2(itype n) {
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23));
    }

    static mask greater(type a, type b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
    static mask greater_equal(type a, type b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
    static mask not_finite(type a) { return _mm512_cmp_ps_mask(abs(a), set1(std::numeric_limits<float>::infinity()), _CMP_NLT_UQ); }
    static mask no_lanes() { return 0; }
    static mask mask_and(mask a, mask b) { return mask(a & b); }
    static mask mask_or(mask a, mask b) { return mask(a | b); }
    static bool any(mask m) { return m != 0; }
    static type select(mask m, type if_set, type if_clear) { return _mm512_mask_blend_ps(m, if_clear, if_set); }

    static unsigned nonzero_bits(type v) { return _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ); }
    static void compress_store(float* values, std::uint32_t* index, type v, unsigned bits, int first) {
        const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        _mm512_storeu_ps(values, _mm512_maskz_compress_ps(mask(bits), v));
        _mm512_storeu_si512(index, _mm512_maskz_compress_epi32(mask(bits), _mm512_add_epi32(lane, _mm512_set1_epi32(first))));
    }

    static __m256 add_to_sums8(__m256 sum8, type v) {
        const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
        return _mm256_add_ps(_mm256_add_ps(sum8, _mm512_castps512_ps256(v)), hi);
    }
    static __m256 mul_into8(__m256 product8, type v) {
        const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
        return _mm256_mul_ps(_mm256_mul_ps(product8, _mm512_castps512_ps256(v)), hi);
    }
    static float sum_across8(__m256 s8) { return Vec8::sum_across8(s8); }
    static float horizontal_sum(type v) { return sum_across8(add_to_sums8(_mm256_setzero_ps(), v)); }
};

using Widest = Vec16;
#else
using Widest = Vec8;
#endif

// ---- an elementwise sweep over n floats ------------------------------------------------------
// sweep<V>(n, body) calls body(at) for each whole vector at offset i, then once for the last
// n % lanes elements (if any) as a masked vector. at.load(p) / at.store(p, v) read and write
// p[i ...]; at.stream(p, v) writes them past the caches (whole vectors: non-temporal stores, so
// p + i must be aligned to the vector: sweep_aligned_to); at.keep(v) zeroes the lanes past the end
// (so a sum can take the tail's vector) and at.keep_mask(m) clears them from a mask. The tail's
// loads read nothing past the end.
template <class V>
struct Whole {
    std::size_t i;
    typename V::type load(const float* p) const { return V::loadu(p + i); }
    void store(float* p, typename V::type v) const { V::storeu(p + i, v); }
    void stream(float* p, typename V::type v) const { V::stream(p + i, v); }
    typename V::type keep(typename V::type v) const { return v; }
    typename V::mask keep_mask(typename V::mask m) const { return m; }
};

template <class V>
struct Leading {
    std::size_t i;
    typename V::mask lanes;
    typename V::type load(const float* p) const { return V::load_masked(p + i, lanes); }
    void store(float* p, typename V::type v) const { V::store_masked(p + i, lanes, v); }
    void stream(float* p, typename V::type v) const { V::store_masked(p + i, lanes, v); }
    typename V::type keep(typename V::type v) const { return V::select(lanes, v, V::zero()); }
    typename V::mask keep_mask(typename V::mask m) const { return V::mask_and(lanes, m); }
};

template <class V, class Body>
inline void sweep(std::size_t n, Body&& body) {
    std::size_t i = 0;
    for (; i + std::size_t(V::lanes) <= n; i += std::size_t(V::lanes)) body(Whole<V>{i});
    if (i < n) body(Leading<V>{i, V::first_lanes(int(n - i))});
}

// The same sweep with its whole vectors placed so that `aligned + i` is aligned to the vector
// (for at.stream into it): the elements before the first such offset as one masked vector, then
// whole vectors, then the rest. Element by element the same work as sweep's.
template <class V, class Body>
inline void sweep_aligned_to(const float* aligned, std::size_t n, Body&& body) {
    constexpr std::size_t bytes = sizeof(float) * std::size_t(V::lanes);
    const std::size_t head = std::min(n, (bytes - reinterpret_cast<std::uintptr_t>(aligned) % bytes) % bytes / sizeof(float));
    if (head > 0) body(Leading<V>{0, V::first_lanes(int(head))});
    std::size_t i = head;
    for (; i + std::size_t(V::lanes) <= n; i += std::size_t(V::lanes)) body(Whole<V>{i});
    if (i < n) body(Leading<V>{i, V::first_lanes(int(n - i))});
}

// Orders the non-temporal stores before what follows (a thread's completion signal).
inline void stream_fence() { _mm_sfence(); }

}  // namespace fastae::detail::simd
#endif
