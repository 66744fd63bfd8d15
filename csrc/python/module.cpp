// module.cpp -- fastae._core: the pybind11 binding of fastae::Model. It converts, checks shapes,
// releases the GIL and makes one call; all logic lives in the C++ core or in the Python layer.
//
// Arrays cross the boundary as C-contiguous float32 and are never converted here (noconvert):
// the Python layer converts other dtypes and layouts once, so what reaches C++ is read in place.
// std::invalid_argument becomes ValueError (pybind11's translation), std::bad_alloc MemoryError,
// fastae::ModelFileError fastae.ModelFileError (a ValueError), and std::filesystem::filesystem_error
// OSError with its errno (so FileNotFoundError, PermissionError, ...).
// std::runtime_error RuntimeError (a call refused because fit is changing the model, model.h).
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fastae/fastae.h"

namespace py = pybind11;
using fastae::Model;

namespace {

using FloatArray = py::array_t<float, py::array::c_style>;

// Milliseconds between checks for Ctrl-C during fit (each check briefly takes the GIL).
constexpr auto kSignalCheckInterval = std::chrono::milliseconds(20);

// Rows of a 2-D array whose width must be `width`; `name` names it in the error.
std::size_t rows_of_shape(const py::array& a, py::ssize_t width, const char* name) {
    if (a.ndim() != 2) {
        throw std::invalid_argument(std::string(name) + " must be 2-D, got " + std::to_string(a.ndim()) + "-D");
    }
    if (a.shape(1) != width) {
        throw std::invalid_argument(std::string(name) + " has " + std::to_string(a.shape(1)) +
                                    " columns; the model expects " + std::to_string(width));
    }
    return static_cast<std::size_t>(a.shape(0));
}
std::size_t rows_of(const FloatArray& a, py::ssize_t width, const char* name) { return rows_of_shape(a, width, name); }

FloatArray new_matrix(std::size_t rows, int cols) {
    return FloatArray({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)});
}

FloatArray run_forward(const Model& m, int first, int last, const FloatArray& in, int n_threads) {
    const std::size_t n = rows_of(in, m.config().layer_sizes.at(std::size_t(first)), "X");
    FloatArray out = new_matrix(n, m.config().layer_sizes.at(std::size_t(last)));
    const float* src = in.data();
    float* dst = out.mutable_data();
    py::gil_scoped_release release;
    m.forward(first, last, n, src, dst, n_threads);
    return out;
}

// Optional targets: None means "the inputs" (an autoencoder).
const float* targets_of(const Model& m, const std::optional<FloatArray>& y, std::size_t n) {
    if (!y) return nullptr;
    if (rows_of(*y, m.n_outputs(), "y") != n) throw std::invalid_argument("X and y have different numbers of rows");
    return y->data();
}

py::dict settings_to_dict(const fastae::OptimizerConfig& c) {
    py::dict d;
    d["optimizer"] = fastae::name_of(c.kind);
    d["learning_rate"] = c.learning_rate;
    d["beta1"] = c.beta1;
    d["beta2"] = c.beta2;
    d["epsilon"] = c.epsilon;
    d["momentum"] = c.momentum;
    d["nesterov"] = c.nesterov;
    d["weight_decay"] = c.weight_decay;
    d["rho"] = c.rho;
    return d;
}

fastae::OptimizerConfig settings_from_dict(const py::dict& d) {
    auto get = [&](const char* key) -> py::object {
        if (!d.contains(key)) throw std::invalid_argument(std::string("optimizer settings lack '") + key + "'");
        return d[key];
    };
    fastae::OptimizerConfig c;
    c.kind = fastae::parse_optimizer(get("optimizer").cast<std::string>());
    c.learning_rate = get("learning_rate").cast<double>();
    c.beta1 = get("beta1").cast<double>();
    c.beta2 = get("beta2").cast<double>();
    c.epsilon = get("epsilon").cast<double>();
    c.momentum = get("momentum").cast<double>();
    c.nesterov = get("nesterov").cast<bool>();
    // Settings written before these existed (an older fastae's pickles) take the defaults.
    if (d.contains("weight_decay")) c.weight_decay = d["weight_decay"].cast<double>();
    if (d.contains("rho")) c.rho = d["rho"].cast<double>();
    return c;
}

