// sparse_input.cpp -- the first layer's products over the input's nonzeros (sparse_input.h).
#include "sparse_input.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "gemm.h"

namespace fastae::detail {

namespace {

template <class V>
void sum_block(const std::uint32_t* idx, const float* val, std::size_t count, const float* w, std::size_t stride,
               int width, float* out, bool add);

// The inner loops, written once over simd.h's vectors (V: Vec8, Vec16, or Twin16 in the tests),
// over one block of at most 64 outputs (width) and the list entries [0, count) of one run of one
// sample (for the weight gradient, of one feature). Each output's sum runs in list order from
// zero, one fused multiply-add per term, whatever the vector width (the last width % lanes outputs
// in one masked vector) or blocking, and builds without AVX2 run the same FMAs one output at a
// time (std::fma rounds as the vector FMA does): every build gives the same bits. With `add` the
// run's sum is then added to out (the gemm's C = C + run, gemm.h: gemm_k_block).
//
// sum_rows: out[o] (+)= sum over k of val[k] * w[idx[k] * stride + o] (the forward product over a
// sample's features, and the weight gradient over a feature's samples).
#ifdef FASTAE_HAVE_AVX2_MATH
// One sample's (or feature's) sums over a block: NV whole vectors and, when rest > 0, a masked
// vector of the last rest outputs.
template <class V, int NV>
struct BlockSums {
    typename V::type acc[NV + 1];
    int rest;
    typename V::mask tail;

