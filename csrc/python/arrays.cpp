// arrays.cpp -- fastae._core's array checks and training data (arrays.h).
#include "arrays.h"

#include <cstdint>
#include <stdexcept>
#include <string>

using fastae::Model;

namespace fastae_binding {

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

// Optional targets: None means "the inputs" (an autoencoder).
const float* targets_of(const Model& m, const std::optional<FloatArray>& y, std::size_t n) {
    if (!y) return nullptr;
    if (rows_of(*y, m.n_outputs(), "y") != n) throw std::invalid_argument("X and y have different numbers of rows");
    return y->data();
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

}  // namespace fastae_binding
