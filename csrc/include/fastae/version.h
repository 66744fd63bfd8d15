// fastae/version.h -- the library version and how this copy of it was built.
#pragma once

#include <string>

namespace fastae {

inline constexpr int version_major = 0;
inline constexpr int version_minor = 1;
inline constexpr int version_patch = 0;
inline constexpr const char* version_string = "0.1.0";

// One human-readable line: version, the SIMD instruction sets the library was compiled for
// (e.g. "AVX SSE2 ... FMA AVX2") and the Eigen version.
std::string build_info();

}  // namespace fastae
