// model_file_io.cpp -- the helpers model_file_io.h declares, shared by both versions' readers
// and the writer.
#include "model_file_io.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "fastae/model.h"

namespace fastae::detail {

bool host_is_little_endian() {
    const std::uint32_t one = 1;
    unsigned char first;
    std::memcpy(&first, &one, 1);
    return first == 1;
}

std::string hex32(std::uint32_t v) {
    char s[16];
    std::snprintf(s, sizeof s, "0x%08x", static_cast<unsigned>(v));
    return s;
}

std::string number(double v) {
    char s[32];
    std::snprintf(s, sizeof s, "%g", v);
    return s;
}

void Writer::floats(const float* v, std::size_t n) {
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

void Reader::fail(const std::string& what) const { throw ModelFileError(context_ + what); }

void Reader::need(std::size_t n, const std::string& what) const {
    if (n > left()) {
        fail("truncated content: " + what + " at byte " + str(pos_) + " needs " + str(n) + " bytes but only " +
             str(left()) + " remain " + limit_);
    }
}

void Reader::need_array(std::uint64_t count, std::size_t elem_size, const std::string& what) const {
    if (count > left() / elem_size) {
        fail(what + " at byte " + str(pos_) + " claims " + str(count) + " values of " + str(elem_size) +
             " bytes but only " + str(left()) + " bytes remain " + limit_);
    }
}

void Reader::zeros(std::size_t n, const std::string& what) {
    need(n, what);
    for (std::size_t i = 0; i < n; ++i) {
        if (data_[pos_ + i] != 0) {
            fail(what + " at byte " + str(pos_ + i) + " must be 0, got " + std::to_string(data_[pos_ + i]));
        }
    }
    pos_ += n;
}

bool Reader::flag(const std::string& what) {
    const std::size_t at = pos_;
    const std::uint8_t v = u8(what);
    if (v > 1) fail(what + " at byte " + str(at) + " must be 0 or 1, got " + std::to_string(v));
    return v == 1;
}

void Reader::floats(float* out, std::size_t count) {
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

std::string first_non_finite(const float* v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        if (!std::isfinite(v[i])) return "value " + str(i) + " is " + std::to_string(v[i]);
    }
    return {};
}

void check_optimizer_settings(const OptimizerConfig& c, const std::string& what) {
    for (const SettingField& field : kSettingFields) {
        const double value = c.*field.member;
        if (!std::isfinite(value)) {
            throw std::invalid_argument(what + ": " + field.name + " must be finite, got " + std::to_string(value));
        }
    }
    try {
        validate(c);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(what + ": " + e.what());
    }
}

}  // namespace fastae::detail
