// rng.h -- the one random generator: xoshiro256** seeded through splitmix64. Fully specified
// here (std::uniform_*_distribution and std::shuffle differ between standard libraries), so a
// seed gives the same weights and the same shuffles on every platform.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace fastae::detail {

class Rng {
public:
    explicit Rng(std::uint64_t seed) {
        std::uint64_t x = seed;
        for (auto& s : state_) {  // splitmix64
            x += 0x9E3779B97F4A7C15ull;
            std::uint64_t z = x;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            s = z ^ (z >> 31);
        }
    }

    std::uint64_t next() {
        const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const std::uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }

    // Uniform in [0, 1), 53 random bits.
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    // Standard normal by Box-Muller (one value from two uniforms, nothing cached).
    double normal() {
        const double u1 = 1.0 - uniform();  // (0, 1]: log is finite
        const double u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
    // Standard normal conditioned on |x| <= bound (rejected draws are drawn again).
    double truncated_normal(double bound) {
        for (;;) {
            const double v = normal();
            if (std::fabs(v) <= bound) return v;
        }
    }

    // Uniform integer in [0, bound), bound > 0, without modulo bias.
    std::uint64_t below(std::uint64_t bound) {
        const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
        std::uint64_t r;
        do { r = next(); } while (r >= limit);
        return r % bound;
    }

    // Fisher-Yates shuffle of idx[0..n).
    template <typename T>
    void shuffle(T* idx, std::size_t n) {
        for (std::size_t i = n; i > 1; --i) {
            std::swap(idx[i - 1], idx[below(i)]);
        }
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    std::uint64_t state_[4];
};

// Randomness keyed by what it is for, not by the order of draws: a uniform in [0, 1) that is a
// pure function of (seed, a, b, c) (splitmix64's finaliser over the chained key, 53 bits).
// Dropout keys it by (seed, epoch, dataset row, layer and unit), so a sample's mask is the same
// whatever thread or batch position computes it.
inline std::uint64_t mix64(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
inline double keyed_uniform(std::uint64_t seed, std::uint64_t a, std::uint64_t b, std::uint64_t c) {
    std::uint64_t h = mix64(seed + 0x9E3779B97F4A7C15ull);
    h = mix64(h ^ (a + 0x9E3779B97F4A7C15ull * 2));
    h = mix64(h ^ (b + 0x9E3779B97F4A7C15ull * 3));
    h = mix64(h ^ (c + 0x9E3779B97F4A7C15ull * 4));
    return static_cast<double>(h >> 11) * 0x1.0p-53;
}

// Dropout's mask entry for (seed, epoch, row, layer, unit) at rate p in (0, 1): 0 with
// probability p, else 1 / (1 - p) (inverted dropout: the expected output is unchanged).
inline float dropout_mask(std::uint64_t seed, int epoch, std::uint64_t row, int layer, int unit, float p) {
    const std::uint64_t slot = (std::uint64_t(std::uint32_t(layer)) << 32) | std::uint32_t(unit);
    return keyed_uniform(seed, std::uint64_t(std::uint32_t(epoch)), row, slot) < double(p) ? 0.0f : 1.0f / (1.0f - p);
}

}  // namespace fastae::detail
