// test_model_file.cpp -- the model file: exact round trips, the documented byte layout, and that
// every truncation, corruption and hostile header ends in ModelFileError without big allocations;
// atomic saves that leave the old file intact on failure.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "crc32.h"
#include "fastae/fastae.h"

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
using Bytes = std::vector<std::uint8_t>;

namespace {

// A trained model (so it has an Adam state) on smooth data in [0, 1].
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

// memcmp with n == 0 may still not be given null pointers (an empty SGD state has v.data() == null).
bool same_floats(const float* a, const float* b, std::size_t n) { return n == 0 || std::memcmp(a, b, 4 * n) == 0; }

bool same_settings(const OptimizerConfig& a, const OptimizerConfig& b) {
    return a.kind == b.kind && a.learning_rate == b.learning_rate && a.beta1 == b.beta1 && a.beta2 == b.beta2 &&
           a.epsilon == b.epsilon && a.momentum == b.momentum && a.nesterov == b.nesterov;
}

bool same_model(const Model& a, const Model& b) {
    if (a.config().layer_sizes != b.config().layer_sizes || a.config().activation != b.config().activation ||
        a.config().output_activation != b.config().output_activation || a.config().loss != b.config().loss ||
        a.n_params() != b.n_params() || !same_floats(a.params(), b.params(), a.n_params()) ||
        a.has_optimizer_state() != b.has_optimizer_state()) {
        return false;
    }
    if (!a.has_optimizer_state()) return true;
    const OptimizerState &sa = a.optimizer_state(), &sb = b.optimizer_state();
    return same_settings(sa.config, sb.config) && sa.steps == sb.steps && sa.m.size() == sb.m.size() &&
           sa.v.size() == sb.v.size() && same_floats(sa.m.data(), sb.m.data(), sa.m.size()) &&
           same_floats(sa.v.data(), sb.v.data(), sa.v.size());
}

std::uint32_t get32(const Bytes& b, std::size_t at) {
    return std::uint32_t(b[at]) | std::uint32_t(b[at + 1]) << 8 | std::uint32_t(b[at + 2]) << 16 |
           std::uint32_t(b[at + 3]) << 24;
}
void put32(Bytes& b, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + std::size_t(i)] = std::uint8_t(v >> (8 * i));
}
void put64(Bytes& b, std::size_t at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) b[at + std::size_t(i)] = std::uint8_t(v >> (8 * i));
}
// Rewrites the body size and the checksum, so that a hand-made change reaches the parser.
void reseal(Bytes& b) {
    put64(b, 16, b.size() - 28);
    put32(b, b.size() - 4, detail::crc32(b.data(), b.size() - 4));
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

TEST(round_trip_is_exact_with_and_without_optimizer_state) {
    for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::sgd}) {
        const Model m = trained_model(kind);
        CHECK(m.has_optimizer_state());
        SaveOptions opts;
        opts.metadata = std::string("{\"k\": 1}\0binary\xff", 16);
        const Bytes bytes = model_to_bytes(m, opts);
        ModelFile back = model_from_bytes(bytes.data(), bytes.size());
        CHECK(same_model(m, back.model));
        CHECK(same_settings(back.optimizer, m.optimizer_state().config));  // default: the state's settings
        CHECK(back.metadata == opts.metadata);
        CHECK(model_to_bytes(back.model, opts) == bytes);  // and writing it again gives the same bytes

        opts.include_optimizer_state = false;
        OptimizerConfig other;
        other.kind = OptimizerKind::sgd;
        other.learning_rate = 0.5;
        other.momentum = 0.25;
        opts.optimizer = other;
        const Bytes small = model_to_bytes(m, opts);
        CHECK(small.size() < bytes.size());
        ModelFile light = model_from_bytes(small.data(), small.size());
        CHECK(!light.model.has_optimizer_state());
        CHECK(same_floats(light.model.params(), m.params(), m.n_params()));
        CHECK(same_settings(light.optimizer, other));

        // A loaded model computes exactly what the original does.
        std::vector<float> x(5 * 6, 0.25f), a(5 * 3), b(5 * 3);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i % 7) / 7.0f;
        m.encode(5, x.data(), a.data());
        back.model.encode(5, x.data(), b.data());
        CHECK(a == b);
    }
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
    SaveOptions opts;
    opts.metadata = "hi";
    const Bytes b = model_to_bytes(m, opts);
    const std::uint8_t magic[8] = {0x89, 'F', 'A', 'S', 'T', 'A', 'E', 0x0A};
    CHECK(std::memcmp(b.data(), magic, 8) == 0);
    CHECK(get32(b, 8) == 1);                                   // version
    CHECK(b[12] == 4 && b[13] == 3 && b[14] == 2 && b[15] == 1);  // 0x01020304 little-endian
    CHECK(get32(b, 16) == b.size() - 28 && get32(b, 20) == 0);  // body size (u64)
    CHECK(get32(b, 24) == 3 && get32(b, 28) == 3 && get32(b, 32) == 2 && get32(b, 36) == 3);
    CHECK(b[40] == 1 && b[41] == 0 && b[42] == 0 && b[43] == 0);  // relu, linear, mse, reserved
    CHECK(b[44] == 0 && b[45] == 0);                             // adam, no nesterov (defaults)
    double lr;
    std::memcpy(&lr, &b[48], 8);
    CHECK(lr == 1e-3);
    CHECK(get32(b, 88) == m.n_params() && get32(b, 92) == 0);   // parameter count (u64)
    float first;
    std::memcpy(&first, &b[96], 4);
    CHECK(first == -3.0f);
    const std::size_t after = 96 + 4 * m.n_params();
    CHECK(b[after] == 0);                                        // no optimizer state
    CHECK(get32(b, after + 4) == 2 && b[after + 8] == 'h' && b[after + 9] == 'i');
    CHECK(b.size() == after + 10 + 4);
    CHECK(get32(b, b.size() - 4) == detail::crc32(b.data(), b.size() - 4));
}

