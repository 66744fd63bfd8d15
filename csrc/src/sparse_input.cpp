// sparse_input.cpp -- the first layer's products over the input's nonzeros (sparse_input.h).
#include "sparse_input.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "gemm.h"
#include "vector_math.h"

namespace fastae::detail {

namespace {

#ifdef FASTAE_HAVE_AVX2_MATH
// lanes[m]: the indices of the set bits of m, in increasing order, packed to the front.
struct PackTable {
    alignas(32) std::int32_t lanes[256][8];
    PackTable() : lanes() {
        for (int m = 0; m < 256; ++m) {
            int k = 0;
            for (int bit = 0; bit < 8; ++bit) {
                if (m >> bit & 1) lanes[m][k++] = bit;
            }
        }
    }
};
const PackTable kPackTable;
#endif

// The inner loops, over one block of at most 64 outputs (width) and the list entries [0, count)
// of one run of one sample (for the weight gradient, of one feature). Each output's sum runs in
// list order from zero, one fused multiply-add per term (std::fma rounds as the vector FMA does,
// so every build gives the same bits), whatever the blocking; with `add` the run's sum is then
// added to out (the gemm's C = C + run, gemm.h: gemm_k_block).
//
// sum_rows: out[o] (+)= sum over k of val[k] * w[idx[k] * stride + o] (the forward product over a
// sample's features, and the weight gradient over a feature's samples).
#ifdef FASTAE_HAVE_AVX2_MATH
template <int NV>
inline void sum_rows(const std::uint32_t* idx, const float* val, std::size_t count, const float* w,
                     std::size_t stride, float* out, bool add) {
    __m256 acc[NV];
    for (int q = 0; q < NV; ++q) acc[q] = _mm256_setzero_ps();
    for (std::size_t k = 0; k < count; ++k) {
        const __m256 v = _mm256_set1_ps(val[k]);
        const float* row = w + std::size_t(idx[k]) * stride;
        for (int q = 0; q < NV; ++q) acc[q] = _mm256_fmadd_ps(_mm256_loadu_ps(row + 8 * q), v, acc[q]);
    }
    for (int q = 0; q < NV; ++q) {
        _mm256_storeu_ps(out + 8 * q, add ? _mm256_add_ps(_mm256_loadu_ps(out + 8 * q), acc[q]) : acc[q]);
    }
}

// The last width % 8 outputs (rest, 1 to 7) as one masked vector: the same sums, one FMA per term
// in list order, so the same bits as the scalar loop, without its chain of dependent scalar FMAs
// (a width of 100, 64 + 36, left 4 outputs that took longer than the other 96).
inline __m256i tail_mask(int rest) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(rest), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline void sum_rows_tail(const std::uint32_t* idx, const float* val, std::size_t count, const float* w,
                          std::size_t stride, float* out, int rest, bool add) {
    const __m256i mask = tail_mask(rest);
    __m256 acc = _mm256_setzero_ps();
    for (std::size_t k = 0; k < count; ++k) {
        acc = _mm256_fmadd_ps(_mm256_maskload_ps(w + std::size_t(idx[k]) * stride, mask), _mm256_set1_ps(val[k]), acc);
    }
    if (add) acc = _mm256_add_ps(_mm256_maskload_ps(out, mask), acc);
    _mm256_maskstore_ps(out, mask, acc);
}

// Calls kernel(std::integral_constant<int, NV>) with NV = width / 8 (width <= 64), the whole
// vectors of a block, and returns how many outputs they cover.
template <typename Kernel>
int in_vectors(int width, Kernel&& kernel) {
    switch (width / 8) {
        case 8: kernel(std::integral_constant<int, 8>()); break;
        case 7: kernel(std::integral_constant<int, 7>()); break;
        case 6: kernel(std::integral_constant<int, 6>()); break;
        case 5: kernel(std::integral_constant<int, 5>()); break;
        case 4: kernel(std::integral_constant<int, 4>()); break;
        case 3: kernel(std::integral_constant<int, 3>()); break;
        case 2: kernel(std::integral_constant<int, 2>()); break;
        case 1: kernel(std::integral_constant<int, 1>()); break;
        default: break;
    }
    return width / 8 * 8;
}
#endif

#if defined(__AVX512F__)
// The same kernels with 16-lane vectors where the build has AVX-512: per output the same FMAs in
// the same order (the same bits as the 8-lane and scalar code), half the instructions. The last
// width % 16 outputs go in one masked vector.
template <int NV>
inline void sum_rows16(const std::uint32_t* idx, const float* val, std::size_t count, const float* w,
                       std::size_t stride, float* out, int rest, bool add) {
    const __mmask16 tail = __mmask16((1u << rest) - 1u);
    __m512 acc[NV + 1];
    for (int q = 0; q <= NV; ++q) acc[q] = _mm512_setzero_ps();
    for (std::size_t k = 0; k < count; ++k) {
        const __m512 v = _mm512_set1_ps(val[k]);
        const float* row = w + std::size_t(idx[k]) * stride;
        for (int q = 0; q < NV; ++q) acc[q] = _mm512_fmadd_ps(_mm512_loadu_ps(row + 16 * q), v, acc[q]);
        if (rest) acc[NV] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, row + 16 * NV), v, acc[NV]);
    }
    if (add) {
        for (int q = 0; q < NV; ++q) acc[q] = _mm512_add_ps(_mm512_loadu_ps(out + 16 * q), acc[q]);
        if (rest) acc[NV] = _mm512_add_ps(_mm512_maskz_loadu_ps(tail, out + 16 * NV), acc[NV]);
    }
    for (int q = 0; q < NV; ++q) _mm512_storeu_ps(out + 16 * q, acc[q]);
    if (rest) _mm512_mask_storeu_ps(out + 16 * NV, tail, acc[NV]);
}

