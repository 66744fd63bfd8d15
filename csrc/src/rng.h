// rng.h -- the one random generator: xoshiro256** seeded through splitmix64. Fully specified
// here (std::uniform_*_distribution and std::shuffle differ between standard libraries), so a
// seed gives the same weights and the same shuffles on every platform.
#pragma once

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

}  // namespace fastae::detail
