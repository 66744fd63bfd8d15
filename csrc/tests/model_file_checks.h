// model_file_checks.h -- what the model-file tests share (test_model_file.cpp,
// test_model_file_hostile.cpp, test_model_file_v1.cpp): a small trained model, exact comparisons
// of models, specs and optimizer settings, the error a load gives, the small version-2 file the
// hostile cases edit (Parts), and expect_rejected (REJECTED), which also checks the largest single
// allocation a load made. To see that, this header replaces the global operator new: like
// check.h's main(), it is included by one source file per test program.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "fastae/fastae.h"
#include "model_file_reference.h"

namespace fastae_test {
// The largest single allocation since the last reset: a hostile file must not cause a big one.
inline std::atomic<std::size_t> g_largest_allocation{0};
}  // namespace fastae_test

void* operator new(std::size_t size) {
    std::size_t seen = fastae_test::g_largest_allocation.load();
    while (size > seen && !fastae_test::g_largest_allocation.compare_exchange_weak(seen, size)) {
    }
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
// The replacement new takes its memory from malloc, so free is its match; GCC's
// -Wmismatched-new-delete sees only `free` after `new` once both are inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace fastae_test {

// The names the model-file tests use (they say `using namespace fastae_test`).
namespace fs = std::filesystem;
namespace ref = model_file_ref;
using Bytes = model_file_ref::Bytes;
using ref::get32;
using ref::get64;
using ref::put32;
using ref::put64;
using ref::reseal;

// A trained model (so it has an optimizer state) on smooth data in [0, 1].
inline fastae::Model trained_model(fastae::OptimizerKind kind = fastae::OptimizerKind::adam) {
    const int d = 6;
    std::vector<float> x(40 * d);
    std::mt19937 gen(3);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (float& v : x) v = u(gen);
    fastae::NetworkConfig cfg;
    cfg.layer_sizes = {d, 4, 3, 4, d};
    cfg.activation = fastae::Activation::tanh;
    fastae::Model m(cfg);
    m.init_weights(11);
    fastae::OptimizerConfig opt;
    opt.kind = kind;
    opt.learning_rate = 0.01;
    if (kind == fastae::OptimizerKind::sgd) {
        opt.momentum = 0.9;
        opt.nesterov = true;
    }
    fastae::TrainOptions t;
    t.epochs = 3;
    t.batch_size = 16;
    m.fit(40, x.data(), nullptr, 0, nullptr, nullptr, opt, t);
    return m;
}

// memcmp with n == 0 may still not be given null pointers (an empty slot has data() == null).
inline bool same_floats(const float* a, const float* b, std::size_t n) {
    return n == 0 || std::memcmp(a, b, 4 * n) == 0;
}
// Doubles compared by their bits: -0.0 and 0.0 differ, a file keeps the one it was given.
inline bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

inline bool same_settings(const fastae::OptimizerConfig& a, const fastae::OptimizerConfig& b) {
    return a.kind == b.kind && same_bits(a.learning_rate, b.learning_rate) && same_bits(a.beta1, b.beta1) &&
           same_bits(a.beta2, b.beta2) && same_bits(a.epsilon, b.epsilon) && same_bits(a.momentum, b.momentum) &&
           a.nesterov == b.nesterov && same_bits(a.weight_decay, b.weight_decay) && same_bits(a.rho, b.rho);
}

inline bool same_spec(const fastae::NetworkSpec& a, const fastae::NetworkSpec& b) {
    if (a.n_inputs != b.n_inputs || a.code_layer != b.code_layer || a.layers.size() != b.layers.size() ||
        a.head.loss != b.head.loss || !same_bits(a.head.huber_delta, b.head.huber_delta)) {
        return false;
    }
    for (std::size_t i = 0; i < a.layers.size(); ++i) {
        const fastae::LayerSpec &x = a.layers[i], &y = b.layers[i];
        if (x.units != y.units || x.activation.kind != y.activation.kind ||
            !same_bits(x.activation.alpha, y.activation.alpha) || x.initializer != y.initializer ||
            !same_bits(x.l1, y.l1) || !same_bits(x.l2, y.l2) || !same_bits(x.dropout, y.dropout) ||
            x.noise != y.noise || !same_bits(x.noise_level, y.noise_level) ||
            !same_bits(x.activity_l1, y.activity_l1) || !same_bits(x.sparsity_target, y.sparsity_target) ||
            !same_bits(x.sparsity_weight, y.sparsity_weight)) {
            return false;
        }
    }
    return true;
}

inline bool same_model(const fastae::Model& a, const fastae::Model& b) {
    if (!same_spec(a.spec(), b.spec()) || a.n_params() != b.n_params() ||
        !same_floats(a.params(), b.params(), a.n_params()) || a.has_optimizer_state() != b.has_optimizer_state()) {
        return false;
    }
    if (!a.has_optimizer_state()) return true;
    const fastae::OptimizerState &sa = a.optimizer_state(), &sb = b.optimizer_state();
    return same_settings(sa.config, sb.config) && sa.steps == sb.steps && sa.m.size() == sb.m.size() &&
           sa.v.size() == sb.v.size() && same_floats(sa.m.data(), sb.m.data(), sa.m.size()) &&
           same_floats(sa.v.data(), sb.v.data(), sa.v.size());
}

// The message of the ModelFileError that loading b throws ("" if it loads, "other" for any
// other exception: both are failures where an error is expected).
inline std::string load_error(const Bytes& b) {
    try {
        fastae::model_from_bytes(b.data(), b.size());
    } catch (const fastae::ModelFileError& e) {
        return e.what();
    } catch (...) {
        return "other";
    }
    return "";
}

inline Bytes read_all(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(f), {});
}

