// test_kernels.cpp -- the activations and whole networks against their naive twins, and every
// naive twin against a check of its own: the activations (reference values, and float64
// central differences of activation_naive for activation_derivative_naive), the forward pass and
// the loss gradient of whole networks that mix activations, sample weights, sparse inputs and
// dropout, and the keyed dropout masks. The output head is tested in test_head.cpp, the sparse
// input products in test_sparse_input.cpp. Every list of names comes from the vocabulary
// (all_activations(), all_losses() and their traits).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "activation.h"
#include "check.h"
#include "gemm.h"
#include "head.h"
#include "network.h"
#include "rng.h"
#include "sparse_input.h"
#include "test_data.h"

using namespace fastae;
using namespace fastae::detail;
using fastae_test::Head;
using fastae_test::Hidden;
using fastae_test::random_vector;
using fastae_test::test_activation;

namespace {

std::string label(const ActivationSpec& act) {
    return std::string(name_of(act.kind)) + "(alpha " + std::to_string(act.alpha) + ")";
}

// The activation specs each elementwise test runs: the default parameter and the test's own.
std::vector<ActivationSpec> specs_of(Activation kind) {
    std::vector<ActivationSpec> specs = {activation_spec(kind)};
    if (test_activation(kind).alpha != specs[0].alpha) specs.push_back(test_activation(kind));
    return specs;
}

}  // namespace

// ---- activations ----------------------------------------------------------------------------

TEST(activation_forward_and_backward_match_naive) {
    const int n = 37 * 5;  // not a multiple of any vector width
    for (Activation kind : all_activations()) {
        if (traits_of(kind).output_only) {  // softmax: a column pass (softmax_columns below)
            std::vector<float> z(8, 0.5f), a(8);
            CHECK_THROWS(activation_forward(activation_spec(kind), z.data(), a.data(), 8), std::logic_error);
            CHECK_THROWS(activation_naive(activation_spec(kind), 0.5), std::logic_error);
            continue;
        }
        for (const ActivationSpec& act : specs_of(kind)) {
            // Aligned buffers (as the engine's): Eigen peels a loop's first elements by address,
            // and a peeled element takes the scalar path, which can round differently.
            const auto zr = random_vector(n, -6.0f, 6.0f, 1);
            AlignedFloats z(zr.begin(), zr.end());
            z[0] = 0.0f;  // the derivative's value at 0 (PyTorch's)
            z[1] = 1e-3f;
            z[2] = -1e-3f;
            z[3] = 20.0f;
            z[4] = -20.0f;
            const auto d = random_vector(n, -1.0f, 1.0f, 2);
            AlignedFloats a(n);
            activation_forward(act, z.data(), a.data(), n);
            AlignedFloats in_place = z;
            activation_forward(act, in_place.data(), in_place.data(), n);
            CHECK_IN(in_place == a, label(act));
            auto from_z = d;
            activation_backward(act, from_z.data(), nullptr, z.data(), n);
            auto from_a = d;
            if (traits_of(kind).needs_preactivation) {
                CHECK_THROWS(activation_backward(act, from_a.data(), a.data(), nullptr, n), std::logic_error);
            } else {
                activation_backward(act, from_a.data(), a.data(), nullptr, n);
            }
            for (int i = 0; i < n; ++i) {
                const double want_a = activation_naive(act, z[std::size_t(i)]);
                CHECK_IN(std::fabs(a[std::size_t(i)] - want_a) <= 1e-6 * (1 + std::fabs(want_a)), label(act));
                const double want_g = d[std::size_t(i)] * activation_derivative_naive(act, z[std::size_t(i)]);
                CHECK_IN(std::fabs(from_z[std::size_t(i)] - want_g) <= 2e-6 * (1 + std::fabs(want_g)), label(act));
                if (!traits_of(kind).needs_preactivation) {
                    CHECK_IN(std::fabs(from_a[std::size_t(i)] - want_g) <= 2e-6 * (1 + std::fabs(want_g)), label(act));
                }
            }
        }
    }
}

