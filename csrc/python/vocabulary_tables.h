// vocabulary_tables.h -- the vocabulary tables (fastae/vocabulary.h) as fastae._core's
// constants: ACTIVATIONS, LOSSES, OPTIMIZERS, INITIALIZERS, LR_SCHEDULES, NOISES, FILE_CODES,
// ACTIVATION_TRAITS, LOSS_TRAITS, OPTIMIZER_SLOTS.
#pragma once

#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace fastae_binding {

void export_vocabulary(py::module_& mod);

}  // namespace fastae_binding