// The network as {"n_inputs", "code_layer", "loss", "huber_delta", "layers": [{"units",
// "activation", "alpha", "initializer", "l1", "l2", "dropout", "noise", "noise_level",
// "activity_l1", "sparsity_target", "sparsity_weight", "contractive", "tied_to", "trainable"}, ...]}
// (fastae::NetworkSpec), and for a variational network "variational": {"beta", "kl_warmup_epochs"}.
py::dict spec_to_dict(const fastae::NetworkSpec& spec) {
    py::list layers;
    for (const fastae::LayerSpec& l : spec.layers) {
        py::dict d;
        d["units"] = l.units;
        d["activation"] = fastae::name_of(l.activation.kind);
        d["alpha"] = l.activation.alpha;
        d["initializer"] = fastae::name_of(l.initializer);
        d["l1"] = l.l1;
        d["l2"] = l.l2;
        d["dropout"] = l.dropout;
        d["noise"] = fastae::name_of(l.noise);
        d["noise_level"] = l.noise_level;
        d["activity_l1"] = l.activity_l1;
        d["sparsity_target"] = l.sparsity_target;
        d["sparsity_weight"] = l.sparsity_weight;
        d["contractive"] = l.contractive;
        d["tied_to"] = l.tied_to;
        d["trainable"] = l.trainable;
        layers.append(d);
    }
    py::dict d;
    d["n_inputs"] = spec.n_inputs;
    d["code_layer"] = spec.code_layer;
    d["loss"] = fastae::name_of(spec.head.loss);
    d["huber_delta"] = spec.head.huber_delta;
    d["layers"] = layers;
    if (spec.variational.enabled) {
        py::dict v;
        v["beta"] = spec.variational.beta;
        v["kl_warmup_epochs"] = spec.variational.kl_warmup_epochs;
        d["variational"] = v;
    }
    return d;
}

// The inverse; absent optional keys take LayerSpec's and HeadSpec's defaults (the activation's
// alpha: default_alpha). Unknown keys are errors, so a misspelt option is not silently ignored.
fastae::NetworkSpec spec_from_dict(const py::dict& d) {
    auto check_keys = [](const py::dict& dict, std::initializer_list<const char*> known, const char* what) {
        for (const auto& item : dict) {
            const std::string key = py::str(item.first);
            bool ok = false;
            for (const char* k : known) ok = ok || key == k;
            if (!ok) throw std::invalid_argument(std::string("unknown key '") + key + "' in " + what);
        }
    };
    check_keys(d, {"n_inputs", "code_layer", "loss", "huber_delta", "layers", "variational"}, "the network spec");
    fastae::NetworkSpec spec;
    spec.n_inputs = d["n_inputs"].cast<int>();
    if (d.contains("code_layer")) spec.code_layer = d["code_layer"].cast<int>();
    if (d.contains("loss")) spec.head.loss = fastae::parse_loss(d["loss"].cast<std::string>());
    if (d.contains("huber_delta")) spec.head.huber_delta = d["huber_delta"].cast<double>();
    if (d.contains("variational")) {
        const py::dict v = d["variational"].cast<py::dict>();
        check_keys(v, {"beta", "kl_warmup_epochs"}, "the variational spec");
        spec.variational.enabled = true;
        if (v.contains("beta")) spec.variational.beta = v["beta"].cast<double>();
        if (v.contains("kl_warmup_epochs")) spec.variational.kl_warmup_epochs = v["kl_warmup_epochs"].cast<int>();
    }
    for (const py::handle& item : d["layers"].cast<py::list>()) {
        const py::dict l = item.cast<py::dict>();
        check_keys(l, {"units", "activation", "alpha", "initializer", "l1", "l2", "dropout", "noise", "noise_level",
                       "activity_l1", "sparsity_target", "sparsity_weight", "contractive", "tied_to", "trainable"},
                   "a layer spec");
        fastae::LayerSpec layer;
        layer.units = l["units"].cast<int>();
        if (l.contains("activation")) {
            layer.activation = fastae::activation_spec(fastae::parse_activation(l["activation"].cast<std::string>()));
        }
        if (l.contains("alpha")) layer.activation.alpha = l["alpha"].cast<double>();
        if (l.contains("initializer")) layer.initializer = fastae::parse_initializer(l["initializer"].cast<std::string>());
        if (l.contains("l1")) layer.l1 = l["l1"].cast<double>();
        if (l.contains("l2")) layer.l2 = l["l2"].cast<double>();
        if (l.contains("dropout")) layer.dropout = l["dropout"].cast<double>();
        if (l.contains("noise")) layer.noise = fastae::parse_noise(l["noise"].cast<std::string>());
        if (l.contains("noise_level")) layer.noise_level = l["noise_level"].cast<double>();
        if (l.contains("activity_l1")) layer.activity_l1 = l["activity_l1"].cast<double>();
        if (l.contains("sparsity_target")) layer.sparsity_target = l["sparsity_target"].cast<double>();
        if (l.contains("sparsity_weight")) layer.sparsity_weight = l["sparsity_weight"].cast<double>();
        if (l.contains("contractive")) layer.contractive = l["contractive"].cast<double>();
        if (l.contains("tied_to")) layer.tied_to = l["tied_to"].cast<int>();
        if (l.contains("trainable")) layer.trainable = l["trainable"].cast<bool>();
        spec.layers.push_back(layer);
    }
    return spec;
}

