// sparse_input.cpp -- the first layer's products over the input's nonzeros (sparse_input.h).
#include "sparse_input.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

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
// of one sample (for the weight gradient, within one block of features). Each output's sum runs
// in list order, one fused multiply-add per term (std::fma rounds as the vector FMA does, so
// every build gives the same bits), whatever the blocking.
//
// sum_rows: out[o] = sum over k of val[k] * w[idx[k] * stride + o].
// scatter_rows: dw[idx[k] * stride + o] += val[k] * col[o] for each k, in order.
#ifdef FASTAE_HAVE_AVX2_MATH
template <int NV>
inline void sum_rows(const std::uint32_t* idx, const float* val, std::size_t count, const float* w,
                     std::size_t stride, float* out) {
    __m256 acc[NV];
    for (int q = 0; q < NV; ++q) acc[q] = _mm256_setzero_ps();
    for (std::size_t k = 0; k < count; ++k) {
        const __m256 v = _mm256_set1_ps(val[k]);
        const float* row = w + std::size_t(idx[k]) * stride;
        for (int q = 0; q < NV; ++q) acc[q] = _mm256_fmadd_ps(_mm256_loadu_ps(row + 8 * q), v, acc[q]);
    }
    for (int q = 0; q < NV; ++q) _mm256_storeu_ps(out + 8 * q, acc[q]);
}

template <int NV>
inline void scatter_rows(const float* col, const std::uint32_t* idx, const float* val, std::size_t count,
                         float* dw, std::size_t stride) {
    __m256 c[NV];
    for (int q = 0; q < NV; ++q) c[q] = _mm256_loadu_ps(col + 8 * q);
    for (std::size_t k = 0; k < count; ++k) {
        const __m256 v = _mm256_set1_ps(val[k]);
        float* row = dw + std::size_t(idx[k]) * stride;
        for (int q = 0; q < NV; ++q) _mm256_storeu_ps(row + 8 * q, _mm256_fmadd_ps(c[q], v, _mm256_loadu_ps(row + 8 * q)));
    }
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

void sum_block(const std::uint32_t* idx, const float* val, std::size_t count, const float* w, std::size_t stride,
               int width, float* out) {
    int o = 0;
#ifdef FASTAE_HAVE_AVX2_MATH
    o = in_vectors(width, [&](auto nv) { sum_rows<decltype(nv)::value>(idx, val, count, w, stride, out); });
#endif
    for (; o < width; ++o) {  // outputs past the vectors (all of them without AVX2)
        float acc = 0.0f;
        for (std::size_t k = 0; k < count; ++k) acc = std::fma(w[std::size_t(idx[k]) * stride + std::size_t(o)], val[k], acc);
        out[o] = acc;
    }
}

void scatter_block(const float* col, const std::uint32_t* idx, const float* val, std::size_t count, float* dw,
                   std::size_t stride, int width) {
    int o = 0;
#ifdef FASTAE_HAVE_AVX2_MATH
    o = in_vectors(width, [&](auto nv) { scatter_rows<decltype(nv)::value>(col, idx, val, count, dw, stride); });
#endif
    for (; o < width; ++o) {
        for (std::size_t k = 0; k < count; ++k) {
            float& cell = dw[std::size_t(idx[k]) * stride + std::size_t(o)];
            cell = std::fma(col[o], val[k], cell);
        }
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
    cursor_.resize(capacity);
    feature_of_.resize(room);
    sample_value_.resize(room);
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

// The weight gradient walks the features in blocks of kFeatureBlock, whose gradient rows stay in
// L1 (64 rows of up to 64 outputs: 16 KB) while every sample's entries in the block are added;
// cursor_[j] tracks where sample j's sorted entries reach the next block.
std::size_t SparseInput::block_end(int j, std::uint32_t f1) {
    std::size_t k = cursor_[std::size_t(j)];
    const std::size_t end = sample_start_[std::size_t(j) + 1];
    while (k < end && feature_of_[k] < f1) ++k;
    return k;
}

void SparseInput::forward(const float* w, int n_out, float* z) {
    // Each sample's whole list at once: blocking the features for L1, as weight_gradient does,
    // measured slower here (153 against 136 us for a 256 x 784 MNIST batch and 64 outputs).
    for (int j = 0; j < b_; ++j) {
        const std::size_t k0 = sample_start_[std::size_t(j)], k1 = sample_start_[std::size_t(j) + 1];
        for (int o0 = 0; o0 < n_out; o0 += 64) {
            sum_block(feature_of_.data() + k0, sample_value_.data() + k0, k1 - k0, w + o0, std::size_t(n_out),
                      std::min(64, n_out - o0), z + std::size_t(j) * std::size_t(n_out) + std::size_t(o0));
        }
    }
}

void SparseInput::weight_gradient(const float* dz, int n_out, float* dw) {
    for (int o0 = 0; o0 < n_out; o0 += 64) {
        const int width = std::min(64, n_out - o0);
        std::copy(sample_start_.begin(), sample_start_.begin() + b_, cursor_.begin());
        for (int f0 = 0; f0 < d_; f0 += kFeatureBlock) {
            const int f1 = std::min(f0 + kFeatureBlock, d_);
            for (int i = f0; i < f1; ++i) {
                float* row = dw + std::size_t(i) * std::size_t(n_out) + std::size_t(o0);
                std::fill(row, row + width, 0.0f);
            }
            for (int j = 0; j < b_; ++j) {
                const std::size_t k0 = cursor_[std::size_t(j)], k1 = block_end(j, std::uint32_t(f1));
                cursor_[std::size_t(j)] = std::uint32_t(k1);
                if (k1 == k0) continue;
                scatter_block(dz + std::size_t(j) * std::size_t(n_out) + std::size_t(o0), feature_of_.data() + k0,
                              sample_value_.data() + k0, k1 - k0, dw + o0, std::size_t(n_out), width);
            }
        }
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
