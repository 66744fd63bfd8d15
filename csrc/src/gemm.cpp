// gemm.cpp -- the single-precision product of gemm.h: its argument checks, workspace, a shared
// A (SharedPackedA) and the public calls over the packed, cache-blocked kernels of
// gemm_kernels.h (BLIS/Goto scheme), with Eigen's product as the fallback where no FMA vector
// unit is known at compile time.
#include "gemm.h"

#include <algorithm>
#include <cmath>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

#include "gemm_kernels.h"

#ifndef FASTAE_GEMM_AVX2
#include <Eigen/Core>
#endif

namespace fastae::detail {

namespace {

using namespace gemm_kernels;

void check_arguments(bool trans_a, bool trans_b, int m, int n, int k, const float* a, int lda,
                     const float* b, int ldb, const float* c, int ldc) {
    auto fail = [](const std::string& what) { throw std::invalid_argument("gemm: " + what); };
    if (m < 0) fail("m must be >= 0, got " + std::to_string(m));
    if (n < 0) fail("n must be >= 0, got " + std::to_string(n));
    if (k < 0) fail("k must be >= 0, got " + std::to_string(k));
    const int a_rows = trans_a ? k : m;
    const int b_rows = trans_b ? n : k;
    if (lda < std::max(1, a_rows)) {
        fail("lda must be >= max(1, " + std::string(trans_a ? "k" : "m") + ") = " +
             std::to_string(std::max(1, a_rows)) + ", got " + std::to_string(lda));
    }
    if (ldb < std::max(1, b_rows)) {
        fail("ldb must be >= max(1, " + std::string(trans_b ? "n" : "k") + ") = " +
             std::to_string(std::max(1, b_rows)) + ", got " + std::to_string(ldb));
    }
    if (ldc < std::max(1, m)) {
        fail("ldc must be >= max(1, m) = " + std::to_string(std::max(1, m)) + ", got " +
             std::to_string(ldc));
    }
    if (m > 0 && n > 0 && c == nullptr) fail("c is null for a " + std::to_string(m) + " x " +
                                             std::to_string(n) + " result");
    if (m > 0 && n > 0 && k > 0) {
        if (a == nullptr) fail("a is null with m = " + std::to_string(m) + ", k = " + std::to_string(k));
        if (b == nullptr) fail("b is null with k = " + std::to_string(k) + ", n = " + std::to_string(n));
    }
}

// C = beta * C, where beta == 0 writes zeros without reading C (BLAS).
void scale_c(int m, int n, float beta, float* c, std::ptrdiff_t ldc) {
    for (int j = 0; j < n; ++j) {
        float* col = c + j * ldc;
        if (beta == 0.0f) {
            std::fill(col, col + m, 0.0f);
        } else if (beta != 1.0f) {
            for (int i = 0; i < m; ++i) col[i] *= beta;
        }
    }
}

#ifdef FASTAE_GEMM_AVX2

// a_packed: op(A)'s blocks packed ahead (SharedPackedA), or null; with a_packed, a_ready says
// whether they are all packed (checked after the arguments).
template <class Impl>
void gemm_with(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
               int lda, const float* b, int ldb, float beta, float* c, int ldc, GemmWorkspace& ws,
               const float* a_packed = nullptr, bool a_ready = true) {
    check_arguments(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc);
    if (!a_ready) throw std::logic_error("gemm_shared_a: A is not packed (call pack() first)");
    if (m == 0 || n == 0) return;
    if (k == 0 || alpha == 0.0f) {
        scale_c(m, n, beta, c, ldc);
        return;
    }
    if (a_packed == nullptr && !trans_a && n <= kFewColumns) {  // A used n times: not worth packing
        Impl::Few::run(m, n, k, alpha, a, lda, trans_b, b, ldb, beta, c, ldc);
        return;
    }
    ws.reserve_floats(Impl::workspace_floats(m, n, k));  // no-op once big enough
    Impl::run(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ws.data(), a_packed);
}

#else  // no AVX2 + FMA: Eigen's product

constexpr const char* kKernelName = "eigen";

#endif

}  // namespace

void GemmWorkspace::AlignedFree::operator()(float* p) const {
    ::operator delete[](p, std::align_val_t(kAlignBytes));
}

std::size_t gemm_workspace_floats(int m, int n, int k) {
    if (m < 0 || n < 0 || k < 0) {
        throw std::invalid_argument("gemm_workspace_floats: dimensions must be >= 0, got m = " +
                                    std::to_string(m) + ", n = " + std::to_string(n) +
                                    ", k = " + std::to_string(k));
    }
#ifdef FASTAE_GEMM_AVX2
    return NativeBlocked::workspace_floats(m, n, k);
#else
    return 0;
#endif
}

void GemmWorkspace::reserve(int m, int n, int k) { reserve_floats(gemm_workspace_floats(m, n, k)); }

void GemmWorkspace::reserve_floats(std::size_t need) {
    if (need <= capacity_) return;
    buffer_.reset(static_cast<float*>(
        ::operator new[](need * sizeof(float), std::align_val_t(kAlignBytes))));
    capacity_ = need;
}

SharedPackedA::SharedPackedA(bool trans_a, int m, int k, const float* a, int lda)
    : trans_a_(trans_a), m_(m), k_(k), lda_(lda), k_capacity_(k), a_(a) {
    check_arguments(trans_a, false, m, 0, k, a, lda, a, std::max(k, 1), nullptr, std::max(m, 1));  // sizes, lda
    if (m > 0 && k > 0 && a == nullptr) throw std::invalid_argument("SharedPackedA: a is null");
#ifdef FASTAE_GEMM_AVX2
    if (m > 0 && k > 0) {
        blocks_ = NativeBlocked::a_blocks(m, k);
        buffer_.reserve_floats(std::size_t(blocks_) * NativeBlocked::a_floats(m, k));
    }
#endif
}

void SharedPackedA::invalidate() {
    next_.store(0, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
}

void SharedPackedA::pack() {
#ifdef FASTAE_GEMM_AVX2
    for (int block; (block = next_.fetch_add(1, std::memory_order_relaxed)) < blocks_;) {
        NativeBlocked::pack_a_block(trans_a_, m_, k_, a_, lda_, block, buffer_.data());
        done_.fetch_add(1, std::memory_order_release);
    }
    // A packer descheduled mid-block (more threads than free cores) may need this core: spin a
    // little, then give the core up between looks.
    for (int spins = 0; done_.load(std::memory_order_acquire) < blocks_; ++spins) {
        if (spins < 4096) {
            _mm_pause();
        } else {
            std::this_thread::yield();
        }
    }
#endif
}

void SharedPackedA::reset(const float* a, int k) {
    if (k < 0 || k > k_capacity_) {
        throw std::invalid_argument("SharedPackedA::reset: k must be in [0, " + std::to_string(k_capacity_) +
                                    "], got " + std::to_string(k));
    }
    if (m_ > 0 && k > 0 && a == nullptr) throw std::invalid_argument("SharedPackedA::reset: a is null");
    a_ = a;
    k_ = k;
#ifdef FASTAE_GEMM_AVX2
    blocks_ = m_ > 0 && k > 0 ? NativeBlocked::a_blocks(m_, k) : 0;  // fit the buffer: both grow with k
#endif
    invalidate();
}

bool SharedPackedA::packed() const { return done_.load(std::memory_order_acquire) >= blocks_; }

void gemm_shared_a(const SharedPackedA& a, bool trans_b, int n, const float* b, int ldb, float beta, float* c,
                   int ldc, GemmWorkspace& ws) {
#ifdef FASTAE_GEMM_AVX2
    gemm_with<NativeBlocked>(a.trans_a_, trans_b, a.m_, n, a.k_, 1.0f, a.a_, a.lda_, b, ldb, beta, c, ldc, ws,
                             a.buffer_.data(), a.packed());
#else
    gemm(a.trans_a_, trans_b, a.m_, n, a.k_, 1.0f, a.a_, a.lda_, b, ldb, beta, c, ldc, ws);
#endif
}

const char* gemm_kernel_name() { return kKernelName; }

#ifdef FASTAE_GEMM_AVX2
int gemm_k_block(int k) { return k > 0 ? even_block(k, kKC, 1) : 1; }
bool gemm_sums_in_k_runs() { return true; }
#else
int gemm_k_block(int k) { return k > 0 ? k : 1; }
bool gemm_sums_in_k_runs() { return false; }
#endif

#ifdef FASTAE_GEMM_AVX2

void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc, GemmWorkspace& ws) {
    gemm_with<NativeBlocked>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ws);
}