// The optimizer state as {"config": settings, "steps": int, "m": array, "v": array}, or None.
// A copy taken under the model's use guard (model.h, "Threads").
py::object optimizer_state_to_python(const Model& m) {
    const std::optional<fastae::OptimizerState> s = m.copy_optimizer_state();
    if (!s) return py::none();
    py::dict d;
    d["config"] = settings_to_dict(s->config);
    d["steps"] = s->steps;
    d["m"] = FloatArray(static_cast<py::ssize_t>(s->m.size()), s->m.data());
    d["v"] = FloatArray(static_cast<py::ssize_t>(s->v.size()), s->v.data());
    return std::move(d);
}

void set_optimizer_state_from_python(Model& m, const py::dict& d) {
    fastae::OptimizerState s;
    s.config = settings_from_dict(d["config"].cast<py::dict>());
    s.steps = d["steps"].cast<std::int64_t>();
    for (const char* key : {"m", "v"}) {
        const auto a = d[key].cast<FloatArray>();
        if (a.ndim() != 1) throw std::invalid_argument(std::string("optimizer state ") + key + " must be 1-D");
        (key[0] == 'm' ? s.m : s.v).assign(a.data(), a.data() + a.shape(0));
    }
    m.set_optimizer_state(s);
}

fastae::SaveOptions save_options(const std::optional<py::dict>& optimizer, bool include_optimizer_state,
                                 const py::bytes& metadata) {
    fastae::SaveOptions o;
    if (optimizer) o.optimizer = settings_from_dict(*optimizer);
    o.include_optimizer_state = include_optimizer_state;
    o.metadata = static_cast<std::string>(metadata);
    return o;
}

py::tuple model_file_to_python(fastae::ModelFile&& file) {
    return py::make_tuple(py::cast(std::move(file.model)), settings_to_dict(file.optimizer),
                          py::bytes(file.metadata));
}

py::dict report_to_dict(const fastae::EpochReport& r) {
    py::dict d;
    d["epoch"] = r.epoch;
    d["loss"] = r.loss;
    if (r.has_val_loss) d["val_loss"] = r.val_loss;
    d["seconds"] = r.seconds;
    d["lr"] = r.lr;
    d["improved"] = r.improved;
    for (const auto& [name, value] : r.metrics) d[py::str(name)] = value;
    return d;
}

// One dataset as the engine takes it (fastae::TrainingData): X float32 or uint8 (read as
// value * scale, converted per batch inside the engine), optional float32 targets and weights;
// all C-contiguous, never converted here. The arrays stay referenced by the caller.
fastae::TrainingData training_data(const Model& m, const py::object& x, const std::optional<FloatArray>& y,
                                   const std::optional<FloatArray>& w, float scale, const char* name) {
    using ByteArray = py::array_t<std::uint8_t, py::array::c_style>;
    fastae::TrainingData d;
    if (py::isinstance<py::tuple>(x)) {  // ("csr", indptr int64, indices int32, values float32, n_rows)
        auto t = py::reinterpret_borrow<py::tuple>(x);
        if (t.size() != 5 || !py::isinstance<py::str>(t[0]) || t[0].cast<std::string>() != "csr") {
            throw py::type_error(std::string(name) + ": a sparse input is ('csr', indptr, indices, values, n_rows)");
        }
        using Int64Array = py::array_t<std::int64_t, py::array::c_style>;
        using Int32Array = py::array_t<std::int32_t, py::array::c_style>;
        if (!Int64Array::check_(t[1]) || !Int32Array::check_(t[2]) || !FloatArray::check_(t[3])) {
            throw py::type_error(std::string(name) + ": CSR arrays must be C-contiguous int64 indptr, int32 indices "
                                 "and float32 values");
        }
        auto indptr = py::reinterpret_borrow<Int64Array>(t[1]);
        auto indices = py::reinterpret_borrow<Int32Array>(t[2]);
        auto values = py::reinterpret_borrow<FloatArray>(t[3]);
        d.n = t[4].cast<std::size_t>();
        if (indptr.ndim() != 1 || std::size_t(indptr.shape(0)) != d.n + 1 || indices.ndim() != 1 || values.ndim() != 1 ||
            indices.shape(0) != values.shape(0) || indptr.at(py::ssize_t(d.n)) > std::int64_t(values.shape(0))) {
            throw std::invalid_argument(std::string(name) + ": CSR arrays of inconsistent lengths");
        }
        d.csr_indptr = indptr.data();
        d.csr_indices = indices.data();
        d.csr_values = values.data();
    } else if (ByteArray::check_(x)) {
        auto xb = py::reinterpret_borrow<ByteArray>(x);
        d.n = rows_of_shape(xb, m.n_inputs(), name);
        d.x_u8 = xb.data();
        d.scale = scale;
    } else if (FloatArray::check_(x)) {
        auto xf = py::reinterpret_borrow<FloatArray>(x);
        d.n = rows_of(xf, m.n_inputs(), name);
        d.x = xf.data();
    } else {
        throw py::type_error(std::string(name) + " must be a C-contiguous float32 or uint8 array");
    }
    d.y = targets_of(m, y, d.n);
    if (w) {
        if (w->ndim() != 1 || std::size_t(w->shape(0)) != d.n) {
            throw std::invalid_argument(std::string(name) + "'s sample_weight must be 1-D with one value per row");
        }
        d.sample_weight = w->data();
    }
    return d;
}