TEST(every_truncation_and_every_corrupted_byte_is_a_clean_error) {
    const Bytes good = model_to_bytes(trained_model());
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

TEST(changes_behind_a_valid_checksum_load_or_fail_cleanly) {
    // With the checksum recomputed every byte change reaches the parser: each must either load
    // (a different weight is still a model) or throw ModelFileError, and never allocate much.
    const Bytes good = model_to_bytes(trained_model());
    int loaded = 0, rejected = 0;
    for (std::size_t i = 28; i + 4 < good.size(); ++i) {
        for (std::uint8_t value : {0x00, 0x01, 0x7F, 0xFF}) {
            if (good[i] == value) continue;
            Bytes bad = good;
            bad[i] = value;
            reseal(bad);
            g_largest_allocation = 0;
            const std::string e = load_error(bad);
            CHECK(e != "other");
            CHECK(g_largest_allocation <= 4 * good.size());
            (e.empty() ? loaded : rejected)++;
        }
    }
    CHECK(loaded > 0 && rejected > 0);
    std::printf("  %d changed files loaded, %d rejected\n", loaded, rejected);
}

TEST(hostile_headers_are_rejected_before_allocating) {
    NetworkConfig cfg;
    cfg.layer_sizes = {3, 2, 3};
    const Bytes good = model_to_bytes(Model(cfg));  // widths at 28, 32, 36; parameter count at 88
    struct Case {
        const char* expect;
        void (*edit)(Bytes&);
    };
    const Case cases[] = {
        {"bad magic", [](Bytes& b) { b[1] = 'X'; }},
        {"unsupported model file version 2", [](Bytes& b) { put32(b, 8, 2); }},
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
        {"the activation at byte 40 has code 9", [](Bytes& b) { b[40] = 9; reseal(b); }},
        {"the loss at byte 42 has code 2", [](Bytes& b) { b[42] = 2; reseal(b); }},
        {"a reserved byte at byte 43 must be 0", [](Bytes& b) { b[43] = 1; reseal(b); }},
        {"needs output_activation 'sigmoid'", [](Bytes& b) { b[41] = 0; reseal(b); }},  // bce + linear
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
        g_largest_allocation = 0;
        const std::string e = load_error(bad);
        if (!contains(e, c.expect)) {
            fastae_test::fail(__FILE__, __LINE__, std::string("expected '") + c.expect + "', got '" + e + "'");
        }
        CHECK(g_largest_allocation <= 1024);
    }
}

TEST(optimizer_state_lengths_are_checked_before_allocating) {
    const Model m = trained_model();
    Bytes b = model_to_bytes(m);
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
    CHECK(contains(load_error(bad_v), "v must be >= 0"));
}

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
    // naming the path.
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
    fs::remove_all(dir);
}

TEST(autoencoder_conventions_match_python) {
    CHECK((autoencoder_layer_sizes(784, {256, 64}) == std::vector<int>{784, 256, 64, 256, 784}));
    CHECK((autoencoder_layer_sizes(10, {3}) == std::vector<int>{10, 3, 10}));
    CHECK(autoencoder_shuffle_seed(0) == 0x5DEECE66Dull);
    CHECK(autoencoder_shuffle_seed(~std::uint64_t(0)) == 0x5DEECE66Cull);  // wraps modulo 2^64
}
