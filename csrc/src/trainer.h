// trainer.h -- the epoch loop in C++: seeded shuffle, minibatches (the last, partial one
// included), one three-call step each (fastae/training.h), validation loss, and the epoch-end
// policies: learning-rate schedules, early stopping with the best weights kept, a time budget,
// callbacks and progress reports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "eigen_types.h"
#include "fastae/config.h"
#include "fastae/training.h"

namespace fastae::detail {

// Trains `session` for options.epochs epochs over data and appends one EpochReport per finished
// epoch to *history. rows (null: all rows of data) lists the rows to train on (in a process group,
// options.processes: global row numbers, and every process runs the same global batches). Validation is
// skipped when validation is null. The first epoch checks every row as it reads it
// (TrainingSession::set_check_data) when check_first_epoch; later epochs do not.
StopReason run_epochs(TrainingSession& session, const TrainingData& data, const std::vector<std::size_t>* rows,
                      const TrainingData* validation, const TrainOptions& options, bool check_first_epoch,
                      std::vector<EpochReport>* history);

// TrainOptions::validation_split: a seeded random subset of the rows copied out as validation
// data, the others listed (ascending) for training. In a process group the subset is drawn from
// the global rows: train_rows lists global row numbers, and only this process's held-out rows
// (maybe none) are copied.
struct HeldOut {
    std::vector<std::size_t> train_rows;
    AlignedFloats x, y, weight;
    std::vector<std::uint8_t> x_u8;
    TrainingData validation;
};
HeldOut hold_out(const TrainingData& data, int n_inputs, int n_outputs, double split, std::uint64_t seed,
                 const ProcessGroup& group = ProcessGroup());

// The epoch-end policies on the monitored loss (val_loss, else the training loss): the best so
// far (early stopping, the best weights, kept in a buffer allocated up front) and the plateau
// schedule's count.
class Monitor {
public:
    Monitor(const TrainOptions& options, std::size_t n_params);
    // Records an epoch's monitored loss; returns whether it improved on the best by > min_delta
    // (a non-finite loss never does).
    bool record(double loss, const float* params);
    // Early stopping: patience epochs in a row without improvement.
    bool should_stop() const { return options_.early_stopping && since_best_ >= options_.patience; }
    // Plateau: whether to cut the rate now (lr_patience epochs without improvement since the last
    // improvement or cut); restarts the count when it does.
    bool plateau_cut();
    // The best epoch's weights, if they were kept (early_stopping with restore_best_weights).
    const float* best_params() const { return has_best_ && !best_params_.empty() ? best_params_.data() : nullptr; }

private:
    const TrainOptions& options_;
    AlignedFloats best_params_;
    double best_ = std::numeric_limits<double>::infinity();
    int since_best_ = 0, since_cut_ = 0;
    bool has_best_ = false;
};

// The learning rate of 0-based epoch e under a schedule other than plateau (which depends on the
// losses and runs in run_epochs), from the initial rate lr0.
double lr_of_epoch(const TrainOptions& options, double lr0, int e);

}  // namespace fastae::detail
