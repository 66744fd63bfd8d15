// module.cpp -- fastae._core: the pybind11 binding of fastae::Model. It converts, checks shapes,
// releases the GIL and makes one call; all logic lives in the C++ core or in the Python layer.
//
// Arrays cross the boundary as C-contiguous float32 and are never converted here (noconvert):
// the Python layer converts other dtypes and layouts once, so what reaches C++ is read in place.
// std::invalid_argument becomes ValueError (pybind11's translation), std::bad_alloc MemoryError,
// fastae::ModelFileError fastae.ModelFileError (a ValueError), and std::filesystem::filesystem_error
// OSError with its errno (so FileNotFoundError, PermissionError, ...).
// std::runtime_error RuntimeError (a call refused because fit is changing the model, model.h).
//
// The conversions it uses live beside it, one concept a file: arrays.h (shapes, training data),
// dicts.h (settings, network spec, optimizer state, model files), fit.h (Model.fit and its
// callbacks) and vocabulary_tables.h (the vocabulary tables as module constants).
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "arrays.h"
#include "dicts.h"
#include "fastae/fastae.h"
#include "fit.h"
#include "vocabulary_tables.h"

namespace py = pybind11;
using fastae::Model;
using namespace fastae_binding;

namespace {

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
    mod.def("available_cpus", &fastae::available_cpus,
            "CPUs this process can keep busy: its affinity mask, capped by its control group's CPU limit "
            "rounded up (fastae/cpus.h).");
    mod.def("affinity_cpus", &fastae::affinity_cpus, "CPUs in this process's affinity mask (fastae/cpus.h).");
    mod.def("cpu_limit", &fastae::cpu_limit,
            "This process's control-group CPU bandwidth limit in CPUs (quota / period), 0 where none "
            "(fastae/cpus.h).");

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
