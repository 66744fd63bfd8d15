// model_file_sections.cpp -- the body of a version-2 model file: tagged sections (byte layout and
// checks in docs/model-format.md, "Version 2"). One read_/write_ pair per section, the table of
// known sections, and the loop that frames, orders and dispatches them.
//
// Nothing the size of the model is allocated before its size has been checked against the bytes
// of its section, and every error names the section (its tag and byte offset) and the field.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fastae/version.h"
#include "model_file_io.h"

namespace fastae::detail {

namespace {

constexpr std::uint32_t kRequired = 1;           // section flags, bit 0
constexpr std::size_t kSectionHeaderSize = 16;   // tag, flags, length
constexpr std::uint32_t kLayerRecordSize = 88;   // NETW's per-layer record in this version
constexpr std::uint32_t kLayerRecordSize72 = 72; // the record before contractive, tied_to, trainable
constexpr std::uint32_t kMaxSlotName = 64;       // OPTS: bytes in a slot's name
constexpr std::uint32_t kMaxInt = std::uint32_t(std::numeric_limits<int>::max());

// A tag as the u32 its four bytes make when read little-endian ("NETW": bytes 4e 45 54 57).
constexpr std::uint32_t make_tag(const char (&s)[5]) {
    return std::uint32_t(std::uint8_t(s[0])) | std::uint32_t(std::uint8_t(s[1])) << 8 |
           std::uint32_t(std::uint8_t(s[2])) << 16 | std::uint32_t(std::uint8_t(s[3])) << 24;
}

// Bytes for a message, quoted: printable ASCII as it is, anything else (and quotes) as \xNN.
std::string quote_bytes(const std::string& bytes) {
    std::string s = "'";
    for (unsigned char c : bytes) {
        if (c >= 0x20 && c < 0x7F && c != '\'' && c != '\\') {
            s += char(c);
        } else {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\x%02x", unsigned(c));
            s += esc;
        }
    }
    return s + "'";
}

// An unknown tag for a message: its four bytes, quoted ("'ZZZZ'").
std::string tag_text(std::uint32_t tag) {
    std::string bytes;
    for (int i = 0; i < 4; ++i) bytes += char(static_cast<unsigned char>(tag >> (8 * i)));
    return quote_bytes(bytes);
}

// The known sections' indices in kSections (below), which is also their order in a file.
constexpr std::size_t kNetw = 0, kVarc = 1, kHead = 2, kParm = 3, kOptc = 4, kOpts = 5, kMeta = 6, kSectionCount = 7;

// What the sections read so far have given.
struct Parsed {
    std::size_t body_end = 0;            // where the checksum starts
    std::size_t at[kSectionCount] = {};  // each known section's offset; 0: not read (yet)
    NetworkSpec spec;                    // NETW, then HEAD
    std::optional<Model> model;          // built at the end of HEAD
    OptimizerConfig settings;            // OPTC
    std::string metadata;                // META
};

// ---- NETW: the layers --------------------------------------------------------------------

// The writers below name every field of the structs they store (structured bindings): a field
// added to LayerSpec, HeadSpec, NetworkSpec, OptimizerConfig or OptimizerState stops this file
// compiling until the format holds it (here, its reader, docs/model-format.md), rather than being
// dropped from saved files without a word.

void write_netw(Writer& w, const Model& model) {
    const auto& [n_inputs, layers, head, code_layer, variational] = model.spec();
    (void)variational; // VARC's
    (void)head;        // HEAD's
    (void)code_layer;  // stored resolved: the model's, below
    if (layers.size() > model_file_max_layers) {
        throw std::invalid_argument("the network has " + str(layers.size()) + " layers; a model file holds at most " +
                                    str(model_file_max_layers));
    }
    w.u32(std::uint32_t(n_inputs));
    w.u32(std::uint32_t(layers.size()));
    w.u32(std::uint32_t(model.n_encoder_layers() - 1));  // the code layer, resolved (never -1)
    w.u32(kLayerRecordSize);
    for (std::size_t i = 0; i < layers.size(); ++i) {
        const auto& [units, activation, initializer, l1, l2, dropout, noise, noise_level, activity_l1, sparsity_target,
                     sparsity_weight, contractive, tied_to, trainable] = layers[i];
        const std::pair<const char*, double> numbers[] = {
            {"alpha", activation.alpha},    {"l1", l1},
            {"l2", l2},                     {"dropout", dropout},
            {"noise_level", noise_level},   {"activity_l1", activity_l1},
            {"sparsity_target", sparsity_target}, {"sparsity_weight", sparsity_weight},
            {"contractive", contractive}};
        for (const auto& [name, value] : numbers) {
            if (!std::isfinite(value)) {
                throw std::invalid_argument("layers[" + str(i) + "]." + name + " is " + number(value) +
                                            "; a model file holds finite numbers only");
            }
        }
        const auto& [kind, alpha] = activation;
        (void)alpha;  // in numbers
        w.u32(std::uint32_t(units));
        w.u8(file_code(kind));
        w.u8(file_code(initializer));
        w.u8(file_code(noise));
        w.zeros(1);
        for (const auto& [name, value] : numbers) w.f64(value);
        w.u32(std::uint32_t(tied_to + 1));  // 0: owns its W (tied_to -1 is checked by the model)
        w.u8(trainable ? 0 : 1);            // flags: bit 0, frozen
        w.zeros(3);
    }
}

// A u32 in [low, high] (a width, a count).
std::uint32_t read_u32_in(Reader& r, const std::string& what, std::uint32_t low, std::uint32_t high) {
    const std::size_t at = r.pos();
    const std::uint32_t v = r.u32(what);
    if (v < low || v > high) {
        r.fail(what + " at byte " + str(at) + " is " + str(v) + " (must be in [" + str(low) + ", " + str(high) + "])");
    }
    return v;
}

double read_finite(Reader& r, const std::string& what) {
    const std::size_t at = r.pos();
    const double v = r.f64(what);
    if (!std::isfinite(v)) r.fail(what + " at byte " + str(at) + " is " + number(v) + " (must be finite)");
    return v;
}

void read_netw(Reader& r, Parsed& p) {
    NetworkSpec& spec = p.spec;
    spec.n_inputs = int(read_u32_in(r, "n_inputs", 1, kMaxInt));
    const std::uint32_t n_layers = read_u32_in(r, "the layer count", 1, std::uint32_t(model_file_max_layers));
    // The index of the layer whose output is the code: a file names it (-1, "the middle", is
    // resolved before a network is saved), so that each network has one encoding.
    spec.code_layer = int(read_u32_in(r, "code_layer", 0, n_layers - 1));
    const std::size_t record_at = r.pos();
    const std::uint32_t record = r.u32("the layer record size");
    if (record != kLayerRecordSize && record != kLayerRecordSize72) {
        r.fail("the layer record size at byte " + str(record_at) + " is " + str(record) + "; version 2 records are " +
               str(kLayerRecordSize) + " bytes (" + str(kLayerRecordSize72) + " in files written before tied weights)");
    }
    r.need_array(n_layers, record, "the layer records");
    spec.layers.resize(n_layers);
    for (std::uint32_t i = 0; i < n_layers; ++i) {
        LayerSpec& layer = spec.layers[i];
        const std::string name = "layers[" + str(i) + "].";
        layer.units = int(read_u32_in(r, name + "units", 1, kMaxInt));
        layer.activation.kind = read_code<Activation>(r, name + "activation");
        layer.initializer = read_code<Initializer>(r, name + "initializer");
        layer.noise = read_code<Noise>(r, name + "noise");
        r.zeros(1, name + "reserved byte");
        layer.activation.alpha = read_finite(r, name + "alpha");
        layer.l1 = read_finite(r, name + "l1");
        layer.l2 = read_finite(r, name + "l2");
        layer.dropout = read_finite(r, name + "dropout");
        layer.noise_level = read_finite(r, name + "noise_level");
        layer.activity_l1 = read_finite(r, name + "activity_l1");
        layer.sparsity_target = read_finite(r, name + "sparsity_target");
        layer.sparsity_weight = read_finite(r, name + "sparsity_weight");
        if (record == kLayerRecordSize72) continue;  // the defaults: no contractive penalty, own W, trainable
        layer.contractive = read_finite(r, name + "contractive");
        layer.tied_to = int(read_u32_in(r, name + "tied_to + 1", 0, i)) - 1;  // an earlier layer, or 0
        const std::size_t flags_at = r.pos();
        const std::uint8_t flags = r.u8(name + "flags");
        if (flags > 1) r.fail(name + "flags at byte " + str(flags_at) + " is " + str(flags) + " (only bit 0, frozen, is defined)");
        layer.trainable = flags == 0;
        r.zeros(3, name + "reserved bytes");
    }
}

// ---- VARC: a variational code (NetworkSpec::variational), present only when enabled ------------

void write_varc(Writer& w, const VariationalSpec& v) {
    const auto& [enabled, beta, kl_warmup_epochs] = v;
    (void)enabled;  // the section's presence
    if (!std::isfinite(beta)) {
        throw std::invalid_argument("variational.beta is " + number(beta) + "; a model file holds finite numbers only");
    }
    w.u32(std::uint32_t(kl_warmup_epochs));
    w.zeros(4);
    w.f64(beta);
}

void read_varc(Reader& r, Parsed& p) {
    VariationalSpec& v = p.spec.variational;
    v.enabled = true;
    v.kl_warmup_epochs = int(read_u32_in(r, "kl_warmup_epochs", 0, kMaxInt));
    r.zeros(4, "reserved bytes");
    v.beta = read_finite(r, "beta");  // its range is the network's check, at the end of HEAD
}

// ---- HEAD: the loss; then the network is built -----------------------------------------------

void write_head(Writer& w, const HeadSpec& head) {
    const auto& [loss, huber_delta] = head;
    if (!std::isfinite(huber_delta)) {
        throw std::invalid_argument("huber_delta is " + number(huber_delta) + "; a model file holds finite numbers only");
    }
    w.u8(file_code(loss));
    w.zeros(3);
    w.f64(huber_delta);
}

// The parameter count of the spec's layers, or nullopt beyond 2^64 (widths are below 2^31, so
// one layer's count, < 2^62 + 2^31, cannot overflow).
std::optional<std::uint64_t> parameter_count(const NetworkSpec& spec) {
    std::uint64_t total = 0, n_in = std::uint64_t(spec.n_inputs);
    for (std::size_t i = 0; i < spec.layers.size(); ++i) {
        const LayerSpec& layer = spec.layers[i];
        const std::uint64_t n_out = std::uint64_t(layer.units);
        const std::uint64_t count = (layer.tied_to >= 0 ? 0 : n_in * n_out) + n_out;  // a tied layer: its b
        if (count > std::numeric_limits<std::uint64_t>::max() - total) return std::nullopt;
        total += count;
        // A variational code layer's 2k outputs give the next layer k inputs.
        n_in = spec.variational.enabled && int(i) == spec.code_layer ? n_out / 2 : n_out;
    }
    return total;
}

void read_head(Reader& r, Parsed& p) {
    p.spec.head.loss = read_code<Loss>(r, "the loss");
    r.zeros(3, "reserved bytes");
    p.spec.head.huber_delta = read_finite(r, "huber_delta");

    // The network is complete: build it, once its weights are known to fit in the rest of the
    // file (PARM, which follows, must hold them), so that the model's buffers cost no more than
    // the file's bytes.
    const std::string network = "the network of NETW (at byte " + str(p.at[kNetw]) + ") and this HEAD";
    const std::optional<std::uint64_t> count = parameter_count(p.spec);
    if (!count) r.fail(network + ": its layer widths give more than 2^64 parameters");
    const std::size_t rest = p.body_end - (r.pos() + r.left());
    if (*count > rest / 4) {
        r.fail(network + " has " + str(*count) + " parameters, more than the " + str(rest) +
               " bytes after HEAD could hold (4 bytes each)");
    }
    try {
        p.model.emplace(p.spec);
    } catch (const std::invalid_argument& e) {
        r.fail(network + " is invalid: " + e.what());
    }
}

// ---- PARM: the parameters ---------------------------------------------------------------

void write_parm(Writer& w, const Model& model) {
    w.u64(model.n_params());
    w.floats(model.params(), model.n_params());
}

void read_parm(Reader& r, Parsed& p) {
    Model& model = *p.model;
    const std::size_t count_at = r.pos();
    const std::uint64_t count = r.u64("the parameter count");
    if (count != model.n_params()) {
        r.fail("the parameter count at byte " + str(count_at) + " is " + str(count) + " but the network has " +
               str(model.n_params()));
    }
    r.need_array(count, 4, "the parameters");
    std::vector<float> values(static_cast<std::size_t>(count));
    const std::size_t values_at = r.pos();
    r.floats(values.data(), values.size());
    if (auto bad = first_non_finite(values.data(), values.size()); !bad.empty()) {
        r.fail("the parameters (from byte " + str(values_at) + "): " + bad);
    }
    try {
        model.set_params(values.data(), values.size());
    } catch (const std::invalid_argument& e) {
        r.fail(std::string("the parameters: ") + e.what());
    }
}

// ---- optimizer settings, as OPTC and OPTS hold them ----------------------------------------

void write_settings(Writer& w, const OptimizerConfig& c) {
    // The numbers go by kSettingFields (model_file_io.h), which must name each of them once.
    [[maybe_unused]] const auto& [kind, learning_rate, beta1, beta2, epsilon, momentum, nesterov, weight_decay, rho] = c;
    static_assert(std::size(kSettingFields) == 7, "kSettingFields lists the 7 numbers of OptimizerConfig");
    w.u8(file_code(kind));
    w.u8(nesterov ? 1 : 0);
    w.zeros(2);
    w.u32(std::uint32_t(std::size(kSettingFields)));
    for (const SettingField& field : kSettingFields) {
        w.u32(field.id);
        w.f64(c.*field.member);
    }
}

std::string known_settings() {
    std::string s;
    for (const SettingField& field : kSettingFields) s += (s.empty() ? "" : ", ") + str(field.id) + " " + field.name;
    return s;
}

OptimizerConfig read_settings(Reader& r, const std::string& what) {
    const std::size_t at = r.pos();
    OptimizerConfig c;
    c.kind = read_code<OptimizerKind>(r, what + ": the optimizer kind");
    const std::size_t flags_at = r.pos();
    const std::uint8_t flags = r.u8(what + ": the flags");
    if (flags > 1) {
        r.fail(what + ": the flags at byte " + str(flags_at) + " are " + std::to_string(flags) +
               " (bit 0 is nesterov; the others must be 0)");
    }
    c.nesterov = flags == 1;
    r.zeros(2, what + ": reserved bytes");
    const std::size_t count_at = r.pos();
    const std::uint32_t count = r.u32(what + ": the number of settings");
    r.need_array(count, 12, what + ": the settings");
    // Every setting this version knows, once each, in the order of their ids.
    const std::size_t n_known = std::size(kSettingFields);
    for (std::uint32_t i = 0; i < count; ++i) {
        const std::size_t id_at = r.pos();
        const std::uint32_t id = r.u32(what + ": a setting's id");
        const SettingField* field = nullptr;
        for (const SettingField& f : kSettingFields) {
            if (f.id == id) field = &f;
        }
        if (!field) {
            r.fail(what + ": setting id " + str(id) + " at byte " + str(id_at) + " is unknown to fastae " +
                   version_string + " (it knows " + known_settings() + "; a newer fastae wrote this file?)");
        }
        if (i >= n_known || field != &kSettingFields[i]) {
            r.fail(what + ": setting id " + str(id) + " (" + field->name + ") at byte " + str(id_at) +
                   " is out of place: the settings are ids " + known_settings() + ", each once, in this order");
        }
        c.*field->member = r.f64(what);
    }
    if (count < n_known) {
        r.fail(what + ": the number of settings at byte " + str(count_at) + " is " + str(count) + "; setting id " +
               str(kSettingFields[count].id) + " (" + kSettingFields[count].name + ") is missing (a version 2 file holds " +
               known_settings() + ")");
    }
    try {
        check_optimizer_settings(c, what + " at byte " + str(at));
    } catch (const std::invalid_argument& e) {
        r.fail(e.what());
    }
    return c;
}

// ---- OPTC: the settings to continue training with --------------------------------------------

void write_optc(Writer& w, const OptimizerConfig& settings) { write_settings(w, settings); }

void read_optc(Reader& r, Parsed& p) { p.settings = read_settings(r, "the settings"); }

// ---- OPTS: the optimizer state ----------------------------------------------------------

void write_opts(Writer& w, const OptimizerState& state) {
    const auto& [config, steps, m, v] = state;
    write_settings(w, config);
    w.u64(std::uint64_t(steps));
    const std::vector<std::string> names = optimizer_slot_names(config.kind);
    w.u32(std::uint32_t(names.size()));
    for (std::size_t k = 0; k < names.size(); ++k) {
        const std::vector<float>& slot = k == 0 ? m : v;
        w.u32(std::uint32_t(names[k].size()));
        w.bytes(names[k].data(), names[k].size());
        w.zeros((4 - names[k].size() % 4) % 4);
        w.u64(slot.size());
        w.floats(slot.data(), slot.size());
    }
}

void read_opts(Reader& r, Parsed& p) {
    Model& model = *p.model;
    OptimizerState state;
    state.config = read_settings(r, "the state's settings");
    const char* kind = name_of(state.config.kind);
    const std::size_t steps_at = r.pos();
    const std::uint64_t steps = r.u64("the step count");
    if (steps > std::uint64_t(std::numeric_limits<std::int64_t>::max())) {
        r.fail("the step count at byte " + str(steps_at) + " is negative (" + std::to_string(std::int64_t(steps)) + ")");
    }
    state.steps = std::int64_t(steps);
    const std::vector<std::string> names = optimizer_slot_names(state.config.kind);
    const std::size_t count_at = r.pos();
    const std::uint32_t n_slots = r.u32("the slot count");
    if (n_slots != names.size()) {
        r.fail("the slot count at byte " + str(count_at) + " is " + str(n_slots) + " but '" + kind + "' has " +
               str(names.size()));
    }
    for (std::size_t k = 0; k < names.size(); ++k) {
        const std::string slot = "slot " + str(k);
        const std::size_t name_at = r.pos();
        const std::uint32_t length = read_u32_in(r, slot + "'s name length", 1, kMaxSlotName);
        r.need(length, slot + "'s name");
        if (length != names[k].size() || !r.equals(names[k])) {
            r.fail(slot + "'s name at byte " + str(name_at + 4) + " is " + quote_bytes(r.text(length)) + " but '" + kind +
                   "' calls its slot " + str(k) + " " + quote_bytes(names[k]));
        }
        r.skip(length);
        r.zeros((4 - length % 4) % 4, slot + "'s padding");
        const std::string what = "slot " + names[k];
        const std::size_t length_at = r.pos();
        const std::uint64_t n = r.u64(what + "'s length");
        if (n != model.n_params()) {
            r.fail(what + "'s length at byte " + str(length_at) + " is " + str(n) + " but the model has " +
                   str(model.n_params()) + " parameters");
        }
        r.need_array(n, 4, what + "'s values");
        std::vector<float>& out = k == 0 ? state.m : state.v;
        out.resize(static_cast<std::size_t>(n));
        const std::size_t values_at = r.pos();
        r.floats(out.data(), out.size());
        if (auto bad = first_non_finite(out.data(), out.size()); !bad.empty()) {
            r.fail(what + " (from byte " + str(values_at) + "): " + bad);
        }
    }
    try {
        model.set_optimizer_state(state);
    } catch (const std::invalid_argument& e) {
        r.fail(std::string("the optimizer state is invalid: ") + e.what());
    }
}

// ---- META: the metadata -----------------------------------------------------------------

void write_meta(Writer& w, const std::string& metadata) { w.bytes(metadata.data(), metadata.size()); }

void read_meta(Reader& r, Parsed& p) {
    if (r.left() == 0) r.fail("it is empty (a file without metadata has no META section)");
    if (r.left() > model_file_max_metadata) {
        r.fail("it holds " + str(r.left()) + " bytes of metadata, more than the " + str(model_file_max_metadata) +
               " a model file may hold");
    }
    p.metadata = r.text(r.left());
}

// ---- the sections ------------------------------------------------------------------------

struct SectionKind {
    std::uint32_t tag;
    const char* name;
    // Required: flag bit 0 set, and the section must be present. The others are written with
    // flags 0 and may be absent.
    bool required;
    void (*read)(Reader&, Parsed&);
    // Written with the 'required' flag although it may be absent (VARC: a reader that does not
    // know it must refuse the file rather than build another network).
    bool flagged = false;
    std::uint32_t flags() const { return required || flagged ? kRequired : 0; }
};

// The known sections, in the order a file holds them.
constexpr SectionKind kSections[] = {
    {make_tag("NETW"), "NETW", true, read_netw},
    {make_tag("VARC"), "VARC", false, read_varc, true},
    {make_tag("HEAD"), "HEAD", true, read_head},
    {make_tag("PARM"), "PARM", true, read_parm},
    {make_tag("OPTC"), "OPTC", true, read_optc},
    {make_tag("OPTS"), "OPTS", false, read_opts},
    {make_tag("META"), "META", false, read_meta},
};
static_assert(std::size(kSections) == kSectionCount);

std::string section_order() {
    std::string s;
    for (const SectionKind& k : kSections) s += (s.empty() ? "" : ", ") + std::string(k.name);
    return s;
}

// Writes one section: its header, the payload `write` appends, and then its length.
template <typename Write>
void write_section(Writer& w, std::size_t kind, Write&& write) {
    w.u32(kSections[kind].tag);
    w.u32(kSections[kind].flags());
    const std::size_t length_at = w.size();
    w.u64(0);
    write();
    w.patch_u64(length_at, w.size() - length_at - 8);
}

// Fails unless every required section before `upto` (an index into kSections) has been read.
void check_required_before(const Parsed& p, std::size_t from, std::size_t upto, const std::string& where) {
    for (std::size_t j = from; j < upto; ++j) {
        if (kSections[j].required && p.at[j] == 0) {
            throw ModelFileError("the required section " + std::string(kSections[j].name) + " is missing (" + where +
                                 "; the sections are " + section_order() + ")");
        }
    }
}

}  // namespace

void write_body_v2(Writer& w, const Model& model, const OptimizerConfig& settings, const OptimizerState* state,
                   const std::string& metadata) {
    write_section(w, kNetw, [&] { write_netw(w, model); });
    if (model.spec().variational.enabled) write_section(w, kVarc, [&] { write_varc(w, model.spec().variational); });
    write_section(w, kHead, [&] { write_head(w, model.spec().head); });
    write_section(w, kParm, [&] { write_parm(w, model); });
    write_section(w, kOptc, [&] { write_optc(w, settings); });
    if (state) write_section(w, kOpts, [&] { write_opts(w, *state); });
    if (!metadata.empty()) write_section(w, kMeta, [&] { write_meta(w, metadata); });
}

ModelFile read_body_v2(const unsigned char* b, std::size_t size) {
    Parsed p;
    p.body_end = size - kTrailerSize;
    std::size_t pos = kHeaderSize;
    std::size_t next = 0;  // index into kSections of the first known section that may still come
    while (pos < p.body_end) {
        const std::size_t at = pos;
        Reader h(b, p.body_end, pos);
        h.need(kSectionHeaderSize, "a section header");
        const std::uint32_t tag = h.u32("a section's tag");
        const std::uint32_t flags = h.u32("a section's flags");
        const std::uint64_t length = h.u64("a section's length");
        std::size_t kind = 0;
        while (kind < std::size(kSections) && kSections[kind].tag != tag) ++kind;
        const bool known = kind < std::size(kSections);
        const std::string name = known ? kSections[kind].name : tag_text(tag);
        const std::string context = "section " + name + " at byte " + str(at) + ": ";
        if (flags & ~kRequired) {
            throw ModelFileError(context + "its flags at byte " + str(at + 4) + " are " + hex32(flags) +
                                 " (bit 0 is 'required'; the others must be 0)");
        }
        if (length > h.left()) {
            throw ModelFileError(context + "its length at byte " + str(at + 8) + " is " + str(length) + " but only " +
                                 str(h.left()) + " bytes remain before the checksum");
        }
        pos = h.pos() + std::size_t(length);
        if (!known) {
            if (flags & kRequired) {
                throw ModelFileError(context + "it is marked required, and fastae " + version_string +
                                     " does not know it (a newer fastae wrote this file?)");
            }
            continue;  // an optional section this version does not know: skipped
        }
        const SectionKind& s = kSections[kind];
        if (p.at[kind] != 0) {
            throw ModelFileError(context + "a second " + s.name + " section (the first is at byte " + str(p.at[kind]) +
                                 ")");
        }
        if (kind < next) {
            throw ModelFileError(context + "it comes after " + kSections[next - 1].name + " (at byte " +
                                 str(p.at[next - 1]) + "); the sections are " + section_order() + ", in this order");
        }
        if ((flags & kRequired) != s.flags()) {
            throw ModelFileError(context + "its flags at byte " + str(at + 4) + " are " + hex32(flags) + "; " + s.name +
                                 " is written with " + hex32(s.flags()));
        }
        check_required_before(p, next, kind, "before " + std::string(s.name) + " at byte " + str(at));
        Reader r(b, pos, h.pos(), context, "before the end of the section");
        s.read(r, p);
        if (r.left() != 0) {
            r.fail(str(r.left()) + " unexpected bytes at byte " + str(r.pos()) + ", after the section's last field");
        }
        p.at[kind] = at;
        next = kind + 1;
    }
    check_required_before(p, next, std::size(kSections), "the sections end at byte " + str(p.body_end));
    ModelFile file{std::move(*p.model), p.settings, std::move(p.metadata)};
    file.version = 2;
    return file;
}

}  // namespace fastae::detail
