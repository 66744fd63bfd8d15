// float_env.h -- a scoped guard that turns on flush-to-zero and denormals-are-zero for the
// calling thread and restores the previous MXCSR on exit. Subnormal activations in a saturated
// network slow a step by 25% or more; the guard keeps that out of training without changing the
// floating-point state the host process sees.
#pragma once

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define FASTAE_HAVE_MXCSR 1
#endif

namespace fastae::detail {

class FlushDenormalsGuard {
public:
    FlushDenormalsGuard() {
#ifdef FASTAE_HAVE_MXCSR
        saved_ = _mm_getcsr();
        _mm_setcsr(saved_ | 0x8040u);  // FTZ (bit 15) | DAZ (bit 6)
#endif
    }
    ~FlushDenormalsGuard() {
#ifdef FASTAE_HAVE_MXCSR
        _mm_setcsr(saved_);
#endif
    }
    FlushDenormalsGuard(const FlushDenormalsGuard&) = delete;
    FlushDenormalsGuard& operator=(const FlushDenormalsGuard&) = delete;

private:
    unsigned saved_ = 0;
};

}  // namespace fastae::detail
