// dicts.h -- fastae._core's dicts: the engine's settings, network spec, optimizer state and
// model files as the Python dicts and tuples the Python layer reads and writes.
#pragma once

#include <optional>

#include "arrays.h"
#include "fastae/fastae.h"

namespace fastae_binding {

// Optimizer settings (fastae::OptimizerConfig) as {"optimizer", "learning_rate", "beta1", ...}.
py::dict settings_to_dict(const fastae::OptimizerConfig& c);
fastae::OptimizerConfig settings_from_dict(const py::dict& d);

// The network (fastae::NetworkSpec) as a dict; unknown keys are errors.
py::dict spec_to_dict(const fastae::NetworkSpec& spec);
fastae::NetworkSpec spec_from_dict(const py::dict& d);

// The optimizer state as {"config", "steps", "m", "v"}, or None.
py::object optimizer_state_to_python(const fastae::Model& m);
void set_optimizer_state_from_python(fastae::Model& m, const py::dict& d);

// A model file's options, and a file read as (Model, optimizer settings dict, metadata bytes).
fastae::SaveOptions save_options(const std::optional<py::dict>& optimizer, bool include_optimizer_state,
                                 const py::bytes& metadata);
py::tuple model_file_to_python(fastae::ModelFile&& file);

}  // namespace fastae_binding
