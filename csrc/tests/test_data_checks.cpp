// test_data_checks.cpp -- the checks of caller data (model_impl.h, value_checks.h) against scalar
// references.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "check.h"
#include "model_impl.h"
#include "value_checks.h"

// The one-pass range check of caller data (value_checks.h: values_within) against a scalar scan:
// every length up to 70 and each position of one bad value (NaN, +-inf, just outside either bound,
// the bound itself is in), for the unit range of bce and for finiteness alone.
TEST(values_within_matches_a_scalar_scan) {
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    const float big = std::numeric_limits<float>::max();
    struct Range { float lo, hi; };
    for (const Range r : {Range{-1e-6f, 1.0f + 1e-6f}, Range{-big, big}}) {
        const float bad_values[] = {nan, inf, -inf, std::nextafter(r.lo, -inf), std::nextafter(r.hi, inf), r.lo, r.hi};
        for (std::size_t n = 0; n <= 70; ++n) {
            std::vector<float> x(n + 1, 0.5f);
            x[n] = nan;  // past the end: never read as part of the range
            CHECK(fastae::detail::values_within(n, x.data(), r.lo, r.hi));
            for (std::size_t at = 0; at < n; ++at) {
                for (float v : bad_values) {
                    x[at] = v;
                    const bool want = v >= r.lo && v <= r.hi;
                    if (fastae::detail::values_within(n, x.data(), r.lo, r.hi) != want) {
                        fastae_test::fail(__FILE__, __LINE__, "n " + std::to_string(n) + ", at " + std::to_string(at) +
                                                                  ", value " + std::to_string(v));
                    }
                    x[at] = 0.5f;
                }
            }
        }
    }
}

// all_finite (the first layer's products in inference) against std::isfinite: every length up to
// 70, each position of one NaN, infinity or the largest finite values, and the element past the
// end never read.
TEST(all_finite_matches_isfinite) {
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    const float big = std::numeric_limits<float>::max();
    for (std::size_t n = 0; n <= 70; ++n) {
        std::vector<float> x(n + 1, -3.0f);
        x[n] = inf;
        CHECK(fastae::detail::all_finite(n, x.data()));
        for (std::size_t at = 0; at < n; ++at) {
            for (float v : {nan, -nan, inf, -inf, big, -big, 0.0f}) {
                x[at] = v;
                if (fastae::detail::all_finite(n, x.data()) != bool(std::isfinite(v))) {
                    fastae_test::fail(__FILE__, __LINE__, "n " + std::to_string(n) + ", at " + std::to_string(at) +
                                                              ", value " + std::to_string(v));
                }
                x[at] = -3.0f;
            }
        }
    }
}
