// crc32.h -- CRC-32 as zlib, PNG and Ethernet compute it (reflected polynomial 0xEDB88320,
// initial value and final xor 0xFFFFFFFF), the checksum of a model file. Slicing-by-8 (eight
// 256-entry tables, eight bytes per step) so that checking a large file costs little next to
// reading it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace fastae::detail {

using Crc32Tables = std::array<std::array<std::uint32_t, 256>, 8>;

// tables[0] is the classic byte-at-a-time table; tables[k][b] is the CRC of byte b followed by
// k zero bytes.
inline const Crc32Tables& crc32_tables() {
    static const Crc32Tables tables = [] {
        Crc32Tables t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[0][i] = c;
        }
        for (std::size_t k = 1; k < 8; ++k) {
            for (std::uint32_t i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFFu];
        }
        return t;
    }();
    return tables;
}

// crc32(data) when `crc` is 0; pass a previous result to continue over more bytes.
inline std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc = 0) {
    const auto& t = crc32_tables();
    const auto* p = static_cast<const unsigned char*>(data);
    crc = ~crc;
    for (; size >= 8; p += 8, size -= 8) {
        const std::uint32_t lo = crc ^ (std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
                                        std::uint32_t(p[3]) << 24);
        crc = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^
              t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    }
    for (; size > 0; ++p, --size) crc = t[0][(crc ^ *p) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

}  // namespace fastae::detail
