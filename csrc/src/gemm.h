// gemm.h -- single-precision matrix product C = alpha op(A) op(B) + beta C, column-major with
// BLAS semantics, for the dense layers' five products: packed, cache-blocked, register-blocked
// FMA micro-kernels (AVX-512 or AVX2+FMA, chosen at compile time), Eigen's product elsewhere.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>

namespace fastae::detail {

// Packing buffers for gemm. Make one per thread, once, and pass it to every call: gemm grows it
// only when a call needs more room than any call before, so a training loop that reuses a
// workspace allocates on its first batch at most (reserve() up front makes that zero).
// Not shareable between threads that multiply at the same time.
class GemmWorkspace {
public:
    GemmWorkspace() = default;
    // Room for every product whose dimensions are at most (m, n, k).
    GemmWorkspace(int m, int n, int k) { reserve(m, n, k); }
    // Grows (never shrinks) to hold the buffers of any product with dimensions at most (m, n, k).
    // Throws std::invalid_argument for a negative dimension.
    void reserve(int m, int n, int k);
    // Grows (never shrinks) to at least `floats` floats, 64-byte aligned.
    void reserve_floats(std::size_t floats);
    std::size_t capacity_floats() const { return capacity_; }
    float* data() { return buffer_.get(); }
    const float* data() const { return buffer_.get(); }

private:
    struct AlignedFree {
        void operator()(float* p) const;
    };
    std::unique_ptr<float[], AlignedFree> buffer_;
    std::size_t capacity_ = 0;
};

// Floats of workspace a product of these dimensions needs (0 in the Eigen fallback build);
// non-decreasing in each argument.
std::size_t gemm_workspace_floats(int m, int n, int k);

// C (m, n) = alpha * op(A) * op(B) + beta * C, all column-major: op(A) is (m, k), stored as A
// (m, k) with leading dimension lda >= m, or, if trans_a, as A^T (k, m) with lda >= k; likewise
// op(B) (k, n) is B (k, n) with ldb >= k, or B^T (n, k) with ldb >= n if trans_b; ldc >= m.
// BLAS rules: beta == 0 writes C without reading it (NaN or garbage there is ignored); alpha == 0
// or k == 0 scales C by beta and reads neither A nor B. C must not overlap A or B.
// With the FMA kernels the same inputs give bit-identical C whatever the buffers' addresses:
// the result depends only on the values and (m, n, k). A build without AVX2+FMA runs Eigen's
// product instead, which allocates its own blocking buffers and ignores ws. Throws std::invalid_argument naming a negative dimension, a
// leading dimension that is too small, or a null pointer for a non-empty matrix.
void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc, GemmWorkspace& ws);

// op(A) of products that several threads run with the same A, each with its own B: the shards
// of a training step each multiply a layer's W (or W^T) by their own columns. Packed by every
// product, W would be packed once per shard, a cost that does not shrink as the shards do (for
// a 784 x 256 W about 20 us a product on Zen 5, against 240 us for 128 columns); shared, its
// blocks (gemm's cache blocks of A) are packed once a step by whichever threads need it first,
// each claiming blocks no other has, and the products read them as gemm would have packed
// them: the same bits as gemm. Allocates in the constructor only.
class SharedPackedA {
public:
    // op(A) (m, k) as in gemm: A (m, k) with leading dimension lda, or, if trans_a, A^T.
    SharedPackedA(bool trans_a, int m, int k, const float* a, int lda);
    SharedPackedA(const SharedPackedA&) = delete;
    SharedPackedA& operator=(const SharedPackedA&) = delete;
    // A's values changed: the next pack() packs them again. Call it when no thread is in pack()
    // or a product, and publish it to them (a thread pool's start of a run does).
    void invalidate();
    // As invalidate, for an op(A) read from `a` (same lda) with k columns, k at most the
    // constructor's: a matrix whose width changes from call to call (a shard's dZ, deferred).
    // Throws std::invalid_argument for k outside [0, the constructor's k].
    void reset(const float* a, int k);
    // Packs the blocks no thread has claimed yet, then waits until every block is packed (by
    // whichever thread claimed it, each packing without waiting on anything). Thread-safe.
    void pack();
    bool packed() const;
    int m() const { return m_; }
    int k() const { return k_; }

private:
    friend void gemm_shared_a(const SharedPackedA&, bool, int, const float*, int, float, float*, int, GemmWorkspace&);
    bool trans_a_;
    int m_, k_, lda_, k_capacity_;
    const float* a_;
    int blocks_ = 0;
    GemmWorkspace buffer_;  // the packed blocks
    std::atomic<int> next_{0}, done_{0};
};

// C (m, n) = op(A) op(B) + beta C for a shared op(A) (m, k) that pack() has packed; op(B) and
// the rest as in gemm (alpha 1). The bits are gemm's for the same operands. Throws
// std::logic_error if A is not packed, std::invalid_argument as gemm does.
void gemm_shared_a(const SharedPackedA& a, bool trans_b, int n, const float* b, int ldb, float beta, float* c,
                   int ldc, GemmWorkspace& ws);

// How the FMA kernels sum: each C element over k = 0..k-1 in runs of gemm_k_block(k)
// consecutive k (the last may be shorter), each run one chain of FMAs in k order from zero, the
// first run stored as alpha * run (+ beta C) and the later ones added (C + run; alpha = 1 in
// every product of the layers). A product that skips zero terms but sums the same runs the same
// way gets the same bits (sparse_input.h). gemm_sums_in_k_runs is false for the Eigen build,
// whose order is Eigen's; gemm_k_block(k) is then k.
int gemm_k_block(int k);
bool gemm_sums_in_k_runs();

// The micro-kernel this build uses, e.g. "avx2+fma 16x6" or "eigen" (for logs and show_config).
const char* gemm_kernel_name();

// The AVX-512 build's blocking (32x8 micro-tiles, its packing and edge handling) run with AVX2
// vectors, so that machines without AVX-512 test everything but that build's few vector
// intrinsics. Only in builds with AVX2+FMA; for tests, slower than gemm.
void gemm_avx512_geometry_on_avx2(bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                        const float* a, int lda, const float* b, int ldb, float beta, float* c,
                        int ldc, GemmWorkspace& ws);
bool gemm_avx512_geometry_on_avx2_available();

}  // namespace fastae::detail
