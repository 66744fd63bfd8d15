// activation.h -- elementwise activations: forward (in place on Z, giving A) and backward
// (dZ = dA * f'(A), from the activation's output), each next to its naive scalar twin that the
// tests compare against.
//
// f and f' as functions of the output a = f(z):
//   linear : a = z                 f' = 1
//   relu   : a = max(z, 0)         f' = (a > 0)      (0 at z = 0, as PyTorch and Keras)
//   sigmoid: a = 1 / (1 + e^-z)    f' = a * (1 - a)
//   tanh   : a = tanh(z)           f' = 1 - a^2
#pragma once

#include <cmath>
#include <cstddef>

#include "eigen_types.h"
#include "fastae/config.h"

namespace fastae::detail {

// z: (rows, cols) block, overwritten by f(z).
template <typename Block>
void activation_forward(Activation act, Block&& z) {
    switch (act) {
        case Activation::linear: break;
        case Activation::relu: z.array() = z.array().max(0.0f); break;
        case Activation::sigmoid: z.array() = z.array().logistic(); break;
        case Activation::tanh: z.array() = z.array().tanh(); break;
    }
}

// d: (rows, cols) block holding dL/dA, overwritten by dL/dZ; a: the same-shaped outputs f(z).
template <typename DBlock, typename ABlock>
void activation_backward(Activation act, DBlock&& d, const ABlock& a) {
    switch (act) {
        case Activation::linear: break;
        case Activation::relu: d.array() = (a.array() > 0.0f).select(d.array(), 0.0f); break;
        case Activation::sigmoid: d.array() = d.array() * a.array() * (1.0f - a.array()); break;
        case Activation::tanh: d.array() = d.array() * (1.0f - a.array().square()); break;
    }
}

// Naive twins, one value at a time in double: f(z), and f' from the output a.
inline double activation_naive(Activation act, double z) {
    switch (act) {
        case Activation::linear: return z;
        case Activation::relu: return z > 0 ? z : 0;
        case Activation::sigmoid: return 1 / (1 + std::exp(-z));
        case Activation::tanh: return std::tanh(z);
    }
    return z;
}
inline double activation_derivative_naive(Activation act, double a) {
    switch (act) {
        case Activation::linear: return 1;
        case Activation::relu: return a > 0 ? 1 : 0;
        case Activation::sigmoid: return a * (1 - a);
        case Activation::tanh: return 1 - a * a;
    }
    return 1;
}

}  // namespace fastae::detail
