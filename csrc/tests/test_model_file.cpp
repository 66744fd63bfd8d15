// test_model_file.cpp -- the model file: exact round trips (every activation, loss, initializer and
// optimizer), the documented byte layout of version 2 (compared with model_file_reference.h, a
// writer made from docs/model-format.md), the CRC-32 and file codes, and atomic saves that leave
// the old file intact. Damaged and hostile files: test_model_file_hostile.cpp; version 1:
// test_model_file_v1.cpp.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "check.h"
#include "crc32.h"
#include "fastae/fastae.h"
#include "model_file_checks.h"
#include "model_file_reference.h"

using namespace fastae;
using namespace fastae_test;

namespace {

fs::path fresh_folder() {
    fs::path p = fs::temp_directory_path() / ("fastae_test_model_file_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
}

std::size_t files_in(const fs::path& folder) {
    return std::size_t(std::distance(fs::directory_iterator(folder), fs::directory_iterator()));
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
