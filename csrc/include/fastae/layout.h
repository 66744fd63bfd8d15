// fastae/layout.h -- the one data-layout rule every fastae signature follows.
//
// A batch of n samples with d features is a row-major float32 buffer: sample i, feature j
// is x[i * d + j] (a C-contiguous numpy array of shape (n, d)). Every function that takes
// `(n, const float* x)` or writes `(n, float* out)` uses this rule, the caller owns the
// memory, and outputs are written into caller-provided buffers of the documented size.
//
// Weights of a dense layer with n_in inputs and n_out outputs are stored as W[i * n_out + o]
// (row-major (n_in, n_out), as Keras' Dense kernel) followed by its bias b[o]. All layers'
// (W, b) pairs lie one after another, encoder first, in one flat parameter buffer. A tied
// layer (LayerSpec::tied_to: it uses an earlier layer's W transposed) has only its b there.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fastae {

// Number of parameters of one dense layer: W (n_in x n_out) followed by b (n_out).
inline std::size_t dense_param_count(std::size_t n_in, std::size_t n_out) {
    return n_in * n_out + n_out;
}

}  // namespace fastae