// Calls kernel(std::integral_constant<int, NV>) with NV = width / 16 (width <= 64).
template <typename Kernel>
void in_vectors16(int width, Kernel&& kernel) {
    switch (width / 16) {
        case 4: kernel(std::integral_constant<int, 4>()); break;
        case 3: kernel(std::integral_constant<int, 3>()); break;
        case 2: kernel(std::integral_constant<int, 2>()); break;
        case 1: kernel(std::integral_constant<int, 1>()); break;
        default: kernel(std::integral_constant<int, 0>()); break;
    }
}
#endif

void sum_block(const std::uint32_t* idx, const float* val, std::size_t count, const float* w, std::size_t stride,
               int width, float* out, bool add) {
    int o = 0;
#if defined(__AVX512F__)
    in_vectors16(width, [&](auto nv) {
        sum_rows16<decltype(nv)::value>(idx, val, count, w, stride, out, width % 16, add);
    });
    return;
#endif
#ifdef FASTAE_HAVE_AVX2_MATH
    o = in_vectors(width, [&](auto nv) { sum_rows<decltype(nv)::value>(idx, val, count, w, stride, out, add); });
    if (o < width) {
        sum_rows_tail(idx, val, count, w + o, stride, out + o, width - o, add);
        return;
    }
#endif
    for (; o < width; ++o) {  // outputs past the vectors (all of them without AVX2)
        float acc = 0.0f;
        for (std::size_t k = 0; k < count; ++k) acc = std::fma(w[std::size_t(idx[k]) * stride + std::size_t(o)], val[k], acc);
        out[o] = add ? out[o] + acc : acc;
    }
}

// Sums the list entries [k0, k1) (keys ascending: features of a sample, or samples of a feature)
// into out as gemm sums its k = total terms (gemm.h: gemm_k_block): in runs of `run` keys, each
// from zero, the first stored and the others added, empty runs included (gemm adds their +0,
// which turns a -0 into +0), so the bits are gemm's.
void sum_runs(const std::uint32_t* idx, const float* val, std::size_t k0, std::size_t k1, int total, int run,
              const float* w, std::size_t stride, int n_out, float* out) {
    for (int first = 0; first < total; first += run) {
        const std::uint32_t limit = std::uint32_t(std::min(first + run, total));
        const std::size_t k_end = std::size_t(std::lower_bound(idx + k0, idx + k1, limit) - idx);
        for (int o0 = 0; o0 < n_out; o0 += 64) {
            sum_block(idx + k0, val + k0, k_end - k0, w + o0, stride, std::min(64, n_out - o0), out + o0, first > 0);
        }
        k0 = k_end;
    }
}

}  // namespace

SparseInput::SparseInput(int d, std::size_t capacity) : d_(d) {
    max_nonzeros_ = std::size_t(kMaxDensity * double(d) * double(capacity));
    // A sample may overshoot the budget before compress notices: room for one more sample.
    const std::size_t room = max_nonzeros_ + std::size_t(d) + 8;  // + 8: compress stores whole vectors
    // Entries are indexed with 32 bits: past that (inputs of millions of features in large
    // batches) the lists stay empty and compress always declines.
    if (room > std::size_t(UINT32_MAX) || capacity == 0) return;
    sample_start_.resize(capacity + 1);
    feature_of_.resize(room);
    sample_value_.resize(room);
    feature_start_.resize(std::size_t(d) + 1);
    fill_.resize(std::size_t(d));
    sample_of_.resize(room);
    feature_value_.resize(room);
}

