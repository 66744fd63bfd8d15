// sparse_input_bench.cpp -- the first layer's products on a sparse input batch
// (csrc/src/sparse_input.h) against the dense GEMM (csrc/src/gemm.h): Z = W X and dW = dZ X^T
// for 256 samples of 784 features and 64 (or argv[1]) outputs, best of 300 runs each.
//
//   sparse_input_bench [n_out] [x.f32]
//
// x.f32: 60000 x 784 float32, raw, row-major (MNIST: see epoch_bench.cpp); 256 rows are drawn
// from it. Without it, synthetic rows with 19% nonzeros (MNIST's share).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

#include "gemm.h"
#include "sparse_input.h"

using namespace fastae::detail;
using Clock = std::chrono::steady_clock;

// A 64-byte aligned float buffer with the few vector members used here.
struct AlignedBuffer {
    explicit AlignedBuffer(std::size_t n)
        : n_(n), p_(static_cast<float*>(::operator new[](n * sizeof(float), std::align_val_t(64)))) {}
    ~AlignedBuffer() { ::operator delete[](p_, std::align_val_t(64)); }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    std::size_t size() const { return n_; }
    float* data() { return p_; }
    float* begin() { return p_; }
    float* end() { return p_ + n_; }

private:
    std::size_t n_;
    float* p_;
};

template <class F>
double best_us(F f, int reps = 300) {
    double best = 1e9;
    for (int r = 0; r < reps; ++r) {
        const auto t = Clock::now();
        f();
        best = std::min(best, std::chrono::duration<double>(Clock::now() - t).count());
    }
    return best * 1e6;
}

int main(int argc, char** argv) {
    const int d = 784, b = 256, n_out = argc > 1 ? std::atoi(argv[1]) : 64;
    std::mt19937 gen(1);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    std::vector<float> x(std::size_t(d) * b);
    if (argc > 2) {
        std::vector<float> all(std::size_t(60000) * d);
        std::FILE* f = std::fopen(argv[2], "rb");
        if (!f || std::fread(all.data(), sizeof(float), all.size(), f) != all.size()) {
            std::fprintf(stderr, "cannot read 60000 x 784 floats from %s\n", argv[2]);
            return 1;
        }
        std::fclose(f);
        for (int j = 0; j < b; ++j) {
            const std::size_t row = gen() % 60000;
            std::copy(all.begin() + std::ptrdiff_t(row * d), all.begin() + std::ptrdiff_t((row + 1) * d),
                      x.begin() + std::ptrdiff_t(std::size_t(j) * d));
        }
    } else {
        for (float& v : x) v = unit(gen) < 0.19f ? unit(gen) : 0.0f;
    }
    std::size_t nnz = 0;
    for (float v : x) nnz += v != 0.0f;
    // 64-byte aligned, as the engine's parameter, gradient and workspace buffers are (an unaligned
    // weight row straddles cache lines: the sparse forward measured 89 against 55 us).
    AlignedBuffer w(std::size_t(d) * n_out), z(std::size_t(n_out) * b), dz(z.size()), dw(w.size());
    for (float& v : w) v = unit(gen) - 0.5f;
    for (float& v : dz) v = unit(gen) - 0.5f;
    SparseInput sparse(d, b);
    GemmWorkspace ws(d, d, d);
    if (!sparse.compress(x.data(), d, b)) {
        std::printf("%.1f%% nonzeros: above the sparse path's %.0f%%, the dense products run\n",
                    100.0 * double(nnz) / double(x.size()), 100 * SparseInput::kMaxDensity);
        return 0;
    }
    const double compress = best_us([&] { sparse.compress(x.data(), d, b); });
    const double forward = best_us([&] { sparse.forward(w.data(), n_out, z.data()); });
    const double gradient = best_us([&] { sparse.weight_gradient(dz.data(), n_out, dw.data()); });
    const double dense_forward = best_us([&] {
        gemm(false, false, n_out, b, d, 1.0f, w.data(), n_out, x.data(), d, 0.0f, z.data(), n_out, ws);
    });
    const double dense_gradient = best_us([&] {
        gemm(false, true, n_out, d, b, 1.0f, dz.data(), n_out, x.data(), d, 0.0f, dw.data(), n_out, ws);
    });
    std::printf("%d x %d batch, %.1f%% nonzeros, %d outputs; best of 300, us:\n", d, b,
                100.0 * double(nnz) / double(x.size()), n_out);
    std::printf("  compress %.1f, Z = W X %.1f, dW = dZ X^T %.1f: total %.1f\n", compress, forward, gradient,
                compress + forward + gradient);
    std::printf("  dense GEMM: Z %.1f, dW %.1f: total %.1f (%.2fx the sparse path's time)\n", dense_forward,
                dense_gradient, dense_forward + dense_gradient,
                (dense_forward + dense_gradient) / (compress + forward + gradient));
}
