// shared_weights.h -- a training step's layer weights packed once for all its shards.
//
// A step cut into shards multiplies the same weights in every shard: each layer's W (forward:
// W A, or W_k^T A for a tied layer) and W^T (backward: W^T dZ, or W_k dZ), each by the shard's own
// columns. Packed by each product (gemm.h), W would be packed once per shard and per step, a cost
// that does not shrink with the shards; here each is packed once a step, by whichever shards need
// it first (gemm.h: SharedPackedA), with the bits of gemm. The session (training.cpp) makes one
// when it has more than one shard, passes it in each shard's StepContext (network.h), and
// invalidates it at every compute_gradients (the update changed the weights).
#pragma once

#include <memory>
#include <vector>

#include "gemm.h"
#include "network.h"

namespace fastae::detail {

struct SharedWeights {
    // Allocates the packed copies (their sizes: about twice the weights') over the weights in
    // params (the model's flat buffer, layout.h).
    SharedWeights(const Network& net, const float* params);
    // The weights changed: every product packs them again.
    void invalidate();
    // forward[l]: layer l's forward A; backward[l] (l >= 1): the A of its dZ_{l-1} product.
    std::vector<std::unique_ptr<SharedPackedA>> forward, backward;
};

// Layer l's shared A for the forward or backward product, packed (by this thread, or waiting for
// the others' blocks); null without shared weights (inference, a step of one shard).
inline SharedPackedA* shared_product(SharedWeights* weights, int l, bool forward) {
    if (weights == nullptr) return nullptr;
    SharedPackedA* a = (forward ? weights->forward : weights->backward)[std::size_t(l)].get();
    if (a) a->pack();
    return a;
}

}  // namespace fastae::detail