// fastae::TrainOptions from a dict: epochs, batch_size, shuffle, seed, n_threads and
// resume_optimizer are required; the training controls are optional (TrainOptions' defaults).
// lr_schedule is a schedule's name; a Python callable goes in as lr_function.
fastae::TrainOptions train_options(const py::dict& o) {
    fastae::TrainOptions t;
    t.epochs = o["epochs"].cast<int>();
    t.batch_size = o["batch_size"].cast<int>();
    t.shuffle = o["shuffle"].cast<bool>();
    t.seed = o["seed"].cast<std::uint64_t>();
    t.n_threads = o["n_threads"].cast<int>();
    t.resume_optimizer = o["resume_optimizer"].cast<bool>();
    auto take = [&](const char* key, auto& field) {
        if (o.contains(key)) field = o[key].cast<std::decay_t<decltype(field)>>();
    };
    take("initial_epoch", t.initial_epoch);
    take("validation_split", t.validation_split);
    take("early_stopping", t.early_stopping);
    take("patience", t.patience);
    take("min_delta", t.min_delta);
    take("restore_best_weights", t.restore_best_weights);
    if (o.contains("lr_schedule")) t.lr_schedule = fastae::parse_lr_schedule(o["lr_schedule"].cast<std::string>());
    take("lr_decay_rate", t.lr_decay_rate);
    take("lr_decay_steps", t.lr_decay_steps);
    take("lr_min", t.lr_min);
    take("lr_patience", t.lr_patience);
    take("lr_in_force", t.lr_in_force);
    take("clipnorm", t.clipnorm);
    take("max_time", t.max_time);
    take("progress_interval", t.progress_interval);
    return t;
}

const char* stop_reason_name(fastae::StopReason r) {
    switch (r) {
        case fastae::StopReason::completed: return "completed";
        case fastae::StopReason::callback: return "callback";
        case fastae::StopReason::interrupted: return "interrupted";
        case fastae::StopReason::early_stopping: return "early_stopping";
        case fastae::StopReason::max_time: return "max_time";
    }
    return "?";
}

