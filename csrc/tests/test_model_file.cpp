// test_model_file.cpp -- the model file: exact round trips (every activation, loss, initializer and
// optimizer), the documented byte layout of version 2 (compared with model_file_reference.h, a
// writer made from docs/model-format.md), version-1 files loading as before (the previous
// release's files among them), every truncation, corruption and hostile section ending in
// ModelFileError without big allocations, and atomic saves that leave the old file intact.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <new>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "check.h"
#include "crc32.h"
#include "fastae/fastae.h"
#include "model_file_io.h"
#include "model_file_reference.h"

// The largest single allocation since the last reset: a hostile file must not cause a big one.
static std::atomic<std::size_t> g_largest_allocation{0};
void* operator new(std::size_t size) {
    std::size_t seen = g_largest_allocation.load();
    while (size > seen && !g_largest_allocation.compare_exchange_weak(seen, size)) {
    }
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace fastae;
namespace fs = std::filesystem;
namespace ref = model_file_ref;
using Bytes = std::vector<std::uint8_t>;
using ref::get32;
using ref::get64;
using ref::put32;
using ref::put64;
using ref::reseal;

namespace {

// A trained model (so it has an optimizer state) on smooth data in [0, 1].
Model trained_model(OptimizerKind kind = OptimizerKind::adam) {
    const int d = 6;
    std::vector<float> x(40 * d);
    std::mt19937 gen(3);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (float& v : x) v = u(gen);
    NetworkConfig cfg;
    cfg.layer_sizes = {d, 4, 3, 4, d};
    cfg.activation = Activation::tanh;
    Model m(cfg);
    m.init_weights(11);
    OptimizerConfig opt;
    opt.kind = kind;
    opt.learning_rate = 0.01;
    if (kind == OptimizerKind::sgd) {
        opt.momentum = 0.9;
        opt.nesterov = true;
    }
    TrainOptions t;
    t.epochs = 3;
    t.batch_size = 16;
    m.fit(40, x.data(), nullptr, 0, nullptr, nullptr, opt, t);
    return m;
}

// memcmp with n == 0 may still not be given null pointers (an empty slot has data() == null).
bool same_floats(const float* a, const float* b, std::size_t n) { return n == 0 || std::memcmp(a, b, 4 * n) == 0; }
// Doubles compared by their bits: -0.0 and 0.0 differ, a file keeps the one it was given.
bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool same_settings(const OptimizerConfig& a, const OptimizerConfig& b) {
    return a.kind == b.kind && same_bits(a.learning_rate, b.learning_rate) && same_bits(a.beta1, b.beta1) &&
           same_bits(a.beta2, b.beta2) && same_bits(a.epsilon, b.epsilon) && same_bits(a.momentum, b.momentum) &&
           a.nesterov == b.nesterov && same_bits(a.weight_decay, b.weight_decay) && same_bits(a.rho, b.rho);
}

bool same_spec(const NetworkSpec& a, const NetworkSpec& b) {
    if (a.n_inputs != b.n_inputs || a.code_layer != b.code_layer || a.layers.size() != b.layers.size() ||
        a.head.loss != b.head.loss || !same_bits(a.head.huber_delta, b.head.huber_delta)) {
        return false;
    }
    for (std::size_t i = 0; i < a.layers.size(); ++i) {
        const LayerSpec &x = a.layers[i], &y = b.layers[i];
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

bool same_model(const Model& a, const Model& b) {
    if (!same_spec(a.spec(), b.spec()) || a.n_params() != b.n_params() ||
        !same_floats(a.params(), b.params(), a.n_params()) || a.has_optimizer_state() != b.has_optimizer_state()) {
        return false;
    }
    if (!a.has_optimizer_state()) return true;
    const OptimizerState &sa = a.optimizer_state(), &sb = b.optimizer_state();
    return same_settings(sa.config, sb.config) && sa.steps == sb.steps && sa.m.size() == sb.m.size() &&
           sa.v.size() == sb.v.size() && same_floats(sa.m.data(), sb.m.data(), sa.m.size()) &&
           same_floats(sa.v.data(), sb.v.data(), sa.v.size());
}

// The message of the ModelFileError that loading b throws ("" if it loads, "other" for any
// other exception: both are failures where an error is expected).
std::string load_error(const Bytes& b) {
    try {
        model_from_bytes(b.data(), b.size());
    } catch (const ModelFileError& e) {
        return e.what();
    } catch (...) {
        return "other";
    }
    return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

fs::path fresh_folder() {
    fs::path p = fs::temp_directory_path() / ("fastae_test_model_file_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
}

Bytes read_all(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(f), {});
}

std::size_t files_in(const fs::path& folder) {
    return std::size_t(std::distance(fs::directory_iterator(folder), fs::directory_iterator()));
}

// Expects loading `bad` to fail with a message holding every part of `expect`, without any
// allocation beyond `max_alloc` bytes.
void expect_rejected(const Bytes& bad, const std::vector<std::string>& expect, const char* name, int line,
                     std::size_t max_alloc = 16384) {
    g_largest_allocation = 0;
    const std::string e = load_error(bad);
    const std::size_t largest = g_largest_allocation;
    for (const std::string& part : expect) {
        if (e.empty() || e == "other" || !contains(e, part)) {
            fastae_test::fail(__FILE__, line, std::string(name) + ": expected '" + part + "', got '" + e + "'");
            return;
        }
    }
    if (largest > max_alloc) {
        fastae_test::fail(__FILE__, line,
                          std::string(name) + ": allocated " + std::to_string(largest) + " bytes at once");
    }
}

}  // namespace

// CRC-32 one bit at a time, straight from its definition: the reference for the sliced version.
std::uint32_t crc32_bitwise(const std::uint8_t* p, std::size_t n) {
    std::uint32_t crc = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < n; ++i) {
        crc ^= p[i];
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

TEST(crc32_matches_the_standard_check_value_and_the_bitwise_definition) {
    CHECK(detail::crc32("123456789", 9) == 0xCBF43926u);  // the CRC-32/ISO-HDLC check value
    CHECK(detail::crc32("", 0) == 0u);
    CHECK(detail::crc32("6789", 4, detail::crc32("12345", 5)) == 0xCBF43926u);
    std::vector<std::uint8_t> data(300);
    std::mt19937 gen(1);
    for (auto& b : data) b = std::uint8_t(gen());
    for (std::size_t start = 0; start < 9; ++start) {  // every alignment, every tail length
        for (std::size_t n = 0; start + n <= data.size(); n += 1 + n / 8) {
            CHECK(detail::crc32(data.data() + start, n) == crc32_bitwise(data.data() + start, n));
        }
    }
}

TEST(file_codes_are_unique_and_continue_version_one) {
    // A reader maps codes back by scanning the tables: two names with one code would be ambiguous.
    auto unique = [](const auto& all) {
        std::set<int> codes;
        for (auto value : all) codes.insert(traits_of(value).file_code);
        return codes.size() == all.size();
    };
    CHECK(unique(all_activations()) && unique(all_losses()) && unique(all_optimizers()) && unique(all_initializers()));
    // Version 2's codes for the names version 1 had are version 1's codes.
    for (Activation a : all_activations()) {
        if (ref::v1_activation(a) != 255) CHECK(traits_of(a).file_code == ref::v1_activation(a));
    }
    for (Loss l : all_losses()) {
        if (ref::v1_loss(l) != 255) CHECK(traits_of(l).file_code == ref::v1_loss(l));
    }
    for (OptimizerKind k : all_optimizers()) {
        if (ref::v1_optimizer(k) != 255) CHECK(traits_of(k).file_code == ref::v1_optimizer(k));
    }
    CHECK(model_file_version == 2 && model_file_oldest_version == 1 && model_file_max_layers == 4095);
}

// ---- version 2: round trips ------------------------------------------------------------------

TEST(round_trip_is_exact_for_every_optimizer_with_and_without_state) {
    for (OptimizerKind kind : all_optimizers()) {
        const Model m = trained_model(kind);
        CHECK(m.has_optimizer_state() && m.optimizer_state().config.kind == kind);
        SaveOptions opts;
        opts.metadata = std::string("{\"k\": 1}\0binary\xff", 16);
        const Bytes bytes = model_to_bytes(m, opts);
        CHECK(get32(bytes, 8) == 2);
        // Byte for byte what the document describes.
        CHECK(bytes == ref::v2_file(m, m.optimizer_state().config, &m.optimizer_state(), opts.metadata));
        ModelFile back = model_from_bytes(bytes.data(), bytes.size());
        CHECK(back.version == 2);
        CHECK(same_model(m, back.model));
        CHECK(same_settings(back.optimizer, m.optimizer_state().config));  // default: the state's settings
        CHECK(back.metadata == opts.metadata);
        CHECK(model_to_bytes(back.model, opts) == bytes);  // and writing it again gives the same bytes

        opts.include_optimizer_state = false;
        OptimizerConfig other;
        other.kind = OptimizerKind::sgd;
        other.learning_rate = 0.5;
        other.momentum = 0.25;
        other.weight_decay = 0.125;
        other.rho = 0.75;
        opts.optimizer = other;
        const Bytes small = model_to_bytes(m, opts);
        CHECK(small.size() < bytes.size());
        ModelFile light = model_from_bytes(small.data(), small.size());
        CHECK(!light.model.has_optimizer_state());
        CHECK(same_floats(light.model.params(), m.params(), m.n_params()));
        CHECK(same_settings(light.optimizer, other));

        // A loaded model computes exactly what the original does.
        std::vector<float> x(5 * 6), a(5 * 3), b(5 * 3);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i % 7) / 7.0f;
        m.encode(5, x.data(), a.data());
        back.model.encode(5, x.data(), b.data());
        CHECK(a == b);
    }
}

// Networks that use every activation, loss and initializer, with per-layer options.
std::vector<NetworkSpec> every_kind_of_network() {
    std::vector<NetworkSpec> specs;
    const auto& inits = all_initializers();
    std::vector<Activation> hidden;  // the activations a hidden layer may have
    for (Activation a : all_activations()) {
        if (!traits_of(a).output_only) hidden.push_back(a);
    }
    std::size_t next = 0;
    for (Loss loss : all_losses()) {
        for (std::size_t h = 0; h < hidden.size(); h += 2) {
            NetworkSpec spec;
            spec.n_inputs = 5;
            spec.head.loss = loss;
            spec.head.huber_delta = 0.25 + 0.5 * double(h);
            for (int l = 0; l < 3; ++l) {
                LayerSpec layer;
                layer.units = l == 2 ? 5 : 4 - l;
                const Activation a = hidden[(h + std::size_t(l)) % hidden.size()];
                layer.activation = activation_spec(a);
                if (a == Activation::leaky_relu) layer.activation.alpha = 0.2;
                if (a == Activation::elu) layer.activation.alpha = 0.7;
                layer.initializer = inits[next++ % inits.size()];
                layer.l1 = 1e-4 * double(l + 1);
                layer.l2 = l == 1 ? 0.0 : 2.5e-3;
                layer.dropout = l == 2 ? 0.0 : 0.125 * double(l + 1);
                if (l == 0) {  // noise on the input
                    layer.noise = all_noises()[h / 2 % all_noises().size()];
                    layer.noise_level = 0.0625 * double(h + 1);
                }
                if (l < 2) layer.activity_l1 = 1e-3 * double(l + h);
                if (l < 2 && a == Activation::sigmoid) {  // the sparsity penalty needs a sigmoid layer
                    layer.sparsity_target = 0.05;
                    layer.sparsity_weight = 0.5;
                }
                spec.layers.push_back(layer);
            }
            // The output activation: the one the loss needs, else an elementwise one.
            const int required = traits_of(loss).required_output;
            spec.layers.back().activation =
                activation_spec(required >= 0 ? static_cast<Activation>(required) : hidden[h % hidden.size()]);
            spec.code_layer = int(h % 3) - 1;  // -1, 0, 1
            specs.push_back(spec);
        }
    }
    return specs;
}

TEST(every_activation_loss_initializer_and_noise_round_trips_with_per_layer_options) {
    std::set<Activation> activations;
    std::set<Loss> losses;
    std::set<Initializer> initializers;
    std::set<Noise> noises;
    bool sparsity = false;
    std::uint64_t seed = 1;
    for (const NetworkSpec& spec : every_kind_of_network()) {
        Model m(spec);
        m.init_weights(seed++);
        NetworkSpec resolved = spec;  // Model resolves code_layer -1 to the middle layer
        if (resolved.code_layer == -1) resolved.code_layer = int(resolved.layers.size()) / 2 - 1;
        CHECK(same_spec(m.spec(), resolved));
        for (const LayerSpec& layer : spec.layers) {
            activations.insert(layer.activation.kind);
            initializers.insert(layer.initializer);
            noises.insert(layer.noise);
            sparsity = sparsity || layer.sparsity_weight > 0.0;
        }
        losses.insert(spec.head.loss);
        SaveOptions opts;
        opts.metadata = name_of(spec.head.loss);
        const Bytes bytes = model_to_bytes(m, opts);
        CHECK(bytes == ref::v2_file(m, OptimizerConfig{}, nullptr, opts.metadata));
        const ModelFile back = model_from_bytes(bytes.data(), bytes.size());
        CHECK(same_model(m, back.model));
        CHECK(model_to_bytes(back.model, opts) == bytes);
        std::vector<float> x(3 * 5), a(3 * 5), b(3 * 5);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i % 5) / 5.0f;
        m.predict(3, x.data(), a.data());
        back.model.predict(3, x.data(), b.data());
        CHECK(a == b);
    }
    CHECK(activations.size() == all_activations().size());
    CHECK(losses.size() == all_losses().size());
    CHECK(initializers.size() == all_initializers().size());
    CHECK(noises.size() == all_noises().size() && sparsity);
}

TEST(bytes_follow_the_documented_layout) {
    NetworkConfig cfg;
    cfg.layer_sizes = {3, 2, 3};
    cfg.activation = Activation::relu;
    cfg.output_activation = Activation::linear;
    cfg.loss = Loss::mse;
    Model m(cfg);
    std::vector<float> p(m.n_params());
    for (std::size_t i = 0; i < p.size(); ++i) p[i] = 0.5f * float(i) - 3.0f;
    m.set_params(p.data(), p.size());
    OptimizerState state;  // Adam's two slots, as a fit leaves them
    state.steps = 3;
    state.m.assign(p.size(), 0.25f);
    state.v.assign(p.size(), 0.5f);
    m.set_optimizer_state(state);
    SaveOptions opts;
    opts.metadata = "meta";
    const Bytes b = model_to_bytes(m, opts);
    auto f64_at = [&](std::size_t at) {
        double v;
        std::memcpy(&v, &b[at], 8);
        return v;
    };
    auto f32_at = [&](std::size_t at) {
        float v;
        std::memcpy(&v, &b[at], 4);
        return v;
    };
    auto tag_at = [&](std::size_t at) { return std::string(reinterpret_cast<const char*>(&b[at]), 4); };
    // The header.
    const std::uint8_t magic[8] = {0x89, 'F', 'A', 'S', 'T', 'A', 'E', 0x0A};
    CHECK(std::memcmp(b.data(), magic, 8) == 0);
    CHECK(get32(b, 8) == 2);                                      // version
    CHECK(b[12] == 4 && b[13] == 3 && b[14] == 2 && b[15] == 1);  // 0x01020304 little-endian
    CHECK(get64(b, 16) == b.size() - 28);                         // body size
    // NETW at 24: 16 bytes of fields, then two 88-byte layer records.
    CHECK(tag_at(24) == "NETW" && get32(b, 28) == 1 && get64(b, 32) == 16 + 2 * 88);
    CHECK(get32(b, 40) == 3 && get32(b, 44) == 2 && get32(b, 48) == 0 && get32(b, 52) == 88);  // code layer 0
    CHECK(get32(b, 56) == 2 && b[60] == traits_of(Activation::relu).file_code && b[60] == 1);
    CHECK(b[61] == traits_of(Initializer::glorot_uniform).file_code && b[62] == traits_of(Noise::none).file_code);
    CHECK(b[63] == 0);  // reserved
    // alpha l1 l2 dropout noise_level activity_l1 sparsity_target sparsity_weight contractive
    for (std::size_t at = 64; at < 136; at += 8) CHECK(f64_at(at) == 0.0);
    CHECK(get32(b, 136) == 0 && b[140] == 0);  // tied_to + 1 (0: its own W), flags (0: trainable)
    CHECK(b[141] == 0 && b[142] == 0 && b[143] == 0);  // reserved
    CHECK(get32(b, 144) == 3 && b[148] == traits_of(Activation::linear).file_code);
    // HEAD at 232.
    CHECK(tag_at(232) == "HEAD" && get32(b, 236) == 1 && get64(b, 240) == 12);
    CHECK(b[248] == traits_of(Loss::mse).file_code && b[249] == 0 && b[250] == 0 && b[251] == 0);
    CHECK(f64_at(252) == 1.0);  // huber_delta
    // PARM at 260: the count, then the floats from byte 284 (a multiple of 4).
    CHECK(tag_at(260) == "PARM" && get32(b, 264) == 1 && get64(b, 268) == 8 + 4 * 17);
    CHECK(get64(b, 276) == 17 && f32_at(284) == -3.0f && f32_at(284 + 4 * 16) == 5.0f);
    // OPTC at 352: kind, flags, 2 reserved, the number of settings, then (id, value) pairs.
    CHECK(tag_at(352) == "OPTC" && get32(b, 356) == 1 && get64(b, 360) == 92);
    CHECK(b[368] == traits_of(OptimizerKind::adam).file_code && b[369] == 0 && get32(b, 372) == 7);
    const double defaults[] = {1e-3, 0.9, 0.999, 1e-8, 0.0, 0.01, 0.9};
    for (std::uint32_t i = 0; i < 7; ++i) CHECK(get32(b, 376 + 12 * i) == i + 1 && f64_at(380 + 12 * i) == defaults[i]);
    // OPTS at 460: settings (92), steps, slot count, then each slot.
    CHECK(tag_at(460) == "OPTS" && get32(b, 464) == 0 && get64(b, 468) == 284);
    CHECK(get64(b, 568) == 3 && get32(b, 576) == 2);
    CHECK(get32(b, 580) == 7 && std::memcmp(&b[584], "exp_avg\0", 8) == 0 && get64(b, 592) == 17);
    CHECK(f32_at(600) == 0.25f);
    CHECK(get32(b, 668) == 10 && std::memcmp(&b[672], "exp_avg_sq\0\0", 12) == 0 && get64(b, 684) == 17);
    CHECK(f32_at(692) == 0.5f);
    // META at 760, then the CRC-32.
    CHECK(tag_at(760) == "META" && get32(b, 764) == 0 && get64(b, 768) == 4 && std::memcmp(&b[776], "meta", 4) == 0);
    CHECK(b.size() == 784);
    CHECK(get32(b, b.size() - 4) == detail::crc32(b.data(), b.size() - 4));
    CHECK(b == ref::v2_file(m, state.config, &m.optimizer_state(), "meta"));
    // Without state and metadata the file ends after OPTC.
    opts.include_optimizer_state = false;
    opts.metadata.clear();
    const Bytes plain = model_to_bytes(m, opts);
    CHECK(plain.size() == 460 + 4 && std::equal(plain.begin() + 24, plain.begin() + 460, b.begin() + 24));
}

TEST(sizes_of_the_keras_reference_network) {
    // 784 -> 64 -> 784 (101,200 parameters) with 525 bytes of metadata, as in docs/model-format.md.
    NetworkConfig cfg;
    cfg.layer_sizes = {784, 64, 784};
    Model m(cfg);
    CHECK(m.n_params() == 101200);
    SaveOptions opts;
    opts.metadata.assign(525, 'x');
    const std::size_t plain = model_to_bytes(m, opts).size();  // no state yet
    OptimizerState state;
    state.steps = 1;
    state.m.assign(m.n_params(), 0.0f);
    state.v.assign(m.n_params(), 0.0f);
    m.set_optimizer_state(state);
    const std::size_t with_state = model_to_bytes(m, opts).size();
    std::printf("  784-64-784: %zu bytes, %zu with Adam's state\n", plain, with_state);
    CHECK(plain == 405737 && with_state == 1215501);
}

// ---- version 2: damaged and hostile files ----------------------------------------------------

TEST(every_truncation_and_every_corrupted_byte_is_a_clean_error) {
    for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::sgd}) {
        SaveOptions opts;
        opts.metadata = "m";
        const Bytes good = model_to_bytes(trained_model(kind), opts);
        int truncations = 0, flips = 0;
        for (std::size_t n = 0; n < good.size(); ++n) {
            const Bytes cut(good.begin(), good.begin() + std::ptrdiff_t(n));
            const std::string e = load_error(cut);
            CHECK(!e.empty() && e != "other");
            truncations += !e.empty() && e != "other";
        }
        for (std::size_t i = 0; i < good.size(); ++i) {
            for (std::uint8_t mask : {0x01, 0x80, 0xFF}) {
                Bytes bad = good;
                bad[i] ^= mask;
                const std::string e = load_error(bad);
                CHECK(!e.empty() && e != "other");
                flips += !e.empty() && e != "other";
            }
        }
        Bytes longer = good;
        longer.push_back(0);
        CHECK(contains(load_error(longer), "unexpected bytes"));
        std::printf("  %d truncations and %d corrupted bytes of a %zu-byte file rejected\n", truncations, flips,
                    good.size());
    }
}

TEST(changes_behind_a_valid_checksum_load_or_fail_cleanly) {
    // With the checksum recomputed every byte change reaches the parser: each must either load
    // (a different weight is still a model) or throw ModelFileError, and never allocate much; a
    // file that loads writes back to itself, or (a renamed optional section) to itself without
    // that section.
    SaveOptions opts;
    opts.metadata = "meta";
    const Bytes good = model_to_bytes(trained_model(), opts);
    int loaded = 0, rejected = 0, skipped = 0;
    for (std::size_t i = 24; i + 4 < good.size(); ++i) {
        for (std::uint8_t value : {0x00, 0x01, 0x7F, 0xFF}) {
            if (good[i] == value) continue;
            Bytes bad = good;
            bad[i] = value;
            reseal(bad);
            g_largest_allocation = 0;
            std::string e;
            try {
                const ModelFile f = model_from_bytes(bad.data(), bad.size());
                SaveOptions again;
                again.optimizer = f.optimizer;
                again.metadata = f.metadata;
                const Bytes out = model_to_bytes(f.model, again);
                CHECK(out == ref::without_unknown_sections(bad));
                skipped += out != bad;
            } catch (const ModelFileError& err) {
                e = err.what();
            } catch (...) {
                e = "other";
            }
            CHECK(e != "other");
            CHECK(g_largest_allocation <= 4 * good.size());
            (e.empty() ? loaded : rejected)++;
        }
    }
    CHECK(loaded > 0 && rejected > 0 && skipped > 0);
    std::printf("  %d changed files loaded (%d of them with a section skipped), %d rejected\n", loaded, skipped,
                rejected);
}

namespace {

// A small, complete version-2 file as parts: 3 -> 2 -> 3 (relu, sigmoid, bce), zero weights,
// default Adam settings, an Adam state of 3 steps, metadata "meta". Its NETW has the 72-byte layer
// records of files written before tied weights (which the reader still takes, with the later
// fields' defaults), so every hostile case below also reads that format. The sections lie at
// NETW 24, HEAD 200, PARM 228, OPTC 320, OPTS 428, META 728; the file has 752 bytes.
struct Parts {
    Bytes netw, head, parm, optc, opts, meta;
    std::vector<std::string> order = {"NETW", "HEAD", "PARM", "OPTC", "OPTS", "META"};

    Parts() {
        NetworkConfig cfg;
        cfg.layer_sizes = {3, 2, 3};
        NetworkSpec spec = to_spec(cfg);
        spec.code_layer = 0;
        netw = ref::netw(spec, 72);
        head = ref::head(spec.head);
        const std::vector<float> zeros(17, 0.0f);
        parm = ref::parm(zeros.data(), zeros.size());
        optc = ref::settings(OptimizerConfig{});
        OptimizerState s;
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

// A file with `extra` (a whole section) inserted before the section at position `index` of the order.
Bytes with_section(Parts p, std::size_t index, const Bytes& extra) {
    ref::Out body;
    for (std::size_t i = 0; i < p.order.size(); ++i) {
        if (i == index) body.raw(extra);
        body.raw(ref::section(p.order[i], p.payload(p.order[i])));
    }
    if (index >= p.order.size()) body.raw(extra);
    return ref::file_of(2, body.b);
}

}  // namespace

TEST(the_small_file_of_the_hostile_cases_loads) {
    Parts p;
    const Bytes good = p.file();
    CHECK(good.size() == 752);
    CHECK(load_error(good).empty());
    const ModelFile f = model_from_bytes(good.data(), good.size());
    CHECK(f.model.optimizer_state().steps == 3 && f.metadata == "meta");
}

#define REJECTED(bytes, ...) expect_rejected(bytes, {__VA_ARGS__}, #bytes, __LINE__)

TEST(hostile_section_framing_is_rejected) {
    const std::string at_200 = "section 'ZZZZ' at byte 200";
    REJECTED(with_section(Parts{}, 1, ref::section("ZZZZ", 1, {1, 2, 3})), at_200,
             "it is marked required, and fastae " + std::string(version_string) + " does not know it");
    REJECTED(with_section(Parts{}, 1, ref::section("Z\x01Z'", 1, {})), "section 'Z\\x01Z\\x27' at byte 200");
    REJECTED(with_section(Parts{}, 1, ref::section("ZZZZ", 2, {})), at_200, "flags at byte 204 are 0x00000002");
    REJECTED(with_section(Parts{}, 1, ref::section("ZZZZ", 0x80000001u, {})), "flags at byte 204 are 0x80000001");
    // Known sections with the wrong flags.
    {
        Bytes b = Parts{}.file();
        put32(b, 28, 0);
        reseal(b);
        REJECTED(b, "section NETW at byte 24: its flags at byte 28 are 0x00000000; NETW is written with 0x00000001");
        b = Parts{}.file();
        put32(b, 432, 1);
        reseal(b);
        REJECTED(b, "section OPTS at byte 428: its flags at byte 432 are 0x00000001; OPTS is written with 0x00000000");
    }
    // Duplicates, order, missing sections.
    {
        Parts p;
        p.order = {"NETW", "HEAD", "HEAD", "PARM", "OPTC"};
        REJECTED(p.file(), "section HEAD at byte 228: a second HEAD section (the first is at byte 200)");
        p.order = {"NETW", "HEAD", "PARM", "OPTC", "PARM"};
        REJECTED(p.file(), "section PARM at byte 428: a second PARM section (the first is at byte 228)");
        p.order = {"NETW", "HEAD", "PARM", "OPTC", "META", "OPTS"};
        REJECTED(p.file(), "section OPTS at byte 448: it comes after META (at byte 428)",
                 "the sections are NETW, VARC, HEAD, PARM, OPTC, OPTS, META, in this order");
        p.order = {"HEAD", "NETW", "PARM", "OPTC"};
        REJECTED(p.file(), "the required section NETW is missing (before HEAD at byte 24");
        p.order = {"NETW", "HEAD", "OPTC"};
        REJECTED(p.file(), "the required section PARM is missing (before OPTC at byte 228");
        p.order = {"NETW", "HEAD", "PARM"};
        REJECTED(p.file(), "the required section OPTC is missing (the sections end at byte 320");
        p.order = {"NETW", "HEAD", "PARM", "META"};
        REJECTED(p.file(), "the required section OPTC is missing (before META at byte 320");
        p.order = {};
        REJECTED(p.file(), "the required section NETW is missing (the sections end at byte 24");
    }
    // Lengths past the end, a cut header, bytes after a section's fields.
    {
        Bytes b = Parts{}.file();
        put64(b, 236, std::uint64_t(1) << 63);
        reseal(b);
        REJECTED(b, "section PARM at byte 228: its length at byte 236 is 9223372036854775808 but only 504 bytes remain");
        b = Parts{}.file();
        put64(b, 736, 5);
        reseal(b);
        REJECTED(b, "section META at byte 728: its length at byte 736 is 5 but only 4 bytes remain before the checksum");
        b = with_section(Parts{}, 99, ref::section("ZZZZ", 0, {1, 2, 3}));
        put64(b, 748 + 8, 4);
        reseal(b);
        REJECTED(b, "section 'ZZZZ' at byte 748: its length at byte 756 is 4 but only 3 bytes remain");
        b = Parts{}.file();
        b.insert(b.end() - 4, {1, 2, 3});
        reseal(b);
        REJECTED(b, "truncated content: a section header at byte 748 needs 16 bytes but only 3 remain before the checksum");
        Parts p;
        p.head.insert(p.head.end(), 4, 0);
        REJECTED(p.file(), "section HEAD at byte 200: 4 unexpected bytes at byte 228, after the section's last field");
        p = Parts{};
        p.parm.insert(p.parm.end(), 4, 0);
        REJECTED(p.file(), "section PARM at byte 228: 4 unexpected bytes at byte 320");
    }
}

TEST(unknown_optional_sections_are_skipped) {
    Parts p;
    const Bytes plain = p.file();
    const ModelFile base = model_from_bytes(plain.data(), plain.size());
    for (std::size_t index = 0; index <= p.order.size(); ++index) {
        for (const Bytes& payload : {Bytes{}, Bytes{1, 2, 3}, Bytes(1000, 7)}) {
            const Bytes b = with_section(p, index, ref::section("XTRA", 0, payload));
            g_largest_allocation = 0;
            const std::string e = load_error(b);
            CHECK(e.empty());
            CHECK(g_largest_allocation <= 16384);
            if (!e.empty()) continue;
            const ModelFile f = model_from_bytes(b.data(), b.size());
            CHECK(same_model(f.model, base.model) && same_settings(f.optimizer, base.optimizer) &&
                  f.metadata == base.metadata);
            // Saved again, the skipped section is gone and the rest is as it was.
            SaveOptions o;
            o.optimizer = f.optimizer;
            o.metadata = f.metadata;
            // (and the 72-byte layer records are written as this version's 88-byte ones)
            CHECK(model_to_bytes(f.model, o) == ref::without_unknown_sections(plain) &&
                  ref::without_unknown_sections(b) == ref::without_unknown_sections(plain));
        }
    }
    // Several, and one that repeats: only known sections must be unique.
    Bytes b = with_section(p, 2, ref::section("XTRA", 0, {1}));
    b = ref::file_of(2, [&] {
        Bytes body(b.begin() + 24, b.end() - 4);
        const Bytes more = ref::section("XTRA", 0, {2});
        body.insert(body.end(), more.begin(), more.end());
        return body;
    }());
    CHECK(load_error(b).empty());
}

TEST(hostile_netw_sections_are_rejected_before_allocating) {
    auto netw = [](auto edit) {
        Parts p;
        edit(p.netw);
        return p.file();
    };
    const std::string s = "section NETW at byte 24: ";
    REJECTED(netw([](Bytes& n) { put32(n, 0, 0); }), s + "n_inputs at byte 40 is 0 (must be in [1, 2147483647])");
    REJECTED(netw([](Bytes& n) { put32(n, 0, 0x80000000u); }), s + "n_inputs at byte 40 is 2147483648");
    REJECTED(netw([](Bytes& n) { put32(n, 8, 2); }), s + "code_layer at byte 48 is 2 (must be in [0, 1])");
    REJECTED(netw([](Bytes& n) { put32(n, 8, 0xFFFFFFFFu); }), s + "code_layer at byte 48 is 4294967295");  // -1
    REJECTED(netw([](Bytes& n) { put32(n, 4, 0); }), s + "the layer count at byte 44 is 0 (must be in [1, 4095])");
    REJECTED(netw([](Bytes& n) { put32(n, 4, 4096); }), s + "the layer count at byte 44 is 4096");
    REJECTED(netw([](Bytes& n) { put32(n, 4, 0xFFFFFFFFu); }), s + "the layer count at byte 44 is 4294967295");
    REJECTED(netw([](Bytes& n) { put32(n, 4, 1000); }),
             s + "the layer records at byte 56 claims 1000 values of 72 bytes but only 144 bytes remain before the end "
                 "of the section");
    REJECTED(netw([](Bytes& n) { put32(n, 12, 44); }),
             s + "the layer record size at byte 52 is 44; version 2 records are 88 bytes (72 in files written before tied weights)");
    REJECTED(netw([](Bytes& n) { put32(n, 12, 88); }),  // 72-byte records read as 88-byte ones
             s + "the layer records at byte 56 claims 2 values of 88 bytes but only 144 bytes remain");
    REJECTED(netw([](Bytes& n) { put32(n, 12, 0); }), s + "the layer record size at byte 52 is 0");
    REJECTED(netw([](Bytes& n) { put32(n, 16, 0); }), s + "layers[0].units at byte 56 is 0");
    REJECTED(netw([](Bytes& n) { put32(n, 88, 0x80000000u); }), s + "layers[1].units at byte 128 is 2147483648");
    REJECTED(netw([](Bytes& n) { n[20] = 200; }), s + "layers[0].activation at byte 60 has code 200 (known codes: " +
                                                     detail::known_codes<Activation>() + ")");
    REJECTED(netw([](Bytes& n) { n[21] = 99; }), s + "layers[0].initializer at byte 61 has code 99 (known codes: 0 glorot_uniform");
    REJECTED(netw([](Bytes& n) { n[22] = 9; }), s + "layers[0].noise at byte 62 has code 9 (known codes: " +
                                                  detail::known_codes<Noise>() + ")");
    REJECTED(netw([](Bytes& n) { n[23] = 1; }), s + "layers[0].reserved byte at byte 63 must be 0, got 1");
    REJECTED(netw([](Bytes& n) { put64(n, 24, 0x7FF8000000000000ull); }), s + "layers[0].alpha at byte 64 is nan (must be finite)");
    REJECTED(netw([](Bytes& n) { put64(n, 32, 0x7FF0000000000000ull); }), s + "layers[0].l1 at byte 72 is inf");
    REJECTED(netw([](Bytes& n) { put64(n, 40, 0xFFF0000000000000ull); }), s + "layers[0].l2 at byte 80 is -inf");
    REJECTED(netw([](Bytes& n) { put64(n, 88 + 32, 0x7FF8000000000000ull); }), s + "layers[1].dropout at byte 160 is nan");
    REJECTED(netw([](Bytes& n) { put64(n, 56, 0x7FF0000000000000ull); }), s + "layers[0].noise_level at byte 96 is inf");
    REJECTED(netw([](Bytes& n) { put64(n, 64, 0x7FF8000000000000ull); }), s + "layers[0].activity_l1 at byte 104 is nan");
    REJECTED(netw([](Bytes& n) { put64(n, 72, 0xFFF0000000000000ull); }), s + "layers[0].sparsity_target at byte 112 is -inf");
    REJECTED(netw([](Bytes& n) { put64(n, 88 + 64, 0x7FF8000000000000ull); }), s + "layers[1].sparsity_weight at byte 192 is nan");
    // Range checks of Model's constructor: reported by HEAD, the section that completes the network.
    const std::string invalid = "section HEAD at byte 200: the network of NETW (at byte 24) and this HEAD is invalid: ";
    REJECTED(netw([](Bytes& n) { const double d = 1.5; std::memcpy(&n[48], &d, 8); }), invalid, "dropout");
    REJECTED(netw([](Bytes& n) { const double d = -1.0; std::memcpy(&n[32], &d, 8); }), invalid, "l1");
    REJECTED(netw([](Bytes& n) { n[20] = traits_of(Activation::softmax).file_code; }), invalid, "output layer only");
    REJECTED(netw([](Bytes& n) { n[88 + 6] = traits_of(Noise::gaussian).file_code; }), invalid, "noise");  // not the first layer
    REJECTED(netw([](Bytes& n) { n[22] = traits_of(Noise::masking).file_code; put64(n, 56, 0x3FF0000000000000ull); }),
             invalid, "noise_level");  // masking 1.0
    REJECTED(netw([](Bytes& n) { const double d = -1.0; std::memcpy(&n[64], &d, 8); }), invalid, "activity_l1");
    REJECTED(netw([](Bytes& n) { const double d = 1.0; std::memcpy(&n[80], &d, 8); }), invalid, "sparsity");  // relu layer
    REJECTED(netw([](Bytes& n) { n[92] = traits_of(Activation::linear).file_code; }), invalid, "sigmoid");  // bce
    // 2^31-1 wide layers: 2^63 parameters claimed by a file of a few hundred bytes.
    REJECTED(netw([](Bytes& n) {
                 put32(n, 0, 0x7FFFFFFFu);
                 put32(n, 16, 0x7FFFFFFFu);
                 put32(n, 88, 0x7FFFFFFFu);
             }),
             "section HEAD at byte 200: the network of NETW (at byte 24) and this HEAD has " +
                 std::to_string(2 * (0x7FFFFFFFull * 0x7FFFFFFFull + 0x7FFFFFFFull)) +
                 " parameters, more than the 520 bytes after HEAD could hold (4 bytes each)");
    // Six layers of 2^31-1: their parameter count overflows 64 bits.
    {
        Parts p;
        NetworkSpec spec;
        spec.n_inputs = 0x7FFFFFFF;
        spec.code_layer = 2;
        for (int i = 0; i < 6; ++i) {
            LayerSpec layer;
            layer.units = 0x7FFFFFFF;
            layer.activation = activation_spec(i == 5 ? Activation::sigmoid : Activation::relu);
            spec.layers.push_back(layer);
        }
        p.netw = ref::netw(spec);
        REJECTED(p.file(), "the network of NETW (at byte 24) and this HEAD: its layer widths give more than 2^64 parameters");
    }
}

// The fields of the 88-byte record: contractive, tied_to + 1, flags (bit 0: frozen), reserved.
// The small file with its records widened (NETW payload byte k is file byte 40 + k; layers[1]'s
// record starts at payload byte 104).
TEST(hostile_layer_record_tails_are_rejected) {
    auto netw = [](auto edit) {
        Parts p;
        p.netw = ref::widened_netw(p.netw);
        edit(p.netw);
        return p.file();
    };
    CHECK(load_error(netw([](Bytes&) {})).empty());
    const std::string s = "section NETW at byte 24: ";
    REJECTED(netw([](Bytes& n) { put64(n, 16 + 72, 0x7FF8000000000000ull); }), s + "layers[0].contractive at byte 128 is nan");
    REJECTED(netw([](Bytes& n) { put32(n, 16 + 80, 1); }), s + "layers[0].tied_to + 1 at byte 136 is 1 (must be in [0, 0])");
    REJECTED(netw([](Bytes& n) { put32(n, 104 + 80, 3); }), s + "layers[1].tied_to + 1 at byte 224 is 3 (must be in [0, 1])");
    REJECTED(netw([](Bytes& n) { n[16 + 84] = 2; }), s + "layers[0].flags at byte 140 is 2 (only bit 0, frozen, is defined)");
    REJECTED(netw([](Bytes& n) { n[16 + 86] = 1; }), s + "layers[0].reserved bytes at byte 142 must be 0, got 1");
    // Model's checks, reported by HEAD: 3 -> 2 -> 3 tied mirrors, but a relu layer has no
    // contractive penalty, and a tied layer shares its trainable flag with its mirror.
    const std::string invalid = "the network of NETW (at byte 24) and this HEAD is invalid: ";
    REJECTED(netw([](Bytes& n) { const double d = 0.5; std::memcpy(&n[16 + 72], &d, 8); }), invalid, "sigmoid or tanh");
    REJECTED(netw([](Bytes& n) { put32(n, 104 + 80, 1); n[104 + 84] = 1; }), invalid, "must be trainable or both frozen");
    // A tied file's PARM holds the tied layer's bias only: 3*2+2 + 3.
    Parts p;
    p.netw = ref::widened_netw(p.netw);
    put32(p.netw, 104 + 80, 1);
    REJECTED(p.file(), "section PARM at byte", "the parameter count at byte", "is 17 but the network has 11");
}

TEST(hostile_head_and_parm_sections_are_rejected_before_allocating) {
    auto with = [](const char* tag, auto edit) {
        Parts p;
        edit(p.payload(tag));
        return p.file();
    };
    const std::string h = "section HEAD at byte 200: ", w = "section PARM at byte 228: ";
    REJECTED(with("HEAD", [](Bytes& b) { b[0] = 99; }),
             h + "the loss at byte 216 has code 99 (known codes: " + detail::known_codes<Loss>() + ")");
    REJECTED(with("HEAD", [](Bytes& b) { b[2] = 1; }), h + "reserved bytes at byte 218 must be 0, got 1");
    REJECTED(with("HEAD", [](Bytes& b) { put64(b, 4, 0x7FF8000000000000ull); }), h + "huber_delta at byte 220 is nan");
    REJECTED(with("HEAD", [](Bytes& b) { b.resize(4); }),
             h + "truncated content: huber_delta at byte 220 needs 8 bytes but only 0 remain before the end of the section");
    REJECTED(with("HEAD", [](Bytes& b) { b[0] = traits_of(Loss::cross_entropy).file_code; }), h, "is invalid", "softmax");
    REJECTED(with("HEAD", [](Bytes& b) { b[0] = traits_of(Loss::huber).file_code; put64(b, 4, 0); }), h, "huber_delta");
    REJECTED(with("PARM", [](Bytes& b) { put64(b, 0, 1000); }),
             w + "the parameter count at byte 244 is 1000 but the network has 17");
    REJECTED(with("PARM", [](Bytes& b) { put64(b, 0, ~std::uint64_t(0)); }), w + "the parameter count at byte 244 is 18446744073709551615");
    REJECTED(with("PARM", [](Bytes& b) { b.resize(8 + 40); }),
             w + "the parameters at byte 252 claims 17 values of 4 bytes but only 40 bytes remain before the end of the section");
    REJECTED(with("PARM", [](Bytes& b) { put32(b, 8 + 8, 0x7FC00000u); }), w + "the parameters (from byte 252): value 2 is nan");
    REJECTED(with("PARM", [](Bytes& b) { put32(b, 8 + 64, 0xFF800000u); }), w + "the parameters (from byte 252): value 16 is -inf");
}

TEST(hostile_settings_are_rejected) {
    auto optc = [](auto edit) {
        Parts p;
        edit(p.optc);
        return p.file();
    };
    const std::string s = "section OPTC at byte 320: the settings";
    REJECTED(optc([](Bytes& b) { b[0] = 9; }),
             s + ": the optimizer kind at byte 336 has code 9 (known codes: " + detail::known_codes<OptimizerKind>() + ")");
    REJECTED(optc([](Bytes& b) { b[1] = 2; }), s + ": the flags at byte 337 are 2 (bit 0 is nesterov; the others must be 0)");
    REJECTED(optc([](Bytes& b) { b[3] = 5; }), s + ": reserved bytes at byte 339 must be 0, got 5");
    REJECTED(optc([](Bytes& b) { put32(b, 4, 0xFFFFFFFFu); }),
             s + ": the settings at byte 344 claims 4294967295 values of 12 bytes but only 84 bytes remain");
    REJECTED(optc([](Bytes& b) {  // an eighth setting, as a later fastae may write
                 put32(b, 4, 8);
                 ref::Out o;
                 o.u32(8).f64(1.0);
                 b.insert(b.end(), o.b.begin(), o.b.end());
             }),
             s + ": setting id 8 at byte 428 is unknown to fastae", "a newer fastae wrote this file?");
    REJECTED(optc([](Bytes& b) { put32(b, 8, 2); put32(b, 20, 1); }),
             s + ": setting id 2 (beta1) at byte 344 is out of place: the settings are ids 1 learning_rate, 2 beta1");
    REJECTED(optc([](Bytes& b) { put32(b, 20, 1); }), s + ": setting id 1 (learning_rate) at byte 356 is out of place");
    REJECTED(optc([](Bytes& b) { put32(b, 8 + 12 * 6, 0); }), s + ": setting id 0 at byte 416 is unknown");
    REJECTED(optc([](Bytes& b) { put32(b, 4, 6); b.resize(b.size() - 12); }),
             s + ": the number of settings at byte 340 is 6; setting id 7 (rho) is missing");
    REJECTED(optc([](Bytes& b) { put32(b, 4, 0); b.resize(8); }), s + ": the number of settings at byte 340 is 0; setting id 1");
    REJECTED(optc([](Bytes& b) { put64(b, 12, 0x7FF8000000000000ull); }), s + " at byte 336: learning_rate must be finite");
    REJECTED(optc([](Bytes& b) { put64(b, 12, 0); }), s + " at byte 336: learning_rate must be a finite number > 0");
    REJECTED(optc([](Bytes& b) { put64(b, 8 + 12 * 5 + 4, 0x7FF0000000000000ull); }), s + " at byte 336: weight_decay must be finite");
    REJECTED(optc([](Bytes& b) { put64(b, 8 + 12 * 6 + 4, 0xFFF8000000000000ull); }), s + " at byte 336: rho must be finite");
    REJECTED(optc([](Bytes& b) { const double one = 1.0; std::memcpy(&b[8 + 12 + 4], &one, 8); }), "beta1 must be in [0, 1)");
    REJECTED(optc([](Bytes& b) { b[0] = traits_of(OptimizerKind::sgd).file_code; b[1] = 1; }), "nesterov");
    REJECTED(optc([](Bytes& b) { b[0] = traits_of(OptimizerKind::rmsprop).file_code; put64(b, 84, 0x3FF0000000000000ull); }),
             "rho must be in [0, 1)");
}

TEST(hostile_optimizer_states_are_rejected_before_allocating) {
    auto opts = [](auto edit) {
        Parts p;
        edit(p.opts);
        return p.file();
    };
    // OPTS at 428, payload from 444: settings 444..536, steps 536, slot count 544, slot 0's name
    // length 548, name 552, its length 560, values 568..636; slot 1 from 636 (name 640, length
    // 652, values 660..728).
    const std::string s = "section OPTS at byte 428: ";
    REJECTED(opts([](Bytes& b) { put64(b, 92, ~std::uint64_t(4)); }), s + "the step count at byte 536 is negative (-5)");
    REJECTED(opts([](Bytes& b) { put32(b, 100, 1); }), s + "the slot count at byte 544 is 1 but 'adam' has 2");
    REJECTED(opts([](Bytes& b) { put32(b, 100, 0xFFFFFFFFu); }), s + "the slot count at byte 544 is 4294967295");
    REJECTED(opts([](Bytes& b) { b[108 + 6] = 'x'; }), s + "slot 0's name at byte 552 is 'exp_avx' but 'adam' calls its slot 0 'exp_avg'");
    REJECTED(opts([](Bytes& b) { put32(b, 104, 1000); }), s + "slot 0's name length at byte 548 is 1000 (must be in [1, 64])");
    REJECTED(opts([](Bytes& b) { put32(b, 104, 0); }), s + "slot 0's name length at byte 548 is 0");
    REJECTED(opts([](Bytes& b) { put32(b, 104, 8); }), s + "slot 0's name at byte 552 is 'exp_avg\\x00'");
    REJECTED(opts([](Bytes& b) { b[108 + 7] = 1; }), s + "slot 0's padding at byte 559 must be 0, got 1");
    REJECTED(opts([](Bytes& b) { put64(b, 116, std::uint64_t(1) << 61); }),
             s + "slot exp_avg's length at byte 560 is 2305843009213693952 but the model has 17 parameters");
    REJECTED(opts([](Bytes& b) { put64(b, 208, 16); }), s + "slot exp_avg_sq's length at byte 652 is 16");
    REJECTED(opts([](Bytes& b) { put32(b, 124, 0x7FC00000u); }), s + "slot exp_avg (from byte 568): value 0 is nan");
    REJECTED(opts([](Bytes& b) { put32(b, 216 + 4 * 3, 0xBF800000u); }), s + "the optimizer state is invalid: ",
             "must be >= 0");  // exp_avg_sq[3] = -1
    REJECTED(opts([](Bytes& b) { put64(b, 8 + 12 + 4, 0x3FF0000000000000ull); }),
             s + "the state's settings at byte 444: beta1 must be in [0, 1)");
    // The slot names of the other kinds.
    for (OptimizerKind kind : all_optimizers()) {
        Parts p;
        OptimizerState state;
        state.config.kind = kind;
        state.config.momentum = 0.5;
        state.m.assign(17, 0.0f);
        if (optimizer_slot_names(kind).size() == 2) state.v.assign(17, 0.0f);
        p.opts = ref::opts(state);
        CHECK(load_error(p.file()).empty());
        // Each kind's state with another kind's slot names.
        for (OptimizerKind other : all_optimizers()) {
            if (optimizer_slot_names(other) == optimizer_slot_names(kind)) continue;
            Bytes bad = p.opts;
            bad[0] = traits_of(other).file_code;
            Parts q;
            q.opts = bad;
            REJECTED(q.file(), s);
        }
    }
}

TEST(metadata_and_layer_counts_at_their_limits) {
    {
        Parts p;
        p.meta.clear();
        REJECTED(p.file(), "section META at byte 728: it is empty (a file without metadata has no META section)");
        p.meta.assign(model_file_max_metadata + 1, 'x');
        REJECTED(p.file(), "section META at byte 728: it holds 1048577 bytes of metadata, more than the 1048576");
        p.meta.assign(model_file_max_metadata, 'x');
        CHECK(load_error(p.file()).empty());
    }
    // The most layers a file holds, and one more.
    NetworkSpec spec;
    spec.n_inputs = 1;
    for (std::size_t i = 0; i < model_file_max_layers; ++i) {
        LayerSpec layer;
        layer.units = 1;
        layer.activation = activation_spec(Activation::linear);
        spec.layers.push_back(layer);
    }
    spec.head.loss = Loss::mse;
    Model deep(spec);
    deep.init_weights(3);
    const Bytes b = model_to_bytes(deep);
    const ModelFile back = model_from_bytes(b.data(), b.size());
    CHECK(same_model(back.model, deep));
    spec.layers.push_back(spec.layers.back());
    const Model deeper(spec);
    CHECK_THROWS(model_to_bytes(deeper), std::invalid_argument);
}

TEST(the_writer_refuses_what_a_reader_would_reject) {
    // Model accepts any alpha for an activation that ignores it, and any huber_delta for another
    // loss; a file holds finite numbers only, so the writer refuses before writing anything.
    NetworkConfig cfg;
    cfg.layer_sizes = {3, 2, 3};
    NetworkSpec spec = to_spec(cfg);
    spec.layers[0].activation.alpha = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS(model_to_bytes(Model(spec)), std::invalid_argument);
    spec = to_spec(cfg);
    spec.head.huber_delta = std::numeric_limits<double>::infinity();
    CHECK_THROWS(model_to_bytes(Model(spec)), std::invalid_argument);
    SaveOptions opts;
    opts.optimizer = OptimizerConfig{};
    opts.optimizer->weight_decay = std::numeric_limits<double>::quiet_NaN();  // ignored by adam, still checked
    CHECK_THROWS(model_to_bytes(Model(cfg), opts), std::invalid_argument);
    opts.optimizer = OptimizerConfig{};
    opts.optimizer->kind = OptimizerKind::rmsprop;
    opts.optimizer->rho = 1.0;
    CHECK_THROWS(model_to_bytes(Model(cfg), opts), std::invalid_argument);
    opts.optimizer->rho = 0.5;
    CHECK(model_to_bytes(Model(cfg), opts).size() > 0);
}

// ---- version 1 -----------------------------------------------------------------------------

TEST(version_1_files_load_as_before_and_save_as_version_2) {
    for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::sgd}) {
        const Model m = trained_model(kind);
        const std::string metadata = "{\"v\": 1}";
        OptimizerConfig settings = m.optimizer_state().config;
        settings.learning_rate = 0.125;
        for (bool with_state : {true, false}) {
            const Bytes v1 = ref::v1_file(m.config(), m.params(), m.n_params(), settings,
                                          with_state ? &m.optimizer_state() : nullptr, metadata);
            const ModelFile f = model_from_bytes(v1.data(), v1.size());
            CHECK(f.version == 1);
            CHECK(f.model.spec().code_layer == f.model.n_layers() / 2 - 1);  // version 1: the middle
            CHECK(same_floats(f.model.params(), m.params(), m.n_params()));
            CHECK(f.model.has_optimizer_state() == with_state);
            if (with_state) {
                const OptimizerState &a = f.model.optimizer_state(), &b = m.optimizer_state();
                CHECK(same_settings(a.config, b.config) && a.steps == b.steps && a.m == b.m && a.v == b.v);
            }
            CHECK(same_settings(f.optimizer, settings));  // weight_decay and rho: the defaults
            CHECK(f.metadata == metadata);
            CHECK(ref::v1_file(f) == v1);  // what was read is all the file held
            // Saved again: version 2, which loads to the same.
            SaveOptions o;
            o.optimizer = f.optimizer;
            o.metadata = f.metadata;
            const Bytes v2 = model_to_bytes(f.model, o);
            CHECK(get32(v2, 8) == 2);
            const ModelFile g = model_from_bytes(v2.data(), v2.size());
            CHECK(g.version == 2 && same_model(g.model, f.model) && same_settings(g.optimizer, f.optimizer) &&
                  g.metadata == f.metadata);
        }
    }
}

TEST(version_1_files_of_the_previous_release_load_bit_for_bit) {
    // tests/data/model_v1: written by fastae 0.1.0 (tests/test_model_file.py compares what they
    // load with what that release read); here: each loads, and the reference version-1 writer
    // gives back the very bytes, so nothing in them is lost or changed.
    const fs::path folder = fs::path(__FILE__).parent_path().parent_path().parent_path() / "tests" / "data" / "model_v1";
    CHECK(fs::is_directory(folder));
    int count = 0;
    for (const auto& entry : fs::directory_iterator(folder)) {
        if (entry.path().extension() != ".fae") continue;
        ++count;
        const Bytes bytes = read_all(entry.path());
        CHECK(get32(bytes, 8) == 1);
        const ModelFile f = load_model(entry.path());
        CHECK(f.version == 1);
        CHECK(ref::v1_file(f) == bytes);
        SaveOptions o;
        o.optimizer = f.optimizer;
        o.metadata = f.metadata;
        const Bytes v2 = model_to_bytes(f.model, o);
        const ModelFile g = model_from_bytes(v2.data(), v2.size());
        CHECK(same_model(g.model, f.model) && same_settings(g.optimizer, f.optimizer) && g.metadata == f.metadata);
    }
    CHECK(count == 3);
}

TEST(version_1_hostile_headers_are_rejected_before_allocating) {
    NetworkConfig cfg;
    cfg.layer_sizes = {3, 2, 3};
    const Model model(cfg);
    // widths at 28, 32, 36; parameter count at 88
    const Bytes good = ref::v1_file(cfg, model.params(), model.n_params(), OptimizerConfig{}, nullptr, "");
    CHECK(load_error(good).empty());
    struct Case {
        const char* expect;
        void (*edit)(Bytes&);
    };
    const Case cases[] = {
        {"bad magic", [](Bytes& b) { b[1] = 'X'; }},
        {"unsupported model file version 3 (this fastae", [](Bytes& b) { put32(b, 8, 3); }},
        {"reads versions 1 and 2)", [](Bytes& b) { put32(b, 8, 0); }},
        {"written big-endian", [](Bytes& b) { put32(b, 12, 0x04030201u); }},
        {"announces 9223372036854775808 bytes", [](Bytes& b) { put64(b, 16, std::uint64_t(1) << 63); }},
        {"announces 18446744073709551615 bytes", [](Bytes& b) { put64(b, 16, ~std::uint64_t(0)); }},
        {"checksum mismatch", [](Bytes& b) { b[b.size() - 1] ^= 1; }},
        {"number of layer widths at byte 24 is 4294967295", [](Bytes& b) { put32(b, 24, 0xFFFFFFFFu); reseal(b); }},
        {"number of layer widths at byte 24 is 4097", [](Bytes& b) { put32(b, 24, 4097); reseal(b); }},
        {"number of layer widths at byte 24 is 1", [](Bytes& b) { put32(b, 24, 1); reseal(b); }},
        {"layer width 1 at byte 32 is 0", [](Bytes& b) { put32(b, 32, 0); reseal(b); }},
        {"layer width 0 at byte 28 is 2147483648", [](Bytes& b) { put32(b, 28, 0x80000000u); reseal(b); }},
        // 2^31-1 wide layers: 2^62 parameters claimed by a file of a hundred bytes.
        {"the layer widths give 4611686022722355200",
         [](Bytes& b) { put32(b, 28, 0x7FFFFFFFu); put32(b, 32, 0x7FFFFFFFu); reseal(b); }},
        {"the weights at byte 96 claims 4611686022722355200 values",
         [](Bytes& b) {
             put32(b, 28, 0x7FFFFFFFu);
             put32(b, 32, 0x7FFFFFFFu);
             put64(b, 88, 4611686022722355200ull);
             reseal(b);
         }},
        {"parameter count at byte 88 is 1000", [](Bytes& b) { put64(b, 88, 1000); reseal(b); }},
        // Version 1 knows 4 activations, 2 losses and 2 optimizers, whatever version 2 knows.
        {"the activation at byte 40 has code 4 (known codes: 0 to 3)", [](Bytes& b) { b[40] = 4; reseal(b); }},
        {"the activation at byte 40 has code 9", [](Bytes& b) { b[40] = 9; reseal(b); }},
        {"the loss at byte 42 has code 2 (known codes: 0 to 1)", [](Bytes& b) { b[42] = 2; reseal(b); }},
        {"a reserved byte at byte 43 must be 0", [](Bytes& b) { b[43] = 1; reseal(b); }},
        {"needs output_activation 'sigmoid'", [](Bytes& b) { b[41] = 0; reseal(b); }},  // bce + linear
        {"optimizer kind at byte 44 has code 2 (known codes: 0 to 1)", [](Bytes& b) { b[44] = 2; reseal(b); }},
        {"optimizer kind at byte 44 has code 7", [](Bytes& b) { b[44] = 7; reseal(b); }},
        {"learning_rate must be finite", [](Bytes& b) { put64(b, 48, 0x7FF8000000000000ull); reseal(b); }},
        {"learning_rate must be a finite number > 0", [](Bytes& b) { put64(b, 48, 0); reseal(b); }},
        {"value 2 is nan", [](Bytes& b) { put32(b, 96 + 8, 0x7FC00000u); reseal(b); }},
        {"optimizer-state flag at byte 164 must be 0 or 1", [](Bytes& b) { b[164] = 2; reseal(b); }},
        {"the optimizer state's settings at byte 168 needs 44 bytes",
         [](Bytes& b) { b[164] = 1; reseal(b); }},
        {"metadata length at byte 168 is 4294967295", [](Bytes& b) { put32(b, 168, 0xFFFFFFFFu); reseal(b); }},
        {"metadata at byte 172 needs 1000 bytes", [](Bytes& b) { put32(b, 168, 1000); reseal(b); }},
        // Six widths of 2^31-1: their parameter count overflows 64 bits.
        {"the layer widths give more than 2^64 parameters",
         [](Bytes& b) {
             b.insert(b.begin() + 40, 12, 0);
             put32(b, 24, 6);
             for (std::size_t i = 0; i < 6; ++i) put32(b, 28 + 4 * i, 0x7FFFFFFFu);
             reseal(b);
         }},
        {"unexpected bytes between the metadata and the checksum",
         [](Bytes& b) { b.insert(b.end() - 4, {1, 2, 3}); reseal(b); }},
    };
    CHECK(good.size() == 176);  // the offsets above assume this layout
    for (const Case& c : cases) {
        Bytes bad = good;
        c.edit(bad);
        expect_rejected(bad, {c.expect}, c.expect, __LINE__, 2048);
    }
}

TEST(version_1_optimizer_state_lengths_are_checked_before_allocating) {
    const Model m = trained_model();
    const Bytes b = ref::v1_file(m.config(), m.params(), m.n_params(), m.optimizer_state().config,
                                 &m.optimizer_state(), "");
    CHECK(load_error(b).empty());
    // The state starts after the weights: flag + 3, settings 44, steps 8, then m's length.
    const std::size_t m_len_at = 24 + 4 + 4 * 5 + 4 + 44 + 8 + 4 * m.n_params() + 4 + 44 + 8;
    CHECK(get32(b, std::size_t(m_len_at)) == m.n_params());
    Bytes huge = b;
    put64(huge, m_len_at, std::uint64_t(1) << 61);
    reseal(huge);
    g_largest_allocation = 0;
    CHECK(contains(load_error(huge), "the optimizer state m's length"));
    CHECK(g_largest_allocation <= 4 * b.size());
    Bytes negative = b;
    put64(negative, m_len_at - 8, ~std::uint64_t(0));  // steps = -1
    reseal(negative);
    CHECK(contains(load_error(negative), "step count"));
    Bytes bad_v = b;
    put32(bad_v, m_len_at + 8 + 4 * m.n_params() + 8, 0xBF800000u);  // v[0] = -1
    reseal(bad_v);
    CHECK(contains(load_error(bad_v), "must be >= 0"));
}

TEST(version_1_every_truncation_corruption_and_change_is_clean) {
    const Model m = trained_model(OptimizerKind::sgd);
    const Bytes good =
        ref::v1_file(m.config(), m.params(), m.n_params(), m.optimizer_state().config, &m.optimizer_state(), "x");
    for (std::size_t n = 0; n < good.size(); ++n) {
        const std::string e = load_error(Bytes(good.begin(), good.begin() + std::ptrdiff_t(n)));
        CHECK(!e.empty() && e != "other");
    }
    int loaded = 0, rejected = 0;
    for (std::size_t i = 24; i + 4 < good.size(); ++i) {
        Bytes flipped = good;
        flipped[i] ^= 0x10;
        CHECK(contains(load_error(flipped), "checksum mismatch"));
        for (std::uint8_t value : {0x00, 0x01, 0xFF}) {
            if (good[i] == value) continue;
            Bytes bad = good;
            bad[i] = value;
            reseal(bad);
            g_largest_allocation = 0;
            std::string e;
            try {
                const ModelFile f = model_from_bytes(bad.data(), bad.size());
                CHECK(ref::v1_file(f) == bad);  // a version-1 file that loads is read whole
            } catch (const ModelFileError& err) {
                e = err.what();
            } catch (...) {
                e = "other";
            }
            CHECK(e != "other");
            CHECK(g_largest_allocation <= 4 * good.size());
            (e.empty() ? loaded : rejected)++;
        }
    }
    CHECK(loaded > 0 && rejected > 0);
}

// ---- saving and loading files ------------------------------------------------------------------

TEST(save_replaces_atomically_and_a_failed_save_keeps_the_old_file) {
    const fs::path dir = fresh_folder();
    const fs::path path = dir / "model.fae";
    const Model a = trained_model(OptimizerKind::adam);
    save_model(a, path);
    ModelFile back = load_model(path);
    CHECK(same_model(a, back.model));
    const Bytes first = read_all(path);
    CHECK(first == model_to_bytes(a));

    const Model b = trained_model(OptimizerKind::sgd);
    ::chmod(path.c_str(), 0640);
    save_model(b, path);  // replaces, keeping the mode of the file it replaces
    CHECK(same_model(b, load_model(path).model));
    struct stat st {};
    CHECK(::stat(path.c_str(), &st) == 0 && (st.st_mode & 0777) == 0640);
    CHECK(files_in(dir) == 1);  // no temporary file left

    // Failures: bad options (before any write), a folder in the way, a missing folder.
    const Bytes before = read_all(path);
    SaveOptions too_much;
    too_much.metadata.assign(model_file_max_metadata + 1, 'x');
    CHECK_THROWS(save_model(a, path, too_much), std::invalid_argument);
    fs::create_directories(dir / "taken");
    CHECK_THROWS(save_model(a, dir / "taken"), fs::filesystem_error);
    CHECK(fs::is_directory(dir / "taken"));
    CHECK_THROWS(save_model(a, dir / "missing" / "model.fae"), fs::filesystem_error);
    CHECK(read_all(path) == before);
    CHECK(files_in(dir) == 2);  // model.fae and taken/: no temporary file left

    // Loading: a missing file and a folder are I/O errors, a corrupt file a ModelFileError
    // naming the path (and, past the header, the section).
    CHECK_THROWS(load_model(dir / "absent.fae"), fs::filesystem_error);
    CHECK_THROWS(load_model(dir / "taken"), fs::filesystem_error);
    {
        std::ofstream f(dir / "short.fae", std::ios::binary);
        f.write(reinterpret_cast<const char*>(before.data()), 100);
    }
    try {
        load_model(dir / "short.fae");
        CHECK(false);
    } catch (const ModelFileError& e) {
        CHECK(contains(e.what(), "short.fae") && contains(e.what(), "truncated at byte 100"));
    }
    {
        Parts p;
        put32(p.parm, 0, 5);
        const Bytes bad = p.file();
        std::ofstream f(dir / "bad.fae", std::ios::binary);
        f.write(reinterpret_cast<const char*>(bad.data()), std::streamsize(bad.size()));
    }
    try {
        load_model(dir / "bad.fae");
        CHECK(false);
    } catch (const ModelFileError& e) {
        CHECK(contains(e.what(), "model file " + (dir / "bad.fae").string() +
                                     ": section PARM at byte 228: the parameter count at byte 244 is 5"));
    }
    fs::remove_all(dir);
}

TEST(autoencoder_conventions_match_python) {
    CHECK((autoencoder_layer_sizes(784, {256, 64}) == std::vector<int>{784, 256, 64, 256, 784}));
    CHECK((autoencoder_layer_sizes(10, {3}) == std::vector<int>{10, 3, 10}));
    CHECK(autoencoder_shuffle_seed(0) == 0x5DEECE66Dull);
    CHECK(autoencoder_shuffle_seed(~std::uint64_t(0)) == 0x5DEECE66Cull);  // wraps modulo 2^64
}
