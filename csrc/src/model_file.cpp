// model_file.cpp -- fastae's model file (model_file.h; byte layout in docs/model-format.md): the
// header and checksum every version shares, the version switch, the writer's frame, and
// save/load. The bodies are read by model_file_v1.cpp (version 1, frozen) and
// model_file_sections.cpp (version 2, which is also what the writer writes).
//
// The reader trusts nothing: the header is checked against the real size, the checksum against
// the content, and every count against the bytes that remain, with overflow-safe arithmetic, so
// a hostile file can make it throw ModelFileError but never allocate more than the file holds.
#include "fastae/model_file.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "crc32.h"
#include "fastae/version.h"
#include "file_io.h"
#include "model_file_io.h"

namespace fastae {

namespace {

using detail::hex32;
using detail::kHeaderSize;
using detail::kTrailerSize;
using detail::le32;
using detail::le64;
using detail::str;

// "1 and 2", "1, 2 and 3": the versions this library reads.
std::string versions_read() {
    std::string s;
    for (std::uint32_t v = model_file_oldest_version; v <= model_file_version; ++v) {
        s += (v == model_file_oldest_version ? "" : v == model_file_version ? " and " : ", ") + str(v);
    }
    return s;
}

// The header against the size of the whole file: magic first (so that a file of another kind
// says so), then version, byte order, and the body size the file must match exactly.
// `header` holds min(total_size, kHeaderSize) bytes.
void check_header(const unsigned char* header, std::size_t total_size) {
    const std::size_t have = std::min(total_size, sizeof detail::kMagic);
    if (std::memcmp(header, detail::kMagic, have) != 0) {
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
    if (version < model_file_oldest_version || version > model_file_version) {
        throw ModelFileError("unsupported model file version " + str(version) + " (this fastae " + version_string +
                             " reads versions " + versions_read() + ")");
    }
    const std::uint32_t mark = le32(header + 12);
    if (mark != detail::kByteOrderMark) {
        throw ModelFileError("bad byte-order mark " + hex32(mark) + " at byte 12 (expected " +
                             hex32(detail::kByteOrderMark) +
                             (mark == 0x04030201u ? ": the file was written big-endian" : "") + ")");
    }
    const std::uint64_t body = le64(header + detail::kBodySizeAt);
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
    switch (le32(b + 8)) {
        case 1: return detail::read_body_v1(b, size);
        default: return detail::read_body_v2(b, size);  // check_header allows 1 and 2 only
    }
}

}  // namespace

std::vector<std::uint8_t> model_to_bytes(const Model& model, const SaveOptions& options) {
    const OptimizerState* state =
        options.include_optimizer_state && model.has_optimizer_state() ? &model.optimizer_state() : nullptr;
    const OptimizerConfig settings =
        options.optimizer ? *options.optimizer : state ? state->config : OptimizerConfig{};
    detail::check_optimizer_settings(settings, "the optimizer settings");
    if (state) detail::check_optimizer_settings(state->config, "the optimizer state's settings");
    if (options.metadata.size() > model_file_max_metadata) {
        throw std::invalid_argument("metadata has " + str(options.metadata.size()) + " bytes; at most " +
                                    str(model_file_max_metadata) + " fit in a model file");
    }
    // Room for everything, so the buffer does not grow by copies: the arrays (parameters and the
    // state's slots), the metadata, the layer records, and headers and settings.
    const std::size_t n_slots = state ? 2 : 0;
    detail::Writer w;
    w.reserve(4 * model.n_params() * (1 + n_slots) + options.metadata.size() + 40 * model.spec().layers.size() +
              1024);
    w.bytes(detail::kMagic, sizeof detail::kMagic);
    w.u32(model_file_version);
    w.u32(detail::kByteOrderMark);
    w.u64(0);  // the body size, once known
    detail::write_body_v2(w, model, settings, state, options.metadata);
    w.patch_u64(detail::kBodySizeAt, w.size() - kHeaderSize);
    w.u32(detail::crc32(w.data().data(), w.size()));
    return w.take();
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
