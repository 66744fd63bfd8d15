// trainer.cpp -- the epoch loop (trainer.h), over the public three-call step: the loop a host
// writes for itself (for MPI, say) looks the same.
#include "trainer.h"

#include <chrono>
#include <numeric>

#include "rng.h"

namespace fastae::detail {

StopReason run_epochs(TrainingSession& session, const TrainingData& data, const TrainingData* validation,
                      const TrainOptions& options, bool check_first_epoch, std::vector<EpochReport>* history) {
    using Clock = std::chrono::steady_clock;
    const std::size_t n = data.n;
    const std::size_t batch = std::min<std::size_t>(std::size_t(options.batch_size), n);
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t(0));
    Rng rng(options.seed);
    for (int epoch = 1; epoch <= options.epochs; ++epoch) {
        const auto t_start = Clock::now();
        session.set_check_data(epoch == 1 && check_first_epoch);
        if (options.shuffle) rng.shuffle(order.data(), n);
        // Each batch's mean loss (penalties included) times its samples: the epoch's mean is
        // their sum over n.
        double loss_sum = 0.0, penalty_sum = 0.0;
        for (std::size_t start = 0; start < n; start += batch) {
            Batch b;
            b.rows = options.shuffle ? order.data() + start : nullptr;
            b.first = start;
            b.size = std::min(batch, n - start);
            b.epoch = epoch;
            const double data_loss = session.compute_gradients(b);
            const double loss = session.apply(data_loss);  // sums the threads' buffers in its own pass
            loss_sum += loss * double(b.size);
            penalty_sum += session.last_penalty() * double(b.size);
            if (options.should_stop && options.should_stop()) return StopReason::interrupted;
        }
        EpochReport report;
        report.epoch = epoch;
        report.loss = loss_sum / double(n);
        if (penalty_sum != 0.0) report.metrics.emplace_back("penalty", penalty_sum / double(n));
        if (validation && validation->n > 0) {
            report.val_loss = session.evaluate(*validation);
            report.has_val_loss = true;
        }
        report.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
        if (history) history->push_back(report);
        if (options.on_epoch && !options.on_epoch(report)) return StopReason::callback;
        if (options.should_stop && options.should_stop()) return StopReason::interrupted;
    }
    return StopReason::completed;
}

}  // namespace fastae::detail
