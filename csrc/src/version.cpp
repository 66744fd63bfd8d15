// version.cpp -- build_info (fastae/version.h): what this copy of the library was built to run.
#include "fastae/version.h"

#include <string>

#include <Eigen/Core>

#include "gemm.h"
#include "simd.h"

namespace fastae {

namespace {
// The hand-vectorised kernels outside the GEMM (simd.h: Widest).
std::string vector_kernels() {
#if defined(FASTAE_HAVE_AVX512_MATH)
    return "AVX-512F (" + std::to_string(detail::simd::Widest::lanes) + " lanes)";
#elif defined(FASTAE_HAVE_AVX2_MATH)
    return "AVX2+FMA (" + std::to_string(detail::simd::Widest::lanes) + " lanes)";
#else
    return "none (scalar and Eigen code)";
#endif
}
}  // namespace

// What runs: the GEMM's micro-kernel, the other kernels' vectors, and Eigen's own instruction sets
// (Eigen names an AVX2+FMA build "AVX", so its string alone undersells one).
std::string build_info() {
    return "fastae " + std::string(version_string) + ", GEMM kernel: " + detail::gemm_kernel_name() +
           ", vector kernels: " + vector_kernels() + ", SIMD (Eigen): " + Eigen::SimdInstructionSetsInUse() +
           ", Eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
           std::to_string(EIGEN_MINOR_VERSION);
}

}  // namespace fastae