// Values of f and f' (PyTorch's at 0) computed independently of the code (mpmath, 40 digits),
// with leaky_relu's slope 0.2 and elu's alpha 0.7 (test_activation). A switch with no default:
// a new activation does not compile until it has reference values here.
struct Reference {
    double z, f, df;
};
std::vector<Reference> reference_values(Activation kind) {
    switch (kind) {
        case Activation::linear: return {{-1.5, -1.5, 1.0}, {0.0, 0.0, 1.0}, {0.5, 0.5, 1.0}, {2.0, 2.0, 1.0}};
        case Activation::relu: return {{-1.5, 0.0, 0.0}, {0.0, 0.0, 0.0}, {0.5, 0.5, 1.0}, {2.0, 2.0, 1.0}};
        case Activation::sigmoid:
            return {{-1.5, 0.18242552380635634, 0.14914645207033286}, {0.0, 0.5, 0.25},
                    {0.5, 0.62245933120185456, 0.23500371220159449}, {2.0, 0.88079707797788244, 0.10499358540350652}};
        case Activation::tanh:
            return {{-1.5, -0.90514825364486644, 0.18070663892364853}, {0.0, 0.0, 1.0},
                    {0.5, 0.46211715726000976, 0.78644773296592741}, {2.0, 0.96402758007581688, 0.070650824853164466}};
        case Activation::leaky_relu: return {{-1.5, -0.3, 0.2}, {0.0, 0.0, 0.2}, {0.5, 0.5, 1.0}, {2.0, 2.0, 1.0}};
        case Activation::elu:
            return {{-1.5, -0.54380888789609912, 0.15619111210390088}, {0.0, 0.0, 0.7}, {0.5, 0.5, 1.0}, {2.0, 2.0, 1.0}};
        case Activation::gelu:
            return {{-1.5, -0.1002108019032871, -0.12746919222997953}, {0.0, 0.0, 0.5},
                    {0.5, 0.34573123063700655, 0.86749512465616284}, {2.0, 1.9544997361036416, 1.0852318010781969}};
        case Activation::softplus:
            return {{-1.5, 0.20141327798275241, 0.18242552380635634}, {0.0, 0.69314718055994531, 0.5},
                    {0.5, 0.97407698418010668, 0.62245933120185456}, {2.0, 2.1269280110429725, 0.88079707797788244}};
        case Activation::softmax: return {};  // not elementwise
    }
    return {};
}

TEST(naive_activations_match_reference_values) {
    for (Activation kind : all_activations()) {
        if (traits_of(kind).output_only) continue;
        const ActivationSpec act = test_activation(kind);
        const std::vector<Reference> refs = reference_values(kind);
        CHECK_IN(!refs.empty(), label(act));
        for (const Reference& r : refs) {
            CHECK_IN(std::fabs(activation_naive(act, r.z) - r.f) <= 1e-15 * (1 + std::fabs(r.f)), label(act));
            CHECK_IN(std::fabs(activation_derivative_naive(act, r.z) - r.df) <= 1e-15 * (1 + std::fabs(r.df)), label(act));
            // The fast kernels at the same point (from z, and from a where they can), over one
            // vector's worth of copies.
            std::vector<float> z(8, float(r.z)), a(8), g(8, 1.0f), ga(8, 1.0f);
            activation_forward(act, z.data(), a.data(), 8);
            activation_backward(act, g.data(), nullptr, z.data(), 8);
            CHECK_IN(std::fabs(a[0] - r.f) <= 1e-6 * (1 + std::fabs(r.f)), label(act));
            CHECK_IN(std::fabs(g[0] - r.df) <= 1e-6 * (1 + std::fabs(r.df)), label(act));
            if (!traits_of(kind).needs_preactivation) {
                activation_backward(act, ga.data(), a.data(), nullptr, 8);
                CHECK_IN(std::fabs(ga[0] - r.df) <= 1e-6 * (1 + std::fabs(r.df)), label(act));
            }
        }
    }
}

// The independent check of activation_derivative_naive: central differences of
// activation_naive in float64, away from the kinks at 0 (relu, leaky_relu, elu).
TEST(naive_activation_derivatives_match_finite_differences) {
    const double h = 1e-5;
    for (Activation kind : all_activations()) {
        if (traits_of(kind).output_only) continue;
        for (const ActivationSpec& act : specs_of(kind)) {
            for (double z = -7.0; z <= 7.0; z += 0.173) {
                for (double at : {z, z * 1e-2}) {  // also near 0, on both sides
                    if (std::fabs(at) < 10 * h) continue;
                    const double fd = (activation_naive(act, at + h) - activation_naive(act, at - h)) / (2 * h);
                    const double want = activation_derivative_naive(act, at);
                    CHECK_IN(std::fabs(fd - want) <= 1e-8 * (1 + std::fabs(want)), label(act) + " at " + std::to_string(at));
                }
            }
        }
    }
}

// ---- whole networks -------------------------------------------------------------------------

