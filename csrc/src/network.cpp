// network.cpp -- dense forward/backward over a batch (network.h); their naive twins are in
// network_naive.cpp.
#include "network.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>

#include "activation.h"
#include "deferred_gradient.h"
#include "head.h"
#include "rng.h"
#include "shared_weights.h"
#include "vae.h"
#include "value_checks.h"

namespace fastae::detail {

namespace {

// Largest total parameter count accepted: keeps every index inside 32-bit Eigen-friendly and
// size_t arithmetic and far beyond any dense network a CPU trains.
constexpr std::size_t kMaxParams = std::size_t(1) << 32;

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void require(bool ok, const std::string& message) {
    if (!ok) throw std::invalid_argument(message);
}

std::string number(double v) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", v);
    return text;
}

// A finite number in [low, high) (high_closed: [low, high]).
bool in_range(double v, double low, double high, bool high_closed = false) {
    return std::isfinite(v) && v >= low && (high_closed ? v <= high : v < high);
}

// The contractive penalty: the Jacobian of a sigmoid or tanh first layer's output (the code of
// a one-hidden-layer encoder) with respect to the network's input.
void check_contractive(const LayerSpec& layer, const std::string& name, std::size_t i, bool is_output) {
    require(in_range(layer.contractive, 0.0, 1e30),
            name + ".contractive must be a finite number >= 0, got " + number(layer.contractive));
    if (layer.contractive == 0.0) return;
    require(i == 0 && !is_output, name + ": the contractive penalty is on the first layer's output (the code of a "
                                         "one-hidden-layer encoder), with a layer after it");
    const Activation kind = layer.activation.kind;
    require(kind == Activation::sigmoid || kind == Activation::tanh,
            name + ": the contractive penalty needs a sigmoid or tanh layer, got '" + name_of(kind) + "'");
}

// Tied weights: an earlier, untied layer of the transposed shape, tied to by this layer only,
// with the same trainable flag; the tied layer's own l1 and l2 are 0.
void check_tie(const NetworkSpec& spec, std::size_t i, const std::string& name) {
    const LayerSpec& layer = spec.layers[i];
    if (layer.tied_to == -1) return;
    require(layer.tied_to >= 0 && std::size_t(layer.tied_to) < i,
            name + ".tied_to must be -1 or an earlier layer's index in [0, " + std::to_string(i) + "), got " +
                std::to_string(layer.tied_to));
    const std::size_t k = std::size_t(layer.tied_to);
    const LayerSpec& mirror = spec.layers[k];
    const int mirror_in = k == 0 ? spec.n_inputs : spec.layers[k - 1].units;
    const int own_in = spec.layers[i - 1].units;
    require(mirror.tied_to == -1, name + " is tied to layers[" + std::to_string(k) + "], which is itself tied");
    require(own_in == mirror.units && layer.units == mirror_in,
            name + " (" + std::to_string(own_in) + " -> " + std::to_string(layer.units) + ") cannot use layers[" +
                std::to_string(k) + "]'s weights (" + std::to_string(mirror_in) + " -> " +
                std::to_string(mirror.units) + ") transposed: the widths do not mirror");
    for (std::size_t j = k + 1; j < i; ++j) {
        require(spec.layers[j].tied_to != layer.tied_to,
                name + " and layers[" + std::to_string(j) + "] are both tied to layers[" + std::to_string(k) + "]");
    }
    require(layer.l1 == 0.0 && layer.l2 == 0.0,
            name + ": a tied layer's l1 and l2 must be 0 (its W is layers[" + std::to_string(k) +
                "]'s, penalised there)");
    require(layer.trainable == mirror.trainable,
            name + " and layers[" + std::to_string(k) + "] share a W, so both must be trainable or both frozen");
}

void check_layer(const NetworkSpec& spec, std::size_t i) {
    const LayerSpec& layer = spec.layers[i];
    const std::string name = "layers[" + std::to_string(i) + "]";
    const bool is_output = i + 1 == spec.layers.size();
    require(layer.units >= 1, name + ".units must be >= 1, got " + std::to_string(layer.units));
    traits_of(layer.activation.kind);  // throws on a value outside the table
    traits_of(layer.initializer);
    const ActivationSpec& act = layer.activation;
    require(is_output || !traits_of(act.kind).output_only,
            name + ": activation '" + name_of(act.kind) + "' is allowed on the output layer only");
    if (act.kind == Activation::leaky_relu) {
        require(in_range(act.alpha, 0.0, 1e30), name + ": leaky_relu's slope (alpha) must be a finite number >= 0, got " +
                                                    number(act.alpha));
    }
    if (act.kind == Activation::elu) {
        require(in_range(act.alpha, 0.0, 1e30) && act.alpha > 0.0,
                name + ": elu's alpha must be a finite number > 0, got " + number(act.alpha));
    }
    require(in_range(layer.l1, 0.0, 1e30), name + ".l1 must be a finite number >= 0, got " + number(layer.l1));
    require(in_range(layer.l2, 0.0, 1e30), name + ".l2 must be a finite number >= 0, got " + number(layer.l2));
    require(in_range(layer.dropout, 0.0, 1.0), name + ".dropout must be in [0, 1), got " + number(layer.dropout));
    require(!is_output || layer.dropout == 0.0, name + ": dropout is for hidden layers, not the output layer");
    traits_of(layer.noise);
    switch (layer.noise) {
        case Noise::none: break;
        case Noise::gaussian:
            require(in_range(layer.noise_level, 0.0, 1e30), name + ": gaussian noise_level (the std) must be a finite "
                                                                    "number >= 0, got " + number(layer.noise_level));
            break;
        case Noise::masking:
            require(in_range(layer.noise_level, 0.0, 1.0),
                    name + ": masking noise_level (the fraction set to 0) must be in [0, 1), got " + number(layer.noise_level));
            break;
    }
    require(layer.noise == Noise::none || i == 0,
            name + ": noise is supported on the first layer's input (the network's input) only");
    require(in_range(layer.activity_l1, 0.0, 1e30),
            name + ".activity_l1 must be a finite number >= 0, got " + number(layer.activity_l1));
    require(in_range(layer.sparsity_weight, 0.0, 1e30),
            name + ".sparsity_weight must be a finite number >= 0, got " + number(layer.sparsity_weight));
    if (layer.sparsity_weight > 0.0) {
        require(in_range(layer.sparsity_target, 0.0, 1.0) && layer.sparsity_target > 0.0,
                name + ".sparsity_target must be in (0, 1), got " + number(layer.sparsity_target));
        require(act.kind == Activation::sigmoid, name + ": the sparsity penalty needs a sigmoid layer (its outputs are "
                                                        "activation rates in (0, 1)), got '" + name_of(act.kind) + "'");
    }
    require(!is_output || (layer.activity_l1 == 0.0 && layer.sparsity_weight == 0.0),
            name + ": activity penalties are for hidden layers (the code), not the output layer");
    check_contractive(layer, name, i, is_output);
    check_tie(spec, i, name);
}

void check_head(const NetworkSpec& spec) {
    const HeadSpec& head = spec.head;
    const LossTraits& loss = traits_of(head.loss);
    const Activation out = spec.layers.back().activation.kind;
    if (loss.required_output >= 0) {
        const auto required = static_cast<Activation>(loss.required_output);
        require(out == required, std::string("loss '") + loss.name + "' needs output_activation '" + name_of(required) +
                                     "', got '" + name_of(out) + "'");
    } else {
        require(!traits_of(out).output_only, std::string("output_activation '") + name_of(out) +
                                                 "' goes with its own loss only, not '" + loss.name + "'");
    }
    if (head.loss == Loss::huber) {
        require(in_range(head.huber_delta, 0.0, 1e30) && head.huber_delta > 0.0,
                "huber_delta must be a finite number > 0, got " + number(head.huber_delta));
    }
}

// z (n_out, b) holds W a; adds the bias. Then f in place (the fast path), or, for layers that
// keep Z, A = f(Z) into a separate buffer.
void bias_activation(const ActivationSpec& act, float* z, float* a, Eigen::Index n_out, Eigen::Index b,
                     const float* bias) {
    MutMatrixMap zm(z, n_out, b);
    const ConstVectorMap bv(bias, n_out);
    if (act.kind == Activation::relu && z == a) {  // the common case in one sweep
        zm.array() = (zm.array().colwise() + bv.array()).max(0.0f);
        return;
    }
    zm.array().colwise() += bv.array();
    if (act.kind == Activation::softmax) {
        if (a != z) std::copy(z, z + n_out * b, a);
        softmax_columns(a, n_out, b);
    } else {
        activation_forward(act, z, a, n_out * b);
    }
}

// Layer l's dropout mask for the batch, drawn by dataset row (rng.h), applied to its outputs.
void apply_dropout(const DenseLayer& layer, int l, const StepContext& ctx, float* a, float* mask, Eigen::Index b) {
    const auto n_out = Eigen::Index(layer.n_out);
    for (Eigen::Index j = 0; j < b; ++j) {
        const std::uint64_t row = ctx.row(j);
        float* m = mask + j * n_out;
        for (Eigen::Index o = 0; o < n_out; ++o) {
            m[o] = dropout_mask(ctx.seed, ctx.epoch, row, l, int(o), layer.dropout);
        }
    }
    Eigen::Map<Eigen::ArrayXf>(a, n_out * b) *= Eigen::Map<const Eigen::ArrayXf>(mask, n_out * b);
}

// The activity terms of `layer` on its outputs a (n_out, b) into da (the gradient of the loss with
// respect to a): activity_l1 * sign(a) / batch, and the sparsity KL's
// weight * (-rho / mean + (1 - rho) / (1 - mean)) / batch. Returns the L1 term's value for these
// columns (the KL's is the whole batch's, added once by the session).
double add_activity_terms(const DenseLayer& layer, int l, const StepContext& ctx, const float* a, float* da,
                          Eigen::Index b) {
    const auto n_out = Eigen::Index(layer.n_out);
    const Eigen::Map<const Eigen::ArrayXXf> av(a, n_out, b);
    Eigen::Map<Eigen::ArrayXXf> dv(da, n_out, b);
    const float inv_batch = float(1.0 / ctx.batch_samples);
    double value = 0.0;
    if (layer.activity_l1 > 0.0f) {
        dv += (layer.activity_l1 * inv_batch) * av.sign();
        value = double(layer.activity_l1) * double(av.abs().sum()) / ctx.batch_samples;
    }
    if (layer.sparsity_weight > 0.0f) {
        const Eigen::Map<const Eigen::ArrayXf> mean((*ctx.batch_means)[std::size_t(l) + 1].data(), n_out);
        const float rho = layer.sparsity_target;
        const Eigen::ArrayXf g = (layer.sparsity_weight * inv_batch) * (-rho / mean + (1.0f - rho) / (1.0f - mean));
        dv.colwise() += g;
    }
    return value;
}

// The contractive penalty of the first layer (LayerSpec::contractive, lambda), for these b
// columns: with s_j = sum_i W_ji^2 and g_j = f'(z_j) (sigmoid: h (1 - h); tanh: 1 - h^2), adds
// its gradient with respect to z, (lambda / batch) * 2 g_j g'_j s_j (sigmoid: g' = g (1 - 2h);
// tanh: g' = -2 h g), to dz, keeps s (scratch[0, n_out)) and the columns' sum of g_j^2
// (scratch[n_out, 2 n_out)) for add_contractive_dw, and returns the value
// (lambda / batch) * sum over the columns of sum_j g_j^2 s_j. hz holds h, or Z when from_z (the
// layer keeps Z: its A is masked by dropout, and the penalty is on the code before dropout).
double add_contractive_dz(const DenseLayer& layer, const StepContext& ctx, const float* hz, bool from_z,
                          const float* params, float* dz, Eigen::Index b, float* scratch) {
    const Eigen::Index n_out = layer.n_out, n_in = layer.n_in;
    const float* w = params + layer.offset;  // (n_out, n_in) column-major
    float* s = scratch;
    float* c = scratch + n_out;
    for (Eigen::Index o = 0; o < n_out; ++o) s[o] = 0.0f, c[o] = 0.0f;
    for (Eigen::Index i = 0; i < n_in; ++i) {
        for (Eigen::Index o = 0; o < n_out; ++o) s[o] += w[i * n_out + o] * w[i * n_out + o];
    }
    const bool sigmoid = layer.activation.kind == Activation::sigmoid;  // else tanh (checked)
    const float k = float(2.0 * double(layer.contractive) / ctx.batch_samples);
    double value = 0.0;
    for (Eigen::Index j = 0; j < b; ++j) {
        for (Eigen::Index o = 0; o < n_out; ++o) {
            const float v = hz[j * n_out + o];
            const float h = !from_z ? v : sigmoid ? 1.0f / (1.0f + std::exp(-v)) : std::tanh(v);
            const float g = sigmoid ? h * (1.0f - h) : 1.0f - h * h;
            const float g2 = g * g;
            c[o] += g2;
            value += double(g2) * double(s[o]);
            dz[j * n_out + o] += k * g2 * (sigmoid ? 1.0f - 2.0f * h : -2.0f * h) * s[o];
        }
    }
    return double(layer.contractive) * value / ctx.batch_samples;
}

// The penalty's direct gradient with respect to W: (lambda / batch) * 2 (sum over the columns of
// g_j^2) W_ji, added to the layer's dW once its product has been written (scratch as left by
// add_contractive_dz).
void add_contractive_dw(const DenseLayer& layer, const StepContext& ctx, const float* params, const float* scratch,
                        float* grad) {
    const Eigen::Index n_out = layer.n_out, n_in = layer.n_in;
    const float* w = params + layer.offset;
    const float* c = scratch + n_out;
    float* gw = grad + layer.offset;
    const float k = float(2.0 * double(layer.contractive) / ctx.batch_samples);
    for (Eigen::Index i = 0; i < n_in; ++i) {
        for (Eigen::Index o = 0; o < n_out; ++o) gw[i * n_out + o] += k * c[o] * w[i * n_out + o];
    }
}

// Layer l's dW and db from its dZ (n_out, b) and input a_in (n_in, b). db = sum of dZ's columns,
// added in column order (Eigen's rowwise().sum() rounds differently with the buffer's address,
// which would break seed determinism). A tied layer adds dW^T = A dZ^T into its mirror's dW,
// writing it (backward reaches it first); the mirror then adds its own product. A deferred dW
// (deferred_gradient.h) is left to the step's sum, with what it needs kept.
void weight_gradients(const DenseLayer& layer, int l, const MutMatrixMap& dz, const float* a_in, Workspace& ws,
                      float* grad, const DeferredGradients* deferred) {
    const Eigen::Index b = dz.cols();
    VectorMap gb(grad + layer.bias_offset(), layer.n_out);
    gb = dz.col(0);
    for (Eigen::Index j = 1; j < b; ++j) gb += dz.col(j);
    float* gw = grad + layer.offset;
    if (layer.tied_to >= 0) {
        gemm(false, true, layer.n_in, layer.n_out, int(b), 1.0f, a_in, layer.n_in, dz.data(), layer.n_out, 0.0f, gw,
             layer.n_in, ws.gemm());
        return;
    }
    const auto start = std::chrono::steady_clock::now();
    if (l == 0 && ws.sparse().active() && !layer.tied_by) {  // the list of this batch's forward pass
        ws.sparse().weight_gradient(dz.data(), layer.n_out, gw);
    } else if (l == 0 && deferred && deferred->first) {
        deferred->first->keep(dz.data(), a_in, int(b));
    } else if (BatchWeightGradient* d = deferred ? deferred->layer(l) : nullptr) {
        d->keep(deferred->column, dz.data(), a_in, int(b));
    } else {
        gemm(false, true, layer.n_out, layer.n_in, int(b), 1.0f, dz.data(), layer.n_out, a_in, layer.n_in,
             layer.tied_by ? 1.0f : 0.0f, gw, layer.n_out, ws.gemm());
    }
    if (l == 0) ws.first_layer().add(seconds_since(start));
}

// A variational network's code layer (config.h: VariationalSpec): 2k linear units before a decoder.
void check_variational(const NetworkSpec& spec, int code) {
    const VariationalSpec& v = spec.variational;
    require(in_range(v.beta, 0.0, 1e30), "variational.beta must be a finite number >= 0, got " + number(v.beta));
    require(v.kl_warmup_epochs >= 0,
            "variational.kl_warmup_epochs must be >= 0, got " + std::to_string(v.kl_warmup_epochs));
    const LayerSpec& layer = spec.layers[std::size_t(code)];
    const std::string name = "layers[" + std::to_string(code) + "]";
    require(code + 1 < int(spec.layers.size()), "a variational network needs a decoder after its code layer (" + name + ")");
    require(layer.units % 2 == 0, name + ": a variational code layer has 2k units (k means, k log-variances), got " +
                                      std::to_string(layer.units));
    require(layer.activation.kind == Activation::linear,
            name + ": a variational code layer is linear, got '" + std::string(name_of(layer.activation.kind)) + "'");
    require(layer.dropout == 0.0 && layer.activity_l1 == 0.0 && layer.sparsity_weight == 0.0,
            name + ": a variational code layer takes no dropout or activity penalty");
}

}  // namespace

