// model_file.cpp -- fastae's model file (model_file.h; byte layout in docs/model-format.md): the
// writer, the reader that checks every field before it allocates anything, and save/load.
//
// The reader trusts nothing: the header is checked against the real size, the checksum against
// the content, and every count against the bytes that remain, with overflow-safe arithmetic, so
// a hostile file can make it throw ModelFileError but never allocate more than the file holds.
#include "fastae/model_file.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "fastae/version.h"
#include "crc32.h"
#include "file_io.h"

namespace fastae {

namespace {

constexpr unsigned char kMagic[8] = {0x89, 'F', 'A', 'S', 'T', 'A', 'E', 0x0A};
constexpr std::uint32_t kByteOrderMark = 0x01020304u;
constexpr std::size_t kHeaderSize = 24;   // magic, version, byte-order mark, body size
constexpr std::size_t kTrailerSize = 4;   // CRC-32
constexpr std::size_t kOptimizerBlockSize = 44;

// The enums' codes in a file: fixed by the format (index = code), whatever the C++ enum values.
constexpr Activation kActivationCodes[] = {Activation::linear, Activation::relu, Activation::sigmoid,
                                           Activation::tanh};
constexpr Loss kLossCodes[] = {Loss::mse, Loss::bce};
constexpr OptimizerKind kOptimizerCodes[] = {OptimizerKind::adam, OptimizerKind::sgd};

template <typename Enum, std::size_t N>
std::uint8_t code_of(Enum value, const Enum (&codes)[N]) {
    for (std::size_t i = 0; i < N; ++i) {
        if (codes[i] == value) return std::uint8_t(i);
    }
    throw std::invalid_argument("model file: an enum value has no file code");
}

bool host_is_little_endian() {
    const std::uint32_t one = 1;
    unsigned char first;
    std::memcpy(&first, &one, 1);
    return first == 1;
}

std::uint32_t le32(const unsigned char* p) {
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
}
std::uint64_t le64(const unsigned char* p) { return std::uint64_t(le32(p)) | std::uint64_t(le32(p + 4)) << 32; }

std::string hex32(std::uint32_t v) {
    char s[16];
    std::snprintf(s, sizeof s, "0x%08x", static_cast<unsigned>(v));
    return s;
}

std::string str(std::uint64_t v) { return std::to_string(v); }

// ---- writing ------------------------------------------------------------------------------

class Writer {
public:
    explicit Writer(std::size_t size) : bytes_(size) {}
    void u8(std::uint8_t v) { bytes_[pos_++] = v; }
    void u32(std::uint32_t v) {
        for (int i = 0; i < 4; ++i) u8(std::uint8_t(v >> (8 * i)));
    }
    void u64(std::uint64_t v) {
        for (int i = 0; i < 8; ++i) u8(std::uint8_t(v >> (8 * i)));
    }
    void f64(double v) {
        std::uint64_t bits;
        std::memcpy(&bits, &v, 8);
        u64(bits);
    }
    void bytes(const void* p, std::size_t n) {
        if (n) std::memcpy(bytes_.data() + pos_, p, n);
        pos_ += n;
    }
    void floats(const float* v, std::size_t n) {
        if (host_is_little_endian()) {
            bytes(v, 4 * n);
            return;
        }
        for (std::size_t i = 0; i < n; ++i) {
            std::uint32_t bits;
            std::memcpy(&bits, v + i, 4);
            u32(bits);
        }
    }
    std::size_t pos() const { return pos_; }
    std::vector<std::uint8_t>& data() { return bytes_; }

private:
    std::vector<std::uint8_t> bytes_;
    std::size_t pos_ = 0;
};

// Settings as a file may hold them: in range (validate) and every number finite, including the
// ones the kind ignores, so that what a writer accepts a reader accepts too.
void check_optimizer_settings(const OptimizerConfig& c, const std::string& what) {
    const std::pair<const char*, double> fields[] = {{"learning_rate", c.learning_rate}, {"beta1", c.beta1},
                                                     {"beta2", c.beta2},                 {"epsilon", c.epsilon},
                                                     {"momentum", c.momentum}};
    for (const auto& [name, value] : fields) {
        if (!std::isfinite(value)) {
            throw std::invalid_argument(what + ": " + name + " must be finite, got " + std::to_string(value));
        }
    }
    try {
        validate(c);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(what + ": " + e.what());
    }
}

void write_optimizer(Writer& w, const OptimizerConfig& c) {
    w.u8(code_of(c.kind, kOptimizerCodes));
    w.u8(c.nesterov ? 1 : 0);
    w.u8(0);
    w.u8(0);
    w.f64(c.learning_rate);
    w.f64(c.beta1);
    w.f64(c.beta2);
    w.f64(c.epsilon);
    w.f64(c.momentum);
}

// ---- reading ------------------------------------------------------------------------------

// Reads fields in order from [data, data + size); every read checks the bytes that remain.
class Reader {
public:
    Reader(const unsigned char* data, std::size_t size, std::size_t pos) : data_(data), size_(size), pos_(pos) {}