namespace {

// Hidden layers for the network tests: the brief's mix (gelu, elu alpha 0.7, leaky_relu slope
// 0.2, softplus, tanh), then the vocabulary's hidden activations three at a time, so that each
// sits on a hidden layer between two others.
std::vector<std::vector<Hidden>> mixed_hidden_layers() {
    std::vector<std::vector<Hidden>> nets;
    nets.push_back({{7, test_activation(Activation::gelu)},
                    {5, test_activation(Activation::elu)},
                    {3, test_activation(Activation::leaky_relu)},
                    {5, test_activation(Activation::softplus)},
                    {7, test_activation(Activation::tanh)}});
    const std::vector<Activation> hidden = fastae_test::hidden_activations();
    const int widths[3] = {9, 4, 8};
    for (std::size_t k = 0; k < hidden.size(); k += 3) {
        std::vector<Hidden> layers;
        for (std::size_t i = 0; i < 3; ++i) {
            layers.push_back({widths[i], test_activation(hidden[(k + i) % hidden.size()])});
        }
        nets.push_back(layers);
    }
    return nets;
}

std::string describe(const NetworkSpec& spec) {
    std::string s;
    for (const LayerSpec& l : spec.layers) {
        s += std::string(name_of(l.activation.kind)) + (l.dropout > 0 ? "+dropout" : "") + " ";
    }
    return s + "/ " + name_of(spec.head.loss);
}

}  // namespace

// forward_batch and loss_gradient_batch against forward_naive and loss_gradient_naive: networks
// mixing activations per layer, every valid head, with and without sample weights, dense and
// sparse inputs, and dropout with a step context whose rows are not 0..n-1 (the naive twin
// draws the same masks from the same context).
TEST(forward_and_gradient_match_naive) {
    const int d_in = 13, d_out = 6;
    const std::size_t n = 9;
    int cases = 0;
    std::vector<bool> hidden_seen(all_activations().size(), false);
    for (const std::vector<Hidden>& base : mixed_hidden_layers()) {
        for (const Hidden& h : base) hidden_seen[std::size_t(h.activation.kind)] = true;
        for (Head head : fastae_test::valid_heads()) {
            for (int variant = 0; variant < 8; ++variant) {
                const bool weighted = variant & 1, sparse = variant & 2, dropout = variant & 4;
                std::vector<Hidden> hidden = base;
                if (dropout) {  // on the first and third hidden layers
                    hidden[0].dropout = 0.3;
                    hidden[2].dropout = 0.5;
                }
                NetworkSpec spec = fastae_test::make_spec(d_in, hidden, d_out, head);
                spec.head.huber_delta = 0.7;
                Network net(spec);
                const std::string what = describe(spec) + (weighted ? ", weighted" : "") + (sparse ? ", sparse" : "");
                auto p = random_vector(net.n_params(), -0.6f, 0.6f, 5);
                auto x = random_vector(n * d_in, 0.0f, 1.0f, 6);
                if (sparse) {  // 3 nonzeros of 13 per sample: the first layer's sparse products run
                    for (std::size_t i = 0; i < x.size(); ++i) x[i] = (i * 7) % 13 < 3 ? x[i] : 0.0f;
                }
                auto y = fastae_test::targets_for<float>(head.loss, n, d_out, 7);
                auto w = random_vector(n, 0.0f, 2.0f, 8);
                w[3] = 0.0f;
                std::vector<double> pd(p.begin(), p.end()), xd(x.begin(), x.end()), yd(y.begin(), y.end()),
                    wd(w.begin(), w.end());
                const std::size_t rows[n] = {40, 3, 17, 1000003, 8, 9, 250, 11, 77};
                const StepContext context{12345, 3, rows, 0};

                Workspace ws(net, n);
                CHECK_IN(ws.sparse().compress(x.data(), d_in, int(n)) == sparse, what);
                // Inference: no dropout, the output activation applied.
                forward_batch(net, p.data(), ConstMatrixMap(x.data(), d_in, Eigen::Index(n)), 0, net.n_layers(), ws, true);
                std::vector<double> want(n * d_out);
                forward_naive(net, pd.data(), n, xd.data(), want.data());
                auto out = ws.act(net.n_layers(), Eigen::Index(n));
                for (std::size_t s = 0; s < n; ++s) {
                    for (int o = 0; o < d_out; ++o) {
                        const double v = want[s * d_out + std::size_t(o)];
                        CHECK_IN(std::fabs(out(o, Eigen::Index(s)) - v) <= 1e-5 * (1 + std::fabs(v)), what);
                    }
                }

                // Training: the loss sum and gradient of sum_j scale(j) * loss_j.
                std::vector<float> grad(net.n_params(), -1.0f);
                const float scale = float(1.0 / head_normaliser(head.loss, double(n), d_out));
                const double sum = loss_gradient_batch(net, p.data(), ConstMatrixMap(x.data(), d_in, Eigen::Index(n)),
                                                       ConstMatrixMap(y.data(), d_out, Eigen::Index(n)),
                                                       ColumnScale{scale, weighted ? w.data() : nullptr},
                                                       dropout ? &context : nullptr, ws, grad.data());
                std::vector<double> want_grad(net.n_params());
                const double want_loss = loss_gradient_naive(net, pd.data(), n, xd.data(), yd.data(),
                                                             weighted ? wd.data() : nullptr,
                                                             dropout ? &context : nullptr, want_grad.data());
                CHECK_IN(std::fabs(sum * scale - want_loss) <= 1e-5 * (1 + std::fabs(want_loss)), what);
                double max_ref = 0;
                const double max_err = fastae_test::max_abs_diff(grad, want_grad, &max_ref);
                CHECK_IN(max_ref > 0, what);
                CHECK_IN(max_err <= 1e-5 * (1 + max_ref), what + ": gradient error " + std::to_string(max_err));

                // The loss alone (validation: no dropout) against the naive loss without a context.
                std::vector<double> unused(net.n_params());
                const double want_plain = loss_gradient_naive(net, pd.data(), n, xd.data(), yd.data(),
                                                              weighted ? wd.data() : nullptr, nullptr, unused.data());
                std::vector<float> per_sample(n);
                const double plain = loss_batch(net, p.data(), ConstMatrixMap(x.data(), d_in, Eigen::Index(n)),
                                                ConstMatrixMap(y.data(), d_out, Eigen::Index(n)),
                                                weighted ? w.data() : nullptr, ws, per_sample.data());
                CHECK_IN(std::fabs(plain * scale - want_plain) <= 1e-5 * (1 + std::fabs(want_plain)), what);
                if (dropout) CHECK_IN(std::fabs(want_loss - want_plain) > 1e-6, what);  // the masks did something
                ++cases;
            }
        }
    }
    CHECK(cases > 0);
    for (Activation a : fastae_test::hidden_activations()) CHECK_IN(hidden_seen[std::size_t(a)], name_of(a));
}

