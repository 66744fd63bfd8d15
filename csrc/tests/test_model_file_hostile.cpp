// test_model_file_hostile.cpp -- damaged and hostile version-2 model files: every truncation,
// corruption and change behind a valid checksum, and every hostile section (framing, NETW, layer
// records, HEAD, PARM, settings, optimizer states, limits), each ending in a ModelFileError that
// names what is wrong, without big allocations; unknown optional sections are skipped, and the
// writer refuses what a reader would reject.
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "fastae/fastae.h"
#include "model_file_checks.h"
#include "model_file_io.h"
#include "model_file_reference.h"

using namespace fastae;
using namespace fastae_test;

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
    load_every_byte_change(
        good, {0x00, 0x01, 0x7F, 0xFF},
        [&](const ModelFile& f, const Bytes& bad) {
            SaveOptions again;
            again.optimizer = f.optimizer;
            again.metadata = f.metadata;
            const Bytes out = model_to_bytes(f.model, again);
            CHECK(out == ref::without_unknown_sections(bad));
            skipped += out != bad;
        },
        loaded, rejected, __FILE__, __LINE__);
    CHECK(loaded > 0 && rejected > 0 && skipped > 0);
    std::printf("  %d changed files loaded (%d of them with a section skipped), %d rejected\n", loaded, skipped,
                rejected);
}
namespace {

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
