// model_file_reference.h -- an independent writer of model files, from docs/model-format.md alone
// (not from the library's code), for the tests and the fuzz target: version 1 (which the library
// no longer writes: the tests and the fuzzer compare version-1 inputs with it), version 2 section
// by section (so that tests can build hostile files from well-formed parts), and a walker over a
// version-2 file's sections. Header-only; the library's CRC-32 is the one thing it shares.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "crc32.h"
#include "fastae/model_file.h"

namespace model_file_ref {

using Bytes = std::vector<std::uint8_t>;

// Little-endian fields appended to a byte vector.
struct Out {
    Bytes b;
    Out& u8(unsigned v) {
        b.push_back(std::uint8_t(v));
        return *this;
    }
    Out& u32(std::uint32_t v) {
        for (int i = 0; i < 4; ++i) b.push_back(std::uint8_t(v >> (8 * i)));
        return *this;
    }
    Out& u64(std::uint64_t v) {
        for (int i = 0; i < 8; ++i) b.push_back(std::uint8_t(v >> (8 * i)));
        return *this;
    }
    Out& f64(double v) {
        std::uint64_t bits;
        std::memcpy(&bits, &v, 8);
        return u64(bits);
    }
    Out& f32s(const float* v, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            std::uint32_t bits;
            std::memcpy(&bits, v + i, 4);
            u32(bits);
        }
        return *this;
    }
    Out& raw(const void* p, std::size_t n) {
        const auto* c = static_cast<const std::uint8_t*>(p);
        b.insert(b.end(), c, c + n);
        return *this;
    }
    Out& raw(const Bytes& more) { return raw(more.data(), more.size()); }
    Out& zeros(std::size_t n) {
        b.insert(b.end(), n, 0);
        return *this;
    }
};

inline void put32(Bytes& b, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + std::size_t(i)] = std::uint8_t(v >> (8 * i));
}
inline void put64(Bytes& b, std::size_t at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) b[at + std::size_t(i)] = std::uint8_t(v >> (8 * i));
}
inline std::uint32_t get32(const Bytes& b, std::size_t at) {
    return std::uint32_t(b[at]) | std::uint32_t(b[at + 1]) << 8 | std::uint32_t(b[at + 2]) << 16 |
           std::uint32_t(b[at + 3]) << 24;
}
inline std::uint64_t get64(const Bytes& b, std::size_t at) {
    return std::uint64_t(get32(b, at)) | std::uint64_t(get32(b, at + 4)) << 32;
}

// Rewrites the body size and the checksum, as a writer would.
inline void reseal(Bytes& file) {
    put64(file, 16, file.size() - 28);
    put32(file, file.size() - 4, fastae::detail::crc32(file.data(), file.size() - 4));
}

// Magic, version, byte-order mark and body size; the body; the CRC-32.
inline Bytes file_of(std::uint32_t version, const Bytes& body) {
    Out o;
    o.raw("\x89" "FASTAE\n", 8).u32(version).u32(0x01020304u).u64(body.size()).raw(body).u32(0);
    reseal(o.b);
    return o.b;
}

// ---- version 1 -------------------------------------------------------------------------------

// Version 1's codes: the index in these lists (docs/model-format.md, "Version 1").
inline unsigned v1_code(const char* name, std::vector<const char*> names) {
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (std::strcmp(names[i], name) == 0) return unsigned(i);
    }
    return 255;  // not in version 1's vocabulary
}
inline unsigned v1_activation(fastae::Activation a) {
    return v1_code(fastae::name_of(a), {"linear", "relu", "sigmoid", "tanh"});
}
inline unsigned v1_loss(fastae::Loss l) { return v1_code(fastae::name_of(l), {"mse", "bce"}); }
inline unsigned v1_optimizer(fastae::OptimizerKind k) { return v1_code(fastae::name_of(k), {"adam", "sgd"}); }

inline Bytes v1_settings(const fastae::OptimizerConfig& c) {
    Out o;
    o.u8(v1_optimizer(c.kind)).u8(c.nesterov ? 1 : 0).zeros(2);
    o.f64(c.learning_rate).f64(c.beta1).f64(c.beta2).f64(c.epsilon).f64(c.momentum);
    return o.b;
}