bool SparseInput::compress(const float* x, int d, int b) {
    active_ = false;
    if (d != d_ || b < 1 || std::size_t(b) + 1 > sample_start_.size()) return false;
    const std::size_t budget = std::min(max_nonzeros_, std::size_t(kMaxDensity * double(d) * double(b)));
    std::size_t k = 0;
    for (int j = 0; j < b; ++j) {
        sample_start_[std::size_t(j)] = std::uint32_t(k);
        const float* col = x + std::size_t(j) * std::size_t(d);
        int i = 0;
#ifdef FASTAE_HAVE_AVX2_MATH
        // Eight at a time, without branches: the nonzeros' lanes are packed to the front by a
        // permutation from a table indexed by the mask, and all 8 lanes stored (the buffers
        // have 8 entries of slack); k advances by the count.
        for (; i + 8 <= d; i += 8) {
            const __m256 v = _mm256_loadu_ps(col + i);
            // NEQ_UQ: true for nonzeros and for NaN.
            const int mask = _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NEQ_UQ));
            const __m256i perm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kPackTable.lanes[mask]));
            _mm256_storeu_ps(sample_value_.data() + k, _mm256_permutevar8x32_ps(v, perm));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(feature_of_.data() + k),
                                _mm256_add_epi32(perm, _mm256_set1_epi32(i)));
            k += std::size_t(__builtin_popcount(unsigned(mask)));
        }
#endif
        for (; i < d; ++i) {
            if (!(col[i] == 0.0f)) {
                feature_of_[k] = std::uint32_t(i);
                sample_value_[k] = col[i];
                ++k;
            }
        }
        // Over budget, or clearly dense from the first samples: the dense products win.
        if (k > budget || (j == 7 && b > 32 && double(k) > 1.5 * kMaxDensity * 8.0 * double(d))) return false;
    }
    sample_start_[std::size_t(b)] = std::uint32_t(k);
    b_ = b;
    active_ = true;
    return true;
}

void SparseInput::forward(const float* w, int n_out, float* z) {
    // Each sample's list in gemm's runs of features (gemm_k_block: 4 runs of 196 for 784): blocking
    // the features for L1 instead measured slower (153 against 136 us for a 256 x 784 MNIST batch
    // and 64 outputs, on Zen 3).
    const int run = gemm_k_block(d_);
    for (int j = 0; j < b_; ++j) {
        sum_runs(feature_of_.data(), sample_value_.data(), sample_start_[std::size_t(j)], sample_start_[std::size_t(j) + 1],
                 d_, run, w, std::size_t(n_out), n_out, z + std::size_t(j) * std::size_t(n_out));
    }
}

// The batch's entries by feature (counting sort; within a feature, samples ascending).
void SparseInput::by_feature() {
    std::fill(feature_start_.begin(), feature_start_.end(), 0u);
    const std::size_t entries = sample_start_[std::size_t(b_)];
    for (std::size_t k = 0; k < entries; ++k) ++feature_start_[std::size_t(feature_of_[k]) + 1];
    for (int f = 0; f < d_; ++f) feature_start_[std::size_t(f) + 1] += feature_start_[std::size_t(f)];
    std::copy(feature_start_.begin(), feature_start_.end() - 1, fill_.begin());
    for (int j = 0; j < b_; ++j) {
        for (std::size_t k = sample_start_[std::size_t(j)]; k < sample_start_[std::size_t(j) + 1]; ++k) {
            const std::uint32_t p = fill_[feature_of_[k]]++;
            sample_of_[p] = std::uint32_t(j);
            feature_value_[p] = sample_value_[k];
        }
    }
}

// Each feature's gradient row is summed in registers over the samples where it is nonzero, in
// sample order (the order and the FMAs of adding sample by sample into the row, so the same
// bits), and stored once: a row per feature instead of a load and a store of it per entry.
void SparseInput::weight_gradient(const float* dz, int n_out, float* dw) {
    by_feature();
    const int run = gemm_k_block(b_);  // gemm sums the batch's samples in runs
    for (int f = 0; f < d_; ++f) {
        const std::size_t p0 = feature_start_[std::size_t(f)], p1 = feature_start_[std::size_t(f) + 1];
        float* row = dw + std::size_t(f) * std::size_t(n_out);
        if (p0 == p1) {
            std::fill(row, row + n_out, 0.0f);
            continue;
        }
        sum_runs(sample_of_.data(), feature_value_.data(), p0, p1, b_, run, dz, std::size_t(n_out), n_out, row);
    }
}

void sparse_forward_naive(const float* x, int d, int b, const float* w, int n_out, double* z) {
    for (int j = 0; j < b; ++j) {
        for (int o = 0; o < n_out; ++o) {
            double acc = 0;
            for (int i = 0; i < d; ++i) acc += double(x[std::size_t(j) * d + i]) * w[std::size_t(i) * n_out + o];
            z[std::size_t(j) * n_out + o] = acc;
        }
    }
}

void sparse_weight_gradient_naive(const float* x, int d, int b, const float* dz, int n_out, double* dw) {
    for (int i = 0; i < d; ++i) {
        for (int o = 0; o < n_out; ++o) {
            double acc = 0;
            for (int j = 0; j < b; ++j) acc += double(x[std::size_t(j) * d + i]) * dz[std::size_t(j) * n_out + o];
            dw[std::size_t(i) * n_out + o] = acc;
        }
    }
}

}  // namespace fastae::detail
