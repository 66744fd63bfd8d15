// model.cpp -- fastae::Model (model.h): owns the network shape and the flat parameter buffer,
// checks every caller argument, and hands the work to network.cpp and trainer.cpp.
#include "fastae/model.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <cmath>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "network.h"
#include "rng.h"
#include "trainer.h"
#include "worker_pool.h"

namespace fastae {

using detail::ConstMatrixMap;
using detail::MutMatrixMap;

namespace {

// Samples per chunk for inference: big enough for efficient GEMMs, small enough that the
// workspace stays in cache.
constexpr std::size_t kInferenceChunk = 256;

// bce targets must lie in [0, 1]; this much rounding outside is forgiven (python/_validation.py
// uses the same slack).
constexpr float kUnitRangeSlack = 1e-6f;

void require(bool ok, const std::string& message) {
    if (!ok) throw std::invalid_argument(message);
}

// Every value finite and, when `unit_range`, inside [0, 1]; names the first offender.
// Row i of x is row first_row + i of the caller's array (row_ids[i] if given), for the message.
void check_values(std::size_t n, std::size_t d, const float* x, const char* name, bool unit_range,
                  std::size_t first_row = 0, const std::size_t* row_ids = nullptr) {
    // The common case in one vectorised pass over blocks of rows (min/max are NaN-blind, so
    // finiteness is checked apart); the row-by-row scan below only runs to name an offender.
    const std::size_t block_rows = std::max<std::size_t>(1, (std::size_t(1) << 16) / std::max<std::size_t>(d, 1));
    bool all_ok = true;
    for (std::size_t r = 0; r < n && all_ok; r += block_rows) {
        const auto block = Eigen::Map<const Eigen::ArrayXf>(x + r * d, Eigen::Index(std::min(block_rows, n - r) * d));
        all_ok = block.allFinite() &&
                 (!unit_range || (block.minCoeff() >= -kUnitRangeSlack && block.maxCoeff() <= 1.0f + kUnitRangeSlack));
    }
    if (all_ok) return;
    for (std::size_t i = 0; i < n; ++i) {
        const float* row = x + i * d;
        const std::size_t row_id = row_ids ? row_ids[i] : first_row + i;
        bool ok = true;
        for (std::size_t j = 0; j < d; ++j) ok &= std::isfinite(row[j]);
        if (unit_range) {
            for (std::size_t j = 0; j < d; ++j) ok &= row[j] >= -kUnitRangeSlack && row[j] <= 1.0f + kUnitRangeSlack;
        }
        if (ok) continue;
        for (std::size_t j = 0; j < d; ++j) {
            if (!std::isfinite(row[j])) {
                throw std::invalid_argument(std::string(name) + " contains a non-finite value (" +
                                            std::to_string(row[j]) + ") at row " + std::to_string(row_id) +
                                            ", column " + std::to_string(j));
            }
            if (unit_range && !(row[j] >= -kUnitRangeSlack && row[j] <= 1.0f + kUnitRangeSlack)) {
                throw std::invalid_argument(std::string(name) + " must lie in [0, 1] for loss='bce' (it is the target of a sigmoid); found " +
                                            std::to_string(row[j]) + " at row " + std::to_string(row_id) +
                                            ", column " + std::to_string(j) +
                                            ". Scale it (e.g. X / 255 for 8-bit images) or use loss='mse'");
            }
        }
    }
}

// Who is using a model (model.h, "Threads"): const calls count themselves in `readers`; fit and
// the setters raise `writer`. Each side announces itself and then looks at the other, with
// sequentially consistent atomics, so two overlapping calls cannot both miss each other; the one
// that sees the other backs out and throws (both may, in a close race: neither proceeds).
// Refusing rather than waiting: a fit runs for minutes, and an inference call blocked behind it
// (a request handler, a Python thread that cannot take Ctrl-C) would hang without a word.
// A copy of a model starts unused: the copy constructor and assignment leave the guard alone.
struct UseGuard {
    std::atomic<int> readers{0};
    std::atomic<bool> writer{false};
    UseGuard() = default;
    UseGuard(const UseGuard&) noexcept {}
    UseGuard& operator=(const UseGuard&) noexcept { return *this; }
};

class Reading {
public:
    Reading(UseGuard& guard, const char* what) : guard_(guard) {
        guard_.readers.fetch_add(1);
        if (guard_.writer.load()) {
            guard_.readers.fetch_sub(1);
            throw std::runtime_error(std::string("fastae: cannot run ") + what +
                                     " while fit (or a setter) is changing this model in another thread; "
                                     "wait for it to return");
        }
    }
    ~Reading() { guard_.readers.fetch_sub(1); }
    Reading(const Reading&) = delete;
    Reading& operator=(const Reading&) = delete;

private:
    UseGuard& guard_;
};

class Writing {
public:
    Writing(UseGuard& guard, const char* what) : guard_(guard) {
        if (guard_.writer.exchange(true)) {
            throw std::runtime_error(std::string("fastae: cannot run ") + what +
                                     " while fit (or a setter) is already changing this model in another thread");
        }
        if (const int readers = guard_.readers.load(); readers > 0) {
            guard_.writer.store(false);
            throw std::runtime_error(std::string("fastae: cannot run ") + what + " while " +
                                     std::to_string(readers) +
                                     " other call(s) (inference, loss or copy) use this model in other threads");
        }
    }
    ~Writing() { guard_.writer.store(false); }
    Writing(const Writing&) = delete;
    Writing& operator=(const Writing&) = delete;

private:
    UseGuard& guard_;
};

// Trains with a fresh optimizer state or the saved one (TrainOptions::resume_optimizer).
StopReason run_training(const detail::Network& net, detail::AlignedFloats& params,
                        std::optional<OptimizerState>& saved, const detail::Dataset& data,
                        const detail::Dataset& val, const OptimizerConfig& optimizer,
                        const TrainOptions& options, std::vector<EpochReport>* history) {
    detail::Optimizer opt = options.resume_optimizer && saved && saved->config.kind == optimizer.kind
                                ? detail::Optimizer(optimizer, *saved)
                                : detail::Optimizer(optimizer, params.size());
    // The state is kept however training ends (an interrupt keeps that of the last step), but
    // only once a step was applied: a fit that fails before its first step (memory for its
    // buffers) changes nothing. Saving allocates, in a destructor: if that fails the model keeps
    // no state (its weights are intact) instead of the process aborting on the exception.
    struct KeepState {
        detail::Optimizer& opt;
        std::optional<OptimizerState>& slot;
        const std::int64_t steps_before;
        ~KeepState() {
            if (discard || opt.steps() == steps_before) return;
            try {
                slot = opt.export_state();
            } catch (...) {
                slot.reset();
            }
        }
        bool discard = false;
    } keep{opt, saved, opt.steps()};
    // Bad data found by the first epoch's checks (Dataset::check_batch) undoes every step before
    // it: the weights are restored, the optimizer state and the history left as they were.
    const detail::AlignedFloats initial = data.check_batch ? params : detail::AlignedFloats();
    const std::size_t history_size = history ? history->size() : 0;
    try {
        return detail::train(net, params.data(), data, val, opt, options, history);
    } catch (const std::invalid_argument&) {
        if (data.check_batch) {
            std::copy(initial.begin(), initial.end(), params.begin());
            keep.discard = true;
            if (history) history->resize(history_size);
        }
        throw;
    }
}

}  // namespace

struct Model::Impl {
    explicit Impl(const NetworkConfig& config) : net(config), params(net.n_params(), 0.0f) {}
    detail::Network net;
    detail::AlignedFloats params;
    std::optional<OptimizerState> optimizer;
    mutable UseGuard guard;
};

Model::Model(const NetworkConfig& config) : impl_(std::make_unique<Impl>(config)) {}
Model::Model(const Model& other) {
    Reading reading(other.impl_->guard, "copy");
    impl_ = std::make_unique<Impl>(*other.impl_);
}
Model& Model::operator=(const Model& other) {
    if (this == &other) return *this;
    Writing writing(impl_->guard, "copy assignment");
    Reading reading(other.impl_->guard, "copy");
    Impl copy(*other.impl_);
    *impl_ = std::move(copy);  // the guard stays: it belongs to this object, not to its contents
    return *this;
}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

const NetworkConfig& Model::config() const { return impl_->net.config(); }
int Model::n_layers() const { return impl_->net.n_layers(); }
int Model::n_inputs() const { return impl_->net.width(0); }
int Model::n_outputs() const { return impl_->net.width(n_layers()); }
int Model::n_encoder_layers() const { return std::max(1, n_layers() / 2); }
int Model::code_size() const { return impl_->net.width(n_encoder_layers()); }
std::size_t Model::n_params() const { return impl_->net.n_params(); }
const float* Model::params() const { return impl_->params.data(); }

std::size_t Model::param_offset(int layer) const {
    require(layer >= 0 && layer < n_layers(),
            "layer must be in [0, " + std::to_string(n_layers()) + "), got " + std::to_string(layer));
    return impl_->net.layers()[std::size_t(layer)].offset;
}

void Model::init_weights(std::uint64_t seed) {
    Writing writing(impl_->guard, "init_weights");
    detail::Rng rng(seed);
    for (const detail::DenseLayer& layer : impl_->net.layers()) {
        const double limit = std::sqrt(6.0 / double(layer.n_in + layer.n_out));
        float* w = impl_->params.data() + layer.offset;
        const std::size_t count = std::size_t(layer.n_in) * std::size_t(layer.n_out);
        for (std::size_t i = 0; i < count; ++i) w[i] = float((2.0 * rng.uniform() - 1.0) * limit);
        std::fill(w + count, w + count + std::size_t(layer.n_out), 0.0f);
    }
}

void Model::set_params(const float* values, std::size_t count) {
    require(count == n_params(), "set_params needs " + std::to_string(n_params()) +
                                     " values, got " + std::to_string(count));
    require(values != nullptr, "set_params: values is null");
    check_values(1, count, values, "parameters", false);
    Writing writing(impl_->guard, "set_params");
    std::copy(values, values + count, impl_->params.begin());
}

void Model::copy_params(float* out) const {
    require(out != nullptr, "copy_params: out is null");
    Reading reading(impl_->guard, "copy_params");
    std::copy(impl_->params.begin(), impl_->params.end(), out);
}

namespace {

// Runs body(first_row, rows, workspace) over the chunks of kInferenceChunk rows that n rows are
// cut into, on up to n_threads threads (worker_pool.h: chunks are claimed by whichever thread is
// free). A chunk's work never depends on the thread that ran it. The exception of the first
// failing chunk in row order is the one thrown, as a single thread would.
template <typename Body>
void for_each_chunk(const detail::Network& net, std::size_t n, int n_threads, Body&& body) {
    require(n_threads >= 1, "n_threads must be >= 1, got " + std::to_string(n_threads));
    const std::size_t n_chunks = (n + kInferenceChunk - 1) / kInferenceChunk;
    const int members = int(std::min<std::size_t>(std::size_t(n_threads), std::max<std::size_t>(n_chunks, 1)));
    if (members == 1) {
        detail::Workspace ws(net, std::min(std::max<std::size_t>(n, 1), kInferenceChunk));
        for (std::size_t s = 0; s < n; s += kInferenceChunk) body(s, std::min(kInferenceChunk, n - s), ws);
        return;
    }
    std::vector<detail::Workspace> ws;
    ws.reserve(std::size_t(members));
    for (int t = 0; t < members; ++t) ws.emplace_back(net, kInferenceChunk);
    detail::WorkerPool pool(members);
    constexpr std::size_t kMaxItems = 65535;  // per run of the pool
    std::vector<std::exception_ptr> errors(std::min(n_chunks, kMaxItems));
    for (std::size_t c0 = 0; c0 < n_chunks; c0 += kMaxItems) {
        const std::size_t count = std::min(kMaxItems, n_chunks - c0);
        auto task = [&](int item, int member) {
            const std::size_t s = (c0 + std::size_t(item)) * kInferenceChunk;
            try {
                body(s, std::min(kInferenceChunk, n - s), ws[std::size_t(member)]);
            } catch (...) {
                errors[std::size_t(item)] = std::current_exception();
            }
        };
        pool.run(task, int(count));
        for (std::size_t i = 0; i < count; ++i) {
            if (errors[i]) std::rethrow_exception(errors[i]);
        }
    }
}

}  // namespace

void Model::forward(int first, int last, std::size_t n, const float* in, float* out, int n_threads) const {
    const detail::Network& net = impl_->net;
    require(first >= 0 && first < last && last <= n_layers(),
            "forward needs 0 <= first < last <= " + std::to_string(n_layers()) + ", got first=" +
                std::to_string(first) + ", last=" + std::to_string(last));
    require(n == 0 || (in != nullptr && out != nullptr), "forward: null buffer");
    Reading reading(impl_->guard, "inference (encode, decode, predict)");
    const Eigen::Index w_in = net.width(first), w_out = net.width(last);
    for_each_chunk(net, n, n_threads, [&](std::size_t s, std::size_t rows, detail::Workspace& ws) {
        const auto b = Eigen::Index(rows);
        const float* chunk = in + s * std::size_t(w_in);
        bool products_finite = true;
        detail::forward_batch(net, params(), ConstMatrixMap(chunk, w_in, b), first, last, ws,
                              /*activate_output=*/true, &products_finite);
        // A non-finite input shows in the first layer's products (network.h); only then is the
        // chunk scanned, to name the value. Finite inputs whose products overflow pass.
        if (!products_finite) check_values(rows, std::size_t(w_in), chunk, "X", false, s);
        MutMatrixMap(out + s * std::size_t(w_out), w_out, b) = ws.act(last, b);
    });
}

void Model::encode(std::size_t n, const float* x, float* codes, int n_threads) const {
    forward(0, n_encoder_layers(), n, x, codes, n_threads);
}
void Model::decode(std::size_t n, const float* codes, float* out, int n_threads) const {
    require(n_encoder_layers() < n_layers(), "decode needs a network with at least 2 layers");
    forward(n_encoder_layers(), n_layers(), n, codes, out, n_threads);
}
void Model::predict(std::size_t n, const float* x, float* out, int n_threads) const {
    forward(0, n_layers(), n, x, out, n_threads);
}

void Model::sample_losses(std::size_t n, const float* x, const float* y, float* out, int n_threads) const {
    const detail::Network& net = impl_->net;
    require(n == 0 || (x != nullptr && out != nullptr), "sample_losses: null buffer");
    if (y == nullptr) {
        require(n_inputs() == n_outputs(), "targets are required when n_inputs != n_outputs");
        y = x;
    }
    const Eigen::Index d_in = n_inputs(), d_out = n_outputs();
    Reading reading(impl_->guard, "sample_losses");
    for_each_chunk(net, n, n_threads, [&](std::size_t s, std::size_t rows, detail::Workspace& ws) {
        const auto b = Eigen::Index(rows);
        if (y != x) check_values(rows, std::size_t(d_out), y + s * std::size_t(d_out), "y", false, s);
        bool products_finite = true;
        detail::loss_batch(net, params(), ConstMatrixMap(x + s * std::size_t(d_in), d_in, b),
                           ConstMatrixMap(y + s * std::size_t(d_out), d_out, b), ws, out + s, &products_finite);
        // As in forward: X is scanned only when its products show a non-finite value.
        if (!products_finite) check_values(rows, std::size_t(d_in), x + s * std::size_t(d_in), "X", false, s);
    });
}

double Model::loss(std::size_t n, const float* x, const float* y, int n_threads) const {
    require(n > 0, "loss needs at least one sample");
    std::vector<float> per_sample(n);
    sample_losses(n, x, y, per_sample.data(), n_threads);
    double total = 0.0;
    for (float v : per_sample) total += v;
    return total / double(n);
}

double Model::loss_and_gradient(std::size_t n, const float* x, const float* y, float* grad) const {
    const detail::Network& net = impl_->net;
    require(n > 0 && x != nullptr && grad != nullptr, "loss_and_gradient needs n > 0 and buffers");
    if (y == nullptr) {
        require(n_inputs() == n_outputs(), "targets are required when n_inputs != n_outputs");
        y = x;
    }
    const Eigen::Index d_in = n_inputs(), d_out = n_outputs();
    Reading reading(impl_->guard, "loss_and_gradient");
    detail::Workspace ws(net, n);
    const double scale = 1.0 / (double(n) * double(d_out));
    const double sum = detail::loss_gradient_batch(net, params(), ConstMatrixMap(x, d_in, Eigen::Index(n)),
                                                   ConstMatrixMap(y, d_out, Eigen::Index(n)),
                                                   float(scale), ws, grad);
    return sum * scale;
}

void validate(const OptimizerConfig& o) {
    auto positive_finite = [](double v) { return std::isfinite(v) && v > 0.0; };
    require(positive_finite(o.learning_rate),
            "learning_rate must be a finite number > 0, got " + std::to_string(o.learning_rate));
    if (o.kind == OptimizerKind::adam) {
        require(o.beta1 >= 0.0 && o.beta1 < 1.0, "beta1 must be in [0, 1), got " + std::to_string(o.beta1));
        require(o.beta2 >= 0.0 && o.beta2 < 1.0, "beta2 must be in [0, 1), got " + std::to_string(o.beta2));
        require(positive_finite(o.epsilon), "epsilon must be a finite number > 0, got " + std::to_string(o.epsilon));
    } else {
        require(o.momentum >= 0.0 && o.momentum < 1.0,
                "momentum must be in [0, 1), got " + std::to_string(o.momentum));
        require(!o.nesterov || o.momentum > 0.0, "nesterov=True needs momentum > 0");
    }
}

void validate(const TrainOptions& t) {
    require(t.epochs >= 0, "epochs must be >= 0, got " + std::to_string(t.epochs));
    require(t.batch_size >= 1, "batch_size must be >= 1, got " + std::to_string(t.batch_size));
    require(t.n_threads >= 1, "n_threads must be >= 1, got " + std::to_string(t.n_threads));
}

namespace {
// What fit and fit_u8 both check first.
void check_fit_arguments(const OptimizerConfig& optimizer, const TrainOptions& options, std::size_t n, const void* x) {
    validate(optimizer);
    validate(options);
    require(n > 0, "fit needs at least one sample");
    require(x != nullptr, "fit: x is null");
}
}  // namespace

StopReason Model::fit(std::size_t n, const float* x, const float* y, std::size_t n_val,
                      const float* x_val, const float* y_val, const OptimizerConfig& optimizer,
                      const TrainOptions& options, std::vector<EpochReport>* history) {
    Writing writing(impl_->guard, "fit");
    check_fit_arguments(optimizer, options, n, x);
    const bool bce = config().loss == Loss::bce;
    if (y == nullptr) {
        require(n_inputs() == n_outputs(), "targets are required when n_inputs != n_outputs");
        y = x;
    }
    detail::Dataset val;
    if (x_val != nullptr && n_val > 0) {
        if (y_val == nullptr) {
            require(n_inputs() == n_outputs(), "validation targets are required when n_inputs != n_outputs");
            y_val = x_val;
        }
        check_values(n_val, std::size_t(n_inputs()), x_val, "validation_data", bce && y_val == x_val);
        if (y_val != x_val) check_values(n_val, std::size_t(n_outputs()), y_val, "validation y", bce);
        val.n = n_val;
        val.x = x_val;
        val.y = y_val;
    }
    detail::Dataset data;
    data.n = n;
    data.x = x;
    data.y = y;
    // X and y are checked batch by batch as the first epoch reads them, while in cache, instead
    // of in a pass of their own over the whole dataset (30 ms for MNIST here, 5% of an epoch);
    // a bad value undoes the steps before it (run_training), so the fit still changes nothing.
    const std::size_t d_in = std::size_t(n_inputs()), d_out = std::size_t(n_outputs());
    data.check_batch = [=](std::size_t b, const float* xb, const float* yb, const std::size_t* rows,
                           std::size_t first) {
        check_values(b, d_in, xb, "X", bce && y == x, first, rows);
        if (y != x) check_values(b, d_out, yb, "y", bce, first, rows);
    };
    return run_training(impl_->net, impl_->params, impl_->optimizer, data, val, optimizer, options, history);
}

StopReason Model::fit_u8(std::size_t n, const std::uint8_t* x, float scale, std::size_t n_val,
                         const std::uint8_t* x_val, const OptimizerConfig& optimizer,
                         const TrainOptions& options, std::vector<EpochReport>* history) {
    Writing writing(impl_->guard, "fit");
    check_fit_arguments(optimizer, options, n, x);
    require(std::isfinite(scale) && scale > 0.0f, "scale must be a finite number > 0, got " + std::to_string(scale));
    require(n_inputs() == n_outputs(), "8-bit data trains autoencoders only (n_inputs == n_outputs)");
    if (config().loss == Loss::bce) {
        auto max_of = [](std::size_t count, const std::uint8_t* p) {
            return count ? *std::max_element(p, p + count) : std::uint8_t(0);
        };
        const std::size_t d = std::size_t(n_inputs());
        const float top = float(std::max(max_of(n * d, x), x_val ? max_of(n_val * d, x_val) : std::uint8_t(0))) * scale;
        require(top <= 1.0f + kUnitRangeSlack, "8-bit data times scale must lie in [0, 1] for loss='bce'; its "
                                               "largest value gives " + std::to_string(top));
    }
    detail::Dataset data, val;
    data.n = n;
    data.x_u8 = x;
    data.scale = scale;
    if (x_val != nullptr && n_val > 0) {
        val.n = n_val;
        val.x_u8 = x_val;
        val.scale = scale;
    }
    return run_training(impl_->net, impl_->params, impl_->optimizer, data, val, optimizer, options, history);
}

bool Model::has_optimizer_state() const { return impl_->optimizer.has_value(); }

const OptimizerState& Model::optimizer_state() const {
    if (!impl_->optimizer) throw std::logic_error("the model has no optimizer state (it was never trained)");
    return *impl_->optimizer;
}

std::optional<OptimizerState> Model::copy_optimizer_state() const {
    Reading reading(impl_->guard, "copy_optimizer_state");
    return impl_->optimizer;
}

void Model::set_optimizer_state(const OptimizerState& state) {
    validate(state.config);
    const bool adam = state.config.kind == OptimizerKind::adam;
    require(state.steps >= 0, "optimizer state: steps must be >= 0, got " + std::to_string(state.steps));
    require(state.m.size() == n_params(), "optimizer state: m has " + std::to_string(state.m.size()) +
                                              " values; the model has " + std::to_string(n_params()) + " parameters");
    require(state.v.size() == (adam ? n_params() : 0),
            "optimizer state: v has " + std::to_string(state.v.size()) + " values; expected " +
                std::to_string(adam ? n_params() : 0));
    check_values(1, state.m.size(), state.m.data(), "optimizer state m", false);
    check_values(1, state.v.size(), state.v.data(), "optimizer state v", false);
    if (adam) {
        require(std::all_of(state.v.begin(), state.v.end(), [](float v) { return v >= 0.0f; }),
                "optimizer state: Adam's v must be >= 0");
    }
    Writing writing(impl_->guard, "set_optimizer_state");
    impl_->optimizer = state;
}

void Model::clear_optimizer_state() {
    Writing writing(impl_->guard, "clear_optimizer_state");
    impl_->optimizer.reset();
}

}  // namespace fastae
