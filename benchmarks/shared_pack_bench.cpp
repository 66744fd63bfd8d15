// shared_pack_bench.cpp -- what the shards of a training step pay for packing the layers' W
// (csrc/src/gemm.h: SharedPackedA). A step cut into T shards multiplies each layer's W (forward)
// and W^T (backward, dZ of the layer below) by every shard's b / T columns. Packed by each
// product, W is packed T times a step; shared, once. This times, on one thread, the products of
// all T shards of a batch of 256 for the dense layers of both models, both ways, alternating,
// and prints the medians and the difference per shard, which is what a shard saves when the
// shards run on T cores.
//
//   shared_pack_bench [samples (default 101)]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "gemm.h"

namespace {

using Clock = std::chrono::steady_clock;
using fastae::detail::gemm;
using fastae::detail::gemm_shared_a;
using fastae::detail::GemmWorkspace;
using fastae::detail::SharedPackedA;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// One product of a step: op(A) (m, k) = W (trans false: W stored (m, k)) or W^T (W stored (k, m)).
struct Product {
    bool trans;
    int m, k;
};

// A model's dense products with W as A: each layer's forward W A and backward W^T dZ.
std::vector<Product> products(const std::vector<int>& widths) {
    std::vector<Product> out;
    for (std::size_t l = 1; l + 1 < widths.size(); ++l) {  // layer 0 runs sparse on MNIST
        const int n_in = widths[l], n_out = widths[l + 1];
        out.push_back({false, n_out, n_in});  // Z = W A
        out.push_back({true, n_in, n_out});   // dA = W^T dZ
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    const int samples = argc > 1 ? std::max(3, std::atoi(argv[1])) : 101;
    const int batch = 256;
    std::mt19937 gen(1);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> w(784 * 784), b(784 * batch), c(784 * batch);
    for (float& v : w) v = u(gen);
    for (float& v : b) v = u(gen);
    GemmWorkspace ws(1024, 1024, 1024);
    struct Model {
        const char* name;
        std::vector<int> widths;
    };
    const Model models[] = {{"784-64-784", {784, 64, 784}}, {"784-256-64-256-784", {784, 256, 64, 256, 784}}};
    std::printf("the dense layers' W products of all T shards of a 256-sample batch, one thread, medians of %d, us\n",
                samples);
    std::printf("%-20s %3s %6s  %12s  %12s  %16s\n", "model", "T", "shard", "W per shard", "W shared", "saved per shard");
    for (const Model& model : models) {
        const std::vector<Product> ps = products(model.widths);
        std::vector<std::unique_ptr<SharedPackedA>> shared;
        for (const Product& p : ps) shared.push_back(std::make_unique<SharedPackedA>(p.trans, p.m, p.k, w.data(), p.trans ? p.k : p.m));
        for (int T : {1, 2, 4, 8, 16}) {
            const int cols = batch / T;
            std::vector<double> own, once;
            for (int s = 0; s < samples; ++s) {
                auto t0 = Clock::now();
                for (int shard = 0; shard < T; ++shard) {
                    for (const Product& p : ps) {
                        gemm(p.trans, false, p.m, cols, p.k, 1.0f, w.data(), p.trans ? p.k : p.m, b.data(), p.k, 0.0f,
                             c.data(), p.m, ws);
                    }
                }
                own.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
                t0 = Clock::now();
                for (auto& a : shared) a->invalidate();
                for (int shard = 0; shard < T; ++shard) {
                    for (std::size_t i = 0; i < ps.size(); ++i) {
                        shared[i]->pack();
                        gemm_shared_a(*shared[i], false, cols, b.data(), ps[i].k, 0.0f, c.data(), ps[i].m, ws);
                    }
                }
                once.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
            }
            const double a = median(own) * 1e6, s = median(once) * 1e6;
            std::printf("%-20s %3d %6d  %12.1f  %12.1f  %16.1f\n", model.name, T, cols, a, s, (a - s) / T);
        }
    }
    return 0;
}
