// network.cpp -- dense forward/backward over a batch (network.h), next to their naive twins.
#include "network.h"

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "activation.h"
#include "loss.h"

namespace fastae::detail {

namespace {

// Largest total parameter count accepted: keeps every index inside 32-bit Eigen-friendly and
// size_t arithmetic and far beyond any dense network a CPU trains.
constexpr std::size_t kMaxParams = std::size_t(1) << 32;

// z (n_out, b) holds W a; adds the bias and applies f in one sweep.
void bias_activation(Activation act, MutMatrixMap z, const ConstVectorMap& bias) {
    auto zb = z.array().colwise() + bias.array();
    switch (act) {
        case Activation::linear: z.array() = zb; break;
        case Activation::relu: z.array() = zb.max(0.0f); break;
        case Activation::sigmoid: z.array() = zb.logistic(); break;
        case Activation::tanh: z.array() = zb.tanh(); break;
    }
}

}  // namespace

Network::Network(const NetworkConfig& config) : config_(config) {
    const auto& sizes = config.layer_sizes;
    if (sizes.size() < 2) {
        throw std::invalid_argument("layer_sizes must hold at least 2 widths (input and output), got " +
                                    std::to_string(sizes.size()));
    }
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        if (sizes[i] < 1) {
            throw std::invalid_argument("layer_sizes[" + std::to_string(i) +
                                        "] must be >= 1, got " + std::to_string(sizes[i]));
        }
    }
    if (config.loss == Loss::bce && config.output_activation != Activation::sigmoid) {
        throw std::invalid_argument(std::string("loss 'bce' needs output_activation 'sigmoid', got '") +
                                    name_of(config.output_activation) + "'");
    }
    std::size_t offset = 0;
    for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
        DenseLayer layer;
        layer.n_in = sizes[i];
        layer.n_out = sizes[i + 1];
        layer.offset = offset;
        const std::size_t count = std::size_t(layer.n_in) * std::size_t(layer.n_out) + layer.n_out;
        if (count > kMaxParams || offset + count > kMaxParams) {
            throw std::invalid_argument("layer_sizes give more than 2^32 parameters");
        }
        offset += count;
        layers_.push_back(layer);
    }
    n_params_ = offset;
    max_width_ = *std::max_element(sizes.begin(), sizes.end());
}

Workspace::Workspace(const Network& net, std::size_t capacity) : capacity_(capacity) {
    const int n = net.n_layers();
    net_widths_.resize(std::size_t(n) + 1);
    act_.resize(std::size_t(n) + 1);
    for (int l = 0; l <= n; ++l) {
        net_widths_[std::size_t(l)] = net.width(l);
        if (l > 0) act_[std::size_t(l)].assign(std::size_t(net.width(l)) * capacity, 0.0f);
    }
    delta_.assign(std::size_t(net.max_width()) * capacity, 0.0f);
    // Batches past 4096 samples (loss_and_gradient of a whole dataset) use the dense products:
    // the lists would cost 0.4 x their float size again.
    sparse_ = SparseInput(net.width(0), std::min<std::size_t>(capacity, 4096));
    const int widest = std::max(net.max_width(), int(std::min<std::size_t>(capacity, std::size_t(INT32_MAX))));
    gemm_.reserve(widest, widest, widest);
    scratch_ = Eigen::VectorXf::Zero(3 * Eigen::Index(net.max_width()));
}

