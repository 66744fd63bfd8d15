// vocabulary.cpp -- the vocabulary tables of fastae/vocabulary.h expanded into traits, names,
// parsers and lists; to_spec for NetworkConfig.
#include "fastae/vocabulary.h"

#include <stdexcept>
#include <string>

#include "fastae/config.h"

namespace fastae {

namespace {

#define FASTAE_ACTIVATION_TRAITS(id, name, code, needs_z, output_only) {name, code, needs_z, output_only},
constexpr ActivationTraits kActivations[] = {FASTAE_ACTIVATIONS(FASTAE_ACTIVATION_TRAITS)};
#undef FASTAE_ACTIVATION_TRAITS
#define FASTAE_LOSS_TRAITS(id, name, code, required_output, per_sample, unit_targets) \
    {name, code, required_output, per_sample, unit_targets},
constexpr LossTraits kLosses[] = {FASTAE_LOSSES(FASTAE_LOSS_TRAITS)};
#undef FASTAE_LOSS_TRAITS
#define FASTAE_OPTIMIZER_TRAITS(id, name, code, n_slots) {name, code, n_slots},
constexpr OptimizerTraits kOptimizers[] = {FASTAE_OPTIMIZERS(FASTAE_OPTIMIZER_TRAITS)};
#undef FASTAE_OPTIMIZER_TRAITS
#define FASTAE_INITIALIZER_TRAITS(id, name, code, normal, scale, fan) {name, code, normal, scale, fan},
constexpr InitializerTraits kInitializers[] = {FASTAE_INITIALIZERS(FASTAE_INITIALIZER_TRAITS)};
#undef FASTAE_INITIALIZER_TRAITS
#define FASTAE_NAME_CODE_TRAITS(id, name, code) {name, code},
constexpr LrScheduleTraits kLrSchedules[] = {FASTAE_LR_SCHEDULES(FASTAE_NAME_CODE_TRAITS)};
constexpr NoiseTraits kNoises[] = {FASTAE_NOISES(FASTAE_NAME_CODE_TRAITS)};
#undef FASTAE_NAME_CODE_TRAITS

// Every value of an enum whose table is kTable, in table order (enum values are 0, 1, ...).
template <typename Enum, typename Traits, std::size_t N>
std::vector<Enum> every(const Traits (&)[N]) {
    std::vector<Enum> all;
    for (std::size_t i = 0; i < N; ++i) all.push_back(static_cast<Enum>(i));
    return all;
}

template <typename Enum, typename Traits, std::size_t N>
const Traits& lookup(const Traits (&table)[N], Enum value, const char* what) {
    const auto i = static_cast<std::size_t>(value);
    if (i >= N) throw std::invalid_argument(std::string("invalid ") + what + " value " + std::to_string(i));
    return table[i];
}

template <typename Enum, typename Traits, std::size_t N>
Enum parse(const Traits (&table)[N], const std::string& name, const char* what) {
    std::string allowed;
    for (std::size_t i = 0; i < N; ++i) {
        if (name == table[i].name) return static_cast<Enum>(i);
        allowed += std::string(i ? ", '" : "'") + table[i].name + "'";
    }
    throw std::invalid_argument(std::string("unknown ") + what + " '" + name + "'; allowed: " + allowed);
}

}  // namespace

const ActivationTraits& traits_of(Activation a) { return lookup(kActivations, a, "activation"); }
const LossTraits& traits_of(Loss l) { return lookup(kLosses, l, "loss"); }
const OptimizerTraits& traits_of(OptimizerKind o) { return lookup(kOptimizers, o, "optimizer"); }
const InitializerTraits& traits_of(Initializer i) { return lookup(kInitializers, i, "initializer"); }
const LrScheduleTraits& traits_of(LrSchedule s) { return lookup(kLrSchedules, s, "lr_schedule"); }
const NoiseTraits& traits_of(Noise n) { return lookup(kNoises, n, "noise"); }

const char* name_of(Activation a) { return traits_of(a).name; }
const char* name_of(Loss l) { return traits_of(l).name; }
const char* name_of(OptimizerKind o) { return traits_of(o).name; }
const char* name_of(Initializer i) { return traits_of(i).name; }
const char* name_of(LrSchedule s) { return traits_of(s).name; }
const char* name_of(Noise n) { return traits_of(n).name; }

Activation parse_activation(const std::string& name) { return parse<Activation>(kActivations, name, "activation"); }
Loss parse_loss(const std::string& name) { return parse<Loss>(kLosses, name, "loss"); }
OptimizerKind parse_optimizer(const std::string& name) { return parse<OptimizerKind>(kOptimizers, name, "optimizer"); }
Initializer parse_initializer(const std::string& name) {
    return parse<Initializer>(kInitializers, name, "kernel_initializer");
}

LrSchedule parse_lr_schedule(const std::string& name) { return parse<LrSchedule>(kLrSchedules, name, "lr_schedule"); }
Noise parse_noise(const std::string& name) { return parse<Noise>(kNoises, name, "noise"); }

const std::vector<Activation>& all_activations() {
    static const std::vector<Activation> all = every<Activation>(kActivations);
    return all;
}
const std::vector<Loss>& all_losses() {
    static const std::vector<Loss> all = every<Loss>(kLosses);
    return all;
}
const std::vector<OptimizerKind>& all_optimizers() {
    static const std::vector<OptimizerKind> all = every<OptimizerKind>(kOptimizers);
    return all;
}
const std::vector<Initializer>& all_initializers() {
    static const std::vector<Initializer> all = every<Initializer>(kInitializers);
    return all;
}

const std::vector<LrSchedule>& all_lr_schedules() {
    static const std::vector<LrSchedule> all = every<LrSchedule>(kLrSchedules);
    return all;
}

const std::vector<Noise>& all_noises() {
    static const std::vector<Noise> all = every<Noise>(kNoises);
    return all;
}

std::vector<std::string> optimizer_slot_names(OptimizerKind o) {
    switch (o) {
        case OptimizerKind::adam:
        case OptimizerKind::adamw: return {"exp_avg", "exp_avg_sq"};
        case OptimizerKind::sgd: return {"momentum_buffer"};
        case OptimizerKind::rmsprop: return {"square_avg"};
    }
    throw std::invalid_argument("optimizer_slot_names: invalid optimizer");
}

double default_alpha(Activation kind) {
    switch (kind) {
        case Activation::leaky_relu: return 0.01;
        case Activation::elu: return 1.0;
        case Activation::linear:
        case Activation::relu:
        case Activation::sigmoid:
        case Activation::tanh:
        case Activation::gelu:
        case Activation::softplus:
        case Activation::softmax: return 0.0;
    }
    return 0.0;
}

NetworkSpec to_spec(const NetworkConfig& config) {
    NetworkSpec spec;
    const auto& sizes = config.layer_sizes;
    if (sizes.size() < 2) {
        throw std::invalid_argument("layer_sizes must hold at least 2 widths (input and output), got " +
                                    std::to_string(sizes.size()));
    }
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        if (sizes[i] < 1) {
            throw std::invalid_argument("layer_sizes[" + std::to_string(i) + "] must be >= 1, got " +
                                        std::to_string(sizes[i]));
        }
    }
    spec.n_inputs = sizes.front();
    for (std::size_t i = 1; i < sizes.size(); ++i) {
        LayerSpec layer;
        layer.units = sizes[i];
        layer.activation = activation_spec(i + 1 == sizes.size() ? config.output_activation : config.activation);
        spec.layers.push_back(layer);
    }
    spec.head.loss = config.loss;
    return spec;
}

}  // namespace fastae
