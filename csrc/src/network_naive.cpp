// network_naive.cpp -- the naive twins of network.cpp's passes (network.h): forward and loss
// gradient in double with plain loops, one sample at a time.
#include "network.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "activation.h"
#include "head.h"
#include "rng.h"
#include "vae.h"

namespace fastae::detail {

namespace {

// A Gaussian code layer's eps for one sample, in double (the draws of the fast pass).
std::vector<double> code_noise_naive(const StepContext& training, std::size_t row, int k) {
    std::vector<float> eps(static_cast<std::size_t>(k));
    code_noise(training.seed, training.epoch, row, eps.data(), k);
    return std::vector<double>(eps.begin(), eps.end());
}

// Where the weight from input i to output o of layer L lies in the flat buffer (a tied layer's
// is its mirror's weight from input o to output i).
std::size_t weight_index(const DenseLayer& L, int i, int o) {
    return L.tied_to >= 0 ? L.offset + std::size_t(o) * std::size_t(L.n_in) + std::size_t(i)
                          : L.offset + std::size_t(i) * std::size_t(L.n_out) + std::size_t(o);
}

// All layers' values for one sample, in double: acts[l] is the input of layer l (masked by
// dropout when training), zs[l] the pre-activation of layer l; acts.back() holds the output
// logits.
void forward_sample_naive(const Network& net, const double* p, const double* x, const StepContext* training,
                          std::size_t row, std::vector<std::vector<double>>& acts,
                          std::vector<std::vector<double>>& zs) {
    const int n_layers = net.n_layers();
    acts.assign(std::size_t(n_layers) + 1, {});
    zs.assign(std::size_t(n_layers), {});
    acts[0].assign(x, x + net.width(0));
    for (int l = 0; l < n_layers; ++l) {
        const DenseLayer& L = net.layer(l);
        std::vector<double>& z = zs[std::size_t(l)];
        std::vector<double>& out = acts[std::size_t(l) + 1];
        z.assign(std::size_t(L.n_out), 0.0);
        out.assign(std::size_t(L.n_out), 0.0);
        for (int o = 0; o < L.n_out; ++o) {
            double v = p[L.bias_offset() + std::size_t(o)];
            for (int i = 0; i < L.n_in; ++i) {
                v += p[weight_index(L, i, o)] * acts[std::size_t(l)][std::size_t(i)];
            }
            z[std::size_t(o)] = v;
            if (l + 1 == n_layers) {
                out[std::size_t(o)] = v;
                continue;
            }
            double a = activation_naive(L.activation, v);
            if (training && L.dropout > 0.0f) {
                a *= dropout_mask(training->seed, training->epoch, row, l, o, L.dropout);
            }
            out[std::size_t(o)] = a;
        }
        if (L.gaussian) {  // the code the decoder reads: z = mu + exp(v / 2) eps, or mu (vae.h)
            const int k = L.out_width();
            const std::vector<double> eps = training ? code_noise_naive(*training, row, k) : std::vector<double>();
            out.assign(std::size_t(k), 0.0);
            gaussian_forward_naive(z.data(), training ? eps.data() : nullptr, out.data(), k);
        }
    }
}

// The contractive penalty of the first layer L for one sample of pre-activations z, in double:
// lambda / n * sum_j f'(z_j)^2 sum_i W_ji^2, computed from the explicit derivatives (f' from z,
// f'' by the chain rule); its gradient with respect to z is added to dz, and with respect to W
// (through sum_i W_ji^2) to grad. Returns the value.
double contractive_naive(const DenseLayer& L, const double* p, const std::vector<double>& z, double n,
                         std::vector<double>& dz, double* grad) {
    const double lambda = L.contractive / n;
    double value = 0.0;
    for (int o = 0; o < L.n_out; ++o) {
        double s = 0.0;
        for (int i = 0; i < L.n_in; ++i) s += p[weight_index(L, i, o)] * p[weight_index(L, i, o)];
        const double zo = z[std::size_t(o)];
        double g = 0.0, dg = 0.0;  // f'(z), f''(z)
        if (L.activation.kind == Activation::sigmoid) {
            const double h = 1.0 / (1.0 + std::exp(-zo));
            g = h * (1.0 - h);
            dg = g * (1.0 - 2.0 * h);
        } else {
            const double h = std::tanh(zo);
            g = 1.0 - h * h;
            dg = -2.0 * h * g;
        }
        value += lambda * g * g * s;
        dz[std::size_t(o)] += lambda * 2.0 * g * dg * s;
        for (int i = 0; i < L.n_in; ++i) grad[weight_index(L, i, o)] += lambda * g * g * 2.0 * p[weight_index(L, i, o)];
    }
    return value;
}

}  // namespace

void forward_naive(const Network& net, const double* params, std::size_t n, const double* x, double* out) {
    std::vector<std::vector<double>> acts, zs;
    const int d_in = net.width(0), d_out = net.width(net.n_layers());
    for (std::size_t s = 0; s < n; ++s) {
        forward_sample_naive(net, params, x + s * std::size_t(d_in), nullptr, s, acts, zs);
        double* o = out + s * std::size_t(d_out);
        const std::vector<double>& logits = acts.back();
        if (net.output_activation().kind == Activation::softmax) {
            const double m = *std::max_element(logits.begin(), logits.end());
            double sum = 0.0;
            for (double v : logits) sum += std::exp(v - m);
            for (int k = 0; k < d_out; ++k) o[k] = std::exp(logits[std::size_t(k)] - m) / sum;
        } else {
            for (int k = 0; k < d_out; ++k) o[k] = activation_naive(net.output_activation(), logits[std::size_t(k)]);
        }
    }
}

double loss_gradient_naive(const Network& net, const double* p, std::size_t n, const double* x, const double* y,
                           const double* weight, const StepContext* training, double* grad) {
    const int n_layers = net.n_layers();
    const int d_in = net.width(0), d_out = net.width(n_layers);
    const double normaliser = batch_normaliser(net, double(n));
    const double beta = kl_weight(net.spec().variational, training ? training->epoch : 0);
    std::fill(grad, grad + net.n_params(), 0.0);
    // Every sample's forward pass first: the sparsity KL needs the batch's mean outputs.
    std::vector<std::vector<std::vector<double>>> acts(n), zs(n);
    std::vector<double> noisy(static_cast<std::size_t>(d_in));
    const DenseLayer& first = net.layer(0);
    for (std::size_t s = 0; s < n; ++s) {
        const std::size_t row = training ? training->row(Eigen::Index(s)) : s;
        const double* xs = x + s * std::size_t(d_in);
        if (training && first.noise != Noise::none) {
            std::vector<float> in(xs, xs + d_in), out(static_cast<std::size_t>(d_in));
            input_noise(first.noise, first.noise_level, *training, row, in.data(), out.data(), d_in);
            noisy.assign(out.begin(), out.end());
            xs = noisy.data();
        }
        forward_sample_naive(net, p, xs, training, row, acts[s], zs[s]);
    }
    std::vector<std::vector<double>> means(std::size_t(n_layers) + 1);
    double total = 0, terms = 0;
    for (int l = 0; training && l + 1 < n_layers; ++l) {
        const DenseLayer& L = net.layer(l);
        std::vector<double>& m = means[std::size_t(l) + 1];
        m.assign(std::size_t(L.out_width()), 0.0);
        for (std::size_t s = 0; s < n; ++s) {
            for (int o = 0; o < L.out_width(); ++o) {
                const double h = acts[s][std::size_t(l) + 1][std::size_t(o)];
                m[std::size_t(o)] += h / double(n);
                terms += L.activity_l1 * std::abs(h) / double(n);
            }
        }
        if (L.sparsity_weight > 0.0f) {
            const double rho = L.sparsity_target;
            for (double q : m) terms += L.sparsity_weight * (rho * std::log(rho / q) + (1 - rho) * std::log((1 - rho) / (1 - q)));
        }
    }
    for (std::size_t s = 0; s < n; ++s) {
        const double w = weight ? weight[s] : 1.0;
        std::vector<double> dz(std::size_t(d_out), 0.0);
        total += w * head_naive(net.head(), net.output_activation(), acts[s].back().data(),
                                y + s * std::size_t(d_out), d_out, dz.data());
        for (double& g : dz) g *= w / normaliser;
        for (int l = n_layers - 1; l >= 0; --l) {
            const DenseLayer& L = net.layer(l);
            const std::vector<double>& a_in = acts[s][std::size_t(l)];
            std::vector<double> da(std::size_t(L.n_in), 0.0);
            if (training && L.contractive > 0.0f) terms += contractive_naive(L, p, zs[s][0], double(n), dz, grad);
            for (int o = 0; o < L.n_out; ++o) {
                grad[L.bias_offset() + std::size_t(o)] += dz[std::size_t(o)];
                for (int i = 0; i < L.n_in; ++i) {
                    const std::size_t wi = weight_index(L, i, o);
                    grad[wi] += dz[std::size_t(o)] * a_in[std::size_t(i)];
                    da[std::size_t(i)] += p[wi] * dz[std::size_t(o)];
                }
            }
            if (l == 0) break;
            const DenseLayer& below = net.layer(l - 1);
            const std::size_t row = training ? training->row(Eigen::Index(s)) : s;
            if (below.gaussian) {  // dz over (mu, logvar), and the sample's beta * KL (vae.h)
                const std::vector<double> eps = training ? code_noise_naive(*training, row, L.n_in) : std::vector<double>();
                std::vector<double> dcode(std::size_t(below.n_out), 0.0);
                const double kl = gaussian_backward_naive(zs[s][std::size_t(l) - 1].data(), training ? eps.data() : nullptr,
                                                          da.data(), w * beta / normaliser, dcode.data(), L.n_in);
                total += w * beta * kl;
                dz.swap(dcode);
                continue;
            }
            for (int i = 0; i < L.n_in; ++i) {
                const double h = a_in[std::size_t(i)];
                if (training) {  // the activity terms' gradient, on the layer's output
                    da[std::size_t(i)] += below.activity_l1 * double((h > 0) - (h < 0)) / double(n);
                    if (below.sparsity_weight > 0.0f) {
                        const double q = means[std::size_t(l)][std::size_t(i)], rho = below.sparsity_target;
                        da[std::size_t(i)] += below.sparsity_weight * (-rho / q + (1 - rho) / (1 - q)) / double(n);
                    }
                }
                double m = 1.0;
                if (training && below.dropout > 0.0f) {
                    m = dropout_mask(training->seed, training->epoch, row, l - 1, i, below.dropout);
                }
                da[std::size_t(i)] *= m * activation_derivative_naive(below.activation, zs[s][std::size_t(l) - 1][std::size_t(i)]);
            }
            dz.swap(da);
        }
    }
    return total / normaliser + terms;
}

}  // namespace fastae::detail
