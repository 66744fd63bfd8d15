// model_file_io.h -- what the model-file reader and writer share (internal): the header's
// constants, little-endian reads and writes, a growing byte Writer, a bounds-checked Reader, the
// file codes of the vocabulary tables, and the optimizer-settings check. Used by model_file.cpp
// (the dispatcher: header, checksum, version), model_file_v1.cpp (version 1, read only) and
// model_file_sections.cpp (version 2's sections). Byte layouts: docs/model-format.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "fastae/config.h"
#include "fastae/model_file.h"

namespace fastae::detail {

inline constexpr unsigned char kMagic[8] = {0x89, 'F', 'A', 'S', 'T', 'A', 'E', 0x0A};
inline constexpr std::uint32_t kByteOrderMark = 0x01020304u;
inline constexpr std::size_t kHeaderSize = 24;   // magic, version, byte-order mark, body size
inline constexpr std::size_t kTrailerSize = 4;   // CRC-32
inline constexpr std::size_t kBodySizeAt = 16;   // where the header holds the body size (u64)

bool host_is_little_endian();

inline std::uint32_t le32(const unsigned char* p) {
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
}
inline std::uint64_t le64(const unsigned char* p) { return std::uint64_t(le32(p)) | std::uint64_t(le32(p + 4)) << 32; }

std::string hex32(std::uint32_t v);
inline std::string str(std::uint64_t v) { return std::to_string(v); }
// A double as an error message shows it: %g, so 1e-08 and nan read as such.
std::string number(double v);

// ---- writing ------------------------------------------------------------------------------

// Appends little-endian fields to a buffer that grows as needed; patch_* fill in a size once it
// is known (the header's body size, a section's length).
class Writer {
public:
    void reserve(std::size_t n) { bytes_.reserve(n); }
    void u8(std::uint8_t v) { bytes_.push_back(v); }
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
    void zeros(std::size_t n) { bytes_.insert(bytes_.end(), n, 0); }
    void bytes(const void* p, std::size_t n) {
        const auto* b = static_cast<const unsigned char*>(p);
        if (n) bytes_.insert(bytes_.end(), b, b + n);
    }
    void floats(const float* v, std::size_t n);
    void patch_u64(std::size_t at, std::uint64_t v) {
        for (int i = 0; i < 8; ++i) bytes_[at + std::size_t(i)] = std::uint8_t(v >> (8 * i));
    }
    std::size_t size() const { return bytes_.size(); }
    const std::vector<std::uint8_t>& data() const { return bytes_; }
    std::vector<std::uint8_t> take() { return std::move(bytes_); }

private:
    std::vector<std::uint8_t> bytes_;
};

// ---- reading ------------------------------------------------------------------------------

// Reads fields in order from [pos, end) of a buffer; every read checks the bytes that remain and
// every error is a ModelFileError that starts with `context` (version 2: "section NETW at byte
// 24: "; version 1: nothing) and says what the limit is (`limit`: "before the checksum", "before
// the end of the section").
class Reader {
public:
    Reader(const unsigned char* data, std::size_t end, std::size_t pos, std::string context = {},
           std::string limit = "before the checksum")
        : data_(data), end_(end), pos_(pos), context_(std::move(context)), limit_(std::move(limit)) {}

    std::size_t pos() const { return pos_; }
    std::size_t left() const { return end_ - pos_; }
    const std::string& context() const { return context_; }

