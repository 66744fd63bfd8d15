// training_checks.cpp -- the checks of fit's and a training session's arguments
// (training_checks.h), and validate for optimizer settings and training options (model.h).
#include "training_checks.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>

#include "csr_rows.h"
#include "fastae/model.h"
#include "fastae/vocabulary.h"

namespace fastae {

using detail::kUnitRangeSlack;
using detail::require;

void validate(const OptimizerConfig& o) {
    traits_of(o.kind);  // a value outside the vocabulary throws
    auto positive_finite = [](double v) { return std::isfinite(v) && v > 0.0; };
    auto unit = [](double v) { return std::isfinite(v) && v >= 0.0 && v < 1.0; };
    require(positive_finite(o.learning_rate),
            "learning_rate must be a finite number > 0, got " + std::to_string(o.learning_rate));
    auto check_adam = [&] {
        require(unit(o.beta1), "beta1 must be in [0, 1), got " + std::to_string(o.beta1));
        require(unit(o.beta2), "beta2 must be in [0, 1), got " + std::to_string(o.beta2));
        require(positive_finite(o.epsilon), "epsilon must be a finite number > 0, got " + std::to_string(o.epsilon));
    };
    switch (o.kind) {
        case OptimizerKind::adam: check_adam(); break;
        case OptimizerKind::adamw:
            check_adam();
            require(std::isfinite(o.weight_decay) && o.weight_decay >= 0.0,
                    "weight_decay must be a finite number >= 0, got " + std::to_string(o.weight_decay));
            break;
        case OptimizerKind::sgd:
            require(unit(o.momentum), "momentum must be in [0, 1), got " + std::to_string(o.momentum));
            require(!o.nesterov || o.momentum > 0.0, "nesterov=True needs momentum > 0");
            break;
        case OptimizerKind::rmsprop:
            require(unit(o.rho), "rho must be in [0, 1), got " + std::to_string(o.rho));
            require(positive_finite(o.epsilon), "epsilon must be a finite number > 0, got " + std::to_string(o.epsilon));
            break;
    }
}

void validate(const TrainOptions& t) {
    auto finite_at_least = [](double v, double low) { return std::isfinite(v) && v >= low; };
    require(t.epochs >= 0, "epochs must be >= 0, got " + std::to_string(t.epochs));
    require(t.batch_size >= 1, "batch_size must be >= 1, got " + std::to_string(t.batch_size));
    require(t.n_threads >= 1, "n_threads must be >= 1, got " + std::to_string(t.n_threads));
    require(t.thread_mode == ThreadMode::automatic || t.thread_mode == ThreadMode::team ||
                t.thread_mode == ThreadMode::solo,
            "thread_mode must be automatic, team or solo, got " + std::to_string(static_cast<int>(t.thread_mode)));
    require(t.initial_epoch >= 0, "initial_epoch must be >= 0, got " + std::to_string(t.initial_epoch));
    require(finite_at_least(t.validation_split, 0.0) && t.validation_split < 1.0,
            "validation_split must be in [0, 1), got " + std::to_string(t.validation_split));
    require(t.patience >= 1, "patience must be >= 1, got " + std::to_string(t.patience));
    require(finite_at_least(t.min_delta, 0.0), "min_delta must be a finite number >= 0, got " + std::to_string(t.min_delta));
    traits_of(t.lr_schedule);
    require(std::isfinite(t.lr_decay_rate) && t.lr_decay_rate > 0.0 && t.lr_decay_rate <= 1.0,
            "lr_decay_rate must be in (0, 1], got " + std::to_string(t.lr_decay_rate));
    require(t.lr_decay_steps >= 1, "lr_decay_steps must be >= 1, got " + std::to_string(t.lr_decay_steps));
    require(finite_at_least(t.lr_min, 0.0), "lr_min must be a finite number >= 0, got " + std::to_string(t.lr_min));
    require(t.lr_patience >= 1, "lr_patience must be >= 1, got " + std::to_string(t.lr_patience));
    require(finite_at_least(t.lr_in_force, 0.0), "lr_in_force must be a finite number >= 0, got " +
                                                     std::to_string(t.lr_in_force));
    require(finite_at_least(t.clipnorm, 0.0), "clipnorm must be a finite number >= 0 (0: off), got " +
                                                  std::to_string(t.clipnorm));
    require(finite_at_least(t.max_time, 0.0), "max_time must be a finite number >= 0 (0: none), got " +
                                                  std::to_string(t.max_time));
    require(finite_at_least(t.progress_interval, 0.0),
            "progress_interval must be a finite number >= 0, got " + std::to_string(t.progress_interval));
}

// The inputs, targets and weights of data that is not trained on row by row (validation data):
// checked whole, before the first step.
void check_whole(const detail::Network& net, const TrainingData& d, const char* what) {
    const std::string y_name = std::string(what) + " y", w_name = std::string(what) + " sample_weight";
    detail::check_rows(net, d.n, d.x, d.y, d.sample_weight, d.y == nullptr || d.y == d.x, what, y_name.c_str(),
                       w_name.c_str());
}

namespace {

// The shape of some data: rows, one input kind, targets where the widths need them, the scale
// of 8-bit values (and, for a loss with targets in [0, 1], their largest value).
void check_data_shape(const detail::Network& net, const TrainingData& d, const char* what) {
    const std::string name = what;
    require(int(d.x != nullptr) + int(d.x_u8 != nullptr) + int(detail::is_csr(d)) == 1,
            name + ": give exactly one of x (float), x_u8 (8-bit) and a CSR matrix (csr_indptr, ...)");
    if (detail::is_csr(d)) detail::check_csr(d, std::size_t(net.width(0)), name);
    if (d.y == nullptr) {
        require(net.width(0) == net.width(net.n_layers()),
                name + ": targets are required when n_inputs != n_outputs");
    }
    if (d.x_u8) {
        require(std::isfinite(d.scale) && d.scale > 0.0f, "scale must be a finite number > 0, got " + std::to_string(d.scale));
        const LossTraits& loss = traits_of(net.head().loss);
        if (d.y == nullptr && loss.unit_targets && d.n > 0) {
            const std::size_t count = d.n * std::size_t(net.width(0));
            const float top = float(*std::max_element(d.x_u8, d.x_u8 + count)) * d.scale;
            require(top <= 1.0f + kUnitRangeSlack, std::string("8-bit data times scale must lie in [0, 1] for loss='") +
                                                       loss.name + "'; its largest value gives " + std::to_string(top));
        }
    }
}

}  // namespace

void check_training_arguments(const Model::Impl& model, const TrainingData& data, const TrainingData* validation,
                              const OptimizerConfig& optimizer, const TrainOptions& options) {
    validate(optimizer);
    validate(options);
    require(data.n > 0, "fit needs at least one sample");
    check_data_shape(model.net, data, "X");
    if (validation && validation->n > 0) {
        check_data_shape(model.net, *validation, "validation_data");
        require(!detail::is_csr(*validation), "validation_data: give dense rows (a CSR matrix is for training data)");
        check_whole(model.net, *validation, "validation_data");
    }
}

}  // namespace fastae
