// trainer.cpp -- the epoch loop (trainer.h), over the public three-call step: the loop a host
// writes for itself (for MPI, say) looks the same. Every buffer it needs (the best weights for
// early stopping, the held-out rows) is allocated before the first step.
#include "trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

#include "process_group.h"
#include "rng.h"
#include "csr_rows.h"

namespace fastae::detail {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Keeps validation_split's draw apart from the shuffle stream of the same seed.
constexpr std::uint64_t kHoldOutStream = 0xA0761D6478BD642Full;

// The rate for 0-based epoch e: the user's function, a formula, or the plateau rule's rate.
double epoch_rate(const TrainOptions& options, double lr0, double current, int e) {
    if (options.lr_function) {
        const double lr = options.lr_function(e, current);
        if (!(std::isfinite(lr) && lr >= 0.0)) {
            // domain_error: a bad value from the user's function, not bad data (Model::fit undoes
            // the fit only for bad data); Python sees a ValueError.
            throw std::domain_error("the learning-rate function returned " + std::to_string(lr) + " for epoch " +
                                    std::to_string(e) + "; it must return a finite number >= 0");
        }
        return lr;
    }
    return options.lr_schedule == LrSchedule::plateau ? current : lr_of_epoch(options, lr0, e);
}

}  // namespace

Monitor::Monitor(const TrainOptions& options, std::size_t n_params)
    : options_(options), best_params_(options.early_stopping && options.restore_best_weights ? n_params : 0) {}

bool Monitor::record(double loss, const float* params) {
    const bool improved = std::isfinite(loss) && loss < best_ - options_.min_delta;
    if (improved) {
        best_ = loss;
        since_best_ = 0;
        since_cut_ = 0;
        if (!best_params_.empty()) std::copy(params, params + best_params_.size(), best_params_.begin());
        has_best_ = true;
    } else {
        ++since_best_;
        ++since_cut_;
    }
    return improved;
}

bool Monitor::plateau_cut() {
    if (since_cut_ < options_.lr_patience) return false;
    since_cut_ = 0;
    return true;
}

double lr_of_epoch(const TrainOptions& o, double lr0, int e) {
    const double steps = double(o.lr_decay_steps);
    double lr = lr0;
    switch (o.lr_schedule) {
        case LrSchedule::none:
        case LrSchedule::plateau: return lr0;
        case LrSchedule::step: lr = lr0 * std::pow(o.lr_decay_rate, std::floor(double(e) / steps)); break;
        case LrSchedule::exponential: lr = lr0 * std::pow(o.lr_decay_rate, double(e) / steps); break;
        case LrSchedule::cosine: {
            const double pi = 3.14159265358979323846;
            const double t = std::min(double(e), steps) / steps;
            lr = o.lr_min + (lr0 - o.lr_min) * 0.5 * (1.0 + std::cos(pi * t));
            break;
        }
    }
    return std::max(lr, o.lr_min);
}