// A stream of its own per (seed, epoch, row), apart from dropout's keys (rng.h).
void input_noise(Noise kind, float level, const StepContext& ctx, std::size_t row, const float* x, float* out,
                 Eigen::Index d) {
    constexpr std::uint64_t kNoiseStream = 0xD1B54A32D192ED03ull;
    Rng rng(mix64(ctx.seed ^ kNoiseStream) ^ mix64(std::uint64_t(std::uint32_t(ctx.epoch)) * 0x9E3779B97F4A7C15ull + row));
    switch (kind) {
        case Noise::none: std::copy(x, x + d, out); return;
        case Noise::gaussian:
            for (Eigen::Index k = 0; k < d; ++k) out[k] = x[k] + level * float(rng.normal());
            return;
        case Noise::masking:
            for (Eigen::Index k = 0; k < d; ++k) out[k] = rng.uniform() < double(level) ? 0.0f : x[k];
            return;
    }
}

Network::Network(const NetworkSpec& spec) : spec_(spec) {
    require(spec.n_inputs >= 1, "n_inputs must be >= 1, got " + std::to_string(spec.n_inputs));
    require(!spec.layers.empty(), "a network needs at least one layer");
    for (std::size_t i = 0; i < spec.layers.size(); ++i) check_layer(spec, i);
    check_head(spec);
    const int n = int(spec.layers.size());
    require(spec.code_layer >= -1 && spec.code_layer < n,
            "code_layer must be -1 or in [0, " + std::to_string(n) + "), got " + std::to_string(spec.code_layer));
    n_encoder_layers_ = spec.code_layer >= 0 ? spec.code_layer + 1 : std::max(1, n / 2);
    spec_.code_layer = n_encoder_layers_ - 1;  // -1 resolved: spec() names the layer
    if (spec.variational.enabled) check_variational(spec, spec_.code_layer);
    std::size_t offset = 0;
    int n_in = spec.n_inputs;
    max_width_ = n_in;
    first_trainable_ = n;
    for (const LayerSpec& s : spec.layers) {
        DenseLayer layer;
        layer.n_in = n_in;
        layer.n_out = s.units;
        layer.tied_to = s.tied_to;
        layer.trainable = s.trainable;
        layer.contractive = static_cast<float>(s.contractive);
        const std::size_t weights = s.tied_to >= 0 ? 0 : std::size_t(layer.n_in) * std::size_t(layer.n_out);
        layer.offset = s.tied_to >= 0 ? layers_[std::size_t(s.tied_to)].offset : offset;
        layer.b_offset = offset + weights;
        if (s.tied_to >= 0) layers_[std::size_t(s.tied_to)].tied_by = true;
        if (s.trainable) first_trainable_ = std::min(first_trainable_, int(layers_.size()));
        layer.activation = s.activation;
        layer.dropout = static_cast<float>(s.dropout);
        layer.keeps_z = traits_of(s.activation.kind).needs_preactivation || s.dropout > 0.0;
        layer.noise = s.noise;
        layer.noise_level = static_cast<float>(s.noise_level);
        layer.activity_l1 = static_cast<float>(s.activity_l1);
        layer.sparsity_target = static_cast<float>(s.sparsity_target);
        layer.sparsity_weight = static_cast<float>(s.sparsity_weight);
        layer.gaussian = spec.variational.enabled && int(layers_.size()) == spec_.code_layer;
        layer.keeps_z = layer.keeps_z || layer.gaussian;
        has_dropout_ = has_dropout_ || s.dropout > 0.0;
        if (s.sparsity_weight > 0.0) batch_stat_layers_ = int(layers_.size()) + 1;
        const std::size_t count = weights + std::size_t(layer.n_out);
        if (count > kMaxParams || offset + count > kMaxParams) {
            throw std::invalid_argument("the layer widths give more than 2^32 parameters");
        }
        offset += count;
        layers_.push_back(layer);
        n_in = layer.out_width();
        max_width_ = std::max(max_width_, s.units);
        max_width_ = std::max(max_width_, n_in);
    }
    n_params_ = offset;
    // Terms on the output of a layer with every layer up to it frozen would train nothing.
    for (int l = 0; l < std::min(first_trainable_, n); ++l) {
        const LayerSpec& s = spec.layers[std::size_t(l)];
        require(s.activity_l1 == 0.0 && s.sparsity_weight == 0.0 && s.contractive == 0.0,
                "layers[" + std::to_string(l) + "]: its activity or contractive penalty would train nothing: it and "
                "every layer below it are frozen (trainable false)");
    }
}