// fit: releases the GIL for the whole loop; takes it back briefly for the per-epoch callback and,
// every kSignalCheckInterval, to let Python run its signal handlers (Ctrl-C -> KeyboardInterrupt).
py::tuple fit(Model& m, const py::object& x, const std::optional<FloatArray>& y,
              const std::optional<FloatArray>& sample_weight, const std::optional<py::array>& x_val,
              const std::optional<FloatArray>& y_val, const std::optional<FloatArray>& w_val, float scale,
              const py::dict& optimizer, const py::dict& options, const std::optional<py::function>& on_epoch,
              const std::optional<py::function>& on_progress, const std::optional<py::function>& lr_function,
              const std::optional<py::tuple>& processes) {
    const fastae::OptimizerConfig oc = settings_from_dict(optimizer);
    fastae::TrainOptions opts = train_options(options);
    const fastae::TrainingData data = training_data(m, x, y, sample_weight, scale, "X");
    fastae::TrainingData val;
    if (x_val) val = training_data(m, *x_val, y_val, w_val, scale, "validation X");

    std::optional<py::error_already_set> python_error;
    auto last_check = std::chrono::steady_clock::now();
    opts.should_stop = [&]() {
        const auto now = std::chrono::steady_clock::now();
        if (now - last_check < kSignalCheckInterval) return false;
        last_check = now;
        py::gil_scoped_acquire acquire;
        if (PyErr_CheckSignals() != 0) {
            python_error.emplace();  // fetches the pending KeyboardInterrupt (or handler error)
            return true;
        }
        return false;
    };
    if (on_epoch) {
        opts.on_epoch = [&](const fastae::EpochReport& r) {
            py::gil_scoped_acquire acquire;
            try {
                py::object keep_going = (*on_epoch)(report_to_dict(r));
                return keep_going.is_none() || keep_going.cast<bool>();
            } catch (py::error_already_set& e) {
                python_error.emplace(std::move(e));
                // Thrown, not `return false`: a callback's exception leaves the last epoch's
                // weights (no restore_best_weights), as the estimators document.
                throw fastae::TrainingStopped("a callback raised");
            }
        };
    }

    // The learning-rate function and the progress display: Python callables, each call under the
    // GIL; an exception stops training and is raised once fit returns.
    if (lr_function) {
        opts.lr_function = [&](int epoch, double lr) {
            py::gil_scoped_acquire acquire;
            try {
                return (*lr_function)(epoch, lr).cast<double>();
            } catch (py::error_already_set& e) {
                python_error.emplace(std::move(e));
            } catch (const py::cast_error&) {
                PyErr_SetString(PyExc_TypeError, "the learning-rate schedule must return a number");
                python_error.emplace();  // fetches the error just set
            }
            throw fastae::TrainingStopped("the learning-rate schedule raised");
        };
    }
    if (on_progress) {
        opts.on_progress = [&](const fastae::Progress& p) {
            py::gil_scoped_acquire acquire;
            if (python_error) return;
            try {
                py::dict d;
                d["epoch"] = p.epoch;
                d["step"] = p.step;
                d["steps"] = p.steps;
                d["samples"] = p.samples;
                d["loss"] = p.loss;
                d["seconds"] = p.seconds;
                (*on_progress)(d);
            } catch (py::error_already_set& e) {
                // Stops at once: a KeyboardInterrupt that Python raised inside the display is a
                // Ctrl-C, which must not wait for the end of training.
                python_error.emplace(std::move(e));
                throw fastae::TrainingStopped("the progress display raised");
            }
        };
    }

    // Data-parallel training (fastae.distributed): (global_rows, row_offset, lead, sum), sum(values,
    // figures) summing float32 and float64 arrays (views of the engine's buffers, or None) in place
    // across the processes.
    if (processes) {
        fastae::ProcessGroup& g = opts.processes;
        g.global_rows = (*processes)[0].cast<std::size_t>();
        g.row_offset = (*processes)[1].cast<std::size_t>();
        g.lead = (*processes)[2].cast<bool>();
        const py::function sum = (*processes)[3].cast<py::function>();
        g.sum = [&python_error, sum](float* values, std::size_t n, double* figures, std::size_t n_figures) {
            py::gil_scoped_acquire acquire;
            const py::capsule unowned(values ? static_cast<void*>(values) : static_cast<void*>(figures), [](void*) {});
            py::object v = n ? py::object(py::array_t<float>({n}, {sizeof(float)}, values, unowned)) : py::none();
            py::object f = n_figures ? py::object(py::array_t<double>({n_figures}, {sizeof(double)}, figures, unowned))
                                     : py::none();
            try {
                sum(v, f);
            } catch (py::error_already_set& e) {
                python_error.emplace(std::move(e));
                throw fastae::TrainingStopped("the group's sum raised");
            }
        };
    }

    std::vector<fastae::EpochReport> history;
    fastae::StopReason reason;
    try {
        py::gil_scoped_release release;
        reason = m.fit(data, &val, oc, opts, &history);
    } catch (const fastae::TrainingStopped&) {
        reason = fastae::StopReason::callback;  // python_error says why
    }
    if (python_error) throw std::move(*python_error);
    py::list hist;
    for (const auto& r : history) hist.append(report_to_dict(r));
    return py::make_tuple(hist, stop_reason_name(reason));
}

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

}  // namespace

