// test_data.h -- what several C++ tests share: seeded data generators, the vocabulary's valid
// pairings read from its traits (never hand-written lists), and small helpers on models and their
// training.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#if defined(__linux__)
#include <unistd.h>
#endif

#include "fastae/fastae.h"
#include "fastae/training.h"

namespace fastae_test {

// n floats uniform in [lo, hi), reproducible from seed on every platform (no std distribution).
inline std::vector<float> random_vector(std::size_t n, float lo, float hi, unsigned seed) {
    std::mt19937 gen(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = lo + (hi - lo) * float(gen() % 1000003) / 1000003.0f;
    return v;
}

inline std::vector<double> random_doubles(std::size_t n, double lo, double hi, unsigned seed) {
    std::mt19937_64 gen(seed);
    std::vector<double> v(n);
    for (auto& x : v) x = lo + (hi - lo) * double(gen() >> 11) * 0x1.0p-53;
    return v;
}

// Smooth, low-rank rows in [0, 1] (n, d): what an autoencoder can learn.
inline std::vector<float> make_data(std::size_t n, int d, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> x(n * std::size_t(d));
    for (std::size_t i = 0; i < n; ++i) {
        const float a = u(gen), b = u(gen);
        for (int j = 0; j < d; ++j) {
            const float t = float(j) / float(d);
            x[i * std::size_t(d) + std::size_t(j)] = 0.5f + 0.25f * a * std::sin(6.0f * t) + 0.2f * b * std::cos(3.0f * t);
        }
    }
    return x;
}

// Independent uniform values in [0, 1) (n, d).
inline std::vector<float> uniform_data(std::size_t n, int d, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> x(n * std::size_t(d));
    for (float& v : x) v = u(gen);
    return x;
}

// Rows of probabilities (n, d), each summing to 1, with class (row % d) at probability 0 when
// d > 1: targets for a per-sample loss (cross-entropy with probability targets).
template <typename T = float>
std::vector<T> probability_rows(std::size_t n, int d, unsigned seed) {
    std::vector<double> u = random_doubles(n * std::size_t(d), 0.05, 1.0, seed);
    std::vector<T> y(u.size());
    for (std::size_t i = 0; i < n; ++i) {
        double* row = u.data() + i * std::size_t(d);
        if (d > 1) row[i % std::size_t(d)] = 0.0;
        double sum = 0.0;
        for (int k = 0; k < d; ++k) sum += row[k];
        for (int k = 0; k < d; ++k) y[i * std::size_t(d) + std::size_t(k)] = T(row[k] / sum);
    }
    return y;
}

// Targets a loss accepts, from its traits: probability rows for per-sample unit-target losses,
// values in [0, 1] for other unit-target losses, and values in [-1, 1.5] otherwise.
template <typename T = float>
std::vector<T> targets_for(fastae::Loss loss, std::size_t n, int d, unsigned seed) {
    const fastae::LossTraits& t = fastae::traits_of(loss);
    if (t.unit_targets && t.per_sample) return probability_rows<T>(n, d, seed);
    std::vector<double> u = t.unit_targets ? random_doubles(n * std::size_t(d), 0.0, 1.0, seed)
                                           : random_doubles(n * std::size_t(d), -1.0, 1.5, seed);
    return std::vector<T>(u.begin(), u.end());
}

// The activation with a parameter other than its default, where it has one (leaky_relu's slope
// 0.2, elu's alpha 0.7), so that tests see the parameter used.
inline fastae::ActivationSpec test_activation(fastae::Activation kind) {
    fastae::ActivationSpec spec = fastae::activation_spec(kind);
    if (kind == fastae::Activation::leaky_relu) spec.alpha = 0.2;
    if (kind == fastae::Activation::elu) spec.alpha = 0.7;
    return spec;
}

// Every activation allowed on a hidden layer (vocabulary.h: not output_only).
inline std::vector<fastae::Activation> hidden_activations() {
    std::vector<fastae::Activation> out;
    for (fastae::Activation a : fastae::all_activations()) {
        if (!fastae::traits_of(a).output_only) out.push_back(a);
    }
    return out;
}

// The output activations a loss allows: its required one, or every one that is not output_only.
inline std::vector<fastae::Activation> output_activations_for(fastae::Loss loss) {
    const int required = fastae::traits_of(loss).required_output;
    if (required >= 0) return {static_cast<fastae::Activation>(required)};
    return hidden_activations();
}

// Whether Model accepts this activation on the output layer with this loss (from the traits).
inline bool valid_head(fastae::Loss loss, fastae::Activation out) {
    const int required = fastae::traits_of(loss).required_output;
    return required >= 0 ? int(out) == required : !fastae::traits_of(out).output_only;
}

struct Head {
    fastae::Loss loss;
    fastae::Activation out;
};

// Every valid (loss, output activation) pair.
inline std::vector<Head> valid_heads() {
    std::vector<Head> heads;
    for (fastae::Loss loss : fastae::all_losses()) {
        for (fastae::Activation out : output_activations_for(loss)) heads.push_back({loss, out});
    }
    return heads;
}

// A network of the given hidden layers (units, activation spec, dropout) and an output layer
// of `d_out` units with the head's activation and loss.
struct Hidden {
    int units;
    fastae::ActivationSpec activation;
    double dropout = 0.0;
};
inline fastae::NetworkSpec make_spec(int n_inputs, const std::vector<Hidden>& hidden, int d_out, Head head) {
    fastae::NetworkSpec spec;
    spec.n_inputs = n_inputs;
    for (const Hidden& h : hidden) {
        fastae::LayerSpec layer;
        layer.units = h.units;
        layer.activation = h.activation;
        layer.dropout = h.dropout;
        spec.layers.push_back(layer);
    }
    fastae::LayerSpec out;
    out.units = d_out;
    out.activation = test_activation(head.out);
    spec.layers.push_back(out);
    spec.head.loss = head.loss;
    return spec;
}

// A small autoencoder {d, 16, 4, 16, d}: relu hidden layers, sigmoid output, bce.
inline fastae::NetworkConfig small_config(int d) {
    fastae::NetworkConfig cfg;
    cfg.layer_sizes = {d, 16, 4, 16, d};
    return cfg;
}

inline std::vector<float> params_of(const fastae::Model& m) {
    return std::vector<float>(m.params(), m.params() + m.n_params());
}

inline std::vector<float> gradient_of(fastae::TrainingSession& s) {
    return std::vector<float>(s.gradient(), s.gradient() + s.n_params());
}

// An optimizer configuration of each kind for the training tests (a switch with no default: a
// new kind does not compile until it has one here).
inline fastae::OptimizerConfig training_optimizer(fastae::OptimizerKind kind) {
    fastae::OptimizerConfig c;
    c.kind = kind;
    switch (kind) {
        case fastae::OptimizerKind::adam: c.learning_rate = 3e-3; break;
        case fastae::OptimizerKind::adamw: c.learning_rate = 3e-3; c.weight_decay = 0.1; break;
        case fastae::OptimizerKind::sgd: c.learning_rate = 0.5; c.momentum = 0.9; c.nesterov = true; break;
        case fastae::OptimizerKind::rmsprop: c.learning_rate = 1e-3; c.rho = 0.8; break;
    }
    return c;
}

// Largest |a - b| over two buffers, and the largest |b|.
template <typename A, typename B>
double max_abs_diff(const A& a, const B& b, double* largest = nullptr) {
    double worst = 0.0, top = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])));
        top = std::max(top, std::fabs(double(b[i])));
    }
    if (largest) *largest = top;
    return worst;
}

// The process's resident memory in bytes (/proc/self/statm's second field, in pages): 0 where
// the system does not tell, or under AddressSanitizer, whose shadow memory changes the count.
// Tests of what an operation adds check only where it is not 0.
inline std::size_t resident_bytes() {
#if defined(__linux__) && !defined(__SANITIZE_ADDRESS__)
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    unsigned long pages = 0, resident = 0;
    const bool read = f && std::fscanf(f, "%lu %lu", &pages, &resident) == 2;
    if (f) std::fclose(f);
    return read ? std::size_t(resident) * std::size_t(sysconf(_SC_PAGESIZE)) : 0;
#else
    return 0;
#endif
}

}  // namespace fastae_test
