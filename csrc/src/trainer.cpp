// trainer.cpp -- the epoch loop (trainer.h). Everything a step touches is allocated before the
// first epoch; the batch loop allocates nothing.
//
// Threads: a batch of b samples is cut into n_threads contiguous shards of columns; each thread
// runs forward and backward on its shard into its own gradient buffer (the per-element gradient
// scale 1 / (b * n_out) is that of the whole batch, so shard gradients add up to the batch's),
// then the threads sum the buffers and apply the optimizer, each over its own slice of the flat
// parameter buffer. The shards and the order of the sums depend only on b and n_threads, so a
// seed gives bit-identical results for a given n_threads; different n_threads round differently.
#include "trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>

#include "float_env.h"
#include "optimizer.h"
#include "rng.h"
#include "worker_pool.h"

namespace fastae::detail {

namespace {

using Clock = std::chrono::steady_clock;

// [begin, end) of part t when `total` items are cut into `parts` near-equal contiguous parts.
inline std::size_t part_begin(std::size_t total, int parts, int t) {
    return total * std::size_t(t) / std::size_t(parts);
}

// Mean loss of a dataset, chunks spread over the pool; sums combined in chunk order so the
// result does not depend on which thread ran which chunk.
double dataset_loss(const Network& net, const float* params, const Dataset& data, WorkerPool& pool,
                    std::vector<Workspace>& ws, std::vector<double>& chunk_sums) {
    const std::size_t chunk = ws[0].capacity();
    const std::size_t n_chunks = (data.n + chunk - 1) / chunk;
    const Eigen::Index d_in = net.width(0), d_out = net.width(net.n_layers());
    chunk_sums.assign(n_chunks, 0.0);
    auto task = [&](int t) {
        for (std::size_t c = std::size_t(t); c < n_chunks; c += std::size_t(pool.size())) {
            const std::size_t s = c * chunk;
            const auto b = Eigen::Index(std::min(chunk, data.n - s));
            chunk_sums[c] = loss_batch(net, params, ConstMatrixMap(data.x + s * d_in, d_in, b),
                                       ConstMatrixMap(data.y + s * d_out, d_out, b),
                                       ws[std::size_t(t)], nullptr);
        }
    };
    pool.run(task);
    double total = 0.0;
    for (double v : chunk_sums) total += v;
    return total / (double(data.n) * double(d_out));
}

}  // namespace

StopReason train(const Network& net, float* params, const Dataset& data, const Dataset& val,
                 Optimizer& optimizer, const TrainOptions& options, std::vector<EpochReport>* history) {
    FlushDenormalsGuard ftz;
    const std::size_t n = data.n;
    const std::size_t n_params = net.n_params();
    const Eigen::Index d_in = net.width(0), d_out = net.width(net.n_layers());
    const std::size_t batch = std::min<std::size_t>(std::size_t(options.batch_size), n);
    const int n_threads = int(std::max<std::size_t>(1, std::min<std::size_t>(std::size_t(options.n_threads), batch)));
    const bool targets_are_inputs = data.y == data.x;

    // --- everything the batch loop touches --------------------------------------------------
    WorkerPool pool(n_threads);
    const std::size_t shard_capacity = (batch + std::size_t(n_threads) - 1) / std::size_t(n_threads);
    std::vector<Workspace> ws;
    ws.reserve(std::size_t(n_threads));
    for (int t = 0; t < n_threads; ++t) ws.emplace_back(net, std::max(shard_capacity, std::size_t(1)));
    std::vector<AlignedFloats> grads(std::size_t(n_threads), AlignedFloats(n_params, 0.0f));
    std::vector<double> shard_loss(std::size_t(n_threads), 0.0);
    // The weights before the current update, so that a step that makes any of them non-finite
    // can be undone (the copy is made slice by slice inside the update pass, while hot).
    AlignedFloats previous(n_params);
    std::vector<char> slice_finite(std::size_t(n_threads), 1);
    std::vector<double> chunk_sums;
    chunk_sums.reserve((std::max(n, val.n) + shard_capacity - 1) / shard_capacity + 1);
    AlignedFloats xb(std::size_t(d_in) * batch);
    AlignedFloats yb(targets_are_inputs ? 0 : std::size_t(d_out) * batch);
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t(0));
    Rng rng(options.seed);