HeldOut hold_out(const TrainingData& data, int n_inputs, int n_outputs, double split, std::uint64_t seed,
                 const ProcessGroup& group) {
    const std::size_t n = dataset_rows(group, data.n);
    const std::size_t n_train = std::size_t(double(n) * (1.0 - split));  // as Keras: int(n * (1 - split))
    const std::size_t n_val = n - n_train;
    if (n_val == 0 || n_train == 0) {
        throw std::invalid_argument("validation_split=" + std::to_string(split) + " of " + std::to_string(n) +
                                    " samples leaves " + std::to_string(n_train) + " to train on and " +
                                    std::to_string(n_val) + " to validate on; both need at least one");
    }
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t(0));
    Rng rng(seed ^ kHoldOutStream);
    rng.shuffle(order.data(), n);
    HeldOut h;
    h.train_rows.assign(order.begin(), order.begin() + std::ptrdiff_t(n_train));
    std::sort(h.train_rows.begin(), h.train_rows.end());
    std::vector<std::size_t> val_rows;  // this process's rows (all of them, alone)
    for (auto it = order.begin() + std::ptrdiff_t(n_train); it != order.end(); ++it) {
        if (*it >= group.row_offset && *it - group.row_offset < data.n) val_rows.push_back(*it - group.row_offset);
    }
    std::sort(val_rows.begin(), val_rows.end());
    const std::size_t n_val_here = val_rows.size();
    const auto d_in = std::size_t(n_inputs), d_out = std::size_t(n_outputs);
    if (data.x_u8) {
        h.x_u8.resize(n_val_here * d_in);
        for (std::size_t i = 0; i < n_val_here; ++i) {
            std::memcpy(h.x_u8.data() + i * d_in, data.x_u8 + val_rows[i] * d_in, d_in);
        }
        h.validation.x_u8 = h.x_u8.data();
        h.validation.scale = data.scale;
    } else {
        h.x.resize(n_val_here * d_in);
        for (std::size_t i = 0; i < n_val_here; ++i) {
            if (is_csr(data)) {
                csr_row(data, val_rows[i], d_in, h.x.data() + i * d_in);
            } else {
                std::memcpy(h.x.data() + i * d_in, data.x + val_rows[i] * d_in, sizeof(float) * d_in);
            }
        }
        h.validation.x = h.x.data();
    }
    if (data.y) {
        h.y.resize(n_val_here * d_out);
        for (std::size_t i = 0; i < n_val_here; ++i) {
            std::memcpy(h.y.data() + i * d_out, data.y + val_rows[i] * d_out, sizeof(float) * d_out);
        }
        h.validation.y = h.y.data();
    }
    if (data.sample_weight) {
        h.weight.resize(n_val_here);
        for (std::size_t i = 0; i < n_val_here; ++i) h.weight[i] = data.sample_weight[val_rows[i]];
        h.validation.sample_weight = h.weight.data();
    }
    h.validation.n = n_val_here;
    return h;
}

