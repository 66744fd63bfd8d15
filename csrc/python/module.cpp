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
    return c;
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
    return d;
}

// fit: releases the GIL for the whole loop; takes it back briefly for the per-epoch callback and,
// every kSignalCheckInterval, to let Python run its signal handlers (Ctrl-C -> KeyboardInterrupt).
// X (and X_val) are float32, or uint8 read as value * scale (an autoencoder's 8-bit images,
// converted per batch inside the engine: Model::fit_u8); both C-contiguous, never converted here.
py::tuple fit(Model& m, const py::array& x, const std::optional<FloatArray>& y, const std::optional<py::array>& x_val,
              const std::optional<FloatArray>& y_val, float scale, const std::string& optimizer,
              double learning_rate, double beta1, double beta2, double epsilon, double momentum, bool nesterov,
              int epochs, int batch_size, bool shuffle, std::uint64_t seed, int n_threads, bool resume_optimizer,
              const std::optional<py::function>& on_epoch) {
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
    opts.resume_optimizer = resume_optimizer;

    using ByteArray = py::array_t<std::uint8_t, py::array::c_style>;
    const bool bytes = ByteArray::check_(x);
    if (!bytes && !FloatArray::check_(x)) throw py::type_error("X must be a C-contiguous float32 or uint8 array");
    if (x_val && (bytes ? !ByteArray::check_(*x_val) : !FloatArray::check_(*x_val))) {
        throw py::type_error("validation X must have X's dtype (float32 or uint8) and be C-contiguous");
    }
    if (bytes && (y || y_val)) throw std::invalid_argument("uint8 data trains autoencoders only: pass no targets");
    std::size_t n = 0, n_val = 0;
    const float* xp = nullptr;
    const float* yp = nullptr;
    const float* xv = nullptr;
    const float* yv = nullptr;
    const std::uint8_t* x8 = nullptr;
    const std::uint8_t* xv8 = nullptr;
    if (bytes) {
        auto xb = py::reinterpret_borrow<ByteArray>(x);
        n = rows_of_shape(xb, m.n_inputs(), "X");
        x8 = xb.data();
        if (x_val) {
            auto vb = py::reinterpret_borrow<ByteArray>(*x_val);
            n_val = rows_of_shape(vb, m.n_inputs(), "validation X");
            xv8 = vb.data();
        }
    } else {
        auto xf = py::reinterpret_borrow<FloatArray>(x);
        n = rows_of(xf, m.n_inputs(), "X");
        xp = xf.data();
        yp = targets_of(m, y, n);
        if (x_val) {
            auto vf = py::reinterpret_borrow<FloatArray>(*x_val);
            n_val = rows_of(vf, m.n_inputs(), "validation X");
            xv = vf.data();
            yv = targets_of(m, y_val, n_val);
        }
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
        reason = bytes ? m.fit_u8(n, x8, scale, n_val, xv8, oc, opts, &history)
                       : m.fit(n, xp, yp, n_val, xv, yv, oc, opts, &history);
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
    py::register_exception<fastae::TrainingDiverged>(mod, "TrainingDivergedError", PyExc_FloatingPointError);
    mod.def("build_info", &fastae::build_info, "Version, SIMD instruction sets and Eigen version of this build.");
    mod.attr("MODEL_FILE_VERSION") = fastae::model_file_version;
    mod.attr("AUTOENCODER_SHUFFLE_SEED_OFFSET") = fastae::autoencoder_shuffle_seed_offset;
    py::register_exception<fastae::ModelFileError>(mod, "ModelFileError", PyExc_ValueError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::filesystem::filesystem_error& e) {
            // OSError(errno, message) becomes the errno's subclass (FileNotFoundError, ...).
            PyErr_SetObject(PyExc_OSError, py::make_tuple(e.code().value(), e.what()).ptr());
        }
    });
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
        .def("fit", &fit, py::arg("X"), py::arg("y").noconvert(), py::arg("X_val"),
             py::arg("y_val").noconvert(), py::arg("scale"), py::arg("optimizer"), py::arg("learning_rate"), py::arg("beta1"),
             py::arg("beta2"), py::arg("epsilon"), py::arg("momentum"), py::arg("nesterov"), py::arg("epochs"),
             py::arg("batch_size"), py::arg("shuffle"), py::arg("seed"), py::arg("n_threads"),
             py::arg("resume_optimizer") = false,
             py::arg("on_epoch") = py::none(),
             "Trains in place; returns (history, stop_reason). Raises KeyboardInterrupt on Ctrl-C after the "
             "current step, with the model usable. resume_optimizer: continue from the model's optimizer "
             "state (TrainOptions::resume_optimizer).")
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