// A whole version-1 file.
inline Bytes v1_file(const fastae::NetworkConfig& net, const float* params, std::size_t n_params,
                     const fastae::OptimizerConfig& settings, const fastae::OptimizerState* state,
                     const std::string& metadata) {
    Out o;
    o.u32(std::uint32_t(net.layer_sizes.size()));
    for (int w : net.layer_sizes) o.u32(std::uint32_t(w));
    o.u8(v1_activation(net.activation)).u8(v1_activation(net.output_activation)).u8(v1_loss(net.loss)).u8(0);
    o.raw(v1_settings(settings));
    o.u64(n_params).f32s(params, n_params);
    o.u8(state ? 1 : 0).zeros(3);
    if (state) {
        o.raw(v1_settings(state->config)).u64(std::uint64_t(state->steps));
        o.u64(state->m.size()).f32s(state->m.data(), state->m.size());
        o.u64(state->v.size()).f32s(state->v.data(), state->v.size());
    }
    o.u32(std::uint32_t(metadata.size())).raw(metadata.data(), metadata.size());
    return file_of(1, o.b);
}

// What a loaded file holds, written as version 1.
inline Bytes v1_file(const fastae::ModelFile& f) {
    const fastae::Model& m = f.model;
    return v1_file(m.config(), m.params(), m.n_params(), f.optimizer,
                   m.has_optimizer_state() ? &m.optimizer_state() : nullptr, f.metadata);
}

// ---- version 2 -------------------------------------------------------------------------------

// The tags a version-2 reader knows, in file order, and their flags bit 0 ("required": the
// section must be present, except VARC, which is present in variational networks only and is
// flagged so that a reader that does not know it refuses the file).
struct KnownTag {
    const char* tag;
    bool required;
};
inline const std::vector<KnownTag>& known_tags() {
    static const std::vector<KnownTag> tags = {{"NETW", true}, {"VARC", true}, {"HEAD", true},  {"PARM", true},
                                               {"OPTC", true}, {"OPTS", false}, {"META", false}};
    return tags;
}
inline bool is_known_tag(const std::string& tag) {
    for (const KnownTag& k : known_tags()) {
        if (tag == k.tag) return true;
    }
    return false;
}

// {tag (4 bytes), flags, length, payload}.
inline Bytes section(const std::string& tag, std::uint32_t flags, const Bytes& payload) {
    Out o;
    o.raw(tag.data(), 4).u32(flags).u64(payload.size()).raw(payload);
    return o.b;
}
// A known section with its documented flags.
inline Bytes section(const std::string& tag, const Bytes& payload) {
    std::uint32_t flags = 0;
    for (const KnownTag& k : known_tags()) {
        if (tag == k.tag) flags = k.required ? 1 : 0;
    }
    return section(tag, flags, payload);
}

// One NETW layer record: 88 bytes, or the 72 of files written before contractive, tied_to and
// trainable (which then take their defaults).
inline Bytes layer_record(const fastae::LayerSpec& layer, std::uint32_t size = 88) {
    Out o;
    o.u32(std::uint32_t(layer.units))
        .u8(fastae::traits_of(layer.activation.kind).file_code)
        .u8(fastae::traits_of(layer.initializer).file_code)
        .u8(fastae::traits_of(layer.noise).file_code)
        .zeros(1);
    o.f64(layer.activation.alpha).f64(layer.l1).f64(layer.l2).f64(layer.dropout);
    o.f64(layer.noise_level).f64(layer.activity_l1).f64(layer.sparsity_target).f64(layer.sparsity_weight);
    if (size == 72) return o.b;
    o.f64(layer.contractive).u32(std::uint32_t(layer.tied_to + 1)).u8(layer.trainable ? 0 : 1).zeros(3);
    return o.b;
}
inline Bytes netw(const fastae::NetworkSpec& spec, std::uint32_t record_size = 88) {
    Out o;
    // The code layer as Model::spec() gives it: resolved, never -1.
    o.u32(std::uint32_t(spec.n_inputs)).u32(std::uint32_t(spec.layers.size())).u32(std::uint32_t(spec.code_layer));
    o.u32(record_size);
    for (const fastae::LayerSpec& layer : spec.layers) o.raw(layer_record(layer, record_size));
    return o.b;
}
// VARC (a variational network's; flagged required although optional).
inline Bytes varc(const fastae::VariationalSpec& v) {
    Out o;
    o.u32(std::uint32_t(v.kl_warmup_epochs)).zeros(4).f64(v.beta);
    return o.b;
}
inline Bytes head(const fastae::HeadSpec& head) {
    Out o;
    o.u8(fastae::traits_of(head.loss).file_code).zeros(3).f64(head.huber_delta);
    return o.b;
}
inline Bytes parm(const float* values, std::size_t n) {
    Out o;
    o.u64(n).f32s(values, n);
    return o.b;
}
// The settings block of OPTC and OPTS: every setting by its id (docs/model-format.md).
inline Bytes settings(const fastae::OptimizerConfig& c) {
    Out o;
    o.u8(fastae::traits_of(c.kind).file_code).u8(c.nesterov ? 1 : 0).zeros(2).u32(7);
    o.u32(1).f64(c.learning_rate).u32(2).f64(c.beta1).u32(3).f64(c.beta2).u32(4).f64(c.epsilon);
    o.u32(5).f64(c.momentum).u32(6).f64(c.weight_decay).u32(7).f64(c.rho);
    return o.b;
}
// One OPTS slot: its name (length, bytes, zeros to a multiple of 4), length, values.
inline Bytes slot(const std::string& name, const std::vector<float>& values) {
    Out o;
    o.u32(std::uint32_t(name.size())).raw(name.data(), name.size()).zeros((4 - name.size() % 4) % 4);
    o.u64(values.size()).f32s(values.data(), values.size());
    return o.b;
}
inline Bytes opts(const fastae::OptimizerState& s) {
    const std::vector<std::string> names = fastae::optimizer_slot_names(s.config.kind);
    Out o;
    o.raw(settings(s.config)).u64(std::uint64_t(s.steps)).u32(std::uint32_t(names.size()));
    for (std::size_t k = 0; k < names.size(); ++k) o.raw(slot(names[k], k == 0 ? s.m : s.v));
    return o.b;
}

