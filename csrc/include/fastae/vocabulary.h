// fastae/vocabulary.h -- every name a network or an optimizer is built from, one table each:
// activations, losses, optimizers and weight initializers. Each table entry is
// (C++ id, Python/file name, model-file code, traits); the enums, name_of, the parsers (whose
// errors list the allowed names), the model-file codes and the lists Python and the tests read are
// all generated from these tables. Adding a name is one entry here plus its kernel (where a switch
// with no default then fails to compile until the new case is handled). Standard library only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fastae {

// Activations: X(id, name, file code, needs_preactivation, output_only)
//   needs_preactivation: f' cannot be computed from the output a = f(z) alone, so training keeps z
//   output_only: allowed on the output layer only (softmax, fused with cross_entropy)
// Formulas (f(z), and f' as the backward pass uses it) are in src/activation.h.
#define FASTAE_ACTIVATIONS(X)                  \
    X(linear, "linear", 0, false, false)       \
    X(relu, "relu", 1, false, false)           \
    X(sigmoid, "sigmoid", 2, false, false)     \
    X(tanh, "tanh", 3, false, false)           \
    X(leaky_relu, "leaky_relu", 4, false, false) \
    X(elu, "elu", 5, false, false)             \
    X(gelu, "gelu", 6, true, false)            \
    X(softplus, "softplus", 7, false, false)   \
    X(softmax, "softmax", 8, false, true)

// Losses (the output head): X(id, name, file code, required output activation or -1 for any
// that is not output_only, per_sample, unit_targets). per_sample: the loss of a sample is one
// value (cross-entropy sums over its classes) and the batch loss is the mean over samples;
// otherwise the loss is the mean over all elements (samples x outputs), as Keras reports it.
// unit_targets: targets must lie in [0, 1] (probabilities). Formulas in src/head.h.
#define FASTAE_LOSSES(X)                                                  \
    X(mse, "mse", 0, -1, false, false)                                    \
    X(bce, "bce", 1, int(Activation::sigmoid), false, true)               \
    X(mae, "mae", 2, -1, false, false)                                    \
    X(huber, "huber", 3, -1, false, false)                                \
    X(cross_entropy, "cross_entropy", 4, int(Activation::softmax), true, true)

// Optimizers: X(id, name, file code, number of state slots). The state slots are flat buffers in
// the parameters' layout (OptimizerState::m, then ::v); their names (as torch calls them) come
// from optimizer_slot_names. The update rules are written in src/optimizer.h.
#define FASTAE_OPTIMIZERS(X)      \
    X(adam, "adam", 0, 2)         \
    X(sgd, "sgd", 1, 1)           \
    X(adamw, "adamw", 2, 2)       \
    X(rmsprop, "rmsprop", 3, 1)

// Weight initializers (Keras' definitions; biases start at 0): X(id, name, file code, normal,
// scale, fan) with fan 0 = (fan_in + fan_out) / 2, 1 = fan_in. uniform: U(-l, l),
// l = sqrt(3 scale / fan); normal: a normal of std sqrt(scale / fan) / 0.87962566103423978
// truncated at two of its std (so the draws have std sqrt(scale / fan)).
#define FASTAE_INITIALIZERS(X)                          \
    X(glorot_uniform, "glorot_uniform", 0, false, 1.0, 0) \
    X(glorot_normal, "glorot_normal", 1, true, 1.0, 0)    \
    X(he_uniform, "he_uniform", 2, false, 2.0, 1)         \
    X(he_normal, "he_normal", 3, true, 2.0, 1)            \
    X(lecun_normal, "lecun_normal", 4, true, 1.0, 1)

