// module.cpp -- fastae._core: the pybind11 binding of fastae::Model. It converts, checks shapes,
// releases the GIL and makes one call; all logic lives in the C++ core or in the Python layer.
//
// Arrays cross the boundary as C-contiguous float32 and are never converted here (noconvert):
// the Python layer converts other dtypes and layouts once, so what reaches C++ is read in place.
// std::invalid_argument becomes ValueError (pybind11's translation), std::bad_alloc MemoryError,
// std::runtime_error RuntimeError (a call refused because fit is changing the model, model.h).
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
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

// Rows of a 2-D float32 array whose width must be `width`; `name` names it in the error.
std::size_t rows_of(const FloatArray& a, py::ssize_t width, const char* name) {
    if (a.ndim() != 2) {
        throw std::invalid_argument(std::string(name) + " must be 2-D, got " + std::to_string(a.ndim()) + "-D");
    }
    if (a.shape(1) != width) {
        throw std::invalid_argument(std::string(name) + " has " + std::to_string(a.shape(1)) +
                                    " columns; the model expects " + std::to_string(width));
    }
    return static_cast<std::size_t>(a.shape(0));
}

FloatArray new_matrix(std::size_t rows, int cols) {
    return FloatArray({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)});
}

FloatArray run_forward(const Model& m, int first, int last, const FloatArray& in) {
    const std::size_t n = rows_of(in, m.config().layer_sizes.at(std::size_t(first)), "X");
    FloatArray out = new_matrix(n, m.config().layer_sizes.at(std::size_t(last)));
    const float* src = in.data();
    float* dst = out.mutable_data();
    py::gil_scoped_release release;
    m.forward(first, last, n, src, dst);
    return out;
}

// Optional targets: None means "the inputs" (an autoencoder).
const float* targets_of(const Model& m, const std::optional<FloatArray>& y, std::size_t n) {
    if (!y) return nullptr;
    if (rows_of(*y, m.n_outputs(), "y") != n) throw std::invalid_argument("X and y have different numbers of rows");
    return y->data();
}

py::dict report_to_dict(const fastae::EpochReport& r) {
    py::dict d;
    d["epoch"] = r.epoch;
    d["loss"] = r.loss;
    if (r.has_val_loss) d["val_loss"] = r.val_loss;
    d["seconds"] = r.seconds;
    return d;
}

// fit: releases the GIL for the whole loop; takes it back briefly for the per-epoch callback and,
// every kSignalCheckInterval, to let Python run its signal handlers (Ctrl-C -> KeyboardInterrupt).
py::tuple fit(Model& m, const FloatArray& x, const std::optional<FloatArray>& y,
              const std::optional<FloatArray>& x_val, const std::optional<FloatArray>& y_val,
              const std::string& optimizer, double learning_rate, double beta1, double beta2, double epsilon,
              double momentum, bool nesterov, int epochs, int batch_size, bool shuffle, std::uint64_t seed,
              int n_threads, const std::optional<py::function>& on_epoch) {
    fastae::OptimizerConfig oc;
    oc.kind = fastae::parse_optimizer(optimizer);
    oc.learning_rate = learning_rate;
    oc.beta1 = beta1;
    oc.beta2 = beta2;
    oc.epsilon = epsilon;
    oc.momentum = momentum;
    oc.nesterov = nesterov;
    fastae::TrainOptions opts;
    opts.epochs = epochs;
    opts.batch_size = batch_size;
    opts.shuffle = shuffle;
    opts.seed = seed;
    opts.n_threads = n_threads;

    const std::size_t n = rows_of(x, m.n_inputs(), "X");
    const float* yp = targets_of(m, y, n);
    std::size_t n_val = 0;
    const float* xv = nullptr;
    const float* yv = nullptr;
    if (x_val) {
        n_val = rows_of(*x_val, m.n_inputs(), "validation X");
        xv = x_val->data();
        yv = targets_of(m, y_val, n_val);
    }

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
                return false;
            }
        };
    }

    std::vector<fastae::EpochReport> history;
    fastae::StopReason reason;
    {
        py::gil_scoped_release release;
        reason = m.fit(n, x.data(), yp, n_val, xv, yv, oc, opts, &history);
    }
    if (python_error) throw std::move(*python_error);
    py::list hist;
    for (const auto& r : history) hist.append(report_to_dict(r));
    const char* why = reason == fastae::StopReason::completed ? "completed"
                      : reason == fastae::StopReason::callback ? "callback"
                                                                 : "interrupted";
    return py::make_tuple(hist, why);
}

}  // namespace