    [[noreturn]] void fail(const std::string& what) const;
    void need(std::size_t n, const std::string& what) const;
    // count values of elem_size bytes: checked by division, so no count can overflow.
    void need_array(std::uint64_t count, std::size_t elem_size, const std::string& what) const;
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
    // n bytes that must all be 0 (reserved bytes, padding).
    void zeros(std::size_t n, const std::string& what);
    // A byte that must be 0 or 1.
    bool flag(const std::string& what);
    // count floats, already checked with need_array.
    void floats(float* out, std::size_t count);
    // n bytes, already checked with need.
    std::string text(std::size_t n) {
        std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
        pos_ += n;
        return s;
    }
    bool equals(const std::string& bytes) const {
        return bytes.size() <= left() && std::memcmp(data_ + pos_, bytes.data(), bytes.size()) == 0;
    }
    void skip(std::size_t n) { pos_ += n; }

private:
    const unsigned char* data_;
    std::size_t end_;
    std::size_t pos_;
    std::string context_;
    std::string limit_;
};

// First non-finite value of v, as "value k is nan"; empty when all are finite.
std::string first_non_finite(const float* v, std::size_t n);

// ---- the vocabulary's file codes (traits_of(x).file_code), read back by scanning the tables --

template <typename Enum>
const std::vector<Enum>& every_value();
template <>
inline const std::vector<Activation>& every_value<Activation>() { return all_activations(); }
template <>
inline const std::vector<Loss>& every_value<Loss>() { return all_losses(); }
template <>
inline const std::vector<OptimizerKind>& every_value<OptimizerKind>() { return all_optimizers(); }
template <>
inline const std::vector<Initializer>& every_value<Initializer>() { return all_initializers(); }
template <>
inline const std::vector<Noise>& every_value<Noise>() { return all_noises(); }

template <typename Enum>
std::uint8_t file_code(Enum value) {
    return traits_of(value).file_code;
}

template <typename Enum>
std::optional<Enum> from_file_code(std::uint32_t code) {
    for (Enum value : every_value<Enum>()) {
        if (traits_of(value).file_code == code) return value;
    }
    return std::nullopt;
}

// "0 linear, 1 relu, ...": the codes a reader knows, for error messages.
template <typename Enum>
std::string known_codes() {
    std::string s;
    for (Enum value : every_value<Enum>()) {
        s += (s.empty() ? "" : ", ") + std::to_string(traits_of(value).file_code) + " " + name_of(value);
    }
    return s;
}

// A one-byte code of the vocabulary; an unknown code fails naming the byte and the known codes.
template <typename Enum>
Enum read_code(Reader& r, const std::string& what) {
    const std::size_t at = r.pos();
    const std::uint8_t code = r.u8(what);
    const std::optional<Enum> value = from_file_code<Enum>(code);
    if (!value) {
        r.fail(what + " at byte " + str(at) + " has code " + std::to_string(code) + " (known codes: " +
               known_codes<Enum>() + ")");
    }
    return *value;
}

// ---- optimizer settings -------------------------------------------------------------------

// The numeric optimizer settings: their ids in version 2 files (docs/model-format.md, OPTC) and
// names. A new OptimizerConfig number is one more entry here, with a new id; ids are never reused
// (write_settings, in model_file_sections.cpp, fails to compile until a new field is placed).
struct SettingField {
    std::uint32_t id;
    const char* name;
    double OptimizerConfig::*member;
};
inline constexpr SettingField kSettingFields[] = {
    {1, "learning_rate", &OptimizerConfig::learning_rate},
    {2, "beta1", &OptimizerConfig::beta1},
    {3, "beta2", &OptimizerConfig::beta2},
    {4, "epsilon", &OptimizerConfig::epsilon},
    {5, "momentum", &OptimizerConfig::momentum},
    {6, "weight_decay", &OptimizerConfig::weight_decay},
    {7, "rho", &OptimizerConfig::rho},
};

// Settings as a file may hold them: in range (validate) and every number finite, including those
// the kind ignores, so that what a writer accepts a reader accepts too. Throws
// std::invalid_argument starting with `what`.
void check_optimizer_settings(const OptimizerConfig& c, const std::string& what);

// ---- the versions' bodies ------------------------------------------------------------------

// Each reads the body of a file whose header and checksum have been checked: bytes [24, size - 4)
// of b. ModelFileError on anything else wrong.
ModelFile read_body_v1(const unsigned char* b, std::size_t size);
ModelFile read_body_v2(const unsigned char* b, std::size_t size);

// Appends version 2's sections (the body) for a model whose options have been checked.
void write_body_v2(Writer& w, const Model& model, const OptimizerConfig& settings, const OptimizerState* state,
                   const std::string& metadata);

}  // namespace fastae::detail
