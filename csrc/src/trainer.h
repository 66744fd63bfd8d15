// trainer.h -- the whole epoch loop in C++: seeded shuffle, minibatches (the last, partial one
// included), forward, loss, backward, update, validation loss, callbacks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "fastae/config.h"
#include "network.h"
#include "optimizer.h"

namespace fastae::detail {

// Training data: x (n, n_in) and targets y (n, n_out), row-major (layout.h); y == x for an
// autoencoder. Pointers are read in place: the dataset is never copied. 8-bit data (x_u8, for
// an autoencoder: targets = inputs) is read as x_u8[i] * scale, converted batch by batch.
struct Dataset {
    std::size_t n = 0;
    const float* x = nullptr;
    const float* y = nullptr;
    const std::uint8_t* x_u8 = nullptr;
    float scale = 1.0f;
    // If set, called in the first epoch on every batch before its step: b samples, inputs x and
    // targets y as (features, b) columns, which came from dataset rows rows[j] (first + j when
    // rows is null). It throws std::invalid_argument to reject the data; the first epoch visits
    // every row, so all of them are checked before the first epoch ends.
    std::function<void(std::size_t b, const float* x, const float* y, const std::size_t* rows,
                       std::size_t first)> check_batch;
};

// Trains params (n_params floats) in place; validation is skipped when val.n == 0.
// Options must have been validated. Appends one EpochReport per finished epoch to *history.
// The optimizer carries its state in and out (the caller keeps it after an early stop).
StopReason train(const Network& net, float* params, const Dataset& data, const Dataset& val,
                 Optimizer& optimizer, const TrainOptions& options, std::vector<EpochReport>* history);

}  // namespace fastae::detail
