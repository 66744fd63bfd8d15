// test_model_file_v1.cpp -- version-1 model files: they load as before (the previous release's
// files in tests/data/model_v1 bit for bit) and save as version 2, and every hostile header,
// optimizer-state length, truncation, corruption and change ends in a ModelFileError without big
// allocations.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "check.h"
#include "fastae/fastae.h"
#include "model_file_checks.h"
#include "model_file_reference.h"

using namespace fastae;
using namespace fastae_test;

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
        expect_rejected(bad, {c.expect}, c.expect, __FILE__, __LINE__, 2048);
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
    for (std::size_t i = 24; i + 4 < good.size(); ++i) {
        Bytes flipped = good;
        flipped[i] ^= 0x10;
        CHECK(contains(load_error(flipped), "checksum mismatch"));
    }
    int loaded = 0, rejected = 0;
    load_every_byte_change(
        good, {0x00, 0x01, 0xFF},
        [](const ModelFile& f, const Bytes& bad) {
            CHECK(ref::v1_file(f) == bad);  // a version-1 file that loads is read whole
        },
        loaded, rejected, __FILE__, __LINE__);
    CHECK(loaded > 0 && rejected > 0);
}
