// arrays.h -- fastae._core's arrays: the checks of a NumPy array's shape, and a dataset as the
// engine takes it (fastae::TrainingData). Arrays cross the boundary as C-contiguous float32 (or
// uint8 for training data) and are read in place, never converted (module.cpp, noconvert).
#pragma once

#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
#include <optional>

#include "fastae/fastae.h"

namespace py = pybind11;

namespace fastae_binding {

using FloatArray = py::array_t<float, py::array::c_style>;

// Rows of a 2-D array whose width must be `width`; `name` names it in the error.
std::size_t rows_of_shape(const py::array& a, py::ssize_t width, const char* name);
std::size_t rows_of(const FloatArray& a, py::ssize_t width, const char* name);

// Optional targets: None means "the inputs" (an autoencoder).
const float* targets_of(const fastae::Model& m, const std::optional<FloatArray>& y, std::size_t n);

// One dataset as the engine takes it: X a float32 or uint8 array or a ("csr", ...) tuple, optional
// float32 targets and weights; `name` names it in the errors.
fastae::TrainingData training_data(const fastae::Model& m, const py::object& x, const std::optional<FloatArray>& y,
                                   const std::optional<FloatArray>& w, float scale, const char* name);

}  // namespace fastae_binding
