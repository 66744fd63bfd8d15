// gemm_kernels.h -- the packed, cache-blocked kernels behind gemm.h (BLIS/Goto scheme: A packed
// into MR-row micro-panels, B into NR-column micro-panels or read in place when used once, an
// MR x NR register tile of FMA accumulators): the vector traits, the packing, the micro-kernel,
// the loops around it (Blocked) and the geometries each build uses. Internal to gemm.cpp, which
// alone includes it; FASTAE_GEMM_AVX2 / FASTAE_GEMM_AVX512 say which kernels a build has.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

#if defined(__AVX2__) && defined(__FMA__)
#define FASTAE_GEMM_AVX2 1
#include <immintrin.h>
#endif
#if defined(__AVX512F__) && defined(FASTAE_GEMM_AVX2)
#define FASTAE_GEMM_AVX512 1
#endif

namespace fastae::detail::gemm_kernels {

constexpr std::size_t kAlignBytes = 64;  // a cache line, and one AVX-512 vector
constexpr std::size_t kAlignFloats = kAlignBytes / sizeof(float);

inline std::size_t round_up(std::size_t x, std::size_t unit) { return (x + unit - 1) / unit * unit; }

#ifdef FASTAE_GEMM_AVX2

// ---- vector traits: the few operations the micro-kernel needs, per instruction set ----------

struct Avx2Vec {
    using type = __m256;
    static constexpr int lanes = 8;
    static type zero() { return _mm256_setzero_ps(); }
    static type load(const float* p) { return _mm256_load_ps(p); }  // packed A: 32-byte aligned
    static type loadu(const float* p) { return _mm256_loadu_ps(p); }
    static void storeu(float* p, type v) { _mm256_storeu_ps(p, v); }
    static void store(float* p, type v) { _mm256_store_ps(p, v); }
    static type broadcast(const float* p) { return _mm256_broadcast_ss(p); }
    static type set1(float x) { return _mm256_set1_ps(x); }
    static type mul(type x, type y) { return _mm256_mul_ps(x, y); }
    static type fma(type x, type y, type z) { return _mm256_fmadd_ps(x, y, z); }
};

#ifdef FASTAE_GEMM_AVX512
struct Avx512Vec {
    using type = __m512;
    static constexpr int lanes = 16;
    static type zero() { return _mm512_setzero_ps(); }
    static type load(const float* p) { return _mm512_load_ps(p); }  // packed A: 64-byte aligned
    static type loadu(const float* p) { return _mm512_loadu_ps(p); }
    static void storeu(float* p, type v) { _mm512_storeu_ps(p, v); }
    static void store(float* p, type v) { _mm512_store_ps(p, v); }
    static type broadcast(const float* p) { return _mm512_set1_ps(*p); }
    static type set1(float x) { return _mm512_set1_ps(x); }
    static type mul(type x, type y) { return _mm512_mul_ps(x, y); }
    static type fma(type x, type y, type z) { return _mm512_fmadd_ps(x, y, z); }
};
#endif

// ---- packing --------------------------------------------------------------------------------
// Packed A: for each MR-row micro-panel, kc columns of MR contiguous floats (rows past m are 0).
// Packed B: for each NR-column micro-panel, kc rows of NR contiguous floats (columns past n 0).
// The micro-kernel then reads both with unit stride, from buffers this file aligns, so its
// arithmetic never depends on where the caller's matrices lie.

// 8x8 transpose of r[0..7] in place (rows become columns).
inline void transpose8x8(__m256 r[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// Copies `count` (a compile-time constant) contiguous floats; unaligned on both sides.
template <int count>
inline void copy_floats(const float* src, float* dst) {
    int i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(dst + i, _mm256_loadu_ps(src + i));
    for (; i + 4 <= count; i += 4) _mm_storeu_ps(dst + i, _mm_loadu_ps(src + i));
    for (; i < count; ++i) dst[i] = src[i];
}

// Packs the (mb, kb) block of op(A) whose element (i, p) is src[i * rs + p * cs].
template <int MR>
void pack_a(bool trans, int mb, int kb, const float* a, std::ptrdiff_t lda, float* out) {
    static_assert(MR % 8 == 0, "MR must be a multiple of 8");
    const std::ptrdiff_t rs = trans ? lda : 1, cs = trans ? 1 : lda;
    for (int ir = 0; ir < mb; ir += MR, out += std::ptrdiff_t(MR) * kb) {
        const int rows = std::min(MR, mb - ir);
        const float* src = a + ir * rs;
        int p = 0;
        const int rows8 = rows / 8 * 8;
        if (!trans && rows == MR) {
            // Columns of A are contiguous: MR floats per packed column.
            for (; p < kb; ++p) copy_floats<MR>(src + p * cs, out + p * MR);
        } else if (!trans) {
            // An edge panel of contiguous columns: each column's whole groups of 8 rows copied,
            // the rest and the zeros below them one by one.
            for (; p < kb; ++p) {
                float* dst = out + p * MR;
                const float* col = src + p * cs;
                for (int i = 0; i < rows8; i += 8) _mm256_storeu_ps(dst + i, _mm256_loadu_ps(col + i));
                for (int i = rows8; i < MR; ++i) dst[i] = i < rows ? col[i] : 0.0f;
            }
        } else {
            // op(A) = A^T: rows of op(A) are contiguous; transpose 8 x 8 blocks, in an edge panel
            // those of its whole groups of 8 rows (the deferred products' 16-row tiles of many
            // shards on AVX-512 packed every element alone before), the rest one by one.
            for (; p + 8 <= kb; p += 8) {
                for (int ib = 0; ib < rows8; ib += 8) {
                    __m256 r[8];
                    for (int q = 0; q < 8; ++q) r[q] = _mm256_loadu_ps(src + (ib + q) * rs + p);
                    transpose8x8(r);
                    for (int q = 0; q < 8; ++q) _mm256_store_ps(out + (p + q) * MR + ib, r[q]);
                }
                for (int q = 0; rows8 < MR && q < 8; ++q) {
                    float* dst = out + (p + q) * MR;
                    for (int i = rows8; i < MR; ++i) dst[i] = i < rows ? src[i * rs + p + q] : 0.0f;
                }
            }
        }
        for (; p < kb; ++p) {  // the last kb % 8 columns of a transposed panel
            float* dst = out + p * MR;
            for (int i = 0; i < MR; ++i) dst[i] = i < rows ? src[i * rs + p * cs] : 0.0f;  // as pack_b's
        }
    }
}

// Rows p to p + 3 of a B panel whose `cols` columns are contiguous (column j at src + j * cs),
// into four packed rows of NR: 4x4 transposes of whole groups of four columns, then a 2-column
// pair (NR % 4 == 2), the rest one by one.
template <int NR>
inline void pack_b_rows4(const float* src, std::ptrdiff_t cs, int p, int cols, float* dst) {
    int j = 0;
    for (; j + 4 <= cols; j += 4) {
        __m128 r0 = _mm_loadu_ps(src + (j + 0) * cs + p);
        __m128 r1 = _mm_loadu_ps(src + (j + 1) * cs + p);
        __m128 r2 = _mm_loadu_ps(src + (j + 2) * cs + p);
        __m128 r3 = _mm_loadu_ps(src + (j + 3) * cs + p);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        _mm_storeu_ps(dst + 0 * NR + j, r0);
        _mm_storeu_ps(dst + 1 * NR + j, r1);
        _mm_storeu_ps(dst + 2 * NR + j, r2);
        _mm_storeu_ps(dst + 3 * NR + j, r3);
    }
    if (j + 2 <= cols) {
        const __m128 x = _mm_loadu_ps(src + (j + 0) * cs + p);
        const __m128 y = _mm_loadu_ps(src + (j + 1) * cs + p);
        const __m128 lo = _mm_unpacklo_ps(x, y), hi = _mm_unpackhi_ps(x, y);
        _mm_storel_pi(reinterpret_cast<__m64*>(dst + 0 * NR + j), lo);
        _mm_storeh_pi(reinterpret_cast<__m64*>(dst + 1 * NR + j), lo);
        _mm_storel_pi(reinterpret_cast<__m64*>(dst + 2 * NR + j), hi);
        _mm_storeh_pi(reinterpret_cast<__m64*>(dst + 3 * NR + j), hi);
        j += 2;
    }
    for (; j < cols; ++j) {
        for (int q = 0; q < 4; ++q) dst[q * NR + j] = src[j * cs + p + q];
    }
}

// Packs the (kb, nb) block of op(B) whose element (p, j) is src[p * rs + j * cs].
template <int NR>
void pack_b(bool trans, int kb, int nb, const float* b, std::ptrdiff_t ldb, float* out) {
    const std::ptrdiff_t rs = trans ? ldb : 1, cs = trans ? 1 : ldb;
    for (int jr = 0; jr < nb; jr += NR, out += std::ptrdiff_t(NR) * kb) {
        const int cols = std::min(NR, nb - jr);
        const float* src = b + jr * cs;
        int p = 0;
        if (cols == NR && trans) {
            // Rows of op(B) are contiguous: NR floats per packed row.
            for (; p < kb; ++p) copy_floats<NR>(src + p * rs, out + p * NR);
        } else if (!trans) {
            // Columns of B are contiguous: four rows at a time (pack_b_rows4). An edge panel (the
            // shards of many threads have 4 columns or so) has its four rows zeroed whole first.
            for (; p + 4 <= kb; p += 4) {
                float* dst = out + p * NR;
                if (cols == NR) {
                    pack_b_rows4<NR>(src, cs, p, NR, dst);
                } else {
                    for (int i = 0; i < 4 * NR; ++i) dst[i] = 0.0f;
                    pack_b_rows4<NR>(src, cs, p, cols, dst);
                }
            }
        }
        // An edge panel's last kb % 4 rows, or the last kb % 4 rows of a transposed one. Each
        // packed row's NR entries in one loop: a second loop for the zeros past `cols` compiled to
        // a memset call a row, which for the 4-column shards of a 64-thread step of the tutorial
        // model took more than the packing itself.
        for (; p < kb; ++p) {
            float* dst = out + p * NR;
            for (int j = 0; j < NR; ++j) dst[j] = j < cols ? src[p * rs + j * cs] : 0.0f;
        }
    }
}

// ---- micro-kernel ---------------------------------------------------------------------------

// Where the micro-kernel reads B's micro-panel: packed, or straight from op(B) when op(B)'s
// columns (B not transposed) or rows (B transposed) are contiguous.
enum class BLayout { packed, columns, rows };

// C[0:mr, 0:nr] = alpha * (packed A panel) (packed B panel) + beta * C over kc steps, with an
// MR x NR tile of accumulators in registers (MV vectors per column). beta == 0 never reads C.
// Edge tiles (mr < MR or nr < NR) compute the whole zero-padded tile and write back its valid
// part with the same arithmetic as full tiles (alpha * acc, then one fused beta * C + that).
// run<layout, MU> uses the first MU of the MV vectors of each A row only (mr <= MU * lanes: a
// panel's edge of at most half its rows, such as the 16-row tiles of a many-shard step's deferred
// products on AVX-512): the same chain for each element, so the same bits, for MU / MV of the FMAs.
template <class V, int MV, int NR_>
struct MicroKernel {
    static constexpr int MR = MV * V::lanes;
    static constexpr int NR = NR_;
    using Traits = V;
    using Vec = typename V::type;

    template <BLayout layout, int MU = MV>
    static void run(int kc, const float* __restrict a, const float* __restrict b,
                    std::ptrdiff_t ldb, float* c, std::ptrdiff_t ldc, int mr, int nr, float alpha,
                    float beta) {
        static_assert(MU >= 1 && MU <= MV, "MU: the vectors of a row in use");
        // Element (p, j) of the B panel: packed b[p * NR + j], or in place b[p + j * ldb]
        // (columns) or b[p * ldb + j] (rows).
        constexpr bool cols = layout == BLayout::columns;
        const std::ptrdiff_t j_step = cols ? ldb : 1;
        const std::ptrdiff_t p_step = layout == BLayout::packed ? NR : cols ? 1 : ldb;
        Vec acc[NR][MU];
#pragma GCC unroll 32
        for (int j = 0; j < NR; ++j) {
#pragma GCC unroll 8
            for (int i = 0; i < MU; ++i) acc[j][i] = V::zero();
        }
        // The tile's columns are about to be written: start fetching them now.
        for (int j = 0; j < nr; ++j) {
            _mm_prefetch(reinterpret_cast<const char*>(c + j * ldc), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(c + j * ldc + MU * V::lanes - 1), _MM_HINT_T0);
        }
#pragma GCC unroll 4
        for (int p = 0; p < kc; ++p) {
            Vec av[MU];
#pragma GCC unroll 8
            for (int i = 0; i < MU; ++i) av[i] = V::load(a + i * V::lanes);
#pragma GCC unroll 32
            for (int j = 0; j < NR; ++j) {
                const Vec bj = V::broadcast(b + j * j_step);
#pragma GCC unroll 8
                for (int i = 0; i < MU; ++i) acc[j][i] = V::fma(av[i], bj, acc[j][i]);
            }
            a += MR;
            b += p_step;
        }
        const Vec va = V::set1(alpha);
        if (MU == MV && mr == MR && nr == NR) {
            if (beta == 0.0f) {
#pragma GCC unroll 32
                for (int j = 0; j < NR; ++j) {
#pragma GCC unroll 8
                    for (int i = 0; i < MU; ++i) {
                        V::storeu(c + j * ldc + i * V::lanes, V::mul(va, acc[j][i]));
                    }
                }
            } else {
                const Vec vb = V::set1(beta);
#pragma GCC unroll 32
                for (int j = 0; j < NR; ++j) {
#pragma GCC unroll 8
                    for (int i = 0; i < MU; ++i) {
                        float* cij = c + j * ldc + i * V::lanes;
                        V::storeu(cij, V::fma(vb, V::loadu(cij), V::mul(va, acc[j][i])));
                    }
                }
            }
            return;
        }
        alignas(kAlignBytes) float tile[NR * MR];
#pragma GCC unroll 32
        for (int j = 0; j < NR; ++j) {
#pragma GCC unroll 8
            for (int i = 0; i < MU; ++i) V::store(tile + j * MR + i * V::lanes, V::mul(va, acc[j][i]));
        }
        for (int j = 0; j < nr; ++j) {
            float* col = c + j * ldc;
            const float* t = tile + j * MR;
            if (beta == 0.0f) {
                for (int i = 0; i < mr; ++i) col[i] = t[i];
            } else {
                for (int i = 0; i < mr; ++i) col[i] = std::fma(beta, col[i], t[i]);
            }
        }
    }
};

// ---- blocking and the loops around the micro-kernel ----------------------------------------

// Splits `total` into the fewest blocks of at most `max_block` and returns their common size,
// rounded up to `unit` (max_block is a multiple of unit). Equal blocks avoid a thin last block
// (k = 784 in blocks of 256 would leave 16, whose tiles pay the C update for little work).
inline int even_block(int total, int max_block, int unit) {
    const std::size_t t = std::size_t(total), b = std::size_t(max_block);
    const std::size_t blocks = (t + b - 1) / b;
    return int(std::min(round_up((t + blocks - 1) / blocks, std::size_t(unit)), b));
}

// ---- a few columns, A read in place ---------------------------------------------------------

// C (m, n) = alpha A op(B) + beta C for A not transposed and n <= kFewColumns (inference on one
// or a few samples), without packing: packing A (a layer's W) to use it once or twice cost more
// than the product. Zen 5, AVX-512, best of 2000 (a throwaway loop over gemm): 64 x 784 by one
// column 1.1 us against 10.1 packed, by four 4.8 against 10.7; 784 x 64 1.8 / 4.3 against 5.7 /
// 6.4; 256 x 784 4.4-7.6 / 17.0 against 26.1 / 26.6; 64 x 256 0.4 / 0.9 against 2.5 / 2.6; the
// x86-64-v3 build alike. Each C element is the blocked kernels' chain: over each run of
// even_block(k, KC, 1) k's, FMAs a * b + acc from zero in k order; then t = alpha * acc, stored
// (the first run, beta == 0), or fma(beta, C, t) (the first run) and fma(1, C, t) (the later
// ones), as MicroKernel::run does: the same bits. Outputs in blocks of 8 / n vectors (2 from 3
// columns), then halved down to one vector, each column's a chain of FMAs; the last m % lanes one
// at a time with std::fma (the same rounding as a vector lane). The n columns go together, so
// that each A block is read once.
constexpr int kFewColumns = 4;

template <class V, int KC>
struct FewColumns {
    static void run(int m, int n, int k, float alpha, const float* a, std::ptrdiff_t lda, bool trans_b,
                    const float* b, std::ptrdiff_t ldb, float beta, float* c, std::ptrdiff_t ldc) {
        const std::ptrdiff_t b_col = trans_b ? 1 : ldb, b_step = trans_b ? ldb : 1;
        const Args g{m, k, even_block(k, KC, 1), alpha, beta, a, lda, b, b_col, b_step, c, ldc};
        switch (n) {  // all n columns at once, so that each A block is read once
        case 1: return columns<1, 8>(g, 0);
        case 2: return columns<2, 4>(g, 0);
        case 3: return columns<3, 2>(g, 0);
        default: return columns<4, 2>(g, 0);
        }
    }

private:
    struct Args {
        int m, k, kc;
        float alpha, beta;
        const float* a;
        std::ptrdiff_t lda;
        const float* b;
        std::ptrdiff_t b_col, b_step;  // element p of column j: b[j * b_col + p * b_step]
        float* c;
        std::ptrdiff_t ldc;
    };

    // Rows [i, m): blocks of NV vectors, then of NV / 2, ... 1, then one row at a time.
    template <int NC, int NV>
    static void columns(const Args& g, int i) {
        for (; i + NV * V::lanes <= g.m; i += NV * V::lanes) rows<NC, NV>(g, i);
        if constexpr (NV > 1) {
            columns<NC, NV / 2>(g, i);
        } else {
            for (; i < g.m; ++i) {
                for (int j = 0; j < NC; ++j) row(g, i, j);
            }
        }
    }
    // Rows [i, i + NV * lanes) of the NC columns: NC * NV chains of FMAs.
    template <int NC, int NV>
    static void rows(const Args& g, int i) {
        constexpr int L = V::lanes;
        for (int pc = 0; pc < g.k; pc += g.kc) {
            typename V::type acc[NC][NV];
            for (int j = 0; j < NC; ++j) {
                for (int q = 0; q < NV; ++q) acc[j][q] = V::zero();
            }
            const int end = std::min(g.k, pc + g.kc);
            for (int p = pc; p < end; ++p) {
                const float* ap = g.a + std::ptrdiff_t(p) * g.lda + i;
                typename V::type av[NV];
                for (int q = 0; q < NV; ++q) av[q] = V::loadu(ap + q * L);
                for (int j = 0; j < NC; ++j) {
                    const typename V::type bv = V::set1(g.b[j * g.b_col + p * g.b_step]);
                    for (int q = 0; q < NV; ++q) acc[j][q] = V::fma(av[q], bv, acc[j][q]);
                }
            }
            const typename V::type va = V::set1(g.alpha), vb = V::set1(pc == 0 ? g.beta : 1.0f);
            for (int j = 0; j < NC; ++j) {
                for (int q = 0; q < NV; ++q) {
                    float* cq = g.c + j * g.ldc + i + q * L;
                    const typename V::type t = V::mul(va, acc[j][q]);
                    V::storeu(cq, pc == 0 && g.beta == 0.0f ? t : V::fma(vb, V::loadu(cq), t));
                }
            }
        }
    }
    // Row i of column j, one output: the same operations as a vector lane.
    static void row(const Args& g, int i, int j) {
        float* cij = g.c + j * g.ldc + i;
        for (int pc = 0; pc < g.k; pc += g.kc) {
            float acc = 0.0f;
            const int end = std::min(g.k, pc + g.kc);
            for (int p = pc; p < end; ++p) {
                acc = std::fma(g.a[std::ptrdiff_t(p) * g.lda + i], g.b[j * g.b_col + p * g.b_step], acc);
            }
            const float t = g.alpha * acc;
            *cij = pc == 0 && g.beta == 0.0f ? t : std::fma(pc == 0 ? g.beta : 1.0f, *cij, t);
        }
    }
};

// Kernel: the micro-kernel; KC, MC, NC: cache blocks (see the instantiations for the reasons).
template <class Kernel, int KC, int MC, int NC>
struct Blocked {
    static constexpr int MR = Kernel::MR;
    static constexpr int NR = Kernel::NR;
    using Few = FewColumns<typename Kernel::Traits, KC>;  // n <= kFewColumns, A not transposed
    static_assert(MC % MR == 0 && NC % NR == 0, "cache blocks must hold whole micro-panels");

    // The micro-kernel on a tile of mr rows: an edge of at most half the panel's rows runs on
    // half its vectors (MicroKernel::run's MU), the same bits for half the FMAs. The deep model's
    // 16 shards on one core (epoch_bench --deep --threads 16 --solo, AVX-512: its deferred
    // products' tiles are cut in 16-row units, half a 32-row panel): see docs/performance-log.md,
    // "Issue 16, tenth pass".
    template <BLayout layout>
    static void tile(int kc, const float* a, const float* b, std::ptrdiff_t ldb, float* c, std::ptrdiff_t ldc,
                     int mr, int nr, float alpha, float beta) {
        constexpr int kVectors = MR / Kernel::Traits::lanes;
        if constexpr (kVectors % 2 == 0) {
            if (2 * mr <= MR) {
                Kernel::template run<layout, kVectors / 2>(kc, a, b, ldb, c, ldc, mr, nr, alpha, beta);
                return;
            }
        }
        Kernel::template run<layout>(kc, a, b, ldb, c, ldc, mr, nr, alpha, beta);
    }

    // Bounds on the blocks even_block picks: at most MC (KC, NC), at most m (k, n) rounded up
    // to whole micro-panels.
    static std::size_t a_floats(int m, int k) {
        const std::size_t rows = std::min(round_up(std::size_t(m), MR), std::size_t(MC));
        return round_up(rows * std::size_t(std::min(k, KC)), kAlignFloats);
    }
    static std::size_t workspace_floats(int m, int n, int k) {
        if (m == 0 || n == 0 || k == 0) return 0;
        const std::size_t cols = std::min(round_up(std::size_t(n), NR), std::size_t(NC));
        return a_floats(m, k) + round_up(std::size_t(std::min(k, KC)) * cols, kAlignFloats);
    }

    // op(A) packed ahead (SharedPackedA): run's blocks of A, block (pc / kc) * m_blocks + ic / mc
    // at that index times a_floats(m, k).
    static int a_blocks(int m, int k) {
        const int kc = even_block(k, KC, 1), mc = even_block(m, MC, MR);
        return ((k + kc - 1) / kc) * ((m + mc - 1) / mc);
    }
    static void pack_a_block(bool trans_a, int m, int k, const float* a, std::ptrdiff_t lda, int block, float* packed) {
        const int kc = even_block(k, KC, 1), mc = even_block(m, MC, MR);
        const int m_blocks = (m + mc - 1) / mc;
        const int pc = block / m_blocks * kc, ic = block % m_blocks * mc;
        const std::ptrdiff_t a_rs = trans_a ? lda : 1, a_cs = trans_a ? 1 : lda;
        pack_a<MR>(trans_a, std::min(mc, m - ic), std::min(kc, k - pc), a + ic * a_rs + pc * a_cs, lda,
                   packed + std::ptrdiff_t(block) * std::ptrdiff_t(a_floats(m, k)));
    }

    // alpha != 0, m, n, k > 0; work holds workspace_floats(m, n, k), 64-byte aligned. With
    // a_packed, op(A)'s blocks are read from there (pack_a_block's) instead of packed.
    static void run(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                    std::ptrdiff_t lda, const float* b, std::ptrdiff_t ldb, float beta, float* c,
                    std::ptrdiff_t ldc, float* work, const float* a_packed = nullptr) {
        const int kc = even_block(k, KC, 1);
        const int mc = even_block(m, MC, MR);
        const int nc = even_block(n, NC, NR);
        const int m_blocks = (m + mc - 1) / mc;
        float* const a_work = work;
        const float* a_pack = a_work;
        float* b_pack = work + a_floats(m, k);
        const std::ptrdiff_t a_rs = trans_a ? lda : 1, a_cs = trans_a ? 1 : lda;
        const std::ptrdiff_t b_rs = trans_b ? ldb : 1, b_cs = trans_b ? 1 : ldb;
        // With one block of A's rows (m <= MC: the layers' m = 64 products), each micro-panel
        // of B is used by one pass of the micro-kernels only: packing B would copy 4 bytes per
        // 2m flops for nothing (12-17% of Z1 = W1 X at m = 64), so the micro-kernel reads full
        // micro-panels in place, their columns (or rows) contiguous. Past one block, B's
        // micro-panels are reused per block and are packed once.
        const bool direct_b = m <= mc;
        for (int jc = 0; jc < n; jc += nc) {
            const int nb = std::min(nc, n - jc);
            for (int pc = 0; pc < k; pc += kc) {
                const int kb = std::min(kc, k - pc);
                if (direct_b) {
                    // Only the last, partial micro-panel is packed (zero-padded).
                    const int full = nb / NR * NR;
                    if (full < nb) {
                        pack_b<NR>(trans_b, kb, nb - full, b + pc * b_rs + (jc + full) * b_cs, ldb,
                                   b_pack + std::ptrdiff_t(full) * kb);
                    }
                } else {
                    pack_b<NR>(trans_b, kb, nb, b + pc * b_rs + jc * b_cs, ldb, b_pack);
                }
                const float beta_block = pc == 0 ? beta : 1.0f;
                for (int ic = 0; ic < m; ic += mc) {
                    const int mb = std::min(mc, m - ic);
                    if (a_packed) {
                        a_pack = a_packed + std::ptrdiff_t((pc / kc) * m_blocks + ic / mc) * std::ptrdiff_t(a_floats(m, k));
                    } else {
                        pack_a<MR>(trans_a, mb, kb, a + ic * a_rs + pc * a_cs, lda, a_work);
                    }
                    // B's micro-panel stays in L1 while A's micro-panels stream from L2.
                    for (int jr = 0; jr < nb; jr += NR) {
                        float* c_col = c + (jc + jr) * ldc + ic;
                        const int nr = std::min(NR, nb - jr);
                        if (direct_b && nr == NR) {
                            const float* b_panel = b + pc * b_rs + (jc + jr) * b_cs;
                            for (int ir = 0; ir < mb; ir += MR) {
                                const float* a_panel = a_pack + std::ptrdiff_t(ir) * kb;
                                const int mr = std::min(MR, mb - ir);
                                if (trans_b) {
                                    tile<BLayout::rows>(kb, a_panel, b_panel, ldb, c_col + ir, ldc, mr, nr, alpha,
                                                        beta_block);
                                } else {
                                    tile<BLayout::columns>(kb, a_panel, b_panel, ldb, c_col + ir, ldc, mr, nr,
                                                           alpha, beta_block);
                                }
                            }
                            continue;
                        }
                        const float* b_panel = b_pack + std::ptrdiff_t(jr) * kb;
                        for (int ir = 0; ir < mb; ir += MR) {
                            tile<BLayout::packed>(kb, a_pack + std::ptrdiff_t(ir) * kb, b_panel, 0, c_col + ir,
                                                  ldc, std::min(MR, mb - ir), nr, alpha, beta_block);
                        }
                    }
                }
            }
        }
    }
};

// AVX2 + FMA: 16 x 6 tile = 12 ymm accumulators + 2 A vectors + 1 broadcast (15 of 16 ymm).
// Per step: 2 loads + 6 broadcasts feed 12 FMAs (6 cycles on 2 FMA pipes): loads are no limit.
// KC = 256: B's micro-panel (256 x 6 x 4 B = 6 KB) and the A micro-panel streaming past it
// (16 KB) fit a 32 KB L1. MC = 128: A's block (128 x 256 x 4 B = 128 KB) sits in a 512 KB - 2 MB
// L2 with room for B's block. NC = 504: B's block (256 x 504 x 4 B = 504 KB) is L2-sized on the
// larger L2s and L3-resident on Zen 3; the layers' n (batch 256, widths <= 784) need 1-2 blocks.
// Measured on Zen 3 (the layers' 21 products, variants alternating per call in one process):
// KC = 384, MC = 256, NC = 252, or reading B in place always, each moved the totals by 2% or
// less, inside the machine's noise; these values are the textbook ones for these caches.
constexpr int kKC = 256;  // the same for every kernel: gemm_k_block depends on nothing else
using Avx2Blocked = Blocked<MicroKernel<Avx2Vec, 2, 6>, kKC, 128, 504>;

// The AVX-512 geometry with AVX2 vectors (tests only): same MR, NR and blocks as below.
using Avx2As32x8Blocked = Blocked<MicroKernel<Avx2Vec, 4, 8>, kKC, 128, 504>;

#ifdef FASTAE_GEMM_AVX512
// AVX-512: 32 x 8 tile = 16 zmm accumulators + 2 A vectors + broadcasts. Per step 2 loads + 8
// broadcasts feed 16 FMAs (8 cycles on 2 FMA ports). It replaced a 32 x 12 tile (24
// accumulators, chosen on paper), which measured slower on the first AVX-512 machine at hand,
// a Zen 5 (gemm_bench, 31 alternating pairs: the tutorial step's 5 products 240.1 against
// 225.8 GFLOP/s, the deep step's 11 243.1 against 231.5, a 128-sample shard's 234.6 against
// 221.7), and left a third of its last tile empty on 16-sample shards (784 x 16 x 256: 41 against
// 54 us). The tile changes no sum: each C element is the same chain of FMAs at any NR. Blocks as
// for AVX2: B's micro-panel is 8 KB at KC = 256 (L1 is 48 KB on Sapphire Rapids and Zen 5), A's
// block 128 KB, B's block 504 KB of a 1-2 MB L2. Not yet measured on Sapphire Rapids.
using NativeBlocked = Blocked<MicroKernel<Avx512Vec, 2, 8>, kKC, 128, 504>;
constexpr const char* kKernelName = "avx512 32x8";
#else
using NativeBlocked = Avx2Blocked;
constexpr const char* kKernelName = "avx2+fma 16x6";
#endif

#endif  // FASTAE_GEMM_AVX2

}  // namespace fastae::detail::gemm_kernels
