// training_checks.h -- the checks of fit's and a training session's arguments before anything
// else (training_checks.cpp): optimizer settings and options in range (validate, model.h), and the
// data's pointers, shapes and sizes, validation data checked whole.
#pragma once

#include "fastae/config.h"
#include "model_impl.h"
#include "network.h"

namespace fastae {

// The checks fit and a session make before anything else: optimizer and options in range, and
// the data's pointers and sizes (validation data too, when given). Throws std::invalid_argument.
void check_training_arguments(const Model::Impl& model, const TrainingData& data, const TrainingData* validation,
                              const OptimizerConfig& optimizer, const TrainOptions& options);

// Data that is not trained on row by row (validation data, the validation_split rows): its
// inputs, targets and weights checked whole. Throws std::invalid_argument naming the first bad value.
void check_whole(const detail::Network& net, const TrainingData& d, const char* what);

}  // namespace fastae
