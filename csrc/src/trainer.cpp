// trainer.cpp -- the epoch loop (trainer.h). Everything a step touches is allocated before the
// first epoch; the batch loop allocates nothing.
//
// Threads: a batch of b samples is cut into n_threads contiguous shards of columns (the shards
// depend only on b and n_threads). Each shard runs forward and backward into its own workspace
// and gradient buffer (the per-element gradient scale 1 / (b * n_out) is the whole batch's, so
// shard gradients add up to the batch's); then the parameter buffer, cut into n_threads fixed
// slices, has each slice's gradients summed in shard order and the optimizer applied. Shards
// and slices are claimed by whichever thread is free (worker_pool.h), and each step runs either
// on the whole team or on this thread alone, whichever is measured faster (thread_mode.h: a
// busy core makes the team slower). Since which thread ran a shard never changes what it
// computes, a seed gives bit-identical results for a given n_threads however the threads were
// scheduled. Different n_threads sum in a different order and differ in the last bits.
#include "trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <numeric>

#include "float_env.h"
#include "optimizer.h"
#include "rng.h"
#include "thread_mode.h"
#include "worker_pool.h"

namespace fastae::detail {

namespace {

using Clock = std::chrono::steady_clock;

// Start of part t when `total` items are cut into `parts` near-equal contiguous parts.
inline std::size_t part_begin(std::size_t total, int parts, int t) {
    return total * std::size_t(t) / std::size_t(parts);
}

// Rows requested ahead of the one being copied. Shuffled rows lie anywhere in a dataset much
// larger than the caches, and a plain row-by-row copy waits on memory for each; with requests
// for the next rows in flight, gathering 256 shuffled MNIST rows took 252-274 us instead of
// 306-319 us in a standalone test here (8 rows ahead did no better than 4). Prefetching the
// next batch during the step's output pass instead gained nothing measurable.
constexpr Eigen::Index kGatherAhead = 4;

// Copies rows of an 8-bit (or float) dataset into consecutive columns of dst, scaling 8-bit
// values: dst column j = sample rows[j] (or sample first + j when rows is null).
void gather(const Dataset& data, Eigen::Index d, const std::size_t* rows, std::size_t first, Eigen::Index b,
            float* dst) {
    const std::size_t row_bytes = std::size_t(d) * (data.x_u8 ? sizeof(std::uint8_t) : sizeof(float));
    const char* base = data.x_u8 ? reinterpret_cast<const char*>(data.x_u8) : reinterpret_cast<const char*>(data.x);
    for (Eigen::Index j = 0; j < b; ++j) {
#if defined(__GNUC__)
        if (rows && j + kGatherAhead < b) {  // consecutive rows: the hardware prefetches them
            const char* ahead = base + rows[j + kGatherAhead] * row_bytes;
            for (std::size_t k = 0; k < row_bytes; k += 64) __builtin_prefetch(ahead + k);
        }
#endif
        const std::size_t i = rows ? rows[j] : first + std::size_t(j);
        float* out = dst + std::size_t(j) * std::size_t(d);
        if (data.x_u8) {
            const std::uint8_t* in = data.x_u8 + i * std::size_t(d);
            for (Eigen::Index k = 0; k < d; ++k) out[k] = float(in[k]) * data.scale;
        } else {
            std::memcpy(out, data.x + i * std::size_t(d), sizeof(float) * std::size_t(d));
        }
    }
}

}  // namespace

StopReason train(const Network& net, float* params, const Dataset& data, const Dataset& val,
                 Optimizer& optimizer, const TrainOptions& options, std::vector<EpochReport>* history) {
    FlushDenormalsGuard ftz;
    const std::size_t n = data.n;
    const std::size_t n_params = net.n_params();
    const Eigen::Index d_in = net.width(0), d_out = net.width(net.n_layers());
    const std::size_t batch = std::min<std::size_t>(std::size_t(options.batch_size), n);
    const int n_shards = int(std::max<std::size_t>(1, std::min<std::size_t>(std::size_t(options.n_threads), batch)));
    const bool targets_are_inputs = data.x_u8 != nullptr || data.y == data.x;

    // --- everything the batch loop touches --------------------------------------------------
    WorkerPool pool(n_shards);
    const std::size_t shard_capacity = (batch + std::size_t(n_shards) - 1) / std::size_t(n_shards);
    std::vector<AlignedFloats> grads(std::size_t(n_shards), AlignedFloats(n_params, 0.0f));
    std::vector<double> shard_loss(std::size_t(n_shards), 0.0);
    // The weights before the current update, so that a step that makes any of them non-finite
    // can be undone (saved slice by slice by the update itself, Optimizer::apply).
    AlignedFloats previous(n_params);
    std::vector<char> slice_finite(std::size_t(n_shards), 1);
    // Validation chunks: a shard's size, or larger when there would be more than the pool's
    // 65535 items a run.
    const std::size_t val_chunk = std::max(shard_capacity, (val.n + 65534) / 65535);
    // Workspaces: one per shard, also used per member for validation chunks.
    std::vector<Workspace> ws;
    ws.reserve(std::size_t(n_shards));
    for (int t = 0; t < n_shards; ++t) ws.emplace_back(net, std::max(val_chunk, std::size_t(1)));
    std::vector<double> chunk_sums((val.n + val_chunk - 1) / val_chunk, 0.0);
    // Per-member conversion buffers for 8-bit validation data.
    std::vector<AlignedFloats> val_buffers(val.x_u8 ? std::size_t(n_shards) : 0,
                                           AlignedFloats(std::size_t(d_in) * val_chunk));
    const bool gathered = options.shuffle || data.x_u8 != nullptr;
    AlignedFloats xb(gathered ? std::size_t(d_in) * batch : 0);
    AlignedFloats yb(gathered && !targets_are_inputs ? std::size_t(d_out) * batch : 0);
    Dataset targets;  // the targets seen as a dataset of their own, to gather them
    targets.n = n;
    targets.x = targets.y = data.y;
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t(0));
    Rng rng(options.seed);
    ThreadModeChooser chooser;