Workspace::Workspace(const Network& net, std::size_t capacity) : capacity_(capacity) {
    const int n = net.n_layers();
    net_widths_.resize(std::size_t(n) + 1);
    keeps_z_.assign(std::size_t(n) + 1, 0);
    act_.resize(std::size_t(n) + 1);
    bound_.assign(std::size_t(n) + 1, nullptr);
    z_.resize(std::size_t(n) + 1);
    mask_.resize(std::size_t(n) + 1);
    for (int l = 0; l <= n; ++l) {
        net_widths_[std::size_t(l)] = net.width(l);
        if (l == 0) continue;
        const DenseLayer& layer = net.layer(l - 1);
        const std::size_t size = std::size_t(net.width(l)) * capacity;
        act_[std::size_t(l)] = ZeroPages(size);
        if (layer.keeps_z) {
            keeps_z_[std::size_t(l)] = 1;
            z_[std::size_t(l)] = ZeroPages(std::size_t(layer.n_out) * capacity);
        }
        if (layer.dropout > 0.0f || layer.gaussian) mask_[std::size_t(l)] = ZeroPages(size);
    }
    delta_ = ZeroPages(std::size_t(net.max_width()) * capacity);
    // Batches past 4096 samples (loss_and_gradient of a whole dataset) use the dense products:
    // the lists would cost 0.4 x their float size again.
    sparse_ = SparseInput(net.width(0), std::min<std::size_t>(capacity, 4096));
    const int widest = std::max(net.max_width(), int(std::min<std::size_t>(capacity, std::size_t(INT32_MAX))));
    gemm_.reserve(widest, widest, widest);
    scratch_ = Eigen::VectorXf::Zero(3 * Eigen::Index(net.max_width()));
}