StopReason run_epochs(TrainingSession& session, const TrainingData& data, const std::vector<std::size_t>* rows,
                      const TrainingData* validation, const TrainOptions& options, bool check_first_epoch,
                      std::vector<EpochReport>* history) {
    const auto t_fit = Clock::now();
    const ProcessGroup& group = options.processes;
    Agreement agree(group);  // alone: runs the work, lets errors through
    std::vector<std::size_t> order;  // dataset rows (global row numbers in a group)
    if (rows) {
        order = *rows;
    } else {
        order.resize(dataset_rows(group, data.n));
        std::iota(order.begin(), order.end(), std::size_t(0));
    }
    const std::size_t n = order.size();
    const std::size_t batch = std::min<std::size_t>(std::size_t(options.batch_size), n);
    const std::size_t steps = (n + batch - 1) / batch;
    std::vector<std::size_t> mine(agree.active() ? batch : 0);  // this process's rows of a batch
    // The shuffle stream of a fit that continues a model's training (initial_epoch > 0) is its own,
    // while `seed` alone keys validation_split's rows: partial_fit holds out the same rows each call.
    Rng rng(options.seed + std::uint64_t(options.initial_epoch) * 0x9E3779B97F4A7C15ull);
    Monitor monitor(options, session.n_params());
    const double lr0 = session.learning_rate();
    double lr = options.lr_in_force > 0.0 ? options.lr_in_force : lr0;
    StopReason reason = StopReason::completed;
    for (int k = 1; k <= options.epochs && reason == StopReason::completed; ++k) {
        const int epoch = options.initial_epoch + k;  // 1-based over the model's training
        const auto t_start = Clock::now();
        agree.attempt([&] {
            lr = epoch_rate(options, lr0, lr, epoch - 1);
            session.set_learning_rate(lr);
        });
        session.set_check_data(k == 1 && check_first_epoch);
        if (options.shuffle) rng.shuffle(order.data(), n);
        // Each batch's mean loss (penalties included) times its samples: the epoch's mean is
        // their sum over the samples seen.
        double loss_sum = 0.0, penalty_sum = 0.0;
        const char* part_names[TrainingSession::kMaxLossParts] = {};
        double part_values[TrainingSession::kMaxLossParts] = {}, part_sums[TrainingSession::kMaxLossParts] = {};
        int n_parts = 0;  // the network's named parts of the loss (a VAE's reconstruction and kl)
        std::size_t seen = 0;
        auto last_progress = t_start;
        for (std::size_t step = 0; step < steps; ++step) {
            Batch b;
            const std::size_t start = step * batch;
            b.rows = options.shuffle || rows || agree.active() ? order.data() + start : nullptr;
            b.first = start;
            b.size = std::min(batch, n - start);
            b.epoch = epoch;
            double data_loss = 0.0;
            bool stop = false, time_up = false;
            if (agree.active()) {  // this process's rows, then the group's loss, flags and gradient
                agree.attempt([&] {
                    data_loss = session.compute_gradients(local_part(b, group, data.n, mine.data()));
                    session.reduce();
                });
                double figures[4] = {data_loss, options.should_stop && options.should_stop() ? 1.0 : 0.0,
                                     options.max_time > 0.0 && seconds_since(t_fit) >= options.max_time ? 1.0 : 0.0};
                agree.sum(figures, 4);
                data_loss = figures[0];
                stop = figures[1] != 0.0;
                time_up = figures[2] != 0.0;
                group.sum(session.gradient(), session.n_params(), nullptr, 0);
            } else {
                data_loss = session.compute_gradients(b);
            }
            const double loss = session.apply(data_loss);  // alone: sums the threads' buffers in its own pass
            loss_sum += loss * double(b.size);
            penalty_sum += session.last_penalty() * double(b.size);
            n_parts = session.loss_parts(part_names, part_values);
            for (int i = 0; i < n_parts; ++i) part_sums[i] += part_values[i] * double(b.size);
            seen += b.size;
            if (options.on_progress && (step + 1 == steps || seconds_since(last_progress) >= options.progress_interval)) {
                last_progress = Clock::now();
                agree.attempt([&] {
                    options.on_progress(
                        Progress{epoch, step + 1, steps, seen, loss_sum / double(seen), seconds_since(t_start)});
                });
            }
            if (!agree.active()) {
                stop = options.should_stop && options.should_stop();
                time_up = options.max_time > 0.0 && seconds_since(t_fit) >= options.max_time;
            }
            if (stop) return StopReason::interrupted;
            if (time_up) {
                reason = StopReason::max_time;  // this (maybe partial) epoch is still reported
                break;
            }
        }
        EpochReport report;
        report.epoch = epoch;
        report.loss = loss_sum / double(seen);
        report.lr = lr;
        if (penalty_sum != 0.0) report.metrics.emplace_back("penalty", penalty_sum / double(seen));
        for (int i = 0; i < n_parts; ++i) report.metrics.emplace_back(part_names[i], part_sums[i] / double(seen));
        if (agree.active()) {  // the group's validation loss: each process's mean times its samples
            double figures[3] = {0.0, validation ? double(validation->n) : 0.0};
            if (figures[1] > 0.0) agree.attempt([&] { figures[0] = session.evaluate(*validation) * figures[1]; });
            agree.sum(figures, 3);
            report.has_val_loss = figures[1] > 0.0;
            if (report.has_val_loss) report.val_loss = figures[0] / figures[1];
        } else if (validation && validation->n > 0) {
            report.val_loss = session.evaluate(*validation);
            report.has_val_loss = true;
        }
        report.improved = monitor.record(report.has_val_loss ? report.val_loss : report.loss, session.params());
        if (options.lr_schedule == LrSchedule::plateau && !options.lr_function && monitor.plateau_cut()) {
            lr = std::max(lr * options.lr_decay_rate, options.lr_min);  // for the next epoch
        }
        report.seconds = seconds_since(t_start);
        if (history) history->push_back(report);
        bool keep_going = true, stop = false;
        agree.attempt([&] { keep_going = !options.on_epoch || options.on_epoch(report); });
        if (agree.active()) {  // any process's callback stops them all; so does any Ctrl-C
            double figures[3] = {keep_going ? 0.0 : 1.0, options.should_stop && options.should_stop() ? 1.0 : 0.0};
            agree.sum(figures, 3);
            keep_going = figures[0] == 0.0;
            stop = figures[1] != 0.0;
        } else {
            stop = options.should_stop && options.should_stop();
        }
        if (!keep_going) reason = StopReason::callback;
        if (reason == StopReason::completed && monitor.should_stop()) reason = StopReason::early_stopping;
        if (stop) return StopReason::interrupted;
    }
    if (const float* best = monitor.best_params()) session.set_params(best);
    return reason;
}

}  // namespace fastae::detail