bool gemm_avx512_geometry_on_avx2_available() { return true; }

void gemm_avx512_geometry_on_avx2(bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                        const float* a, int lda, const float* b, int ldb, float beta, float* c,
                        int ldc, GemmWorkspace& ws) {
    gemm_with<Avx2As32x8Blocked>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                                  ws);
}

#else

void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc, GemmWorkspace& /*ws*/) {
    check_arguments(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc);
    if (m == 0 || n == 0) return;
    if (k == 0 || alpha == 0.0f) {
        scale_c(m, n, beta, c, ldc);
        return;
    }
    using Stride = Eigen::OuterStride<>;
    using ConstMap = Eigen::Map<const Eigen::MatrixXf, 0, Stride>;
    Eigen::Map<Eigen::MatrixXf, 0, Stride> cm(c, m, n, Stride(ldc));
    const ConstMap am(a, trans_a ? k : m, trans_a ? m : k, Stride(lda));
    const ConstMap bm(b, trans_b ? n : k, trans_b ? k : n, Stride(ldb));
    if (beta == 0.0f) {
        cm.setZero();  // BLAS: C's old contents (NaN included) are ignored
    } else if (beta != 1.0f) {
        cm *= beta;
    }
    if (!trans_a && !trans_b) cm.noalias() += alpha * am * bm;
    if (!trans_a && trans_b) cm.noalias() += alpha * am * bm.transpose();
    if (trans_a && !trans_b) cm.noalias() += alpha * am.transpose() * bm;
    if (trans_a && trans_b) cm.noalias() += alpha * am.transpose() * bm.transpose();
}

bool gemm_avx512_geometry_on_avx2_available() { return false; }

void gemm_avx512_geometry_on_avx2(bool, bool, int, int, int, float, const float*, int, const float*, int,
                        float, float*, int, GemmWorkspace&) {
    throw std::logic_error("gemm_avx512_geometry_on_avx2: this build has no AVX2+FMA");
}

#endif

}  // namespace fastae::detail