// Expects loading `bad` to fail with a message holding every part of `expect`, without any
// allocation beyond `max_alloc` bytes; a failure is reported at (file, line).
inline void expect_rejected(const Bytes& bad, const std::vector<std::string>& expect,
                            const char* name, const char* file, int line, std::size_t max_alloc = 16384) {
    g_largest_allocation = 0;
    const std::string e = load_error(bad);
    const std::size_t largest = g_largest_allocation;
    for (const std::string& part : expect) {
        if (e.empty() || e == "other" || !contains(e, part)) {
            fail(file, line, std::string(name) + ": expected '" + part + "', got '" + e + "'");
            return;
        }
    }
    if (largest > max_alloc) {
        fail(file, line, std::string(name) + ": allocated " + std::to_string(largest) + " bytes at once");
    }
}

#define REJECTED(bytes, ...) fastae_test::expect_rejected(bytes, {__VA_ARGS__}, #bytes, __FILE__, __LINE__)

// Every byte past the 24-byte header (but the checksum) of `good` set to each of `values` where it
// differs, the checksum recomputed, and loaded: each must load, and then on_loaded(file, bad)
// checks it, or throw ModelFileError; nothing else may escape, and no allocation may exceed 4
// times the file's size. Counts the changed files that loaded and were rejected; a failure is
// reported at (file, line).
template <class OnLoaded>
void load_every_byte_change(const Bytes& good, std::initializer_list<std::uint8_t> values, OnLoaded on_loaded,
                            int& loaded, int& rejected, const char* file, int line) {
    for (std::size_t i = 24; i + 4 < good.size(); ++i) {
        for (std::uint8_t value : values) {
            if (good[i] == value) continue;
            Bytes bad = good;
            bad[i] = value;
            reseal(bad);
            g_largest_allocation = 0;
            std::string e;
            try {
                on_loaded(fastae::model_from_bytes(bad.data(), bad.size()), bad);
            } catch (const fastae::ModelFileError& err) {
                e = err.what();
            } catch (...) {
                fail(file, line, "byte " + std::to_string(i) + " set to " + std::to_string(value) +
                                     ": an exception other than ModelFileError");
            }
            if (g_largest_allocation > 4 * good.size()) {
                fail(file, line, "byte " + std::to_string(i) + " set to " + std::to_string(value) + ": allocated " +
                                     std::to_string(std::size_t(g_largest_allocation)) + " bytes at once");
            }
            (e.empty() ? loaded : rejected)++;
        }
    }
}

// A small, complete version-2 file as parts: 3 -> 2 -> 3 (relu, sigmoid, bce), zero weights,
// default Adam settings, an Adam state of 3 steps, metadata "meta". Its NETW has the 72-byte layer
// records of files written before tied weights (which the reader still takes, with the later
// fields' defaults), so every hostile case also reads that format. The sections lie at
// NETW 24, HEAD 200, PARM 228, OPTC 320, OPTS 428, META 728; the file has 752 bytes.
struct Parts {
    Bytes netw, head, parm, optc, opts, meta;
    std::vector<std::string> order = {"NETW", "HEAD", "PARM", "OPTC", "OPTS", "META"};

    Parts() {
        fastae::NetworkConfig cfg;
        cfg.layer_sizes = {3, 2, 3};
        fastae::NetworkSpec spec = fastae::to_spec(cfg);
        spec.code_layer = 0;
        netw = ref::netw(spec, 72);
        head = ref::head(spec.head);
        const std::vector<float> zeros(17, 0.0f);
        parm = ref::parm(zeros.data(), zeros.size());
        optc = ref::settings(fastae::OptimizerConfig{});
        fastae::OptimizerState s;
        s.steps = 3;
        s.m.assign(17, 0.0f);
        s.v.assign(17, 0.0f);
        opts = ref::opts(s);
        meta = {'m', 'e', 't', 'a'};
    }
    Bytes& payload(const std::string& tag) {
        return tag == "NETW" ? netw : tag == "HEAD" ? head : tag == "PARM" ? parm : tag == "OPTC" ? optc
                                  : tag == "OPTS" ? opts : meta;
    }
    Bytes file() {
        ref::Out body;
        for (const std::string& tag : order) body.raw(ref::section(tag, payload(tag)));
        return ref::file_of(2, body.b);
    }
};

}  // namespace fastae_test