    std::size_t pos() const { return pos_; }
    std::size_t left() const { return size_ - pos_; }

    void need(std::size_t n, const std::string& what) const {
        if (n > left()) {
            throw ModelFileError("truncated content: " + what + " at byte " + str(pos_) + " needs " + str(n) +
                                 " bytes but only " + str(left()) + " remain before the checksum");
        }
    }
    // count values of elem_size bytes: checked without multiplying, so no count can overflow.
    void need_array(std::uint64_t count, std::size_t elem_size, const std::string& what) const {
        if (count > left() / elem_size) {
            throw ModelFileError(what + " at byte " + str(pos_) + " claims " + str(count) + " values of " +
                                 str(elem_size) + " bytes but only " + str(left()) +
                                 " bytes remain before the checksum");
        }
    }
    std::uint8_t u8(const std::string& what) {
        need(1, what);
        return data_[pos_++];
    }
    std::uint32_t u32(const std::string& what) {
        need(4, what);
        pos_ += 4;
        return le32(data_ + pos_ - 4);
    }
    std::uint64_t u64(const std::string& what) {
        need(8, what);
        pos_ += 8;
        return le64(data_ + pos_ - 8);
    }
    double f64(const std::string& what) {
        const std::uint64_t bits = u64(what);
        double v;
        std::memcpy(&v, &bits, 8);
        return v;
    }
    void zeros(std::size_t n, const std::string& what) {
        need(n, what);
        for (std::size_t i = 0; i < n; ++i) {
            if (data_[pos_ + i] != 0) {
                throw ModelFileError(what + " at byte " + str(pos_ + i) + " must be 0, got " +
                                     std::to_string(data_[pos_ + i]));
            }
        }
        pos_ += n;
    }
    // count floats, already checked with need_array.
    void floats(float* out, std::size_t count) {
        if (host_is_little_endian()) {
            if (count) std::memcpy(out, data_ + pos_, 4 * count);
        } else {
            for (std::size_t i = 0; i < count; ++i) {
                const std::uint32_t bits = le32(data_ + pos_ + 4 * i);
                std::memcpy(out + i, &bits, 4);
            }
        }
        pos_ += 4 * count;
    }
    std::string text(std::size_t n) {
        std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
        pos_ += n;
        return s;
    }

private:
    const unsigned char* data_;
    std::size_t size_;
    std::size_t pos_;
};

template <typename Enum, std::size_t N>
Enum read_code(Reader& r, const Enum (&codes)[N], const std::string& what) {
    const std::size_t at = r.pos();
    const std::uint8_t code = r.u8(what);
    if (code >= N) {
        throw ModelFileError(what + " at byte " + str(at) + " has code " + std::to_string(code) +
                             " (known codes: 0 to " + std::to_string(N - 1) + ")");
    }
    return codes[code];
}

bool read_flag(Reader& r, const std::string& what) {
    const std::size_t at = r.pos();
    const std::uint8_t v = r.u8(what);
    if (v > 1) throw ModelFileError(what + " at byte " + str(at) + " must be 0 or 1, got " + std::to_string(v));
    return v == 1;
}

OptimizerConfig read_optimizer(Reader& r, const std::string& what) {
    const std::size_t at = r.pos();
    r.need(kOptimizerBlockSize, what);
    OptimizerConfig c;
    c.kind = read_code(r, kOptimizerCodes, what + ": optimizer kind");
    c.nesterov = read_flag(r, what + ": nesterov");
    r.zeros(2, what + ": reserved bytes");
    c.learning_rate = r.f64(what);
    c.beta1 = r.f64(what);
    c.beta2 = r.f64(what);
    c.epsilon = r.f64(what);
    c.momentum = r.f64(what);
    try {
        check_optimizer_settings(c, what + " at byte " + str(at));
    } catch (const std::invalid_argument& e) {
        throw ModelFileError(e.what());
    }
    return c;
}

// First non-finite value of v, as "value k is nan"; empty when all are finite.
std::string first_non_finite(const std::vector<float>& v) {
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (!std::isfinite(v[i])) return "value " + str(i) + " is " + std::to_string(v[i]);
    }
    return {};
}

// The header against the size of the whole file: magic first (so that a file of another kind
// says so), then version, byte order, and the body size the file must match exactly.
// `header` holds min(total_size, kHeaderSize) bytes.
void check_header(const unsigned char* header, std::size_t total_size) {
    const std::size_t have = std::min(total_size, sizeof kMagic);
    if (std::memcmp(header, kMagic, have) != 0) {
        std::string first;
        for (std::size_t i = 0; i < have; ++i) {
            char b[4];
            std::snprintf(b, sizeof b, "%02x ", unsigned(header[i]));
            first += b;
        }
        throw ModelFileError("not a fastae model file (bad magic: it starts with " + first +
                             "where a model file starts with 89 46 41 53 54 41 45 0a)");
    }
    if (total_size < kHeaderSize + kTrailerSize) {
        throw ModelFileError("truncated at byte " + str(total_size) + ": a model file has at least " +
                             str(kHeaderSize + kTrailerSize) + " bytes");
    }
    const std::uint32_t version = le32(header + 8);
    if (version != model_file_version) {
        throw ModelFileError("unsupported model file version " + str(version) + " (this fastae " +
                             version_string + " reads version " + str(model_file_version) + ")");
    }
    const std::uint32_t mark = le32(header + 12);
    if (mark != kByteOrderMark) {
        throw ModelFileError("bad byte-order mark " + hex32(mark) + " at byte 12 (expected " + hex32(kByteOrderMark) +
                             (mark == 0x04030201u ? ": the file was written big-endian" : "") + ")");
    }
    const std::uint64_t body = le64(header + 16);
    const std::uint64_t actual_body = total_size - kHeaderSize - kTrailerSize;
    if (body > actual_body) {
        throw ModelFileError("truncated at byte " + str(total_size) + ": the header announces " + str(body) +
                             " bytes of content, the file holds " + str(actual_body) + " (plus 28 of header and checksum)");
    }
    if (body < actual_body) {
        throw ModelFileError(str(actual_body - body) + " unexpected bytes after the end of the model file (at byte " +
                             str(kHeaderSize + body + kTrailerSize) + ")");
    }
}

ModelFile parse(const unsigned char* b, std::size_t size) {
    check_header(b, size);
    const std::uint32_t stored = le32(b + size - kTrailerSize);
    const std::uint32_t computed = detail::crc32(b, size - kTrailerSize);
    if (stored != computed) {
        throw ModelFileError("checksum mismatch: the file stores CRC-32 " + hex32(stored) + ", its content gives " +
                             hex32(computed) + " (the file is corrupted)");
    }
    Reader r(b, size - kTrailerSize, kHeaderSize);

    // The network.
    const std::size_t widths_at = r.pos();
    const std::uint32_t n_widths = r.u32("the number of layer widths");
    if (n_widths < 2 || n_widths > model_file_max_widths) {
        throw ModelFileError("the number of layer widths at byte " + str(widths_at) + " is " + str(n_widths) +
                             " (must be in [2, " + str(model_file_max_widths) + "])");
    }
    r.need_array(n_widths, 4, "the layer widths");
    NetworkConfig config;
    config.layer_sizes.resize(n_widths);
    for (std::uint32_t i = 0; i < n_widths; ++i) {
        const std::size_t at = r.pos();
        const std::uint32_t w = r.u32("a layer width");
        if (w < 1 || w > std::uint32_t(std::numeric_limits<int>::max())) {
            throw ModelFileError("layer width " + str(i) + " at byte " + str(at) + " is " + str(w) +
                                 " (must be in [1, 2147483647])");
        }
        config.layer_sizes[i] = int(w);
    }
    config.activation = read_code(r, kActivationCodes, "the activation");
    config.output_activation = read_code(r, kActivationCodes, "the output activation");
    config.loss = read_code(r, kLossCodes, "the loss");
    r.zeros(1, "a reserved byte");
    const OptimizerConfig settings = read_optimizer(r, "the optimizer settings");

    // The parameter count the widths imply, overflow-checked, must be the one stored and must fit
    // in the bytes left: only then is anything the size of the model allocated.
    std::uint64_t expected = 0;
    for (std::uint32_t i = 0; i + 1 < n_widths; ++i) {
        const std::uint64_t n_in = std::uint64_t(config.layer_sizes[i]), n_out = std::uint64_t(config.layer_sizes[i + 1]);
        const std::uint64_t layer = n_in * n_out + n_out;  // < 2^62 + 2^31: widths are below 2^31
        if (layer > std::numeric_limits<std::uint64_t>::max() - expected) {
            throw ModelFileError("the layer widths give more than 2^64 parameters");
        }
        expected += layer;
    }
    const std::size_t count_at = r.pos();
    const std::uint64_t n_params = r.u64("the parameter count");
    if (n_params != expected) {
        throw ModelFileError("the parameter count at byte " + str(count_at) + " is " + str(n_params) +
                             " but the layer widths give " + str(expected));
    }
    r.need_array(n_params, 4, "the weights");
    std::optional<Model> model;
    try {
        model.emplace(config);
    } catch (const std::invalid_argument& e) {
        throw ModelFileError(std::string("the network is invalid: ") + e.what());
    }
    std::vector<float> values(static_cast<std::size_t>(n_params));
    const std::size_t weights_at = r.pos();
    r.floats(values.data(), values.size());
    if (auto bad = first_non_finite(values); !bad.empty()) {
        throw ModelFileError("the weights (from byte " + str(weights_at) + "): " + bad);
    }
    model->set_params(values.data(), values.size());

    // The optimizer state.
    if (read_flag(r, "the optimizer-state flag")) {
        r.zeros(3, "reserved bytes");
        OptimizerState state;
        state.config = read_optimizer(r, "the optimizer state's settings");
        const std::size_t steps_at = r.pos();
        const std::uint64_t steps = r.u64("the optimizer step count");
        if (steps > std::uint64_t(std::numeric_limits<std::int64_t>::max())) {
            throw ModelFileError("the optimizer step count at byte " + str(steps_at) + " is negative");
        }
        state.steps = std::int64_t(steps);
        const bool adam = state.config.kind == OptimizerKind::adam;
        for (int k = 0; k < 2; ++k) {
            const std::string name = k == 0 ? "the optimizer state m" : "the optimizer state v";
            const std::size_t at = r.pos();
            const std::uint64_t count = r.u64(name + "'s length");
            const std::uint64_t want = k == 0 || adam ? n_params : 0;
            if (count != want) {
                throw ModelFileError(name + "'s length at byte " + str(at) + " is " + str(count) + "; expected " +
                                     str(want));
            }
            r.need_array(count, 4, name);
            std::vector<float>& out = k == 0 ? state.m : state.v;
            out.resize(static_cast<std::size_t>(count));
            r.floats(out.data(), out.size());
        }
        try {
            model->set_optimizer_state(state);
        } catch (const std::invalid_argument& e) {
            throw ModelFileError(e.what());
        }
    } else {
        r.zeros(3, "reserved bytes");
    }

    // The metadata, and nothing after it.
    const std::size_t meta_at = r.pos();
    const std::uint32_t meta_size = r.u32("the metadata length");
    if (meta_size > model_file_max_metadata) {
        throw ModelFileError("the metadata length at byte " + str(meta_at) + " is " + str(meta_size) +
                             " (at most " + str(model_file_max_metadata) + ")");
    }
    r.need(meta_size, "the metadata");
    std::string metadata = r.text(meta_size);
    if (r.left() != 0) {
        throw ModelFileError(str(r.left()) + " unexpected bytes between the metadata and the checksum (at byte " +
                             str(r.pos()) + ")");
    }
    return ModelFile{std::move(*model), settings, std::move(metadata)};
}

}  // namespace

