// model_file_v1.cpp -- the body of a version-1 model file (docs/model-format.md, "Version 1"),
// read only: fastae writes version 2. This is the reader of fastae 0.1.0, moved here unchanged
// in what it accepts, what it builds (a NetworkConfig, then Model(config)) and what its errors
// say. Frozen: version 1 does not change; version 2 is model_file_sections.cpp.
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "model_file_io.h"

namespace fastae::detail {

namespace {

constexpr std::size_t kOptimizerBlockSize = 44;

// Version 1's codes (index = code), fixed by that format: the vocabulary it had. Version 2's
// codes (the vocabulary tables' file_code) continue this numbering, so these are the first
// entries of each table; a version-1 file never holds a later name.
constexpr Activation kActivationCodes[] = {Activation::linear, Activation::relu, Activation::sigmoid,
                                           Activation::tanh};
constexpr Loss kLossCodes[] = {Loss::mse, Loss::bce};
constexpr OptimizerKind kOptimizerCodes[] = {OptimizerKind::adam, OptimizerKind::sgd};

template <typename Enum, std::size_t N>
Enum read_v1_code(Reader& r, const Enum (&codes)[N], const std::string& what) {
    const std::size_t at = r.pos();
    const std::uint8_t code = r.u8(what);
    if (code >= N) {
        throw ModelFileError(what + " at byte " + str(at) + " has code " + std::to_string(code) +
                             " (known codes: 0 to " + std::to_string(N - 1) + ")");
    }
    return codes[code];
}

OptimizerConfig read_optimizer(Reader& r, const std::string& what) {
    const std::size_t at = r.pos();
    r.need(kOptimizerBlockSize, what);
    OptimizerConfig c;  // weight_decay and rho, which version 1 does not store, keep their defaults
    c.kind = read_v1_code(r, kOptimizerCodes, what + ": optimizer kind");
    c.nesterov = r.flag(what + ": nesterov");
    r.zeros(2, what + ": reserved bytes");
    c.learning_rate = r.f64(what);
    c.beta1 = r.f64(what);
    c.beta2 = r.f64(what);
    c.epsilon = r.f64(what);
    c.momentum = r.f64(what);
    try {
        check_optimizer_settings(c, what + " at byte " + str(at));
    } catch (const std::invalid_argument& e) {
        throw ModelFileError(e.what());
    }
    return c;
}

}  // namespace

ModelFile read_body_v1(const unsigned char* b, std::size_t size) {
    Reader r(b, size - kTrailerSize, kHeaderSize);

    // The network.
    const std::size_t widths_at = r.pos();
    const std::uint32_t n_widths = r.u32("the number of layer widths");
    if (n_widths < 2 || n_widths > model_file_max_widths) {
        throw ModelFileError("the number of layer widths at byte " + str(widths_at) + " is " + str(n_widths) +
                             " (must be in [2, " + str(model_file_max_widths) + "])");
    }
    r.need_array(n_widths, 4, "the layer widths");
    NetworkConfig config;
    config.layer_sizes.resize(n_widths);
    for (std::uint32_t i = 0; i < n_widths; ++i) {
        const std::size_t at = r.pos();
        const std::uint32_t w = r.u32("a layer width");
        if (w < 1 || w > std::uint32_t(std::numeric_limits<int>::max())) {
            throw ModelFileError("layer width " + str(i) + " at byte " + str(at) + " is " + str(w) +
                                 " (must be in [1, 2147483647])");
        }
        config.layer_sizes[i] = int(w);
    }
    config.activation = read_v1_code(r, kActivationCodes, "the activation");
    config.output_activation = read_v1_code(r, kActivationCodes, "the output activation");
    config.loss = read_v1_code(r, kLossCodes, "the loss");
    r.zeros(1, "a reserved byte");
    const OptimizerConfig settings = read_optimizer(r, "the optimizer settings");

    // The parameter count the widths imply, overflow-checked, must be the one stored and must fit
    // in the bytes left: only then is anything the size of the model allocated.
    std::uint64_t expected = 0;
    for (std::uint32_t i = 0; i + 1 < n_widths; ++i) {
        const std::uint64_t n_in = std::uint64_t(config.layer_sizes[i]), n_out = std::uint64_t(config.layer_sizes[i + 1]);
        const std::uint64_t layer = n_in * n_out + n_out;  // < 2^62 + 2^31: widths are below 2^31
        if (layer > std::numeric_limits<std::uint64_t>::max() - expected) {
            throw ModelFileError("the layer widths give more than 2^64 parameters");
        }
        expected += layer;
    }
    const std::size_t count_at = r.pos();
    const std::uint64_t n_params = r.u64("the parameter count");
    if (n_params != expected) {
        throw ModelFileError("the parameter count at byte " + str(count_at) + " is " + str(n_params) +
                             " but the layer widths give " + str(expected));
    }
    r.need_array(n_params, 4, "the weights");
    std::optional<Model> model;
    try {
        model.emplace(config);
    } catch (const std::invalid_argument& e) {
        throw ModelFileError(std::string("the network is invalid: ") + e.what());
    }
    std::vector<float> values(static_cast<std::size_t>(n_params));
    const std::size_t weights_at = r.pos();
    r.floats(values.data(), values.size());
    if (auto bad = first_non_finite(values.data(), values.size()); !bad.empty()) {
        throw ModelFileError("the weights (from byte " + str(weights_at) + "): " + bad);
    }
    model->set_params(values.data(), values.size());

    // The optimizer state.
    if (r.flag("the optimizer-state flag")) {
        r.zeros(3, "reserved bytes");
        OptimizerState state;
        state.config = read_optimizer(r, "the optimizer state's settings");
        const std::size_t steps_at = r.pos();
        const std::uint64_t steps = r.u64("the optimizer step count");
        if (steps > std::uint64_t(std::numeric_limits<std::int64_t>::max())) {
            throw ModelFileError("the optimizer step count at byte " + str(steps_at) + " is negative");
        }
        state.steps = std::int64_t(steps);
        const bool adam = state.config.kind == OptimizerKind::adam;
        for (int k = 0; k < 2; ++k) {
            const std::string name = k == 0 ? "the optimizer state m" : "the optimizer state v";
            const std::size_t at = r.pos();
            const std::uint64_t count = r.u64(name + "'s length");
            const std::uint64_t want = k == 0 || adam ? n_params : 0;
            if (count != want) {
                throw ModelFileError(name + "'s length at byte " + str(at) + " is " + str(count) + "; expected " +
                                     str(want));
            }
            r.need_array(count, 4, name);
            std::vector<float>& out = k == 0 ? state.m : state.v;
            out.resize(static_cast<std::size_t>(count));
            r.floats(out.data(), out.size());
        }
        try {
            model->set_optimizer_state(state);
        } catch (const std::invalid_argument& e) {
            throw ModelFileError(e.what());
        }
    } else {
        r.zeros(3, "reserved bytes");
    }

    // The metadata, and nothing after it.
    const std::size_t meta_at = r.pos();
    const std::uint32_t meta_size = r.u32("the metadata length");
    if (meta_size > model_file_max_metadata) {
        throw ModelFileError("the metadata length at byte " + str(meta_at) + " is " + str(meta_size) +
                             " (at most " + str(model_file_max_metadata) + ")");
    }
    r.need(meta_size, "the metadata");
    std::string metadata = r.text(meta_size);
    if (r.left() != 0) {
        throw ModelFileError(str(r.left()) + " unexpected bytes between the metadata and the checksum (at byte " +
                             str(r.pos()) + ")");
    }
    ModelFile file{std::move(*model), settings, std::move(metadata)};
    file.version = 1;
    return file;
}

}  // namespace fastae::detail