PYBIND11_MODULE(_core, mod) {
    mod.doc() = "fastae's compiled engine (private: use fastae.Autoencoder).";
    mod.attr("__version__") = fastae::version_string;
    mod.def("build_info", &fastae::build_info, "Version, SIMD instruction sets and Eigen version of this build.");
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
        .def("init_weights", &Model::init_weights, py::arg("seed"))
        .def("get_params", [](const Model& m) {
            FloatArray out(static_cast<py::ssize_t>(m.n_params()));
            m.copy_params(out.mutable_data());
            return out;
        }, "A copy of the flat parameter buffer.")
        .def_property_readonly("optimizer_state", [](const Model& m) -> py::object {
            const std::optional<fastae::OptimizerState> s = m.copy_optimizer_state();
            if (!s) return py::none();
            py::dict d;
            d["optimizer"] = fastae::name_of(s->config.kind);
            d["steps"] = s->steps;
            d["m"] = FloatArray(static_cast<py::ssize_t>(s->m.size()), s->m.data());
            d["v"] = FloatArray(static_cast<py::ssize_t>(s->v.size()), s->v.data());
            return d;
        }, "A copy of the optimizer state left by the last fit ({optimizer, steps, m, v}), or None.")
        .def("set_params", [](Model& m, const FloatArray& values) {
            if (values.ndim() != 1) throw std::invalid_argument("params must be 1-D");
            m.set_params(values.data(), static_cast<std::size_t>(values.shape(0)));
        }, py::arg("values").noconvert())
        .def("forward", &run_forward, py::arg("first"), py::arg("last"), py::arg("X").noconvert())
        .def("encode", [](const Model& m, const FloatArray& x) { return run_forward(m, 0, m.n_encoder_layers(), x); },
             py::arg("X").noconvert())
        .def("decode", [](const Model& m, const FloatArray& z) {
            return run_forward(m, m.n_encoder_layers(), m.n_layers(), z);
        }, py::arg("codes").noconvert())
        .def("predict", [](const Model& m, const FloatArray& x) { return run_forward(m, 0, m.n_layers(), x); },
             py::arg("X").noconvert())
        .def("sample_losses", [](const Model& m, const FloatArray& x, const std::optional<FloatArray>& y) {
            const std::size_t n = rows_of(x, m.n_inputs(), "X");
            const float* yp = targets_of(m, y, n);
            FloatArray out(static_cast<py::ssize_t>(n));
            float* dst = out.mutable_data();
            const float* src = x.data();
            py::gil_scoped_release release;
            m.sample_losses(n, src, yp, dst);
            return out;
        }, py::arg("X").noconvert(), py::arg("y").noconvert() = py::none())
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
        .def("fit", &fit, py::arg("X").noconvert(), py::arg("y").noconvert(), py::arg("X_val").noconvert(),
             py::arg("y_val").noconvert(), py::arg("optimizer"), py::arg("learning_rate"), py::arg("beta1"),
             py::arg("beta2"), py::arg("epsilon"), py::arg("momentum"), py::arg("nesterov"), py::arg("epochs"),
             py::arg("batch_size"), py::arg("shuffle"), py::arg("seed"), py::arg("n_threads"),
             py::arg("on_epoch") = py::none(),
             "Trains in place; returns (history, stop_reason). Raises KeyboardInterrupt on Ctrl-C after the "
             "current step, with the model usable.")
        .def("copy", [](const Model& m) { return Model(m); }, "A deep copy.");
}