    // One step on the batch in (xb, yb): shards, gradient sum, update.
    const float* x_batch = nullptr;
    const float* y_batch = nullptr;
    Eigen::Index b = 0;
    auto step = [&](int t) {
        const std::size_t c0 = part_begin(std::size_t(b), n_threads, t);
        const std::size_t c1 = part_begin(std::size_t(b), n_threads, t + 1);
        float* grad = grads[std::size_t(t)].data();
        if (c1 == c0) {
            std::fill(grad, grad + n_params, 0.0f);
            shard_loss[std::size_t(t)] = 0.0;
            return;
        }
        const float scale = 1.0f / (float(b) * float(d_out));
        shard_loss[std::size_t(t)] = loss_gradient_batch(
            net, params, ConstMatrixMap(x_batch + c0 * std::size_t(d_in), d_in, Eigen::Index(c1 - c0)),
            ConstMatrixMap(y_batch + c0 * std::size_t(d_out), d_out, Eigen::Index(c1 - c0)), scale,
            ws[std::size_t(t)], grad);
    };
    auto reduce_update = [&](int t) {
        const std::size_t p0 = part_begin(n_params, n_threads, t);
        const std::size_t p1 = part_begin(n_params, n_threads, t + 1);
        float* g0 = grads[0].data();
        for (int s = 1; s < n_threads; ++s) {
            const float* gs = grads[std::size_t(s)].data();
            for (std::size_t i = p0; i < p1; ++i) g0[i] += gs[i];
        }
        std::copy(params + p0, params + p1, previous.data() + p0);
        optimizer.apply(params, g0, p0, p1);
        slice_finite[std::size_t(t)] =
            Eigen::Map<const Eigen::ArrayXf>(params + p0, Eigen::Index(p1 - p0)).allFinite();
    };
    // Ends training on a non-finite loss or weights; the caller's weights are the last finite ones.
    auto diverged = [&](int epoch, std::size_t step, double loss, const char* what) {
        char text[256];
        std::snprintf(text, sizeof text,
                      "training diverged: the %s became non-finite at epoch %d, step %zu (batch loss %g); "
                      "the model keeps the weights of the last finite step (try a lower learning_rate)",
                      what, epoch, step, loss);
        return TrainingDiverged(text);
    };

    for (int epoch = 1; epoch <= options.epochs; ++epoch) {
        const auto t_start = Clock::now();
        if (options.shuffle) rng.shuffle(order.data(), n);
        double loss_sum = 0.0;
        for (std::size_t start = 0; start < n; start += batch) {
            b = Eigen::Index(std::min(batch, n - start));
            if (options.shuffle) {
                // Gather the batch's samples into contiguous columns.
                for (Eigen::Index j = 0; j < b; ++j) {
                    const std::size_t i = order[start + std::size_t(j)];
                    std::memcpy(xb.data() + std::size_t(j) * d_in, data.x + i * d_in, sizeof(float) * d_in);
                    if (!targets_are_inputs) {
                        std::memcpy(yb.data() + std::size_t(j) * d_out, data.y + i * d_out, sizeof(float) * d_out);
                    }
                }
                x_batch = xb.data();
                y_batch = targets_are_inputs ? xb.data() : yb.data();
            } else {
                x_batch = data.x + start * d_in;  // consecutive samples are already contiguous
                y_batch = data.y + start * d_out;
            }
            pool.run(step);
            double batch_loss = 0.0;
            for (double v : shard_loss) batch_loss += v;
            if (!std::isfinite(batch_loss)) {
                throw diverged(epoch, start / batch + 1, batch_loss / (double(b) * double(d_out)), "loss");
            }
            optimizer.begin_step();
            pool.run(reduce_update);
            if (std::find(slice_finite.begin(), slice_finite.end(), 0) != slice_finite.end()) {
                std::copy(previous.begin(), previous.end(), params);
                throw diverged(epoch, start / batch + 1, batch_loss / (double(b) * double(d_out)), "weights");
            }
            loss_sum += batch_loss;
            if (options.should_stop && options.should_stop()) return StopReason::interrupted;
        }
        EpochReport report;
        report.epoch = epoch;
        report.loss = loss_sum / (double(n) * double(d_out));
        if (val.n > 0) {
            report.val_loss = dataset_loss(net, params, val, pool, ws, chunk_sums);
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
