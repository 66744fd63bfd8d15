// fit.cpp -- fastae._core's Model.fit (fit.h).
#include "fit.h"

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "dicts.h"

using fastae::Model;

namespace fastae_binding {

namespace {

// Milliseconds between checks for Ctrl-C during fit (each check briefly takes the GIL).
constexpr auto kSignalCheckInterval = std::chrono::milliseconds(20);

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

}  // namespace

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

}  // namespace fastae_binding