    // One step on the batch of b samples from dataset rows batch_rows[j] (batch_start + j when
    // null), at (x_batch, y_batch) once gathered: each shard gathers and, in the first epoch,
    // checks its own columns, then computes; then gradient sums and update. A shard's check
    // error is kept, not thrown, so that the error reported is the first bad sample in batch
    // order whichever shard finished first.
    const float* x_batch = nullptr;
    const float* y_batch = nullptr;
    Eigen::Index b = 0;
    const std::size_t* batch_rows = nullptr;
    std::size_t batch_start = 0;
    bool check_now = false;
    std::vector<std::exception_ptr> shard_error(static_cast<std::size_t>(n_shards));
    auto step = [&](int shard, int) {
        const std::size_t c0 = part_begin(std::size_t(b), n_shards, shard);
        const std::size_t c1 = part_begin(std::size_t(b), n_shards, shard + 1);
        float* grad = grads[std::size_t(shard)].data();
        if (c1 == c0) {
            std::fill(grad, grad + n_params, 0.0f);
            shard_loss[std::size_t(shard)] = 0.0;
            return;
        }
        const std::size_t* rows = batch_rows ? batch_rows + c0 : nullptr;
        if (gathered) {  // (and convert 8-bit values)
            gather(data, d_in, rows, batch_start + c0, Eigen::Index(c1 - c0), xb.data() + c0 * std::size_t(d_in));
            if (!targets_are_inputs) {
                gather(targets, d_out, rows, batch_start + c0, Eigen::Index(c1 - c0), yb.data() + c0 * std::size_t(d_out));
            }
        }
        if (check_now) {
            try {
                data.check_batch(c1 - c0, x_batch + c0 * std::size_t(d_in), y_batch + c0 * std::size_t(d_out), rows,
                                 batch_start + c0);
            } catch (...) {
                shard_error[std::size_t(shard)] = std::current_exception();
                return;
            }
        }
        const float scale = 1.0f / (float(b) * float(d_out));
        shard_loss[std::size_t(shard)] = loss_gradient_batch(
            net, params, ConstMatrixMap(x_batch + c0 * std::size_t(d_in), d_in, Eigen::Index(c1 - c0)),
            ConstMatrixMap(y_batch + c0 * std::size_t(d_out), d_out, Eigen::Index(c1 - c0)), scale,
            ws[std::size_t(shard)], grad);
    };
    auto reduce_update = [&](int slice, int) {
        const std::size_t p0 = part_begin(n_params, n_shards, slice);
        const std::size_t p1 = part_begin(n_params, n_shards, slice + 1);
        float* g0 = grads[0].data();
        for (int s = 1; s < n_shards; ++s) {
            const float* gs = grads[std::size_t(s)].data();
            for (std::size_t i = p0; i < p1; ++i) g0[i] += gs[i];
        }
        slice_finite[std::size_t(slice)] = optimizer.apply(params, g0, p0, p1, previous.data());
    };
    // Mean loss of the validation data; chunk sums are added in chunk order.
    auto validation_chunk = [&](int c, int member) {
        const std::size_t s = std::size_t(c) * val_chunk;
        const auto vb = Eigen::Index(std::min(val_chunk, val.n - s));
        const float* xv = val.x ? val.x + s * std::size_t(d_in) : nullptr;
        if (val.x_u8) {
            float* buf = val_buffers[std::size_t(member)].data();
            gather(val, d_in, nullptr, s, vb, buf);
            xv = buf;
        }
        const float* yv = val.x_u8 || val.y == val.x ? xv : val.y + s * std::size_t(d_out);
        chunk_sums[std::size_t(c)] = loss_batch(net, params, ConstMatrixMap(xv, d_in, vb),
                                                ConstMatrixMap(yv, d_out, vb), ws[std::size_t(member)], nullptr);
    };
    // A non-finite loss or weights end training; the caller's weights are the last finite ones.
    auto diverged = [&](int epoch, std::size_t step_in_epoch, double loss, const char* what) {
        char text[256];
        std::snprintf(text, sizeof text,
                      "training diverged: the %s became non-finite at epoch %d, step %zu (batch loss %g); "
                      "the model keeps the weights of the last finite step (try a lower learning_rate)",
                      what, epoch, step_in_epoch, loss);
        return TrainingDiverged(text);
    };

