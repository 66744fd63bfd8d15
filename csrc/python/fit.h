// fit.h -- fastae._core's Model.fit: the training call with its options and reports as dicts,
// its Python callbacks (epoch, progress, learning rate, a process group's sum) run under the GIL,
// and Ctrl-C.
#pragma once

#include <optional>

#include "arrays.h"
#include "fastae/fastae.h"

namespace fastae_binding {

// Trains m in place; returns (history, stop_reason). A Python exception raised by a callback (or
// KeyboardInterrupt) is raised again once the engine has returned.
py::tuple fit(fastae::Model& m, const py::object& x, const std::optional<FloatArray>& y,
              const std::optional<FloatArray>& sample_weight, const std::optional<py::array>& x_val,
              const std::optional<FloatArray>& y_val, const std::optional<FloatArray>& w_val, float scale,
              const py::dict& optimizer, const py::dict& options, const std::optional<py::function>& on_epoch,
              const std::optional<py::function>& on_progress, const std::optional<py::function>& lr_function,
              const std::optional<py::tuple>& processes);

}  // namespace fastae_binding