    explicit BlockSums(int rest_outputs) : rest(rest_outputs), tail(V::first_lanes(rest_outputs)) {
        for (int q = 0; q <= NV; ++q) acc[q] = V::zero();
    }
    // acc += value * the block's outputs of row, one FMA per vector.
    void add_row(const float* row, float value) {
        constexpr int L = V::lanes;
        const typename V::type v = V::set1(value);
        for (int q = 0; q < NV; ++q) acc[q] = V::fma(V::loadu(row + L * q), v, acc[q]);
        if (rest) acc[NV] = V::fma(V::load_masked(row + L * NV, tail), v, acc[NV]);
    }
    // out = acc, or with `add` out + acc.
    void store(float* out, bool add) {
        constexpr int L = V::lanes;
        if (add) {
            for (int q = 0; q < NV; ++q) acc[q] = V::add(V::loadu(out + L * q), acc[q]);
            if (rest) acc[NV] = V::add(V::load_masked(out + L * NV, tail), acc[NV]);
        }
        for (int q = 0; q < NV; ++q) V::storeu(out + L * q, acc[q]);
        if (rest) V::store_masked(out + L * NV, tail, acc[NV]);
    }
};

template <class V, int NV>
inline void sum_rows(const std::uint32_t* idx, const float* val, std::size_t count, const float* w,
                     std::size_t stride, float* out, int rest, bool add) {
    BlockSums<V, NV> sums(rest);
    for (std::size_t k = 0; k < count; ++k) sums.add_row(w + std::size_t(idx[k]) * stride, val[k]);
    sums.store(out, add);
}

// Two samples' sums at once (the forward product of samples j and j + 1 over one run): each
// sample's chain is sum_rows's, in its own list order, so the bits are the same; the two chains
// run side by side while both lists last. With NV <= 4 (Vec16 at 64 outputs) one sample's
// accumulators are 4 chains of FMAs, each waiting on its last FMA's latency; two samples give the
// core 8 to interleave.
template <class V, int NV>
inline void sum_rows_pair(const std::uint32_t* idx_a, const float* val_a, std::size_t count_a, float* out_a,
                          const std::uint32_t* idx_b, const float* val_b, std::size_t count_b, float* out_b,
                          const float* w, std::size_t stride, int rest, bool add) {
    BlockSums<V, NV> a(rest), b(rest);
    const std::size_t both = std::min(count_a, count_b);
    std::size_t k = 0;
    for (; k < both; ++k) {
        a.add_row(w + std::size_t(idx_a[k]) * stride, val_a[k]);
        b.add_row(w + std::size_t(idx_b[k]) * stride, val_b[k]);
    }
    for (std::size_t ka = k; ka < count_a; ++ka) a.add_row(w + std::size_t(idx_a[ka]) * stride, val_a[ka]);
    for (std::size_t kb = k; kb < count_b; ++kb) b.add_row(w + std::size_t(idx_b[kb]) * stride, val_b[kb]);
    a.store(out_a, add);
    b.store(out_b, add);
}

// The weight gradient sample by sample: for each entry (feature f, value v) of sample j's list,
// dW row f (the block's outputs) = v * dZ column j + that row, one FMA in place (rows start at
// +0). Per row the terms come in sample order, one FMA each: the chain sum_rows runs over the
// feature's list, so the same bits, with dZ's column held in registers and no re-sorting of the
// entries by feature. Run by run of features (the compaction's gemm runs: 196 of 784), each over
// all the samples, so that the run's rows of dW (49 KB at 64 outputs) stay in L1 while every
// sample adds into them; sample by sample through all the features, every entry's row came from
// L2 and went back (sparse_input_bench, 256 x 784 MNIST batch, 64 outputs, Zen 5: 59-65 against
// 84-107 us). For one run of samples only (b <= gemm_k_block(b)).
template <class V, int NV>
inline void scatter_rows(const std::uint32_t* feature, const float* value, const std::uint32_t* run_start, int runs,
                         const std::uint32_t* sample_start, int b, const float* dz, std::size_t stride, float* dw,
                         int rest) {
    constexpr int L = V::lanes;
    const typename V::mask tail = V::first_lanes(rest);
    for (int r = 0; r < runs; ++r) {
        for (int j = 0; j < b; ++j) {
            const float* col = dz + std::size_t(j) * stride;
            typename V::type g[NV + 1];
            for (int q = 0; q < NV; ++q) g[q] = V::loadu(col + L * q);
            if (rest) g[NV] = V::load_masked(col + L * NV, tail);
            const std::uint32_t* starts = run_start + std::size_t(j) * std::size_t(runs);
            const std::uint32_t end = r + 1 < runs ? starts[r + 1] : sample_start[j + 1];
            for (std::uint32_t k = starts[r]; k < end; ++k) {
                const typename V::type x = V::set1(value[k]);
                float* row = dw + std::size_t(feature[k]) * stride;
                for (int q = 0; q < NV; ++q) V::storeu(row + L * q, V::fma(g[q], x, V::loadu(row + L * q)));
                if (rest) V::store_masked(row + L * NV, tail, V::fma(g[NV], x, V::load_masked(row + L * NV, tail)));
            }
        }
    }
}

// Calls kernel(std::integral_constant<int, NV>) for nv = NV, the whole vectors of a block of at
// most 64 outputs (nv <= 64 / lanes).
template <class V, int NV = 64 / V::lanes, class Kernel>
void in_vectors(int nv, Kernel&& kernel) {
    if (nv == NV) {
        kernel(std::integral_constant<int, NV>());
        return;
    }
    if constexpr (NV > 0) in_vectors<V, NV - 1>(nv, kernel);
}

template <class V>
void sum_block(const std::uint32_t* idx, const float* val, std::size_t count, const float* w, std::size_t stride,
               int width, float* out, bool add) {
    in_vectors<V>(width / V::lanes, [&](auto nv) {
        sum_rows<V, decltype(nv)::value>(idx, val, count, w, stride, out, width % V::lanes, add);
    });
}
#endif

// The scalar build's block: the same FMAs, one output at a time.
template <>
void sum_block<ScalarLanes>(const std::uint32_t* idx, const float* val, std::size_t count, const float* w,
                            std::size_t stride, int width, float* out, bool add) {
    for (int o = 0; o < width; ++o) {
        float acc = 0.0f;
        for (std::size_t k = 0; k < count; ++k) acc = std::fma(w[std::size_t(idx[k]) * stride + std::size_t(o)], val[k], acc);
        out[o] = add ? out[o] + acc : acc;
    }
}

// Sums the list entries [start[0], end) into out as gemm sums its k terms (gemm.h:
// gemm_k_block): in runs, run r being entries [start[r], start[r + 1]) (the last ends at end),
// each from zero, the first stored and the others added, empty runs included (gemm adds their
// +0, which turns a -0 into +0), so the bits are gemm's.
template <class V>
void sum_runs(const std::uint32_t* idx, const float* val, const std::uint32_t* start, int runs, std::size_t end,
              const float* w, std::size_t stride, int n_out, float* out) {
    for (int r = 0; r < runs; ++r) {
        const std::size_t k0 = start[r], k1 = r + 1 < runs ? start[r + 1] : end;
        for (int o0 = 0; o0 < n_out; o0 += 64) {
            sum_block<V>(idx + k0, val + k0, k1 - k0, w + o0, stride, std::min(64, n_out - o0), out + o0, r > 0);
        }
    }
}

}  // namespace

SparseInput::SparseInput(int d, std::size_t capacity) : d_(d) {
    max_nonzeros_ = std::size_t(kMaxDensity * double(d) * double(capacity));
    // A sample may overshoot the budget before compress notices: room for one more sample.
    const std::size_t room = max_nonzeros_ + std::size_t(d) + 16;  // + 16: compress stores whole vectors
    // Entries are indexed with 32 bits: past that (inputs of millions of features in large
    // batches) the lists stay empty and compress always declines.
    if (room > std::size_t(UINT32_MAX) || capacity == 0) return;
    sample_start_.resize(capacity + 1);
    feature_run_ = gemm_k_block(d);
    feature_runs_ = (d + feature_run_ - 1) / feature_run_;
    run_start_.resize(capacity * std::size_t(feature_runs_));
    feature_of_ = ZeroPagesOf<std::uint32_t>(room);
    sample_value_ = ZeroPagesOf<float>(room);
    feature_start_.resize(std::size_t(d) + 1);
    fill_.resize(std::size_t(d));
    sample_of_ = ZeroPagesOf<std::uint32_t>(room);
    feature_value_ = ZeroPagesOf<float>(room);
}

// Each sample's features go L at a time (V::lanes) without branches: the nonzeros' values and
// indices packed to the front (simd.h: compress_store) and whole vectors stored (the buffers have
// 16 entries of slack); k advances by their count. Vec16's packing is one instruction
// (vcompressps), Vec8's a permutation from a table indexed by the mask; every V gives the same
// lists. For a 256 x 784 MNIST batch (sparse_input_bench, Zen 5) Vec16 took 19.6-23.6 us where
// the AVX-512 build ran Vec8's packing before (26.6-27.9).
namespace {

// For streamed rows (stream_input) that the forward before did not ask for, the compaction asks
// for the sample kPrefetchSamples ahead of the one it reads, line by line: in inference its input
// streams from memory (the caller's array, 3 KB a sample for MNIST), and the hardware's stream
// prefetch alone left it waiting. Encoding the 10000 MNIST test images at 1 thread (Zen 5):
// 3.19-3.35 against 3.40-3.69 ms a call; on the x86-64-v3 build 4.18-4.28 against 4.41-4.61 (2
// samples ahead did no better). Training's batches, gathered just before into a buffer in cache,
// do not ask: there the requests measured a 1-3% slower epoch.
constexpr int kPrefetchSamples = 8;

void prefetch_row(const float* row, int d) {
    const char* bytes = reinterpret_cast<const char*>(row);
    for (std::size_t o = 0; o < std::size_t(d) * sizeof(float); o += 64) __builtin_prefetch(bytes + o, 0, 3);
}

}  // namespace

template <class V>
bool SparseInput::compress_with(const float* x, int d, int b) {
    active_ = deferred_ = false;
    if (d != d_ || b < 1 || std::size_t(b) + 1 > sample_start_.size()) return false;
    const int sample_run = gemm_k_block(b);
    if ((b + sample_run - 1) / sample_run > kMaxSampleRuns) return false;  // weight_gradient's run table
    const std::size_t budget = std::min(max_nonzeros_, std::size_t(kMaxDensity * double(d) * double(b)));
    std::size_t k = 0;
    // In locals: the vector stores may alias any object, so members would be read again each time.
    float* const values = sample_value_.data();
    std::uint32_t* const features = feature_of_.data();
    const bool ask_ahead = streaming_ && reinterpret_cast<const char*>(x) != asked_for_;
    for (int j = 0; j < b; ++j) {
        sample_start_[std::size_t(j)] = std::uint32_t(k);
        // Where each of gemm's runs of features starts in the list (forward_with): recorded as the
        // loop passes each boundary, a branch taken at the same places for every sample.
        std::uint32_t* runs = run_start_.data() + std::size_t(j) * std::size_t(feature_runs_);
        runs[0] = std::uint32_t(k);
        int r = 1, boundary = feature_run_;
        const float* col = x + std::size_t(j) * std::size_t(d);
        if (ask_ahead && j + kPrefetchSamples < b) prefetch_row(col + std::size_t(kPrefetchSamples) * std::size_t(d), d);
        int i = 0;
#ifdef FASTAE_HAVE_AVX2_MATH
        if constexpr (!std::is_same_v<V, ScalarLanes>) {
            constexpr int L = V::lanes;
            for (; i + L <= d; i += L) {
                const typename V::type v = V::loadu(col + i);
                const unsigned bits = V::nonzero_bits(v);  // NaN counts as nonzero
                V::compress_store(values + k, features + k, v, bits, i);
                for (; r < feature_runs_ && boundary < i + L; ++r, boundary += feature_run_) {
                    runs[r] = std::uint32_t(k) + std::uint32_t(__builtin_popcount(bits & ((1u << (boundary - i)) - 1u)));
                }
                k += std::size_t(__builtin_popcount(bits));
            }
        }
#endif
        for (; i < d; ++i) {
            for (; r < feature_runs_ && boundary <= i; ++r, boundary += feature_run_) runs[r] = std::uint32_t(k);
            if (!(col[i] == 0.0f)) {
                features[k] = std::uint32_t(i);
                values[k] = col[i];
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

template <class V>
void SparseInput::forward_with(const float* w, int n_out, float* z) const {
    // Run by run (gemm_k_block's runs of features: 4 of 196 for 784 inputs), each over every
    // sample: one run's weight rows (196 x 64 floats, 49 KB) are then read by all the batch's
    // samples while they are in L1, where sample by sample (each through all its runs) streamed
    // the whole W (200 KB) from L2 for every sample. The same sums in the same order, as
    // sum_runs: run r of sample j from zero, stored (r = 0) or added to Z. For a 256 x 784
    // MNIST batch and 64 outputs (sparse_input_bench, Zen 5): 45-47 against 59-62 us.
    // Where blocks are at most 4 vectors wide (Vec16 at 64 outputs), samples go two at a time
    // (sum_rows_pair: 8 chains of FMAs instead of 4): for a 256 x 784 MNIST batch and 64 outputs
    // (sparse_input_bench, Zen 5) 35.6-36.4 against 39.6-39.9 us; Vec8 (8 chains alone) unpaired.
    const std::size_t runs = std::size_t(feature_runs_);
    const auto stride = std::size_t(n_out);
    // stream_input's next rows, asked for a few lines after each sample's sums of a run and
    // block, spread so that the last line goes out with the product's last samples. Encoding the
    // 10000 MNIST test images at 1 thread (Zen 4, the two ways alternating in one process, 40
    // rounds): 4.79 against 5.81 ms a call (AVX-512), 5.42 against 6.92 (x86-64-v3); into L1
    // instead of L2, 6.66 against 7.22.
    const std::size_t visits = runs * std::size_t((n_out + 63) / 64) * std::size_t(b_);
    const std::size_t ask_per_sample = (next_input_lines_ + visits - 1) / visits;
    std::size_t asked = 0;
    auto ask_next = [&](std::size_t samples) {
        const std::size_t end = std::min(next_input_lines_, asked + samples * ask_per_sample);
        for (; asked < end; ++asked) __builtin_prefetch(next_input_ + asked * 64, 0, 2);
    };
    auto entries = [&](int j, std::size_t r, std::size_t* k0) {  // sample j's entries of run r
        const std::uint32_t* start = run_start_.data() + std::size_t(j) * runs;
        *k0 = start[r];
        return std::size_t((r + 1 < runs ? start[r + 1] : sample_start_[std::size_t(j) + 1]) - start[r]);
    };
    for (std::size_t r = 0; r < runs; ++r) {
        for (int o0 = 0; o0 < n_out; o0 += 64) {  // wider layers: W's block of the run and 64 outputs
            const int width = std::min(64, n_out - o0);
            int j = 0;
#ifdef FASTAE_HAVE_AVX2_MATH
            if constexpr (!std::is_same_v<V, ScalarLanes>) {
                in_vectors<V>(width / V::lanes, [&](auto nv) {
                    constexpr int NV = decltype(nv)::value;
                    if constexpr (NV <= 4) {
                        for (; j + 2 <= b_; j += 2) {
                            std::size_t ka = 0, kb = 0;
                            const std::size_t na = entries(j, r, &ka), nb = entries(j + 1, r, &kb);
                            sum_rows_pair<V, NV>(feature_of_.data() + ka, sample_value_.data() + ka, na,
                                                 z + std::size_t(j) * stride + std::size_t(o0), feature_of_.data() + kb,
                                                 sample_value_.data() + kb, nb,
                                                 z + std::size_t(j + 1) * stride + std::size_t(o0), w + o0, stride,
                                                 width % V::lanes, r > 0);
                            ask_next(2);
                        }
                    }
                });
            }
#endif
            for (; j < b_; ++j) {
                std::size_t k0 = 0;
                const std::size_t count = entries(j, r, &k0);
                sum_block<V>(feature_of_.data() + k0, sample_value_.data() + k0, count, w + o0, stride, width,
                             z + std::size_t(j) * stride + std::size_t(o0), r > 0);
                ask_next(1);
            }
        }
    }
    asked_for_ = next_input_lines_ ? next_input_ : nullptr;
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

// Whether the rows are built sample by sample (below), not summed by feature.
template <class V>
bool SparseInput::scatters(int n_out) const {
#ifdef FASTAE_HAVE_AVX2_MATH
    if constexpr (!std::is_same_v<V, ScalarLanes>) {
        return gemm_k_block(b_) >= b_ && (n_out <= 64 || (n_out <= 192 && n_out % 16 == 0));
    }
#endif
    (void)n_out;
    return false;
}

// Up to 64 outputs and one run of samples (b <= gemm_k_block(b): every batch of up to 256), the
// rows are built sample by sample (scatter_rows): for a 256 x 784 MNIST batch on Zen 5 that
// measured 73-76 against 85-87 us at 64 outputs, 36-41 against 75-76 at 32 (with Vec8: 91-93
// against 103-104 at 64), before it went run by run (58-59 us at 64 outputs, 36 at 32; Vec8
// 85-87). Run by run it also wins in blocks of 64 outputs for widths of whole 16-float vectors up
// to 192 (80: 90 against 126 us; 96: 102 / 126-138; 112: 111 / 152-156; 128: 143-145 /
// 176-183; 192: 180-182 / 269-274; Vec8 at 128: 193 / 207). Otherwise each feature's gradient
// row is summed in registers over the samples where it is nonzero, in gemm's runs of samples
// (the entries re-sorted by feature), which measured faster at 100 outputs (164-165 against
// 172-174 us: the last vector's rows straddle cache lines) and at 256 and 512 (335-354 against
// 361-371, 746-752 against 807-815: the rows' power-of-2 stride crowds a few L1 sets).
template <class V>
void SparseInput::weight_gradient_with(const float* dz, int n_out, float* dw) {
#ifdef FASTAE_HAVE_AVX2_MATH
    if constexpr (!std::is_same_v<V, ScalarLanes>) {
        if (scatters<V>(n_out)) {
            std::fill(dw, dw + std::size_t(d_) * std::size_t(n_out), 0.0f);
            for (int o0 = 0; o0 < n_out; o0 += 64) {  // blocks of 64 outputs
                const int width = std::min(64, n_out - o0);
                in_vectors<V>(width / V::lanes, [&](auto nv) {
                    scatter_rows<V, decltype(nv)::value>(feature_of_.data(), sample_value_.data(), run_start_.data(),
                                                         feature_runs_, sample_start_.data(), b_, dz + o0,
                                                         std::size_t(n_out), dw + o0, width % V::lanes);
                });
            }
            return;
        }
    }
#endif
    by_feature();
    if (defer_) {  // the rows come later, from feature_row
        deferred_ = true;
        deferred_dz_ = dz;
        deferred_n_out_ = n_out;
        return;
    }
    for (int f = 0; f < d_; ++f) feature_row_with<V>(f, dz, n_out, dw + std::size_t(f) * std::size_t(n_out));
}

// Row f of dW from the lists by feature (by_feature): the feature's entries in gemm's runs of
// samples, each run summed from zero and the runs added in order (sum_runs).
template <class V>
void SparseInput::feature_row_with(int f, const float* dz, int n_out, float* row) const {
    const std::size_t p0 = feature_start_[std::size_t(f)], p1 = feature_start_[std::size_t(f) + 1];
    if (p0 == p1) {
        std::fill(row, row + n_out, 0.0f);
        return;
    }
    const int run = gemm_k_block(b_);  // gemm sums the batch's samples in runs
    const int runs = (b_ + run - 1) / run;
    std::uint32_t start[kMaxSampleRuns];
    const std::uint32_t* samples = sample_of_.data();
    for (int r = 0; r < runs; ++r) {  // where run r's samples start in the feature's list
        start[r] = std::uint32_t(std::lower_bound(samples + p0, samples + p1, std::uint32_t(r * run)) - samples);
    }
    sum_runs<V>(samples, feature_value_.data(), start, runs, p1, dz, std::size_t(n_out), n_out, row);
}

void SparseInput::feature_row(int f, float* out) const {
    feature_row_with<NativeLanes>(f, deferred_dz_, deferred_n_out_, out);
}

bool SparseInput::compress(const float* x, int d, int b) { return compress_with<NativeLanes>(x, d, b); }
void SparseInput::forward(const float* w, int n_out, float* z) const { forward_with<NativeLanes>(w, n_out, z); }
void SparseInput::weight_gradient(const float* dz, int n_out, float* dw) {
    weight_gradient_with<NativeLanes>(dz, n_out, dw);
}

template bool SparseInput::compress_with<ScalarLanes>(const float*, int, int);
template void SparseInput::forward_with<ScalarLanes>(const float*, int, float*) const;
template void SparseInput::weight_gradient_with<ScalarLanes>(const float*, int, float*);
template void SparseInput::feature_row_with<ScalarLanes>(int, const float*, int, float*) const;
#ifdef FASTAE_HAVE_AVX2_MATH
template bool SparseInput::compress_with<simd::Vec8>(const float*, int, int);
template void SparseInput::forward_with<simd::Vec8>(const float*, int, float*) const;
template void SparseInput::weight_gradient_with<simd::Vec8>(const float*, int, float*);
template void SparseInput::feature_row_with<simd::Vec8>(int, const float*, int, float*) const;
template bool SparseInput::compress_with<simd::Twin16>(const float*, int, int);
template void SparseInput::forward_with<simd::Twin16>(const float*, int, float*) const;
template void SparseInput::weight_gradient_with<simd::Twin16>(const float*, int, float*);
template void SparseInput::feature_row_with<simd::Twin16>(int, const float*, int, float*) const;
#endif
#ifdef FASTAE_HAVE_AVX512_MATH
template bool SparseInput::compress_with<simd::Vec16>(const float*, int, int);
template void SparseInput::forward_with<simd::Vec16>(const float*, int, float*) const;
template void SparseInput::weight_gradient_with<simd::Vec16>(const float*, int, float*);
template void SparseInput::feature_row_with<simd::Vec16>(int, const float*, int, float*) const;
#endif

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
