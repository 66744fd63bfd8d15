// fastae/autoencoder.h -- the conventions of Python's fastae.Autoencoder (mirrored decoder, how a
// random_state seeds the weights and the shuffles), so a C++ program can build and train the very
// network Python would, bit for bit. Standard library only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fastae/config.h"

namespace fastae {

// fastae.Autoencoder(hidden_layer_sizes=h) on n_features columns has the widths
// {n_features, h[0], ..., h[k-1], h[k-2], ..., h[0], n_features}: the decoder mirrors the encoder.
inline std::vector<int> autoencoder_layer_sizes(int n_features, const std::vector<int>& hidden_layer_sizes) {
    std::vector<int> sizes{n_features};
    sizes.insert(sizes.end(), hidden_layer_sizes.begin(), hidden_layer_sizes.end());
    for (std::size_t i = hidden_layer_sizes.size(); i-- > 1;) sizes.push_back(hidden_layer_sizes[i - 1]);
    sizes.push_back(n_features);
    return sizes;
}

// tied_weights=True: of the n layers, decoder layer i (i >= n / 2) has LayerSpec::tied_to = n - 1 - i
// (and l1 = l2 = 0: the shared W is penalised by its encoder layer). contractive=c: layer 0's
// LayerSpec::contractive = c (a one-hidden-layer encoder).
//
// With an integer random_state r, fastae.Autoencoder.fit calls Model::init_weights(r) and trains
// with TrainOptions::seed = autoencoder_shuffle_seed(r), which keeps the shuffle stream apart from
// the weight-initialisation stream of the same seed.
inline constexpr std::uint64_t autoencoder_shuffle_seed_offset = 0x5DEECE66Dull;
inline constexpr std::uint64_t autoencoder_shuffle_seed(std::uint64_t random_state) {
    return random_state + autoencoder_shuffle_seed_offset;  // wraps modulo 2^64
}

// fastae.VariationalAutoencoder(hidden_layer_sizes=h, beta, kl_warmup_epochs) with its defaults
// (relu, loss "bce") on n_features columns: the encoder's layers h[0..k-2] (relu), the code layer
// of 2 h[k-1] linear units (means, log-variances), the mirrored decoder (relu), a sigmoid output
// with bce. Seeds as autoencoder_shuffle_seed says.
inline NetworkSpec variational_autoencoder_spec(int n_features, const std::vector<int>& hidden_layer_sizes,
                                                double beta = 1.0, int kl_warmup_epochs = 0) {
    NetworkSpec spec;
    spec.n_inputs = n_features;
    const std::size_t k = hidden_layer_sizes.size();
    auto add = [&spec](int units, Activation kind) {
        LayerSpec layer;
        layer.units = units;
        layer.activation = activation_spec(kind);
        spec.layers.push_back(layer);
    };
    for (std::size_t i = 0; i + 1 < k; ++i) add(hidden_layer_sizes[i], Activation::relu);
    if (k > 0) add(2 * hidden_layer_sizes[k - 1], Activation::linear);
    for (std::size_t i = k; i-- > 1;) add(hidden_layer_sizes[i - 1], Activation::relu);
    add(n_features, Activation::sigmoid);
    spec.head.loss = Loss::bce;
    spec.code_layer = int(k) - 1;
    spec.variational = VariationalSpec{true, beta, kl_warmup_epochs};
    return spec;
}

}  // namespace fastae