void forward_batch(const Network& net, const float* params, ConstMatrixMap in, int first,
                   int last, Workspace& ws, bool activate_output, bool* first_products_finite) {
    const Eigen::Index b = in.cols();
    for (int l = first; l < last; ++l) {
        const DenseLayer& layer = net.layers()[std::size_t(l)];
        ConstVectorMap bias(params + layer.offset + std::size_t(layer.n_in) * layer.n_out, layer.n_out);
        MutMatrixMap z = ws.act(l + 1, b);
        const float* a_in = l == first ? in.data() : ws.act(l, b).data();
        // The network's input may be mostly zeros (images, counts): then only its nonzeros are
        // multiplied, and the list is kept for the weight gradient (loss_gradient_batch).
        if (l == 0 && ws.sparse().compress(a_in, layer.n_in, int(b))) {
            ws.sparse().forward(params + layer.offset, layer.n_out, z.data());
        } else {
            gemm(false, false, layer.n_out, int(b), layer.n_in, 1.0f, params + layer.offset, layer.n_out, a_in,
                 layer.n_in, 0.0f, z.data(), layer.n_out, ws.gemm());
        }
        if (l == first && first_products_finite) *first_products_finite = z.allFinite();
        const bool is_output = l + 1 == net.n_layers();
        bias_activation(is_output && !activate_output ? Activation::linear : net.activation_of(l),
                        z, bias);
    }
}

double loss_gradient_batch(const Network& net, const float* params, ConstMatrixMap x,
                           ConstMatrixMap y, float grad_scale, Workspace& ws, float* grad) {
    const int n_layers = net.n_layers();
    const Eigen::Index b = x.cols();
    const NetworkConfig& cfg = net.config();
    forward_batch(net, params, x, 0, n_layers, ws, /*activate_output=*/false);
    // The output pass turns the logits into dL/dZ in place.
    const double loss = output_pass(cfg.loss, cfg.output_activation, ws.act(n_layers, b), y,
                                    grad_scale, /*want_grad=*/true, nullptr, ws.scratch());
    for (int l = n_layers - 1; l >= 0; --l) {
        const DenseLayer& layer = net.layers()[std::size_t(l)];
        MutMatrixMap dz = ws.act(l + 1, b);
        MutMatrixMap gw(grad + layer.offset, layer.n_out, layer.n_in);
        VectorMap gb(grad + layer.offset + std::size_t(layer.n_in) * layer.n_out, layer.n_out);
        // db = sum of dZ's columns, added in column order: Eigen's rowwise().sum() rounds
        // differently with the buffer's address, which would break seed determinism.
        gb = dz.col(0);
        for (Eigen::Index j = 1; j < b; ++j) gb += dz.col(j);
        if (l == 0) {
            if (ws.sparse().active()) {  // set by this batch's forward pass
                ws.sparse().weight_gradient(dz.data(), layer.n_out, gw.data());
            } else {
                gemm(false, true, layer.n_out, layer.n_in, int(b), 1.0f, dz.data(), layer.n_out, x.data(), layer.n_in,
                     0.0f, gw.data(), layer.n_out, ws.gemm());
            }
            break;
        }
        MutMatrixMap a_in = ws.act(l, b);
        gemm(false, true, layer.n_out, layer.n_in, int(b), 1.0f, dz.data(), layer.n_out, a_in.data(), layer.n_in,
             0.0f, gw.data(), layer.n_out, ws.gemm());
        MutMatrixMap da = ws.delta(layer.n_in, b);
        gemm(true, false, layer.n_in, int(b), layer.n_out, 1.0f, params + layer.offset, layer.n_out, dz.data(),
             layer.n_out, 0.0f, da.data(), layer.n_in, ws.gemm());
        // dZ_{l-1} = dA * f'(A_l), written over A_l, which nothing needs any more.
        activation_backward(net.activation_of(l - 1), da, a_in);
        a_in = da;
    }
    return loss;
}

double loss_batch(const Network& net, const float* params, ConstMatrixMap x, ConstMatrixMap y,
                  Workspace& ws, float* sample_loss, bool* first_products_finite) {
    const int n_layers = net.n_layers();
    const Eigen::Index b = x.cols();
    const NetworkConfig& cfg = net.config();
    forward_batch(net, params, x, 0, n_layers, ws, /*activate_output=*/false, first_products_finite);
    return output_pass(cfg.loss, cfg.output_activation, ws.act(n_layers, b), y, 0.0f,
                       /*want_grad=*/false, sample_loss, ws.scratch());
}