std::vector<std::uint8_t> model_to_bytes(const Model& model, const SaveOptions& options) {
    const OptimizerState* state =
        options.include_optimizer_state && model.has_optimizer_state() ? &model.optimizer_state() : nullptr;
    const OptimizerConfig settings =
        options.optimizer ? *options.optimizer : state ? state->config : OptimizerConfig{};
    check_optimizer_settings(settings, "the optimizer settings");
    if (state) check_optimizer_settings(state->config, "the optimizer state's settings");
    if (options.metadata.size() > model_file_max_metadata) {
        throw std::invalid_argument("metadata has " + str(options.metadata.size()) + " bytes; at most " +
                                    str(model_file_max_metadata) + " fit in a model file");
    }
    const auto& sizes = model.config().layer_sizes;
    const std::size_t n_params = model.n_params();
    std::size_t body = 4 + 4 * sizes.size() + 4 + kOptimizerBlockSize + 8 + 4 * n_params + 4;
    if (state) body += kOptimizerBlockSize + 8 + 8 + 4 * state->m.size() + 8 + 4 * state->v.size();
    body += 4 + options.metadata.size();

    Writer w(kHeaderSize + body + kTrailerSize);
    w.bytes(kMagic, sizeof kMagic);
    w.u32(model_file_version);
    w.u32(kByteOrderMark);
    w.u64(body);
    w.u32(std::uint32_t(sizes.size()));
    for (int s : sizes) w.u32(std::uint32_t(s));
    w.u8(code_of(model.config().activation, kActivationCodes));
    w.u8(code_of(model.config().output_activation, kActivationCodes));
    w.u8(code_of(model.config().loss, kLossCodes));
    w.u8(0);
    write_optimizer(w, settings);
    w.u64(n_params);
    w.floats(model.params(), n_params);
    w.u8(state ? 1 : 0);
    w.u8(0);
    w.u8(0);
    w.u8(0);
    if (state) {
        write_optimizer(w, state->config);
        w.u64(std::uint64_t(state->steps));
        w.u64(state->m.size());
        w.floats(state->m.data(), state->m.size());
        w.u64(state->v.size());
        w.floats(state->v.data(), state->v.size());
    }
    w.u32(std::uint32_t(options.metadata.size()));
    w.bytes(options.metadata.data(), options.metadata.size());
    w.u32(detail::crc32(w.data().data(), w.pos()));
    return std::move(w.data());
}