// A whole version-2 file, sections in the documented order (OPTS only with a state, META only
// with metadata).
inline Bytes v2_file(const fastae::Model& m, const fastae::OptimizerConfig& settings_,
                     const fastae::OptimizerState* state, const std::string& metadata) {
    Out body;
    body.raw(section("NETW", netw(m.spec())));
    if (m.spec().variational.enabled) body.raw(section("VARC", varc(m.spec().variational)));
    body.raw(section("HEAD", head(m.spec().head)));
    body.raw(section("PARM", parm(m.params(), m.n_params())));
    body.raw(section("OPTC", settings(settings_)));
    if (state) body.raw(section("OPTS", opts(*state)));
    if (!metadata.empty()) body.raw(section("META", Bytes(metadata.begin(), metadata.end())));
    return file_of(2, body.b);
}
inline Bytes v2_file(const fastae::ModelFile& f) {
    return v2_file(f.model, f.optimizer, f.model.has_optimizer_state() ? &f.model.optimizer_state() : nullptr,
                   f.metadata);
}

// The sections of a well-framed version-2 file, in file order.
struct Section {
    std::string tag;
    std::uint32_t flags = 0;
    std::size_t at = 0;  // offset of its header
    Bytes payload;
};
inline std::vector<Section> sections_of(const Bytes& file) {
    std::vector<Section> out;
    std::size_t pos = 24;
    while (pos + 16 <= file.size() - 4) {
        Section s;
        s.tag.assign(reinterpret_cast<const char*>(file.data() + pos), 4);
        s.flags = get32(file, pos + 4);
        const std::uint64_t length = get64(file, pos + 8);
        s.at = pos;
        if (length > file.size() - 4 - pos - 16) break;  // not well framed: stop
        s.payload.assign(file.begin() + std::ptrdiff_t(pos + 16), file.begin() + std::ptrdiff_t(pos + 16 + length));
        pos += 16 + std::size_t(length);
        out.push_back(std::move(s));
    }
    return out;
}

// A NETW payload of 72-byte records as this version writes it: each record followed by the
// default contractive (0.0), tied_to + 1 (0) and flags (0: trainable), and reserved zeros.
inline Bytes widened_netw(const Bytes& payload) {
    if (payload.size() < 16 || get32(payload, 12) != 72) return payload;
    Out o;
    o.raw(payload.data(), 12).u32(88);
    for (std::size_t at = 16; at + 72 <= payload.size(); at += 72) o.raw(payload.data() + at, 72).zeros(16);
    return o.b;
}

// The file rebuilt from its sections, leaving out those with tags the reader does not know (and
// with 72-byte layer records widened, as a model read from it is written back).
inline Bytes without_unknown_sections(const Bytes& file) {
    Out body;
    for (const Section& s : sections_of(file)) {
        if (is_known_tag(s.tag)) body.raw(section(s.tag, s.flags, s.tag == "NETW" ? widened_netw(s.payload) : s.payload));
    }
    return file_of(2, body.b);
}

}  // namespace model_file_ref
