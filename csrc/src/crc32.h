// crc32.h -- CRC-32 as zlib, PNG and Ethernet compute it (reflected polynomial 0xEDB88320,
// initial value and final xor 0xFFFFFFFF), the checksum of a model file. Table-driven, one byte at
// a time: a model file is read once, so this is never the bottleneck next to parsing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace fastae::detail {

inline const std::array<std::uint32_t, 256>& crc32_table() {
    static const std::array<std::uint32_t, 256> table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    return table;
}

// crc32(data) when `crc` is 0; pass a previous result to continue over more bytes.
inline std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc = 0) {
    const auto& table = crc32_table();
    const auto* p = static_cast<const unsigned char*>(data);
    crc = ~crc;
    for (std::size_t i = 0; i < size; ++i) crc = table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

}  // namespace fastae::detail