// Learning-rate schedules, per epoch (trainer.cpp: lr_of_epoch): X(id, name, file code).
//   none: lr0;  step: lr0 * rate^floor(e / steps);  exponential: lr0 * rate^(e / steps);
//   cosine: lr_min + (lr0 - lr_min) (1 + cos(pi min(e, steps) / steps)) / 2;
//   plateau: the rate in force times `rate` after `patience` epochs without improvement of the
//   monitored loss (Keras' ReduceLROnPlateau); every schedule stays >= lr_min.
// e is the 0-based epoch counted over the model's whole training (TrainOptions::initial_epoch).
#define FASTAE_LR_SCHEDULES(X)        \
    X(none, "none", 0)                \
    X(step, "step", 1)                \
    X(exponential, "exponential", 2)  \
    X(cosine, "cosine", 3)            \
    X(plateau, "plateau", 4)

// Noise on a layer's input (LayerSpec::noise): X(id, name, file code).
#define FASTAE_NOISES(X)            \
    X(none, "none", 0)              \
    X(gaussian, "gaussian", 1)      \
    X(masking, "masking", 2)

#define FASTAE_ENUM_ENTRY(id, ...) id,
enum class Activation { FASTAE_ACTIVATIONS(FASTAE_ENUM_ENTRY) };
enum class Loss { FASTAE_LOSSES(FASTAE_ENUM_ENTRY) };
enum class OptimizerKind { FASTAE_OPTIMIZERS(FASTAE_ENUM_ENTRY) };
enum class Initializer { FASTAE_INITIALIZERS(FASTAE_ENUM_ENTRY) };
enum class LrSchedule { FASTAE_LR_SCHEDULES(FASTAE_ENUM_ENTRY) };
enum class Noise { FASTAE_NOISES(FASTAE_ENUM_ENTRY) };
#undef FASTAE_ENUM_ENTRY

// Traits read from the tables.
struct ActivationTraits {
    const char* name;
    std::uint8_t file_code;
    bool needs_preactivation;
    bool output_only;
};
struct LossTraits {
    const char* name;
    std::uint8_t file_code;
    int required_output;  // an Activation as int, or -1: any activation that is not output_only
    bool per_sample;
    bool unit_targets;
};
struct OptimizerTraits {
    const char* name;
    std::uint8_t file_code;
    int n_slots;
};
struct InitializerTraits {
    const char* name;
    std::uint8_t file_code;
    bool normal;
    double scale;
    int fan;  // 0: (fan_in + fan_out) / 2, 1: fan_in
};
struct LrScheduleTraits {
    const char* name;
    std::uint8_t file_code;
};
struct NoiseTraits {
    const char* name;
    std::uint8_t file_code;
};
const ActivationTraits& traits_of(Activation a);
const LossTraits& traits_of(Loss l);
const OptimizerTraits& traits_of(OptimizerKind o);
const InitializerTraits& traits_of(Initializer i);
const LrScheduleTraits& traits_of(LrSchedule s);
const NoiseTraits& traits_of(Noise n);

// Names as Python and model files' metadata use them ("relu", "bce", "adam", ...).
const char* name_of(Activation a);
const char* name_of(Loss l);
const char* name_of(OptimizerKind o);
const char* name_of(Initializer i);
const char* name_of(LrSchedule s);
const char* name_of(Noise n);

// The parsers throw std::invalid_argument naming the bad value and every allowed one.
Activation parse_activation(const std::string& name);
Loss parse_loss(const std::string& name);
OptimizerKind parse_optimizer(const std::string& name);
Initializer parse_initializer(const std::string& name);
LrSchedule parse_lr_schedule(const std::string& name);
Noise parse_noise(const std::string& name);

// Every value, in table order (the tests and Python iterate these).
const std::vector<Activation>& all_activations();
const std::vector<Loss>& all_losses();
const std::vector<OptimizerKind>& all_optimizers();
const std::vector<Initializer>& all_initializers();
const std::vector<LrSchedule>& all_lr_schedules();
const std::vector<Noise>& all_noises();

// The names of an optimizer's state slots, as torch names them: adam/adamw {"exp_avg",
// "exp_avg_sq"}, sgd {"momentum_buffer"}, rmsprop {"square_avg"}.
std::vector<std::string> optimizer_slot_names(OptimizerKind o);

}  // namespace fastae
