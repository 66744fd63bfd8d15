// vocabulary_tables.cpp -- the vocabulary tables as fastae._core's constants (vocabulary_tables.h).
#include "vocabulary_tables.h"

#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "fastae/fastae.h"

namespace fastae_binding {

// The vocabulary tables (fastae/vocabulary.h) as Python sees them: names in table order, the
// model-file codes, and the traits the Python checks use.
void export_vocabulary(py::module_& mod) {
    py::list activations, losses, optimizers, initializers;
    py::dict activation_codes, loss_codes, optimizer_codes, initializer_codes, activation_traits, loss_traits,
        optimizer_slots;
    for (fastae::Activation a : fastae::all_activations()) {
        const auto& t = fastae::traits_of(a);
        activations.append(t.name);
        activation_codes[t.name] = t.file_code;
        py::dict d;
        d["needs_preactivation"] = t.needs_preactivation;
        d["output_only"] = t.output_only;
        d["default_alpha"] = fastae::default_alpha(a);
        activation_traits[t.name] = d;
    }
    for (fastae::Loss l : fastae::all_losses()) {
        const auto& t = fastae::traits_of(l);
        losses.append(t.name);
        loss_codes[t.name] = t.file_code;
        py::dict d;
        d["required_output"] = t.required_output >= 0
                                   ? py::object(py::str(fastae::name_of(static_cast<fastae::Activation>(t.required_output))))
                                   : py::object(py::none());
        d["per_sample"] = t.per_sample;
        d["unit_targets"] = t.unit_targets;
        loss_traits[t.name] = d;
    }
    for (fastae::OptimizerKind o : fastae::all_optimizers()) {
        const auto& t = fastae::traits_of(o);
        optimizers.append(t.name);
        optimizer_codes[t.name] = t.file_code;
        optimizer_slots[t.name] = py::tuple(py::cast(fastae::optimizer_slot_names(o)));
    }
    for (fastae::Initializer i : fastae::all_initializers()) {
        const auto& t = fastae::traits_of(i);
        initializers.append(t.name);
        initializer_codes[t.name] = t.file_code;
    }
    mod.attr("ACTIVATIONS") = py::tuple(activations);
    mod.attr("LOSSES") = py::tuple(losses);
    mod.attr("OPTIMIZERS") = py::tuple(optimizers);
    mod.attr("INITIALIZERS") = py::tuple(initializers);
    py::list schedules;
    for (fastae::LrSchedule sch : fastae::all_lr_schedules()) schedules.append(fastae::name_of(sch));
    mod.attr("LR_SCHEDULES") = py::tuple(schedules);
    py::list noises;
    for (fastae::Noise n : fastae::all_noises()) noises.append(fastae::name_of(n));
    mod.attr("NOISES") = py::tuple(noises);
    py::dict codes;
    codes["activation"] = activation_codes;
    codes["loss"] = loss_codes;
    codes["optimizer"] = optimizer_codes;
    codes["initializer"] = initializer_codes;
    py::dict noise_codes;
    for (fastae::Noise n : fastae::all_noises()) noise_codes[fastae::name_of(n)] = fastae::traits_of(n).file_code;
    codes["noise"] = noise_codes;
    mod.attr("FILE_CODES") = codes;
    mod.attr("ACTIVATION_TRAITS") = activation_traits;
    mod.attr("LOSS_TRAITS") = loss_traits;
    mod.attr("OPTIMIZER_SLOTS") = optimizer_slots;
}

}  // namespace fastae_binding