void forward_batch(const Network& net, const float* params, ConstMatrixMap in, int first, int last, Workspace& ws,
                   bool activate_output, bool keep_z, const StepContext* dropout, bool* first_products_finite) {
    const Eigen::Index b = in.cols();
    for (int l = first; l < last; ++l) {
        const DenseLayer& layer = net.layer(l);
        const bool is_output = l + 1 == net.n_layers();
        // Training keeps Z apart from A where backward needs it; the output keeps its logits.
        float* a = ws.act(l + 1, b).data();
        float* z = (keep_z || layer.gaussian) && !is_output ? ws.z(l + 1) : a;
        const float* a_in = l == first ? in.data() : ws.act(l, b).data();
        // The network's input may be mostly zeros (images, counts): then only its nonzeros may be
        // multiplied, and the list is kept for the weight gradient (FirstLayerPath).
        const auto start = l == 0 ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
        if (l == 0) ws.sparse().clear();
        if (l == 0 && ws.first_layer().next_sparse() && ws.sparse().compress(a_in, layer.n_in, int(b))) {
            ws.sparse().forward(params + layer.offset, layer.n_out, z);
        } else if (SharedPackedA* w = shared_product(dropout ? dropout->weights : nullptr, l, /*forward=*/true)) {
            gemm_shared_a(*w, false, int(b), a_in, layer.n_in, 0.0f, z, layer.n_out, ws.gemm());
        } else if (layer.tied_to >= 0) {  // W_k^T A: layer k's W is (n_in, n_out) column-major
            gemm(true, false, layer.n_out, int(b), layer.n_in, 1.0f, params + layer.offset, layer.n_in, a_in,
                 layer.n_in, 0.0f, z, layer.n_out, ws.gemm());
        } else {
            gemm(false, false, layer.n_out, int(b), layer.n_in, 1.0f, params + layer.offset, layer.n_out, a_in,
                 layer.n_in, 0.0f, z, layer.n_out, ws.gemm());
        }
        if (l == 0) ws.first_layer().add(seconds_since(start));
        if (l == first && first_products_finite) {
            *first_products_finite = all_finite(std::size_t(layer.n_out) * std::size_t(b), z);
        }
        const ActivationSpec& act = is_output && !activate_output ? activation_spec(Activation::linear) : layer.activation;
        if (layer.gaussian) {  // (mu, logvar) in z, the code the decoder reads in a (vae.h)
            bias_activation(act, z, z, layer.n_out, b, params + layer.bias_offset());
            const StepContext* c = dropout;
            gaussian_forward(z, a, ws.mask(l + 1), layer.out_width(), b, c != nullptr, c ? c->seed : 0,
                             c ? c->epoch : 0, [c](Eigen::Index j) { return c->row(j); });
            continue;
        }
        bias_activation(act, z, a, layer.n_out, b, params + layer.bias_offset());
        if (dropout && !dropout->draws_only && layer.dropout > 0.0f) apply_dropout(layer, l, *dropout, a, ws.mask(l + 1), b);
    }
}

