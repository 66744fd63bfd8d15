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

#include "rng.h"

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

HeldOut hold_out(const TrainingData& data, int n_inputs, int n_outputs, double split, std::uint64_t seed) {
    const std::size_t n = data.n;
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
    std::vector<std::size_t> val_rows(order.begin() + std::ptrdiff_t(n_train), order.end());
    std::sort(val_rows.begin(), val_rows.end());
    const auto d_in = std::size_t(n_inputs), d_out = std::size_t(n_outputs);
    if (data.x_u8) {
        h.x_u8.resize(n_val * d_in);
        for (std::size_t i = 0; i < n_val; ++i) {
            std::memcpy(h.x_u8.data() + i * d_in, data.x_u8 + val_rows[i] * d_in, d_in);
        }
        h.validation.x_u8 = h.x_u8.data();
        h.validation.scale = data.scale;
    } else {
        h.x.resize(n_val * d_in);
        for (std::size_t i = 0; i < n_val; ++i) {
            std::memcpy(h.x.data() + i * d_in, data.x + val_rows[i] * d_in, sizeof(float) * d_in);
        }
        h.validation.x = h.x.data();
    }
    if (data.y) {
        h.y.resize(n_val * d_out);
        for (std::size_t i = 0; i < n_val; ++i) {
            std::memcpy(h.y.data() + i * d_out, data.y + val_rows[i] * d_out, sizeof(float) * d_out);
        }
        h.validation.y = h.y.data();
    }
    if (data.sample_weight) {
        h.weight.resize(n_val);
        for (std::size_t i = 0; i < n_val; ++i) h.weight[i] = data.sample_weight[val_rows[i]];
        h.validation.sample_weight = h.weight.data();
    }
    h.validation.n = n_val;
    return h;
}

StopReason run_epochs(TrainingSession& session, const TrainingData& data, const std::vector<std::size_t>* rows,
                      const TrainingData* validation, const TrainOptions& options, bool check_first_epoch,
                      std::vector<EpochReport>* history) {
    const auto t_fit = Clock::now();
    std::vector<std::size_t> order;
    if (rows) {
        order = *rows;
    } else {
        order.resize(data.n);
        std::iota(order.begin(), order.end(), std::size_t(0));
    }
    const std::size_t n = order.size();
    const std::size_t batch = std::min<std::size_t>(std::size_t(options.batch_size), n);
    const std::size_t steps = (n + batch - 1) / batch;
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
        lr = epoch_rate(options, lr0, lr, epoch - 1);
        session.set_learning_rate(lr);
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
            b.rows = options.shuffle || rows ? order.data() + start : nullptr;
            b.first = start;
            b.size = std::min(batch, n - start);
            b.epoch = epoch;
            const double data_loss = session.compute_gradients(b);
            const double loss = session.apply(data_loss);  // sums the threads' buffers in its own pass
            loss_sum += loss * double(b.size);
            penalty_sum += session.last_penalty() * double(b.size);
            n_parts = session.loss_parts(part_names, part_values);
            for (int i = 0; i < n_parts; ++i) part_sums[i] += part_values[i] * double(b.size);
            seen += b.size;
            if (options.on_progress && (step + 1 == steps || seconds_since(last_progress) >= options.progress_interval)) {
                last_progress = Clock::now();
                options.on_progress(Progress{epoch, step + 1, steps, seen, loss_sum / double(seen), seconds_since(t_start)});
            }
            if (options.should_stop && options.should_stop()) return StopReason::interrupted;
            if (options.max_time > 0.0 && seconds_since(t_fit) >= options.max_time) {
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
        if (validation && validation->n > 0) {
            report.val_loss = session.evaluate(*validation);
            report.has_val_loss = true;
        }
        report.improved = monitor.record(report.has_val_loss ? report.val_loss : report.loss, session.params());
        if (options.lr_schedule == LrSchedule::plateau && !options.lr_function && monitor.plateau_cut()) {
            lr = std::max(lr * options.lr_decay_rate, options.lr_min);  // for the next epoch
        }
        report.seconds = seconds_since(t_start);
        if (history) history->push_back(report);
        if (options.on_epoch && !options.on_epoch(report)) reason = StopReason::callback;
        if (reason == StopReason::completed && monitor.should_stop()) reason = StopReason::early_stopping;
        if (options.should_stop && options.should_stop()) return StopReason::interrupted;
    }
    if (const float* best = monitor.best_params()) session.set_params(best);
    return reason;
}

}  // namespace fastae::detail
