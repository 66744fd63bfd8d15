// trainer.h -- the epoch loop in C++: seeded shuffle, minibatches (the last, partial one
// included), one three-call step each (fastae/training.h), validation loss, callbacks.
#pragma once

#include <vector>

#include "fastae/config.h"
#include "fastae/training.h"

namespace fastae::detail {

// Trains `session` for options.epochs epochs over data (all of the session's rows) and appends
// one EpochReport per finished epoch to *history. Validation is skipped when validation is null.
// The first epoch checks every row as it reads it (TrainingSession::set_check_data) when
// check_first_epoch; later epochs do not.
StopReason run_epochs(TrainingSession& session, const TrainingData& data, const TrainingData* validation,
                      const TrainOptions& options, bool check_first_epoch, std::vector<EpochReport>* history);

}  // namespace fastae::detail
