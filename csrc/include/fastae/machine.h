// fastae/machine.h -- this build's single-core arithmetic rates on the running machine, measured
// (never assumed from a clock or a model number), for benchmarks' "% of peak" columns:
// benchmarks/gemm_bench.cpp and benchmarks/train_speed.py (through fastae._core).
#pragma once

namespace fastae {

// GFLOP/s of independent register-only FMAs on the widest vectors this build's kernels use
// (16 lanes with AVX-512, 8 with AVX2 + FMA; 2 flops per lane per FMA) on the calling thread:
// the best of `runs` runs of about 0.5 ms each, so that a run the scheduler interrupted does not
// count. 0 where the build has neither instruction set. Throws std::invalid_argument for runs < 1.
double measured_fma_peak_gflops(int runs = 400);

// GFLOP/s of the engine's own single-precision product C = A B of n x n matrices on the calling
// thread: the best of repeated products within `seconds` (at least one). Throws
// std::invalid_argument for n < 1 or n > 8192, or seconds not in [0, 60].
double measured_sgemm_gflops(int n = 2048, double seconds = 1.0);

}  // namespace fastae
