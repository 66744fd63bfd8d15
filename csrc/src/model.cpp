// model.cpp -- fastae::Model (model.h): owns the network shape and the flat parameter buffer,
// checks every caller argument, and hands the work to network.cpp and trainer.cpp.
#include "fastae/model.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <cmath>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "model_impl.h"
#include "network.h"
#include "rng.h"
#include "process_group.h"
#include "trainer.h"
#include "training_checks.h"
#include "training_session_impl.h"
#include "vae.h"
#include "worker_pool.h"

namespace fastae {

using detail::check_values;
using detail::ConstMatrixMap;
using detail::MutMatrixMap;
using detail::Reading;
using detail::require;
using detail::Writing;

namespace {

// Samples per chunk for inference: big enough for efficient GEMMs, small enough that the
// workspace stays in cache.
constexpr std::size_t kInferenceChunk = 256;

}  // namespace

namespace {

// The summary Model::config() returns: widths, the first layer's activation, the output's, the loss.
NetworkConfig summary_of(const detail::Network& net) {
    NetworkConfig c;
    for (int l = 0; l <= net.n_layers(); ++l) c.layer_sizes.push_back(net.width(l));
    c.activation = net.layer(0).activation.kind;
    c.output_activation = net.output_activation().kind;
    c.loss = net.head().loss;
    return c;
}

}  // namespace

Model::Model(const NetworkSpec& spec) : impl_(std::make_unique<Impl>(spec)) { impl_->config = summary_of(impl_->net); }
Model::Model(const NetworkConfig& config) : Model(to_spec(config)) {}
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

const NetworkSpec& Model::spec() const { return impl_->net.spec(); }
const NetworkConfig& Model::config() const { return impl_->config; }
int Model::n_layers() const { return impl_->net.n_layers(); }
int Model::n_inputs() const { return impl_->net.width(0); }
int Model::n_outputs() const { return impl_->net.width(n_layers()); }
int Model::n_encoder_layers() const { return impl_->net.n_encoder_layers(); }
int Model::code_size() const { return impl_->net.width(n_encoder_layers()); }
std::size_t Model::n_params() const { return impl_->net.n_params(); }
const float* Model::params() const { return impl_->params.data(); }

std::size_t Model::param_offset(int layer) const {
    require(layer >= 0 && layer < n_layers(),
            "layer must be in [0, " + std::to_string(n_layers()) + "), got " + std::to_string(layer));
    return impl_->net.layer(layer).offset;
}

std::size_t Model::bias_offset(int layer) const {
    require(layer >= 0 && layer < n_layers(),
            "layer must be in [0, " + std::to_string(n_layers()) + "), got " + std::to_string(layer));
    return impl_->net.layer(layer).bias_offset();
}

void Model::init_weights(std::uint64_t seed) {
    Writing writing(impl_->guard, "init_weights");
    detail::Rng rng(seed);
    for (int l = 0; l < n_layers(); ++l) {
        const detail::DenseLayer& layer = impl_->net.layer(l);
        const InitializerTraits& init = traits_of(impl_->net.spec().layers[std::size_t(l)].initializer);
        const double fan = init.fan == 0 ? 0.5 * double(layer.n_in + layer.n_out) : double(layer.n_in);
        float* w = impl_->params.data() + layer.offset;
        // A tied layer draws nothing: its W is its mirror's.
        const std::size_t count = layer.tied_to >= 0 ? 0 : std::size_t(layer.n_in) * std::size_t(layer.n_out);
        if (init.normal) {
            // Keras' truncated normal: draws beyond two std are drawn again; the std is enlarged
            // by 1 / 0.8796... so that the truncated draws have std sqrt(scale / fan).
            const double std_dev = std::sqrt(init.scale / fan) / 0.87962566103423978;
            for (std::size_t i = 0; i < count; ++i) w[i] = float(std_dev * rng.truncated_normal(2.0));
        } else {
            const double limit = std::sqrt(3.0 * init.scale / fan);  // glorot_uniform: sqrt(6 / (n_in + n_out))
            for (std::size_t i = 0; i < count; ++i) w[i] = float((2.0 * rng.uniform() - 1.0) * limit);
        }
        float* b = impl_->params.data() + layer.bias_offset();
        std::fill(b, b + layer.n_out, 0.0f);
    }
}

void Model::set_params(const float* values, std::size_t count) {
    require(count == n_params(), "set_params needs " + std::to_string(n_params()) +
                                     " values, got " + std::to_string(count));
    require(values != nullptr, "set_params: values is null");
    check_values(1, count, values, "parameters", nullptr);
    Writing writing(impl_->guard, "set_params");
    std::copy(values, values + count, impl_->params.begin());
}

void Model::copy_params(float* out) const {
    require(out != nullptr, "copy_params: out is null");
    Reading reading(impl_->guard, "copy_params");
    std::copy(impl_->params.begin(), impl_->params.end(), out);
}

namespace {

// The rows the chunks' first layer reads, in place: row r's `width` floats at data + r * width.
struct ChunkRows {
    const float* data;
    std::size_t width;
};

// Groups of chunks a thread claims at least, for the balance of the threads' work.
constexpr std::size_t kGroupsPerMember = 4;

// Runs body(first_row, rows, workspace) over the chunks of kInferenceChunk rows that n rows are
// cut into, on up to n_threads threads, with the model's inference team (model_impl.h: its
// threads and workspaces are kept from call to call; a call that finds it busy makes its own).
// The chunks go in groups of consecutive ones, claimed by whichever thread is free (worker_pool.h;
// one group for one thread), each run in order: while a chunk's first layer sums its products,
// the rows of the group's next chunk are asked for (sparse_input.h: stream_input). A chunk's work
// never depends on the thread that ran it. The exception of the first failing chunk in row order
// is the one thrown, as a single thread would: a group stops at its first.
template <typename Body>
void run_chunks(detail::InferenceTeam& team, std::size_t n, ChunkRows input, Body& body) {
    const std::size_t n_chunks = (n + kInferenceChunk - 1) / kInferenceChunk;
    const std::size_t per_group = std::max<std::size_t>(
        1, team.pool ? n_chunks / (kGroupsPerMember * team.ws.size()) : n_chunks);
    const std::size_t n_groups = (n_chunks + per_group - 1) / per_group;
    auto run_group = [&](std::size_t group, detail::Workspace& ws) {
        const std::size_t first = group * per_group, end = std::min(n_chunks, first + per_group);
        for (std::size_t c = first; c < end; ++c) {
            const std::size_t s = c * kInferenceChunk, rows = std::min(kInferenceChunk, n - s);
            const std::size_t next_rows = c + 1 < end ? std::min(kInferenceChunk, n - s - rows) : 0;
            ws.sparse().stream_input(next_rows ? input.data + (s + rows) * input.width : nullptr,
                                     next_rows * input.width * sizeof(float));
            body(s, rows, ws);
        }
    };
    if (!team.pool) {
        if (n_groups) run_group(0, team.ws[0]);
        return;
    }
    constexpr std::size_t kMaxItems = 65535;  // per run of the pool
    std::vector<std::exception_ptr> errors(std::min(n_groups, kMaxItems));
    for (std::size_t g0 = 0; g0 < n_groups; g0 += kMaxItems) {
        const std::size_t count = std::min(kMaxItems, n_groups - g0);
        std::fill(errors.begin(), errors.end(), nullptr);
        auto task = [&](int item, int member) {
            try {
                run_group(g0 + std::size_t(item), team.ws[std::size_t(member)]);
            } catch (...) {
                errors[std::size_t(item)] = std::current_exception();
            }
        };
        team.pool->run(task, int(count));
        for (std::size_t i = 0; i < count; ++i) {
            if (errors[i]) std::rethrow_exception(errors[i]);
        }
    }
}

template <typename Body>
void for_each_chunk(const Model::Impl& impl, std::size_t n, int n_threads, ChunkRows input, Body&& body) {
    require(n_threads >= 1, "n_threads must be >= 1, got " + std::to_string(n_threads));
    const std::size_t n_chunks = (n + kInferenceChunk - 1) / kInferenceChunk;
    const int members = int(std::min<std::size_t>(std::size_t(n_threads), std::max<std::size_t>(n_chunks, 1)));
    detail::InferenceTeam& team = impl.inference.team();
    std::unique_lock<std::mutex> lock(team.mutex, std::try_to_lock);
    if (!lock.owns_lock()) {  // another call is using the team
        detail::InferenceTeam own;
        own.build(impl.net, members, members == 1 ? std::min(std::max<std::size_t>(n, 1), kInferenceChunk)
                                                  : kInferenceChunk);
        run_chunks(own, n, input, body);
        return;
    }
    // A team of at least `members` and at most n_threads threads serves (fewer chunks than
    // threads leave some idle); otherwise it is made again.
    if (team.owner != getpid() || team.members < members || team.members > n_threads) {
        team.build(impl.net, members, kInferenceChunk);
    }
    run_chunks(team, n, input, body);
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
    for_each_chunk(*impl_, n, n_threads, {in, std::size_t(w_in)},
                   [&](std::size_t s, std::size_t rows, detail::Workspace& ws) {
        const auto b = Eigen::Index(rows);
        const float* chunk = in + s * std::size_t(w_in);
        bool products_finite = true;
        detail::forward_batch(net, params(), ConstMatrixMap(chunk, w_in, b), first, last, ws,
                              /*activate_output=*/true, /*keep_z=*/false, nullptr, &products_finite);
        // A non-finite input shows in the first layer's products (network.h); only then is the
        // chunk scanned, to name the value. Finite inputs whose products overflow pass.
        if (!products_finite) check_values(rows, std::size_t(w_in), chunk, "X", nullptr, s);
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
    for_each_chunk(*impl_, n, n_threads, {x, std::size_t(d_in)},
                   [&](std::size_t s, std::size_t rows, detail::Workspace& ws) {
        const auto b = Eigen::Index(rows);
        if (y != x) check_values(rows, std::size_t(d_out), y + s * std::size_t(d_out), "y", nullptr, s);
        bool products_finite = true;
        detail::loss_batch(net, params(), ConstMatrixMap(x + s * std::size_t(d_in), d_in, b),
                           ConstMatrixMap(y + s * std::size_t(d_out), d_out, b), nullptr, ws, out + s,
                           &products_finite);
        // As in forward: X is scanned only when its products show a non-finite value.
        if (!products_finite) check_values(rows, std::size_t(d_in), x + s * std::size_t(d_in), "X", nullptr, s);
    });
}

// ---- a variational network (config.h: VariationalSpec; vae.h) ------------------------------

namespace {
void require_variational(const detail::Network& net, const char* what) {
    require(net.variational(), std::string(what) + " needs a variational network (NetworkSpec::variational)");
}
}  // namespace

void Model::encode_gaussian(std::size_t n, const float* x, float* mean, float* logvar, int n_threads) const {
    const detail::Network& net = impl_->net;
    require_variational(net, "encode_gaussian");
    require(n == 0 || (x != nullptr && mean != nullptr && logvar != nullptr), "encode_gaussian: null buffer");
    Reading reading(impl_->guard, "encode_gaussian");
    const int code = n_encoder_layers();
    const Eigen::Index d_in = n_inputs(), k = code_size();
    for_each_chunk(*impl_, n, n_threads, {x, std::size_t(d_in)},
                   [&](std::size_t s, std::size_t rows, detail::Workspace& ws) {
        const auto b = Eigen::Index(rows);
        const float* chunk = x + s * std::size_t(d_in);
        bool products_finite = true;
        detail::forward_batch(net, params(), ConstMatrixMap(chunk, d_in, b), 0, code, ws, /*activate_output=*/true,
                              /*keep_z=*/false, nullptr, &products_finite);
        if (!products_finite) check_values(rows, std::size_t(d_in), chunk, "X", nullptr, s);
        const ConstMatrixMap z(ws.z(code), 2 * k, b);  // (mu, raw logvar) per column
        MutMatrixMap(mean + s * std::size_t(k), k, b) = z.topRows(k);
        MutMatrixMap lv(logvar + s * std::size_t(k), k, b);
        for (Eigen::Index j = 0; j < b; ++j) {
            for (Eigen::Index i = 0; i < k; ++i) lv(i, j) = float(detail::clamp_logvar(z(k + i, j)));
        }
    });
}

void Model::code_noise(std::size_t n, std::uint64_t seed, int epoch, std::size_t first_row, float* eps) const {
    require_variational(impl_->net, "code_noise");
    require(n == 0 || eps != nullptr, "code_noise: null buffer");
    const auto k = Eigen::Index(code_size());
    for (std::size_t i = 0; i < n; ++i) detail::code_noise(seed, epoch, first_row + i, eps + i * std::size_t(k), k);
}

void Model::sample(std::size_t n, std::uint64_t seed, float* out, int n_threads) const {
    require_variational(impl_->net, "sample");
    require(n == 0 || out != nullptr, "sample: null buffer");
    std::vector<float> codes(n * std::size_t(code_size()));
    code_noise(n, seed, 0, 0, codes.data());  // the prior's draws: row i from its own keyed stream
    decode(n, codes.data(), out, n_threads);
}

void Model::elbo_terms(std::size_t n, const float* x, std::uint64_t seed, float* reconstruction, float* kl,
                       int n_threads) const {
    const detail::Network& net = impl_->net;
    require_variational(net, "elbo_terms");
    require(n == 0 || (x != nullptr && reconstruction != nullptr && kl != nullptr), "elbo_terms: null buffer");
    Reading reading(impl_->guard, "elbo_terms");
    const Eigen::Index d_in = n_inputs();
    for_each_chunk(*impl_, n, n_threads, {x, std::size_t(d_in)},
                   [&](std::size_t s, std::size_t rows, detail::Workspace& ws) {
        const auto b = Eigen::Index(rows);
        const float* chunk = x + s * std::size_t(d_in);
        // Each sample's draw is keyed by its values (a hash of its bits), so a sample scores the same
        // in any call, order or chunk.
        std::vector<std::size_t> keys(rows);
        for (std::size_t j = 0; j < rows; ++j) {
            std::uint64_t h = 0x84222325CBF29CE4ull;
            const float* v = chunk + j * std::size_t(d_in);
            for (Eigen::Index i = 0; i < d_in; ++i) {
                std::uint32_t bits;
                std::memcpy(&bits, v + i, sizeof bits);
                h = detail::mix64(h ^ bits);
            }
            keys[j] = std::size_t(h);
        }
        detail::StepContext draws{seed, 0, keys.data(), 0};
        draws.draws_only = true;
        bool products_finite = true;
        detail::elbo_terms_batch(net, params(), ConstMatrixMap(chunk, d_in, b), draws, ws, reconstruction + s, kl + s,
                                 &products_finite);
        if (!products_finite) check_values(rows, std::size_t(d_in), chunk, "X", nullptr, s);
    });
}

double Model::training_loss_and_gradient(std::size_t n, const float* x, std::uint64_t seed, int epoch,
                                         float* grad) const {
    const detail::Network& net = impl_->net;
    require(n > 0 && x != nullptr && grad != nullptr, "training_loss_and_gradient needs n > 0 and buffers");
    require(n_inputs() == n_outputs(), "training_loss_and_gradient is for autoencoders (targets = inputs)");
    require(net.batch_stat_layers() == 0, "training_loss_and_gradient: a sparsity penalty needs a training session");
    Reading reading(impl_->guard, "training_loss_and_gradient");
    const Eigen::Index d = n_inputs();
    detail::Workspace ws(net, n);
    const double scale = 1.0 / detail::batch_normaliser(net, double(n));
    double terms = 0.0;
    const detail::StepContext context{seed, epoch, nullptr, 0, double(n), nullptr, &terms};
    std::vector<float> noisy;
    const float* in = x;
    if (net.layer(0).noise != Noise::none) {  // as a training step: noisy inputs, clean targets
        noisy.resize(n * std::size_t(d));
        for (std::size_t i = 0; i < n; ++i) {
            detail::input_noise(net.layer(0).noise, net.layer(0).noise_level, context, i, x + i * std::size_t(d),
                                noisy.data() + i * std::size_t(d), d);
        }
        in = noisy.data();
    }
    const double sum = detail::loss_gradient_batch(net, params(), ConstMatrixMap(in, d, Eigen::Index(n)),
                                                   ConstMatrixMap(x, d, Eigen::Index(n)),
                                                   detail::ColumnScale{float(scale), nullptr}, &context, ws, grad);
    return sum * scale + terms;
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
    const double scale = 1.0 / detail::batch_normaliser(net, double(n));
    // The gradient of the mean loss without dropout (no step context: dropout is training's);
    // frozen layers get none (0).
    for (const detail::DenseLayer& layer : net.layers()) {
        if (!layer.trainable) std::fill(grad + layer.owned_begin(), grad + layer.owned_end(), 0.0f);
    }
    const double sum = detail::loss_gradient_batch(net, params(), ConstMatrixMap(x, d_in, Eigen::Index(n)),
                                                   ConstMatrixMap(y, d_out, Eigen::Index(n)),
                                                   detail::ColumnScale{float(scale), nullptr}, nullptr,
                                                   ws, grad);
    return sum * scale;
}

std::size_t param_count(const NetworkSpec& spec) { return detail::Network(spec).n_params(); }

StopReason Model::fit(const TrainingData& data, const TrainingData* validation, const OptimizerConfig& optimizer,
                      const TrainOptions& options, std::vector<EpochReport>* history) {
    Writing writing(impl_->guard, "fit");
    const ProcessGroup& group = options.processes;
    const TrainingData* val = nullptr;
    std::optional<detail::HeldOut> held_out;
    std::unique_ptr<TrainingSession> session;  // its constructor for fit is Model's own
    try {  // in a process group, a failure here is announced where the others agree to start
        check_training_arguments(*impl_, data, validation, optimizer, options);
        detail::check_group(group, data.n);
        val = validation && validation->n > 0 ? validation : nullptr;
        // validation_split: a seeded random subset of the rows, copied out, validates; the rest trains.
        if (!val && options.validation_split > 0.0) {
            held_out.emplace(detail::hold_out(data, n_inputs(), n_outputs(), options.validation_split, options.seed,
                                              group));
            val = &held_out->validation;
            check_whole(impl_->net, *val, "the validation_split rows");
        }
        session.reset(new TrainingSession(*impl_, data, optimizer, options, TrainingSession::Unclaimed{}));
        if (val) session->impl_->reserve_evaluation(*val);
    } catch (...) {
        if (detail::in_group(group) && group.sum) detail::announce_failure(group);
        throw;
    }
    if (detail::in_group(group)) detail::agree_to_start(group);
    // X, y and the weights are checked batch by batch as the first epoch reads them, while in
    // cache, instead of in a pass of their own over the whole dataset (30 ms for MNIST here, 5% of
    // an epoch); a bad value undoes the steps before it, so the fit still changes nothing: the
    // weights are restored, the optimizer state and the history left as they were. 8-bit inputs
    // that are their own targets need no check (their range was checked above).
    const bool check = data.x_u8 == nullptr || data.y != nullptr || data.sample_weight != nullptr;
    const detail::AlignedFloats initial = check ? impl_->params : detail::AlignedFloats();
    const std::size_t history_size = history ? history->size() : 0;
    try {
        return detail::run_epochs(*session, data, held_out ? &held_out->train_rows : nullptr, val, options, check,
                                  history);
    } catch (const std::invalid_argument&) {
        if (check) {
            std::copy(initial.begin(), initial.end(), impl_->params.begin());
            session->impl_->discard_state = true;
            if (history) history->resize(history_size);
        }
        throw;
    }
}

StopReason Model::fit(std::size_t n, const float* x, const float* y, std::size_t n_val,
                      const float* x_val, const float* y_val, const OptimizerConfig& optimizer,
                      const TrainOptions& options, std::vector<EpochReport>* history) {
    TrainingData data, val;
    data.n = n;
    data.x = x;
    data.y = y;
    if (x_val != nullptr && n_val > 0) {
        val.n = n_val;
        val.x = x_val;
        val.y = y_val;
    }
    require(x != nullptr || n == 0, "fit: x is null");
    return fit(data, &val, optimizer, options, history);
}

StopReason Model::fit_u8(std::size_t n, const std::uint8_t* x, float scale, std::size_t n_val,
                         const std::uint8_t* x_val, const OptimizerConfig& optimizer,
                         const TrainOptions& options, std::vector<EpochReport>* history) {
    TrainingData data, val;
    data.n = n;
    data.x_u8 = x;
    data.scale = scale;
    if (x_val != nullptr && n_val > 0) {
        val.n = n_val;
        val.x_u8 = x_val;
        val.scale = scale;
    }
    require(x != nullptr || n == 0, "fit: x is null");
    return fit(data, &val, optimizer, options, history);
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
    require(state.steps >= 0, "optimizer state: steps must be >= 0, got " + std::to_string(state.steps));
    // One slot (m) or two (m, v), each of n_params values (vocabulary.h; names in config.h).
    const std::vector<std::string> slots = optimizer_slot_names(state.config.kind);
    const std::vector<float>* buffers[2] = {&state.m, &state.v};
    for (std::size_t k = 0; k < 2; ++k) {
        const std::size_t want = k < slots.size() ? n_params() : 0;
        const std::string name = k < slots.size() ? slots[k] : "v";
        require(buffers[k]->size() == want, "optimizer state: " + std::string(k ? "v" : "m") + " (" +
                                                 std::string(name_of(state.config.kind)) + "'s " + name + ") has " +
                                                 std::to_string(buffers[k]->size()) + " values; expected " +
                                                 std::to_string(want));
        check_values(1, buffers[k]->size(), buffers[k]->data(), k ? "optimizer state v" : "optimizer state m", nullptr);
    }
    // Running averages of squares cannot be negative.
    const std::vector<float>* squares = nullptr;
    switch (state.config.kind) {
        case OptimizerKind::adam:
        case OptimizerKind::adamw: squares = &state.v; break;
        case OptimizerKind::rmsprop: squares = &state.m; break;
        case OptimizerKind::sgd: break;
    }
    if (squares) {
        require(std::all_of(squares->begin(), squares->end(), [](float v) { return v >= 0.0f; }),
                std::string("optimizer state: ") + name_of(state.config.kind) + "'s " +
                    (squares == &state.v ? "v (exp_avg_sq)" : "m (square_avg)") + " must be >= 0");
    }
    Writing writing(impl_->guard, "set_optimizer_state");
    impl_->optimizer = state;
}

void Model::clear_optimizer_state() {
    Writing writing(impl_->guard, "clear_optimizer_state");
    impl_->optimizer.reset();
}

}  // namespace fastae
