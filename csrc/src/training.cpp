// training.cpp -- the three-call training step (fastae/training.h). Everything a step touches is
// allocated by the constructor; a step allocates nothing.
//
// Threads: a batch of b samples is cut into n_threads contiguous shards of columns (the shards
// depend only on b and n_threads). Each shard gathers its rows, runs forward and backward into
// its own workspace and gradient buffer (every column's gradient scale is the whole batch's,
// weight / normaliser, so shard gradients add up to the batch's); then the parameter buffer,
// cut into n_threads fixed slices, has each slice's gradients summed in shard order, the penalty
// terms added and the optimizer applied. Shards and slices are claimed by whichever thread is
// free (worker_pool.h), and each step runs either on the whole team or on this thread alone,
// whichever is measured faster (thread_mode.h: a busy core makes the team slower). Since which
// thread ran a shard never changes what it computes, a seed gives bit-identical results for a
// given n_threads however the threads were scheduled. Different n_threads sum in a different
// order and differ in the last bits; dropout masks are keyed by dataset row, so they do not.
#include "training_session_impl.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "float_env.h"
#include "training_checks.h"
#include "csr_rows.h"
#include "process_group.h"
#include "vae.h"

namespace fastae {

using detail::AlignedFloats;
using detail::ConstMatrixMap;
using detail::part_begin;

namespace {

// Rows requested ahead of the one being copied. Shuffled rows lie anywhere in a dataset much
// larger than the caches, and a plain row-by-row copy waits on memory for each; with requests
// for the next rows in flight, gathering 256 shuffled MNIST rows took 252-274 us instead of
// 306-319 us in a standalone test here (8 rows ahead did no better than 4). Prefetching the
// next batch during the step's output pass, or during the first layer's sparse product (Zen 4:
// a 5% slower epoch), gained nothing. The requests fill L2, not L1 (prefetcht1), where the copy
// they feed writes: MNIST epochs on the Zen 4, the two ways alternating in one process (8 pairs
// each), tutorial 1 thread 0.964-0.985 of the time with L1 requests (x86-64-v3 build 0.975-0.996),
// 2 threads 0.961, the deep model at 2 threads 0.972; 8 or 16 rows ahead still no better than 4.
constexpr Eigen::Index kGatherAhead = 4;

// Copies dataset rows into consecutive columns of dst (d floats each), scaling 8-bit values:
// dst column j = row rows[j] (or first + j when rows is null) of x (float) or x_u8 * scale.
void gather(const float* x, const std::uint8_t* x_u8, float scale, Eigen::Index d, const std::size_t* rows,
            std::size_t first, Eigen::Index b, float* dst) {
    const std::size_t row_bytes = std::size_t(d) * (x_u8 ? sizeof(std::uint8_t) : sizeof(float));
    const char* base = x_u8 ? reinterpret_cast<const char*>(x_u8) : reinterpret_cast<const char*>(x);
    for (Eigen::Index j = 0; j < b; ++j) {
#if defined(__GNUC__)
        if (rows && j + kGatherAhead < b) {  // consecutive rows: the hardware prefetches them
            const char* ahead = base + rows[j + kGatherAhead] * row_bytes;
            for (std::size_t k = 0; k < row_bytes; k += 64) __builtin_prefetch(ahead + k, 0, 2);
        }
#endif
        const std::size_t i = rows ? rows[j] : first + std::size_t(j);
        float* out = dst + std::size_t(j) * std::size_t(d);
        if (x_u8) {
            const std::uint8_t* in = x_u8 + i * std::size_t(d);
            for (Eigen::Index k = 0; k < d; ++k) out[k] = float(in[k]) * scale;
        } else {
            std::memcpy(out, x + i * std::size_t(d), sizeof(float) * std::size_t(d));
        }
    }
}

}  // namespace

TrainingSession::Impl::Impl(Model::Impl& model_, const TrainingData& data_, const OptimizerConfig& optimizer,
                            const TrainOptions& options_)
    : model(model_),
      net(model_.net),
      params(model_.params.data()),
      n_params(model_.net.n_params()),
      data(data_),
      options(options_),
      opt(options_.resume_optimizer && model_.optimizer && model_.optimizer->config.kind == optimizer.kind
              ? detail::Optimizer(optimizer, *model_.optimizer)
              : detail::Optimizer(optimizer, model_.net.n_params())),
      steps_before(opt.steps()),
      d_in(net.width(0)),
      d_out(net.width(net.n_layers())),
      batch_capacity(std::min<std::size_t>(std::size_t(options_.batch_size), data_.n)),
      n_shards(int(std::max<std::size_t>(1, std::min<std::size_t>(std::size_t(options_.n_threads), batch_capacity)))),
      pool(n_shards),
      targets_are_inputs(data_.y == nullptr || data_.y == data_.x),
      chooser(model_.thread_mode_for(n_shards)) {
    const std::size_t shard_capacity = (batch_capacity + std::size_t(n_shards) - 1) / std::size_t(n_shards);
    grads.reserve(std::size_t(n_shards));
    for (int t = 0; t < n_shards; ++t) grads.emplace_back(n_params);
    shard_loss.assign(std::size_t(n_shards), 0.0);
    shard_error.resize(std::size_t(n_shards));
    previous.resize(n_params);
    slice_finite.assign(std::size_t(n_shards), 1);
    slice_penalty.assign(std::size_t(n_shards), 0.0);
    slice_square_sum.assign(std::size_t(n_shards), 0.0);
    if (n_shards > 1) shared_weights = std::make_unique<detail::SharedWeights>(net, params);
    ws.reserve(std::size_t(n_shards));
    for (int t = 0; t < n_shards; ++t) ws.emplace_back(net, std::max<std::size_t>(shard_capacity, 1));
    choose_deferred(int(shard_capacity));
    xb.resize(std::size_t(d_in) * batch_capacity);
    if (net.layer(0).noise != Noise::none) nb.resize(std::size_t(d_in) * batch_capacity);
    shard_data.resize(std::size_t(n_shards));
    shard_contexts.resize(std::size_t(n_shards));
    shard_terms.assign(std::size_t(n_shards), 0.0);
    shard_kl.assign(std::size_t(n_shards), 0.0);
    batch_means.resize(std::size_t(net.n_layers()) + 1);
    shard_sums.assign(std::size_t(n_shards), std::vector<detail::AlignedFloats>(std::size_t(net.n_layers()) + 1));
    for (int l = 0; l < net.batch_stat_layers(); ++l) {
        if (net.layer(l).sparsity_weight == 0.0f) continue;
        batch_means[std::size_t(l) + 1].assign(std::size_t(net.layer(l).n_out), 0.0f);
        for (auto& sums : shard_sums) sums[std::size_t(l) + 1].assign(std::size_t(net.layer(l).n_out), 0.0f);
    }
    if (!targets_are_inputs) yb.resize(std::size_t(d_out) * batch_capacity);
    if (data.sample_weight) wb.resize(batch_capacity);
    for (int l = 0; l < net.n_layers(); ++l) {
        const LayerSpec& spec = net.spec().layers[std::size_t(l)];
        const detail::DenseLayer& layer = net.layer(l);
        if (!layer.trainable) continue;
        // On W only: [offset, bias_offset) (a tied layer's l1 and l2 are 0: its W is penalised once).
        if (spec.l1 > 0.0 || spec.l2 > 0.0) penalties.push_back({layer.offset, layer.bias_offset(), float(spec.l1), float(spec.l2)});
        if (!trainable.empty() && trainable.back().end == layer.owned_begin()) {
            trainable.back().end = layer.owned_end();
        } else {
            trainable.push_back({layer.owned_begin(), layer.owned_end()});
        }
    }
}

void TrainingSession::Impl::check_rows(std::size_t b, const float* xs, const float* ys, const float* ws_,
                                       const std::size_t* rows, std::size_t first) const {
    detail::check_rows(net, b, xs, ys, ws_, targets_are_inputs, "X", "y", "sample_weight", first, rows);
}

// Shard `shard` of the current batch: gathers its rows (and, when asked, checks them), then
// forward and backward into its own gradient buffer. A check error is kept, not thrown, so that
// the error reported is the first bad sample in batch order whichever shard finished first.
void TrainingSession::Impl::shard_gradient(int shard) {
    const std::size_t b = batch.size;
    const std::size_t c0 = part_begin(b, n_shards, shard), c1 = part_begin(b, n_shards, shard + 1);
    ShardData& sd = shard_data[std::size_t(shard)];
    shard_loss[std::size_t(shard)] = 0.0;
    shard_terms[std::size_t(shard)] = 0.0;
    shard_kl[std::size_t(shard)] = 0.0;
    sd.cols = Eigen::Index(c1 - c0);
    if (!shard_products.empty()) {  // what this step's backward pass keeps
        shard_products[std::size_t(shard)].column = c0;
        if (shard_products[std::size_t(shard)].first) shard_products[std::size_t(shard)].first->clear();
    }
    if (c1 == c0) {
        ws[std::size_t(shard)].sparse().clear();  // no rows deferred from an earlier step (others compress anew)
        zero_shard_gradient(shard);
        for (auto& sums : shard_sums[std::size_t(shard)]) std::fill(sums.begin(), sums.end(), 0.0f);
        return;
    }
    sd.rows = batch.rows ? batch.rows + c0 : nullptr;
    sd.first = batch.first + c0;
    // Inputs, targets and weights as contiguous columns: gathered (shuffled rows, 8-bit data),
    // or read in place where consecutive float rows already are.
    const bool in_place = sd.rows == nullptr && data.x_u8 == nullptr && !detail::is_csr(data);
    sd.x = in_place ? data.x + sd.first * std::size_t(d_in) : xb.data() + c0 * std::size_t(d_in);
    if (detail::is_csr(data)) {
        for (Eigen::Index j = 0; j < sd.cols; ++j) {
            const std::size_t row = sd.rows ? sd.rows[j] : sd.first + std::size_t(j);
            detail::csr_row(data, row, std::size_t(d_in), xb.data() + (c0 + std::size_t(j)) * std::size_t(d_in));
        }
    } else if (!in_place) {
        gather(data.x, data.x_u8, data.scale, d_in, sd.rows, sd.first, sd.cols, xb.data() + c0 * std::size_t(d_in));
    }
    sd.y = sd.x;
    if (!targets_are_inputs) {
        sd.y = sd.rows == nullptr ? data.y + sd.first * std::size_t(d_out) : yb.data() + c0 * std::size_t(d_out);
        if (sd.rows) gather(data.y, nullptr, 1.0f, d_out, sd.rows, sd.first, sd.cols, yb.data() + c0 * std::size_t(d_out));
    }
    sd.w = nullptr;
    if (data.sample_weight) {
        sd.w = sd.rows == nullptr ? data.sample_weight + sd.first : wb.data() + c0;
        if (sd.rows) {
            for (std::size_t j = 0; j < c1 - c0; ++j) wb[c0 + j] = data.sample_weight[sd.rows[j]];
        }
    }
    if (check_data) {
        try {
            check_rows(c1 - c0, sd.x, sd.y, sd.w, sd.rows, sd.first);
        } catch (...) {
            shard_error[std::size_t(shard)] = std::current_exception();
            return;
        }
    }
    // Noise on the input (a denoising autoencoder): the first layer sees a noisy copy, the targets
    // stay the clean inputs.
    sd.x_in = sd.x;
    const detail::DenseLayer& first_layer = net.layer(0);
    if (first_layer.noise != Noise::none) {
        float* noisy = nb.data() + c0 * std::size_t(d_in);
        detail::StepContext keys{options.seed, batch.epoch, sd.rows, sd.first};
        keys.row_offset = options.processes.row_offset;
        for (Eigen::Index j = 0; j < sd.cols; ++j) {
            detail::input_noise(first_layer.noise, first_layer.noise_level, keys, keys.row(j),
                                sd.x + j * d_in, noisy + j * d_in, d_in);
        }
        sd.x_in = noisy;
    }
    // A deferred layer's dZ lands where the step's sum reads it (deferred_gradient.h), not in
    // the workspace to be copied there; evaluate() returns the workspaces to their own buffers.
    for (int l : deferred_layers) ws[std::size_t(shard)].bind_act(l + 1, batch_products[std::size_t(l)]->dz_columns(c0));
    const int stat_layers = net.batch_stat_layers();
    if (stat_layers == 0) {
        shard_backward(shard, 0);
        return;
    }
    // Two phases: the layers up to the deepest whole-batch statistic now, then (after the session
    // has the whole batch's means) the rest and the backward pass, shard_backward.
    detail::forward_batch(net, params, ConstMatrixMap(sd.x_in, d_in, sd.cols), 0, stat_layers, ws[std::size_t(shard)],
                          /*activate_output=*/false, /*keep_z=*/true, &step_context(shard));
    for (int l = 0; l < stat_layers; ++l) {
        if (net.layer(l).sparsity_weight == 0.0f) continue;
        const auto a = ws[std::size_t(shard)].act(l + 1, sd.cols);
        Eigen::Map<Eigen::VectorXf> sums(shard_sums[std::size_t(shard)][std::size_t(l) + 1].data(), a.rows());
        sums = a.col(0);
        for (Eigen::Index j = 1; j < sd.cols; ++j) sums += a.col(j);  // in column order
    }
}

// The step's context for a shard: its rows' keys, the batch's size and means, its term value.
detail::StepContext& TrainingSession::Impl::step_context(int shard) {
    const ShardData& sd = shard_data[std::size_t(shard)];
    detail::StepContext& c = shard_contexts[std::size_t(shard)];
    c = detail::StepContext{options.seed, batch.epoch, sd.rows, sd.first,
                            double(batch.global_size ? batch.global_size : batch.size), &batch_means,
                            &shard_terms[std::size_t(shard)]};
    c.row_offset = options.processes.row_offset;  // draws keyed by the dataset's row, in a group too
    c.code_kl = &shard_kl[std::size_t(shard)];
    c.weights = shared_weights.get();
    c.deferred = shard_products.empty() ? nullptr : &shard_products[std::size_t(shard)];
    return c;
}

void TrainingSession::Impl::shard_backward(int shard, int forward_done) {
    const ShardData& sd = shard_data[std::size_t(shard)];
    float* grad = grads[std::size_t(shard)].data();
    if (sd.cols == 0) return;  // zeroed by shard_gradient
    shard_loss[std::size_t(shard)] = detail::loss_gradient_batch(
        net, params, ConstMatrixMap(sd.x_in, d_in, sd.cols), ConstMatrixMap(sd.y, d_out, sd.cols),
        detail::ColumnScale{grad_scale, sd.w}, &step_context(shard), ws[std::size_t(shard)], grad, forward_done);
}

// The whole batch's mean output of every layer with a sparsity penalty, from the shards' column
// sums (added in shard order), and the penalty's value: weight * sum_j KL(target || mean_j).
// Means are kept inside [1e-6, 1 - 1e-6] so that a saturated sigmoid cannot make the KL infinite.
double TrainingSession::Impl::batch_statistics(const std::exception_ptr& failed) {
    const double samples = double(batch.global_size ? batch.global_size : batch.size);
    const ProcessGroup& group = options.processes;
    double kl = 0.0;
    for (int l = 0; l < net.batch_stat_layers(); ++l) {
        const detail::DenseLayer& layer = net.layer(l);
        if (layer.sparsity_weight == 0.0f) continue;
        detail::AlignedFloats& mean = batch_means[std::size_t(l) + 1];
        std::fill(mean.begin(), mean.end(), 0.0f);
        for (int t = 0; t < n_shards; ++t) {
            const detail::AlignedFloats& sums = shard_sums[std::size_t(t)][std::size_t(l) + 1];
            for (std::size_t o = 0; o < mean.size(); ++o) mean[o] += sums[o];
        }
        if (detail::in_group(group)) {  // the processes' sums, and whether one of them failed
            double failures = failed ? 1.0 : 0.0;
            group.sum(mean.data(), mean.size(), &failures, 1);
            if (failed) std::rethrow_exception(failed);
            if (failures != 0.0) throw PeerFailed("another process of the group failed");
        }
        const double rho = layer.sparsity_target;
        for (float& m : mean) {
            m = std::min(std::max(float(double(m) / samples), 1e-6f), 1.0f - 1e-6f);
            kl += double(layer.sparsity_weight) * (rho * std::log(rho / m) + (1.0 - rho) * std::log((1.0 - rho) / (1.0 - m)));
        }
    }
    return kl;
}

// TrainOptions::thread_mode: forced, or measured by the model's chooser (thread_mode.h).
bool TrainingSession::Impl::next_solo() {
    switch (options.thread_mode) {
    case ThreadMode::team:
        return false;
    case ThreadMode::solo:
        return true;
    case ThreadMode::automatic:
        break;
    }
    return chooser.next_solo();
}

TrainingDiverged TrainingSession::Impl::diverged(double loss, const char* what) const {
    char text[256];
    std::snprintf(text, sizeof text,
                  "training diverged: the %s became non-finite at epoch %d, step %lld (batch loss %g); "
                  "the model keeps the weights of the last finite step (try a lower learning_rate)",
                  what, batch.epoch, static_cast<long long>(step_in_epoch), loss);
    return TrainingDiverged(text);
}

// ---- the public calls ----------------------------------------------------------------------

TrainingSession::TrainingSession(Model& model, const TrainingData& data, const OptimizerConfig& optimizer,
                                 const TrainOptions& options) {
    auto claim = std::make_unique<detail::Writing>(model.impl_->guard, "a training session");
    check_training_arguments(*model.impl_, data, nullptr, optimizer, options);
    impl_ = std::make_unique<Impl>(*model.impl_, data, optimizer, options);
    impl_->claim = std::move(claim);
}

TrainingSession::TrainingSession(Model::Impl& model, const TrainingData& data, const OptimizerConfig& optimizer,
                                 const TrainOptions& options, Unclaimed)
    : impl_(std::make_unique<Impl>(model, data, optimizer, options)) {}

// The optimizer state is kept however training ends (an interrupt keeps that of the last step),
// but only once a step was applied. Saving allocates, in a destructor: if that fails the model
// keeps no state (its weights are intact) instead of the process aborting on the exception.
TrainingSession::~TrainingSession() {
    if (!impl_ || impl_->discard_state || impl_->opt.steps() == impl_->steps_before) return;
    try {
        impl_->model.optimizer = impl_->opt.export_state();
    } catch (...) {
        impl_->model.optimizer.reset();
    }
}

// Each call runs with flush-to-zero on this thread (float_env.h), as the pool's workers do, so a
// host's loop computes exactly what Model::fit does.
double TrainingSession::compute_gradients(const Batch& batch) {
    detail::FlushDenormalsGuard ftz;
    Impl& s = *impl_;
    // The messages are built only on failure: a step allocates nothing.
    // A process of a group may hold none of a global batch's rows (its gradient share is zero).
    if (!((batch.size >= 1 || batch.global_size >= 1) && batch.size <= s.batch_capacity)) {
        throw std::invalid_argument("compute_gradients: the batch must hold 1 to batch_size (" +
                                    std::to_string(s.batch_capacity) + ") samples, got " + std::to_string(batch.size));
    }
    if (batch.rows == nullptr ? batch.first + batch.size > s.data.n
                              : std::any_of(batch.rows, batch.rows + batch.size,
                                            [&s](std::size_t row) { return row >= s.data.n; })) {
        throw std::invalid_argument("compute_gradients: rows past the end of the data (" + std::to_string(s.data.n) +
                                    " rows)");
    }
    if (batch.epoch != s.batch.epoch) s.step_in_epoch = 0;
    s.batch = batch;
    ++s.step_in_epoch;
    const std::size_t global = batch.global_size ? batch.global_size : batch.size;
    s.grad_scale = float(1.0 / detail::batch_normaliser(s.net, double(global)));
    s.solo = s.n_shards > 1 && s.next_solo();
    s.pool.set_solo(s.solo);
    s.step_start = detail::Clock::now();
    if (s.shared_weights) s.shared_weights->invalidate();  // the weights of this step, packed anew
    auto task = [&s](int shard, int) { s.shard_gradient(shard); };
    s.pool.run(task, s.n_shards);
    std::exception_ptr failed;
    for (std::exception_ptr& error : s.shard_error) {
        if (error && !failed) failed = error;
        error = nullptr;
    }
    // In a process group the batch statistics are summed across processes, with this process's
    // failure announced in the same sum (the others are waiting in it).
    const bool group_statistics = detail::in_group(s.options.processes) && s.net.batch_stat_layers() > 0;
    if (failed && !group_statistics) std::rethrow_exception(failed);
    double whole_batch_terms = 0.0;
    if (s.net.batch_stat_layers() > 0) {  // the second phase, with the whole batch's means
        whole_batch_terms = s.batch_statistics(failed);
        if (failed) std::rethrow_exception(failed);
        auto rest = [&s](int shard, int) { s.shard_backward(shard, s.net.batch_stat_layers()); };
        s.pool.run(rest, s.n_shards);
    }
    s.reduced = false;
    s.deferred_summed = false;
    double loss = 0.0, terms = 0.0;
    for (double v : s.shard_loss) loss += v;
    for (double v : s.shard_terms) terms += v;
    if (s.net.variational()) {
        double kl = 0.0;
        for (double v : s.shard_kl) kl += v;
        s.kl_part = kl * double(s.grad_scale);
        s.reconstruction_part = (loss - detail::kl_weight(s.net.spec().variational, batch.epoch) * kl) *
                                double(s.grad_scale);
    }
    // The whole-batch terms are the group's, counted once (by its lead process).
    return loss * double(s.grad_scale) + terms + (s.options.processes.lead ? whole_batch_terms : 0.0);
}

void TrainingSession::reduce() {
    detail::FlushDenormalsGuard ftz;
    Impl& s = *impl_;
    if (s.reduced) return;
    auto task = [&s](int slice, int) {
        s.sum_slice(part_begin(s.n_params, s.n_shards, slice), part_begin(s.n_params, s.n_shards, slice + 1));
    };
    s.sum_deferred();
    s.pool.run(task, s.n_shards);
    s.reduced = true;
}

float* TrainingSession::gradient() { return impl_->grads[0].data(); }
std::size_t TrainingSession::n_params() const { return impl_->n_params; }

double TrainingSession::apply(double loss) {
    detail::FlushDenormalsGuard ftz;
    Impl& s = *impl_;
    if (!std::isfinite(loss)) throw s.diverged(loss, "loss");
    if (s.options.clipnorm > 0.0) s.clip_norm();
    s.opt.begin_step();
    auto task = [&s](int slice, int) { s.update_slice(slice); };
    if (!s.reduced) s.sum_deferred();
    s.pool.run(task, s.n_shards);
    if (std::find(s.slice_finite.begin(), s.slice_finite.end(), 0) != s.slice_finite.end()) {
        for (const Impl::Range& r : s.trainable) {  // what the update saved
            std::copy(s.previous.begin() + std::ptrdiff_t(r.begin), s.previous.begin() + std::ptrdiff_t(r.end),
                      s.params + r.begin);
        }
        throw s.diverged(loss, "weights");
    }
    // Full batches only (comparable times), and only what the chooser picked.
    if (s.n_shards > 1 && s.batch.size == s.batch_capacity && s.options.thread_mode == ThreadMode::automatic) {
        s.chooser.record(s.solo, std::chrono::duration<double>(detail::Clock::now() - s.step_start).count());
    }
    s.reduced = true;  // grads[0] now holds the whole gradient
    s.penalty = 0.0;
    for (double v : s.slice_penalty) s.penalty += v;
    return loss + s.penalty;
}

const float* TrainingSession::params() const { return impl_->params; }
void TrainingSession::set_params(const float* values) {
    detail::require(values != nullptr, "set_params: values is null");
    std::copy(values, values + impl_->n_params, impl_->params);
}

double TrainingSession::learning_rate() const { return impl_->opt.config().learning_rate; }
void TrainingSession::set_learning_rate(double lr) {
    if (!(std::isfinite(lr) && lr >= 0.0)) {  // the message only on failure: an epoch allocates nothing
        throw std::invalid_argument("learning_rate must be a finite number >= 0, got " + std::to_string(lr));
    }
    impl_->opt.set_learning_rate(lr);
}
std::int64_t TrainingSession::steps() const { return impl_->opt.steps(); }
double TrainingSession::last_penalty() const { return impl_->penalty; }
int TrainingSession::loss_parts(const char** names, double* values) const {
    if (!impl_->net.variational()) return 0;
    names[0] = "reconstruction";
    values[0] = impl_->reconstruction_part;
    names[1] = "kl";
    values[1] = impl_->kl_part;
    return 2;
}
void TrainingSession::set_check_data(bool check) { impl_->check_data = check; }

void TrainingSession::Impl::reserve_evaluation(const TrainingData& val) {
    const std::size_t chunk = std::max(ws[0].capacity(), (val.n + 65534) / 65535);
    if (chunk > ws[0].capacity()) {  // only for more than 65535 shards' worth of samples
        ws.clear();
        for (int t = 0; t < n_shards; ++t) ws.emplace_back(net, chunk);
    }
    const std::size_t buffers = val.x_u8 ? std::size_t(n_shards) * std::size_t(d_in) * chunk : 0;
    if (val_buffers.size() < buffers) val_buffers.assign(buffers, 0.0f);
    chunk_sums.reserve((val.n + chunk - 1) / chunk);
}

// Mean loss of the data in chunks of a shard's size (or larger, when there would be more than the
// pool's 65535 items a run); chunk sums are added in chunk order.
double TrainingSession::evaluate(const TrainingData& val) {
    detail::FlushDenormalsGuard ftz;
    Impl& s = *impl_;
    if (val.n == 0) return 0.0;
    // The shards' workspaces serve the evaluation: a step's gradient is summed before (deferred
    // first-layer rows read their lists), as apply would.
    if (!s.reduced) reduce();
    for (detail::Workspace& w : s.ws) w.unbind();  // not into the deferred layers' dZ (shard_gradient)
    s.reserve_evaluation(val);  // nothing to do when the driver reserved it before the first step
    const std::size_t chunk = s.ws[0].capacity();
    const std::size_t n_chunks = (val.n + chunk - 1) / chunk;
    s.chunk_sums.assign(n_chunks, 0.0);
    const bool val_targets_are_inputs = val.y == nullptr || val.y == val.x;
    auto task = [&](int c, int member) {
        const std::size_t first = std::size_t(c) * chunk;
        const auto vb = Eigen::Index(std::min(chunk, val.n - first));
        const float* xv = val.x ? val.x + first * std::size_t(s.d_in) : nullptr;
        if (val.x_u8) {
            float* buf = s.val_buffers.data() + std::size_t(member) * std::size_t(s.d_in) * chunk;
            gather(nullptr, val.x_u8, val.scale, s.d_in, nullptr, first, vb, buf);
            xv = buf;
        }
        const float* yv = val_targets_are_inputs ? xv : val.y + first * std::size_t(s.d_out);
        s.chunk_sums[std::size_t(c)] = detail::loss_batch(
            s.net, s.params, ConstMatrixMap(xv, s.d_in, vb), ConstMatrixMap(yv, s.d_out, vb),
            val.sample_weight ? val.sample_weight + first : nullptr, s.ws[std::size_t(member)], nullptr);
    };
    s.pool.set_solo(s.options.thread_mode == ThreadMode::automatic ? s.chooser.best_solo()
                                                                     : s.options.thread_mode == ThreadMode::solo);
    s.pool.run(task, int(n_chunks));
    double total = 0.0;
    for (double v : s.chunk_sums) total += v;
    return total / detail::batch_normaliser(s.net, double(val.n));
}

}  // namespace fastae
