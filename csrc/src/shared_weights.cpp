// shared_weights.cpp -- SharedWeights (shared_weights.h): the packed copies of every layer's
// forward and backward A.
#include "shared_weights.h"

namespace fastae::detail {

SharedWeights::SharedWeights(const Network& net, const float* params) {
    const int n = net.n_layers();
    forward.resize(std::size_t(n));
    backward.resize(std::size_t(n));
    for (int l = 0; l < n; ++l) {
        const DenseLayer& layer = net.layer(l);
        const float* w = params + layer.offset;
        const bool tied = layer.tied_to >= 0;  // layer k's W, (n_in, n_out) column-major
        const int ld = tied ? layer.n_in : layer.n_out;
        forward[std::size_t(l)] = std::make_unique<SharedPackedA>(tied, layer.n_out, layer.n_in, w, ld);
        if (l == 0) continue;  // no gradient for the network's input
        backward[std::size_t(l)] = std::make_unique<SharedPackedA>(!tied, layer.n_in, layer.n_out, w, ld);
    }
}

void SharedWeights::invalidate() {
    for (auto& p : forward) {
        if (p) p->invalidate();
    }
    for (auto& p : backward) {
        if (p) p->invalidate();
    }
}

}  // namespace fastae::detail