    for (int epoch = 1; epoch <= options.epochs; ++epoch) {
        const auto t_start = Clock::now();
        if (options.shuffle) rng.shuffle(order.data(), n);
        double loss_sum = 0.0;
        for (std::size_t start = 0; start < n; start += batch) {
            b = Eigen::Index(std::min(batch, n - start));
            batch_rows = options.shuffle ? order.data() + start : nullptr;
            batch_start = start;
            check_now = epoch == 1 && data.check_batch;
            if (gathered) {  // the shards gather the samples into contiguous columns here
                x_batch = xb.data();
                y_batch = targets_are_inputs ? xb.data() : yb.data();
            } else {
                x_batch = data.x + start * std::size_t(d_in);  // consecutive samples are contiguous
                y_batch = data.y + start * std::size_t(d_out);
            }
            const bool solo = n_shards > 1 && chooser.next_solo();
            pool.set_solo(solo);
            const auto t_step = Clock::now();
            pool.run(step, n_shards);
            for (const std::exception_ptr& error : shard_error) {
                if (error) std::rethrow_exception(error);
            }
            double batch_loss = 0.0;
            for (double v : shard_loss) batch_loss += v;
            const std::size_t step_in_epoch = start / batch + 1;
            if (!std::isfinite(batch_loss)) {
                throw diverged(epoch, step_in_epoch, batch_loss / (double(b) * double(d_out)), "loss");
            }
            optimizer.begin_step();
            pool.run(reduce_update, n_shards);
            if (std::find(slice_finite.begin(), slice_finite.end(), 0) != slice_finite.end()) {
                std::copy(previous.begin(), previous.end(), params);
                throw diverged(epoch, step_in_epoch, batch_loss / (double(b) * double(d_out)), "weights");
            }
            if (n_shards > 1 && std::size_t(b) == batch) {  // full batches only: comparable times
                chooser.record(solo, std::chrono::duration<double>(Clock::now() - t_step).count());
            }
            loss_sum += batch_loss;
            if (options.should_stop && options.should_stop()) return StopReason::interrupted;
        }
        EpochReport report;
        report.epoch = epoch;
        report.loss = loss_sum / (double(n) * double(d_out));
        if (val.n > 0) {
            pool.set_solo(chooser.best_solo());
            pool.run(validation_chunk, int(chunk_sums.size()));
            double total = 0.0;
            for (double v : chunk_sums) total += v;
            report.val_loss = total / (double(val.n) * double(d_out));
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
