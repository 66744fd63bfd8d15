// reference_workload.h -- what the public-API benchmarks (epoch_bench, step_phases) share: their
// command lines' flags and the reference workload: MNIST's 60000 x 784 training images as raw
// float32 (--data), else synthetic rows of the same shape and sparsity (80% zeros), and the two
// models, 784-64-784 and 784-256-64-256-784 (relu, sigmoid output, BCE, weights from seed 0).
#pragma once

#include <fastae/config.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace bench {

constexpr std::size_t kSamples = 60000, kFeatures = 784;

// Flags `--name` (a switch) and `--name VALUE` (an int or a string), declared before parse.
class Flags {
public:
    void add(const char* name, bool* on) { flags_.push_back({name, on, nullptr, nullptr}); }
    void add(const char* name, int* value) { flags_.push_back({name, nullptr, value, nullptr}); }
    void add(const char* name, std::string* value) { flags_.push_back({name, nullptr, nullptr, value}); }
    // False, with `usage` printed, for an argument that is no declared flag or lacks its value.
    bool parse(int argc, char** argv, const char* usage) const {
        for (int i = 1; i < argc; ++i) {
            const Flag* flag = find(argv[i]);
            if (flag && flag->on) {
                *flag->on = true;
            } else if (flag && i + 1 < argc) {
                ++i;
                if (flag->number) *flag->number = std::atoi(argv[i]);
                if (flag->text) *flag->text = argv[i];
            } else {
                std::fprintf(stderr, "usage: %s %s\n", argv[0], usage);
                return false;
            }
        }
        return true;
    }

private:
    struct Flag {
        std::string name;
        bool* on;
        int* number;
        std::string* text;
    };
    const Flag* find(const std::string& arg) const {
        for (const Flag& f : flags_) {
            if (arg == f.name) return &f;
        }
        return nullptr;
    }
    std::vector<Flag> flags_;
};

// The inputs, kSamples x kFeatures row-major, from `path` (raw float32) or synthetic when it is
// empty; false, with the reason printed, when the file cannot be read whole.
inline bool reference_inputs(const std::string& path, std::vector<float>& x) {
    x.assign(kSamples * kFeatures, 0.0f);
    if (path.empty()) {
        std::mt19937 gen(0);
        std::uniform_real_distribution<float> unit(0.0f, 1.0f);
        for (float& v : x) v = unit(gen) < 0.8f ? 0.0f : unit(gen);
        return true;
    }
    std::FILE* f = std::fopen(path.c_str(), "rb");
    const bool read = f && std::fread(x.data(), sizeof(float), x.size(), f) == x.size();
    if (f) std::fclose(f);
    if (!read) std::fprintf(stderr, "cannot read %zu floats from %s\n", x.size(), path.c_str());
    return read;
}

inline fastae::NetworkConfig reference_model(bool deep) {
    fastae::NetworkConfig config;
    config.layer_sizes = deep ? std::vector<int>{784, 256, 64, 256, 784} : std::vector<int>{784, 64, 784};
    return config;
}

inline const char* model_name(bool deep) { return deep ? "784-256-64-256-784" : "784-64-784"; }

}  // namespace bench