PYBIND11_MODULE(_core, mod) {
    mod.doc() = "fastae's compiled engine (private: use fastae.Autoencoder).";
    mod.attr("__version__") = fastae::version_string;
    py::register_exception<fastae::TrainingDiverged>(mod, "TrainingDivergedError", PyExc_FloatingPointError);
    mod.def("build_info", &fastae::build_info, "Version, SIMD instruction sets and Eigen version of this build.");
    mod.def("measured_fma_peak_gflops", &fastae::measured_fma_peak_gflops, py::arg("runs") = 400,
            py::call_guard<py::gil_scoped_release>(),
            "Single-core GFLOP/s of register-only FMAs on this build's widest vectors (fastae/machine.h).");
    mod.def("measured_sgemm_gflops", &fastae::measured_sgemm_gflops, py::arg("n") = 2048, py::arg("seconds") = 1.0,
            py::call_guard<py::gil_scoped_release>(),
            "Single-core GFLOP/s of the engine's own n x n x n float product (fastae/machine.h).");
    mod.attr("MODEL_FILE_VERSION") = fastae::model_file_version;
    mod.attr("AUTOENCODER_SHUFFLE_SEED_OFFSET") = fastae::autoencoder_shuffle_seed_offset;
    py::register_exception<fastae::ModelFileError>(mod, "ModelFileError", PyExc_ValueError);
    py::register_exception<fastae::PeerFailed>(mod, "PeerFailedError", PyExc_RuntimeError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::filesystem::filesystem_error& e) {
            // OSError(errno, message) becomes the errno's subclass (FileNotFoundError, ...).
            PyErr_SetObject(PyExc_OSError, py::make_tuple(e.code().value(), e.what()).ptr());
        }
    });
    export_vocabulary(mod);
    mod.def("param_count", [](const py::dict& spec) { return fastae::param_count(spec_from_dict(spec)); },
            py::arg("spec"), "Parameters of the network a spec describes (validated as Model does).");
    mod.def("hardware_threads", [] { return std::thread::hardware_concurrency(); },
            "Hardware threads reported by the C++ runtime.");

    py::class_<Model>(mod, "Model")
        .def(py::init([](const std::vector<int>& layer_sizes, const std::string& activation,
                         const std::string& output_activation, const std::string& loss) {
                 fastae::NetworkConfig c;
                 c.layer_sizes = layer_sizes;
                 c.activation = fastae::parse_activation(activation);
                 c.output_activation = fastae::parse_activation(output_activation);
                 c.loss = fastae::parse_loss(loss);
                 return Model(c);
             }),
             py::arg("layer_sizes"), py::arg("activation"), py::arg("output_activation"), py::arg("loss"))
        .def_static("from_spec", [](const py::dict& spec) { return Model(spec_from_dict(spec)); }, py::arg("spec"),
                    "A model from a network spec dict (see spec()).")
        .def("spec", [](const Model& m) { return spec_to_dict(m.spec()); },
             "The network as a dict: n_inputs, code_layer, loss, huber_delta, layers [{units, activation, alpha, "
             "initializer, l1, l2, dropout, noise, noise_level, activity_l1, sparsity_target, sparsity_weight, "
             "contractive, tied_to, trainable}].")
        .def_property_readonly("layer_sizes", [](const Model& m) { return m.config().layer_sizes; })
        .def_property_readonly("activation", [](const Model& m) { return fastae::name_of(m.config().activation); })
        .def_property_readonly("output_activation",
                               [](const Model& m) { return fastae::name_of(m.config().output_activation); })
        .def_property_readonly("loss", [](const Model& m) { return fastae::name_of(m.config().loss); })
        .def_property_readonly("n_layers", &Model::n_layers)
        .def_property_readonly("n_inputs", &Model::n_inputs)
        .def_property_readonly("n_outputs", &Model::n_outputs)
        .def_property_readonly("n_encoder_layers", &Model::n_encoder_layers)
        .def_property_readonly("code_size", &Model::code_size)
        .def_property_readonly("n_params", &Model::n_params)
        .def("param_offset", &Model::param_offset, py::arg("layer"))
        .def("bias_offset", &Model::bias_offset, py::arg("layer"))
        .def("init_weights", &Model::init_weights, py::arg("seed"))
        .def("get_params", [](const Model& m) {
            FloatArray out(static_cast<py::ssize_t>(m.n_params()));
            m.copy_params(out.mutable_data());
            return out;
        }, "A copy of the flat parameter buffer.")
        .def("set_params", [](Model& m, const FloatArray& values) {
            if (values.ndim() != 1) throw std::invalid_argument("params must be 1-D");
            m.set_params(values.data(), static_cast<std::size_t>(values.shape(0)));
        }, py::arg("values").noconvert())
        .def("forward", &run_forward, py::arg("first"), py::arg("last"), py::arg("X").noconvert(),
             py::arg("n_threads") = 1)
        .def("encode", [](const Model& m, const FloatArray& x, int n_threads) {
            return run_forward(m, 0, m.n_encoder_layers(), x, n_threads);
        }, py::arg("X").noconvert(), py::arg("n_threads") = 1)
        .def("decode", [](const Model& m, const FloatArray& z, int n_threads) {
            return run_forward(m, m.n_encoder_layers(), m.n_layers(), z, n_threads);
        }, py::arg("codes").noconvert(), py::arg("n_threads") = 1)
        .def("predict", [](const Model& m, const FloatArray& x, int n_threads) {
            return run_forward(m, 0, m.n_layers(), x, n_threads);
        }, py::arg("X").noconvert(), py::arg("n_threads") = 1)
        .def("sample_losses", [](const Model& m, const FloatArray& x, const std::optional<FloatArray>& y,
                                 int n_threads) {
            const std::size_t n = rows_of(x, m.n_inputs(), "X");
            const float* yp = targets_of(m, y, n);
            FloatArray out(static_cast<py::ssize_t>(n));
            float* dst = out.mutable_data();
            const float* src = x.data();
            py::gil_scoped_release release;
            m.sample_losses(n, src, yp, dst, n_threads);
            return out;
        }, py::arg("X").noconvert(), py::arg("y").noconvert() = py::none(), py::arg("n_threads") = 1)
        .def("loss_and_gradient", [](const Model& m, const FloatArray& x, const std::optional<FloatArray>& y) {
            const std::size_t n = rows_of(x, m.n_inputs(), "X");
            const float* yp = targets_of(m, y, n);
            FloatArray grad(static_cast<py::ssize_t>(m.n_params()));
            float* g = grad.mutable_data();
            const float* src = x.data();
            double loss;
            {
                py::gil_scoped_release release;
                loss = m.loss_and_gradient(n, src, yp, g);
            }
            return py::make_tuple(loss, grad);
        }, py::arg("X").noconvert(), py::arg("y").noconvert() = py::none(),
           "Mean loss of X (targets y, or X) and its gradient, in the layout of get_params().")
        .def("encode_gaussian", [](const Model& m, const FloatArray& x, int n_threads) {
            const std::size_t n = rows_of(x, m.n_inputs(), "X");
            FloatArray mean = new_matrix(n, m.code_size()), logvar = new_matrix(n, m.code_size());
            float* mp = mean.mutable_data();
            float* lp = logvar.mutable_data();
            const float* src = x.data();
            {
                py::gil_scoped_release release;
                m.encode_gaussian(n, src, mp, lp, n_threads);
            }
            return py::make_tuple(mean, logvar);
        }, py::arg("X").noconvert(), py::arg("n_threads") = 1,
           "A variational network's code means and (clamped) log-variances.")
        .def("sample", [](const Model& m, std::size_t n, std::uint64_t seed, int n_threads) {
            FloatArray out = new_matrix(n, m.n_outputs());
            float* dst = out.mutable_data();
            py::gil_scoped_release release;
            m.sample(n, seed, dst, n_threads);
            return out;
        }, py::arg("n"), py::arg("seed"), py::arg("n_threads") = 1,
           "Decodes n codes drawn from the prior N(0, I) (row i's keyed by (seed, i)).")
        .def("elbo_terms", [](const Model& m, const FloatArray& x, std::uint64_t seed, int n_threads) {
            const std::size_t n = rows_of(x, m.n_inputs(), "X");
            FloatArray rec(static_cast<py::ssize_t>(n)), kl(static_cast<py::ssize_t>(n));
            float* rp = rec.mutable_data();
            float* kp = kl.mutable_data();
            const float* src = x.data();
            {
                py::gil_scoped_release release;
                m.elbo_terms(n, src, seed, rp, kp, n_threads);
            }
            return py::make_tuple(rec, kl);
        }, py::arg("X").noconvert(), py::arg("seed"), py::arg("n_threads") = 1,
           "Per sample: the reconstruction loss summed over the outputs and the KL term (one keyed draw).")
        .def("code_noise", [](const Model& m, std::size_t n, std::uint64_t seed, int epoch, std::size_t first_row) {
            FloatArray eps = new_matrix(n, m.code_size());
            m.code_noise(n, seed, epoch, first_row, eps.mutable_data());
            return eps;
        }, py::arg("n"), py::arg("seed"), py::arg("epoch"), py::arg("first_row") = 0,
           "The eps a training step draws for rows first_row... in 1-based epoch `epoch` of a fit seeded `seed`.")
        .def("training_loss_and_gradient", [](const Model& m, const FloatArray& x, std::uint64_t seed, int epoch) {
            const std::size_t n = rows_of(x, m.n_inputs(), "X");
            FloatArray grad(static_cast<py::ssize_t>(m.n_params()));
            float* g = grad.mutable_data();
            const float* src = x.data();
            double loss;
            {
                py::gil_scoped_release release;
                loss = m.training_loss_and_gradient(n, src, seed, epoch, g);
            }
            return py::make_tuple(loss, grad);
        }, py::arg("X").noconvert(), py::arg("seed"), py::arg("epoch"),
           "A training step's objective on X's rows (epoch `epoch`, seed `seed`) and its gradient.")
        .def("fit", &fit, py::arg("X"), py::arg("y").noconvert(), py::arg("sample_weight").noconvert(),
             py::arg("X_val"), py::arg("y_val").noconvert(), py::arg("w_val").noconvert(), py::arg("scale"),
             py::arg("optimizer"), py::arg("options"), py::arg("on_epoch") = py::none(),
             py::arg("on_progress") = py::none(), py::arg("lr_function") = py::none(),
             py::arg("processes") = py::none(),
             "Trains in place; returns (history, stop_reason). optimizer: settings dict (optimizer, learning_rate, "
             "beta1, beta2, epsilon, momentum, nesterov, weight_decay, rho); options: epochs, batch_size, shuffle, "
             "seed, n_threads, resume_optimizer. Raises KeyboardInterrupt on Ctrl-C after the current step, with "
             "the model usable.")
        .def_property_readonly("has_optimizer_state", &Model::has_optimizer_state)
        .def("optimizer_state", &optimizer_state_to_python,
             "A copy of the optimizer state left by the last fit: {config, steps, m, v}, or None.")
        .def("set_optimizer_state", &set_optimizer_state_from_python, py::arg("state"))
        .def("copy", [](const Model& m) { return Model(m); }, "A deep copy.");

    // Model files (fastae/model_file.h). Paths arrive as bytes (os.fsencode), so any file name works.
    mod.def("model_to_bytes", [](const Model& m, const std::optional<py::dict>& optimizer,
                                 bool include_optimizer_state, const py::bytes& metadata) {
        const fastae::SaveOptions o = save_options(optimizer, include_optimizer_state, metadata);
        std::vector<std::uint8_t> bytes;
        {
            py::gil_scoped_release release;
            bytes = fastae::model_to_bytes(m, o);
        }
        return py::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }, py::arg("model"), py::arg("optimizer"), py::arg("include_optimizer_state"), py::arg("metadata"),
       "The model file as bytes; optimizer: settings dict or None (those of the optimizer state).");
    mod.def("model_from_bytes", [](const py::bytes& data) {
        char* p = nullptr;
        py::ssize_t n = 0;
        if (PyBytes_AsStringAndSize(data.ptr(), &p, &n) != 0) throw py::error_already_set();
        std::optional<fastae::ModelFile> file;
        {
            py::gil_scoped_release release;
            file.emplace(fastae::model_from_bytes(p, static_cast<std::size_t>(n)));
        }
        return model_file_to_python(std::move(*file));
    }, py::arg("data"), "Parses a model file: (Model, optimizer settings dict, metadata bytes).");
    mod.def("save_model", [](const Model& m, const py::bytes& path, const std::optional<py::dict>& optimizer,
                             bool include_optimizer_state, const py::bytes& metadata) {
        const fastae::SaveOptions o = save_options(optimizer, include_optimizer_state, metadata);
        const std::string p = path;
        py::gil_scoped_release release;
        fastae::save_model(m, p, o);
    }, py::arg("model"), py::arg("path"), py::arg("optimizer"), py::arg("include_optimizer_state"),
       py::arg("metadata"), "Writes the model file atomically (temporary file, fsync, rename).");
    mod.def("load_model", [](const py::bytes& path) {
        const std::string p = path;
        std::optional<fastae::ModelFile> file;
        {
            py::gil_scoped_release release;
            file.emplace(fastae::load_model(p));
        }
        return model_file_to_python(std::move(*file));
    }, py::arg("path"), "Reads a model file: (Model, optimizer settings dict, metadata bytes).");
}