// The keyed dropout masks: about p zeros, every other entry exactly 1 / (1 - p), a pure function
// of (seed, epoch, row, layer, unit), and different for a different epoch, row, layer or seed.
TEST(dropout_masks_have_the_rate_and_scale) {
    const int rows = 20000, units = 10;
    for (float p : {0.1f, 0.3f, 0.5f, 0.9f}) {
        long zeros = 0;
        double total = 0;
        bool values_ok = true;
        for (int r = 0; r < rows; ++r) {
            for (int u = 0; u < units; ++u) {
                const float m = dropout_mask(7, 2, std::uint64_t(r), 1, u, p);
                zeros += m == 0.0f;
                values_ok = values_ok && (m == 0.0f || m == 1.0f / (1.0f - p));
                total += m;
            }
        }
        const double count = double(rows) * units;
        CHECK(values_ok);
        // The rate within 5 standard deviations of sqrt(p (1 - p) / count) <= 0.0012.
        CHECK_NEAR(double(zeros) / count, p, 0.006);
        CHECK_NEAR(total / count, 1.0, 0.006 / (1.0 - p));  // inverted dropout keeps the mean
    }
    // A pure function of its key; each key part changes the mask.
    const float p = 0.5f;
    int same = 0, epoch = 0, row = 0, layer = 0, seed = 0;
    for (int u = 0; u < 4000; ++u) {
        const float m = dropout_mask(3, 1, 10, 0, u, p);
        same += m == dropout_mask(3, 1, 10, 0, u, p);
        epoch += m != dropout_mask(3, 2, 10, 0, u, p);
        row += m != dropout_mask(3, 1, 11, 0, u, p);
        layer += m != dropout_mask(3, 1, 10, 1, u, p);
        seed += m != dropout_mask(4, 1, 10, 0, u, p);
    }
    CHECK(same == 4000);
    for (int differ : {epoch, row, layer, seed}) CHECK(differ > 1700 && differ < 2300);  // about half
    // keyed_uniform lies in [0, 1) with mean 1/2.
    double sum = 0;
    bool in_range = true;
    for (std::uint64_t i = 0; i < 100000; ++i) {
        const double u = keyed_uniform(1, 2, i, 3);
        in_range = in_range && u >= 0.0 && u < 1.0;
        sum += u;
    }
    CHECK(in_range);
    CHECK_NEAR(sum / 100000, 0.5, 0.005);
}