double loss_gradient_batch(const Network& net, const float* params, ConstMatrixMap x, ConstMatrixMap y,
                           ColumnScale scale, const StepContext* context, Workspace& ws, float* grad,
                           int forward_done) {
    const int n_layers = net.n_layers();
    const Eigen::Index b = x.cols();
    if (forward_done == 0) {
        forward_batch(net, params, x, 0, n_layers, ws, /*activate_output=*/false, /*keep_z=*/true, context);
    } else {
        forward_batch(net, params, ConstMatrixMap(ws.act(forward_done, b).data(), net.width(forward_done), b),
                      forward_done, n_layers, ws, /*activate_output=*/false, /*keep_z=*/true, context);
    }
    // The output pass turns the logits into dL/dZ in place.
    const double loss = head_pass(net.head(), net.output_activation(), ws.act(n_layers, b), y, scale,
                                  /*want_grad=*/true, nullptr, ws.scratch());
    double code_kl = 0.0;  // a variational network's sum of weight * KL
    const double beta = kl_weight(net.spec().variational, context ? context->epoch : 0);
    const int stop = net.first_trainable();
    for (int l = n_layers - 1; l >= stop; --l) {
        const DenseLayer& layer = net.layer(l);
        MutMatrixMap dz = layer.gaussian ? MutMatrixMap(ws.z(l + 1), layer.n_out, b) : ws.act(l + 1, b);
        const float* a_in = l == 0 ? x.data() : ws.act(l, b).data();
        if (layer.trainable) {
            weight_gradients(layer, l, dz, a_in, ws, grad, context ? context->deferred : nullptr);
            if (context && layer.contractive > 0.0f) add_contractive_dw(layer, *context, params, ws.scratch(), grad);
        }
        if (l == stop) break;  // no layer below needs a gradient
        MutMatrixMap da = ws.delta(layer.n_in, b);
        if (SharedPackedA* w = shared_product(context ? context->weights : nullptr, l, /*forward=*/false)) {
            gemm_shared_a(*w, false, int(b), dz.data(), layer.n_out, 0.0f, da.data(), layer.n_in, ws.gemm());
        } else if (layer.tied_to >= 0) {  // (W_k^T)^T dZ = W_k dZ
            gemm(false, false, layer.n_in, int(b), layer.n_out, 1.0f, params + layer.offset, layer.n_in, dz.data(),
                 layer.n_out, 0.0f, da.data(), layer.n_in, ws.gemm());
        } else {
            gemm(true, false, layer.n_in, int(b), layer.n_out, 1.0f, params + layer.offset, layer.n_out, dz.data(),
                 layer.n_out, 0.0f, da.data(), layer.n_in, ws.gemm());
        }
        // dZ_{l-1} = (dA + the activity terms' gradient) * M * f', written over A_l, which nothing
        // needs any more.
        const DenseLayer& below = net.layer(l - 1);
        MutMatrixMap a_below = ws.act(l, b);
        const Eigen::Index count = Eigen::Index(layer.n_in) * b;
        if (below.gaussian) {  // dObjective/d(mu, logvar) over the code layer's Z (vae.h)
            code_kl = gaussian_backward(ws.z(l), context ? ws.mask(l) : nullptr, da.data(), ws.z(l), layer.n_in, b,
                                        scale, beta);
            continue;
        }
        if (context && (below.activity_l1 > 0.0f || below.sparsity_weight > 0.0f)) {
            const double value = add_activity_terms(below, l - 1, *context, a_below.data(), da.data(), b);
            if (context->term_value) *context->term_value += value;
        }
        if (context && below.dropout > 0.0f) {
            Eigen::Map<Eigen::ArrayXf>(da.data(), count) *= Eigen::Map<const Eigen::ArrayXf>(ws.mask(l), count);
        }
        activation_backward(below.activation, da.data(), a_below.data(), below.keeps_z ? ws.z(l) : nullptr, count);
        if (context && below.contractive > 0.0f) {  // the first layer's, on dZ_0 (its factors kept in scratch)
            const double value = add_contractive_dz(below, *context, below.keeps_z ? ws.z(l) : a_below.data(),
                                                    below.keeps_z, params, da.data(), b, ws.scratch());
            if (context->term_value) *context->term_value += value;
        }
        a_below = da;
    }
    if (context && context->code_kl) *context->code_kl += code_kl;
    return loss + beta * code_kl;
}