// ---- naive twins ---------------------------------------------------------------------------

namespace {

// All layers' outputs for one sample, in double; acts[l] is the input of layer l, and the last
// entry holds the output logits (pre-activation).
void forward_sample_naive(const Network& net, const double* p, const double* x,
                          std::vector<std::vector<double>>& acts) {
    const int n_layers = net.n_layers();
    acts.assign(std::size_t(n_layers) + 1, {});
    acts[0].assign(x, x + net.width(0));
    for (int l = 0; l < n_layers; ++l) {
        const DenseLayer& L = net.layers()[std::size_t(l)];
        std::vector<double>& out = acts[std::size_t(l) + 1];
        out.assign(std::size_t(L.n_out), 0.0);
        for (int o = 0; o < L.n_out; ++o) {
            double z = p[L.offset + std::size_t(L.n_in) * L.n_out + std::size_t(o)];
            for (int i = 0; i < L.n_in; ++i) {
                z += p[L.offset + std::size_t(i) * L.n_out + std::size_t(o)] * acts[std::size_t(l)][std::size_t(i)];
            }
            out[std::size_t(o)] = l + 1 == n_layers ? z : activation_naive(net.activation_of(l), z);
        }
    }
}

}  // namespace

void forward_naive(const Network& net, const double* params, std::size_t n, const double* x,
                   double* out) {
    std::vector<std::vector<double>> acts;
    const int d_in = net.width(0), d_out = net.width(net.n_layers());
    for (std::size_t s = 0; s < n; ++s) {
        forward_sample_naive(net, params, x + s * std::size_t(d_in), acts);
        for (int o = 0; o < d_out; ++o) {
            out[s * std::size_t(d_out) + std::size_t(o)] =
                activation_naive(net.config().output_activation, acts.back()[std::size_t(o)]);
        }
    }
}

double loss_gradient_naive(const Network& net, const double* p, std::size_t n, const double* x,
                           const double* y, double* grad) {
    const int n_layers = net.n_layers();
    const int d_in = net.width(0), d_out = net.width(n_layers);
    const double scale = 1.0 / (double(n) * d_out);
    std::fill(grad, grad + net.n_params(), 0.0);
    std::vector<std::vector<double>> acts;
    double total = 0;
    for (std::size_t s = 0; s < n; ++s) {
        forward_sample_naive(net, p, x + s * std::size_t(d_in), acts);
        std::vector<double> dz(std::size_t(d_out), 0.0);
        for (int o = 0; o < d_out; ++o) {
            double l, g;
            loss_naive(net.config().loss, net.config().output_activation, acts.back()[std::size_t(o)],
                       y[s * std::size_t(d_out) + std::size_t(o)], &l, &g);
            total += l;
            dz[std::size_t(o)] = g * scale;
        }
        for (int l = n_layers - 1; l >= 0; --l) {
            const DenseLayer& L = net.layers()[std::size_t(l)];
            const std::vector<double>& a_in = acts[std::size_t(l)];
            std::vector<double> da(std::size_t(L.n_in), 0.0);
            for (int o = 0; o < L.n_out; ++o) {
                grad[L.offset + std::size_t(L.n_in) * L.n_out + std::size_t(o)] += dz[std::size_t(o)];
                for (int i = 0; i < L.n_in; ++i) {
                    const std::size_t wi = L.offset + std::size_t(i) * L.n_out + std::size_t(o);
                    grad[wi] += dz[std::size_t(o)] * a_in[std::size_t(i)];
                    da[std::size_t(i)] += p[wi] * dz[std::size_t(o)];
                }
            }
            if (l == 0) break;
            for (int i = 0; i < L.n_in; ++i) {
                da[std::size_t(i)] *= activation_derivative_naive(net.activation_of(l - 1), a_in[std::size_t(i)]);
            }
            dz.swap(da);
        }
    }
    return total / (double(n) * d_out);
}

}  // namespace fastae::detail
