// sparse_input.h -- the first layer's two products when the input is mostly zeros.
//
// The input is the only matrix of a step that can be sparse: MNIST pixels are 81% zeros, as are
// bag-of-words counts or one-hot features. The first layer's forward product Z = W X and its
// weight gradient dW = dZ X^T then only need X's nonzeros: with fraction p of them, p of the
// flops. A batch's nonzeros are listed by sample, features ascending: each sample's output is a
// sum of the weight rows of its nonzero features (Z), and each feature's gradient row a sum, in
// sample order, of the dZ columns of the samples where it is nonzero (dW: the entries re-sorted by
// feature, each row summed in registers). Every sum runs in list order and in the dense GEMM's
// runs of k (gemm.h: gemm_k_block), so where gemm sums in runs (the FMA kernels) the two paths
// give the same bits: the terms skipped are exact zeros, and adding a zero product leaves a sum
// as it is. One exception, of sign only: a run whose every nonzero term underflows sums to -0,
// which gemm's later zero terms turn into +0 when one of their weights is positive (-0 + +0 =
// +0), while the sparse sum stays -0; both are zeros, and every later use (activation, product)
// treats them alike. Which path runs is then a question of speed alone, measured as training
// goes (network.h: FirstLayerPath).
//
// Layouts as in network.h: X (d, b) column-major (sample j's features contiguous), W of a layer
// with n_in = d inputs stored so that input i's n_out weights are contiguous (W + i * n_out), Z
// and dZ (n_out, b) column-major, dW like W.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "simd.h"
#include "zero_pages.h"

namespace fastae::detail {

// One output at a time with std::fma: the kernels of a build without AVX2 (and a geometry the
// tests compare the vector ones with).
struct ScalarLanes {};
#ifdef FASTAE_HAVE_AVX2_MATH
using NativeLanes = simd::Widest;
#else
using NativeLanes = ScalarLanes;
#endif

class SparseInput {
public:
    // Largest fraction of nonzeros for which the sparse products are tried: they run the FMA
    // units at about half the dense kernel's rate (one weight load per FMA), so they cannot win
    // much above 0.5; below it, FirstLayerPath measures which is faster.
    static constexpr double kMaxDensity = 0.4;

    SparseInput() = default;
    // Room for batches of up to `capacity` samples of `d` features at kMaxDensity.
    SparseInput(int d, std::size_t capacity);

    // Lists the nonzeros of x (d, b) by sample, if at most kMaxDensity of them are nonzero (and
    // the batch fits the capacity); otherwise returns false and the caller uses dense products.
    // NaN and infinities count as nonzero, so they reach the products as in the dense path.
    bool compress(const float* x, int d, int b);
    bool active() const { return active_; }
    void clear() { active_ = deferred_ = false; }
    // Inference reads its chunks in place from the caller's array, one after another, so the
    // input streams from memory. `next` (`bytes` long, null for none) are the rows the caller
    // compresses after this batch: forward asks for them (into L2) a few lines after each
    // sample's sums, so that their stream overlaps its product's arithmetic. compress asks for
    // the samples ahead of the one it reads where the forward before did not ask for its rows.
    // Training's batches, gathered into a buffer in cache, never stream.
    void stream_input(const float* next, std::size_t bytes) {
        streaming_ = true;
        next_input_ = reinterpret_cast<const char*>(next);
        next_input_lines_ = next ? (bytes + 63) / 64 : 0;
    }

    // Z (n_out, b) = W X for the compressed batch (n_in = d).
    void forward(const float* w, int n_out, float* z) const;
    // dW (d rows of n_out) = dZ X^T for the compressed batch.
    void weight_gradient(const float* dz, int n_out, float* dw);

    // The weight gradient left for later, row by row (a training step of many shards: the
    // session computes the first layer's dW rows of every shard in its sum over the shards, the
    // rows split among its threads, instead of each shard writing all d rows into its own buffer
    // and the sum reading them back: training_deferred.cpp, sum_first_layer). With
    // set_defer(true), weight_gradient does not write dw when it would sum by feature (n_out past
    // the scatter's widths: by_feature's lists): it keeps dz and marks the batch deferred();
    // feature_row then computes row f of dW into out (n_out floats) with weight_gradient's bits.
    // dz must stay as it was until then. compress and clear end it.
    void set_defer(bool on) { defer_ = on; }
    bool deferred() const { return deferred_; }
    void feature_row(int f, float* out) const;

    // The same compaction and products on the vectors V (simd.h: Vec8, Twin16, Vec16 where the
    // build has them, or ScalarLanes): all give the same lists and bits; production runs
    // NativeLanes, the tests every one.
    template <class V>
    bool compress_with(const float* x, int d, int b);
    template <class V>
    void forward_with(const float* w, int n_out, float* z) const;
    template <class V>
    void weight_gradient_with(const float* dz, int n_out, float* dw);
    template <class V>
    void feature_row_with(int f, const float* dz, int n_out, float* out) const;

private:
    void by_feature();
    template <class V>
    bool scatters(int n_out) const;  // whether weight_gradient_with builds the rows sample by sample

    int d_ = 0, b_ = 0;
    std::size_t max_nonzeros_ = 0;
    bool active_ = false;
    bool streaming_ = false;
    const char* next_input_ = nullptr;  // stream_input's next rows, next_input_lines_ cache lines
    std::size_t next_input_lines_ = 0;
    mutable const char* asked_for_ = nullptr;  // the rows the last forward asked for
    bool defer_ = false, deferred_ = false;
    const float* deferred_dz_ = nullptr;
    int deferred_n_out_ = 0;
    // Sample j's nonzeros, features ascending, are entries [sample_start[j], sample_start[j + 1]).
    // The entries' buffers, with room for the densest batch taken, take memory as they are
    // written (zero_pages.h), so a sparser input or inference, which never sorts by feature,
    // costs only what it uses.
    std::vector<std::uint32_t> sample_start_;
    ZeroPagesOf<std::uint32_t> feature_of_;
    // Sample j's list split at gemm's runs of features (gemm_k_block(d) of them, feature_runs_
    // runs): run r starts at entry run_start_[j * feature_runs_ + r].
    int feature_run_ = 1, feature_runs_ = 1;
    std::vector<std::uint32_t> run_start_;
    static constexpr int kMaxSampleRuns = 64;  // gemm's runs of samples in a batch (at most 4096 / 256)
    ZeroPagesOf<float> sample_value_;
    // The same entries by feature (for the weight gradient): feature f's are [feature_start[f],
    // feature_start[f + 1]), samples ascending; fill_ is the counting sort's cursor per feature.
    std::vector<std::uint32_t> feature_start_, fill_;
    ZeroPagesOf<std::uint32_t> sample_of_;
    ZeroPagesOf<float> feature_value_;
};

// Naive twins in double, for tests: the same products from dense X.
void sparse_forward_naive(const float* x, int d, int b, const float* w, int n_out, double* z);
void sparse_weight_gradient_naive(const float* x, int d, int b, const float* dz, int n_out, double* dw);

}  // namespace fastae::detail
