// fastae/version.h -- the library version and how this copy of it was built.
#pragma once

#include <string>

namespace fastae {

inline constexpr int version_major = 0;
inline constexpr int version_minor = 1;
inline constexpr int version_patch = 0;
inline constexpr const char* version_string = "0.1.0";

// One human-readable line: version, the matrix product's micro-kernel (e.g. "avx2+fma 16x6",
// "avx512 32x8", "eigen"), the instruction set and width of the other vector kernels, the SIMD
// instruction sets Eigen was compiled for, and the Eigen version.
std::string build_info();

}  // namespace fastae