ModelFile model_from_bytes(const void* data, std::size_t size) {
    if (data == nullptr && size > 0) throw std::invalid_argument("model_from_bytes: data is null");
    static const unsigned char empty = 0;
    try {
        return parse(size ? static_cast<const unsigned char*>(data) : &empty, size);
    } catch (const ModelFileError& e) {
        throw ModelFileError(std::string("model file: ") + e.what());
    }
}

void save_model(const Model& model, const std::filesystem::path& path, const SaveOptions& options) {
    const std::vector<std::uint8_t> bytes = model_to_bytes(model, options);
    detail::replace_file_atomically(path, bytes.data(), bytes.size());
}

ModelFile load_model(const std::filesystem::path& path) {
    const detail::ReadOnlyFile file(path);
    try {
        // The header first: the file is read whole only once its size is the one announced.
        unsigned char header[kHeaderSize] = {};
        const std::size_t head = std::min(file.size(), kHeaderSize);
        file.read_at(0, header, head);
        check_header(header, file.size());
        std::vector<unsigned char> bytes(file.size());
        file.read_at(0, bytes.data(), bytes.size());
        return parse(bytes.data(), bytes.size());
    } catch (const ModelFileError& e) {
        throw ModelFileError("model file " + path.string() + ": " + e.what());
    }
}

}  // namespace fastae