double loss_batch(const Network& net, const float* params, ConstMatrixMap x, ConstMatrixMap y, const float* weight,
                  Workspace& ws, float* sample_loss, bool* first_products_finite) {
    const int n_layers = net.n_layers();
    const Eigen::Index b = x.cols();
    forward_batch(net, params, x, 0, n_layers, ws, /*activate_output=*/false, /*keep_z=*/false, nullptr,
                  first_products_finite);
    const double loss = head_pass(net.head(), net.output_activation(), ws.act(n_layers, b), y,
                                  ColumnScale{0.0f, weight}, /*want_grad=*/false, sample_loss, ws.scratch(),
                                  net.variational());
    if (!net.variational()) return loss;
    // A variational network's loss adds beta * KL per sample (its code's mean and log-variance).
    const DenseLayer& code = net.layer(net.n_encoder_layers() - 1);
    const Eigen::Index k = code.out_width();
    const float* z = ws.z(net.n_encoder_layers());
    const double beta = net.spec().variational.beta;
    double terms = 0.0;
    for (Eigen::Index j = 0; j < b; ++j) {
        const double kl = sample_kl(z + j * 2 * k, z + j * 2 * k + k, k);
        terms += (weight ? double(weight[j]) : 1.0) * kl;
        if (sample_loss) sample_loss[j] = float(double(sample_loss[j]) + beta * kl);
    }
    return loss + beta * terms;
}

void elbo_terms_batch(const Network& net, const float* params, ConstMatrixMap x, const StepContext& draws,
                      Workspace& ws, float* reconstruction, float* kl, bool* first_products_finite) {
    const int n_layers = net.n_layers();
    const Eigen::Index b = x.cols();
    forward_batch(net, params, x, 0, n_layers, ws, /*activate_output=*/false, /*keep_z=*/false, &draws,
                  first_products_finite);
    head_pass(net.head(), net.output_activation(), ws.act(n_layers, b), x, ColumnScale{0.0f, nullptr},
              /*want_grad=*/false, reconstruction, ws.scratch(), /*sum_outputs=*/true);
    const Eigen::Index k = net.layer(net.n_encoder_layers() - 1).out_width();
    const float* z = ws.z(net.n_encoder_layers());
    for (Eigen::Index j = 0; j < b; ++j) kl[j] = float(sample_kl(z + j * 2 * k, z + j * 2 * k + k, k));
}

}  // namespace fastae::detail
