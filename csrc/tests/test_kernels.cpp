// test_kernels.cpp -- every fast kernel against its naive twin, and every naive twin against a
// check of its own: the activations (reference values, and float64 central differences of
// activation_naive for activation_derivative_naive), softmax, the output head for every valid
// (loss, output activation) pair (float64 central differences of head_naive's loss for its dz),
// the forward pass and the loss gradient of whole networks that mix activations, sample weights,
// sparse inputs and dropout, the keyed dropout masks, and the sparse input products. Every list
// of names comes from the vocabulary (all_activations(), all_losses() and their traits).
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
std::string label(Head h) { return std::string(name_of(h.loss)) + " on " + name_of(h.out); }

// Prints which case a failed check belongs to (the checks print only file and line).
#define CHECK_IN(cond, what)                                                                  \
    do {                                                                                      \
        if (!(cond)) fastae_test::fail(__FILE__, __LINE__, std::string(#cond) + " [" + (what) + "]"); \
    } while (0)

// The activation specs each elementwise test runs: the default parameter and the test's own.
std::vector<ActivationSpec> specs_of(Activation kind) {
    std::vector<ActivationSpec> specs = {activation_spec(kind)};
    if (test_activation(kind).alpha != specs[0].alpha) specs.push_back(test_activation(kind));
    return specs;
}

// Naive softmax of d values, in double.
void softmax_naive(const double* z, int d, double* out) {
    double m = z[0];
    for (int k = 1; k < d; ++k) m = std::max(m, z[k]);
    double sum = 0.0;
    for (int k = 0; k < d; ++k) sum += std::exp(z[k] - m);
    for (int k = 0; k < d; ++k) out[k] = std::exp(z[k] - m) / sum;
}

// The outputs the head leaves in z when !want_grad: sigmoid for the fused BCE, softmax for
// cross-entropy, f(z) otherwise.
void head_outputs_naive(const HeadSpec& head, const ActivationSpec& out, const double* z, int d, double* a) {
    if (out.kind == Activation::softmax) {
        softmax_naive(z, d, a);
        return;
    }
    for (int k = 0; k < d; ++k) {
        a[k] = head.loss == Loss::bce ? 1.0 / (1.0 + std::exp(-z[k])) : activation_naive(out, z[k]);
    }
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

TEST(softmax_columns_matches_naive_softmax) {
    for (int d : {1, 2, 7, 13}) {
        const int b = 5;
        const auto zr = random_vector(std::size_t(d) * b, -10.0f, 10.0f, 30 + unsigned(d));
        AlignedFloats z(zr.begin(), zr.end());  // aligned, as in activation_forward_and_backward_match_naive
        z[0] = 100.0f;  // large logits: exp(z) alone would overflow
        if (d > 1) z[1] = -100.0f;
        AlignedFloats s = z;
        softmax_columns(s.data(), d, b);
        AlignedFloats block = z;
        activate_block(activation_spec(Activation::softmax), block.data(), d, b);
        CHECK(block == s);
        std::vector<double> zd(z.begin(), z.end()), want(zd.size());
        for (int j = 0; j < b; ++j) softmax_naive(zd.data() + j * d, d, want.data() + j * d);
        for (std::size_t i = 0; i < s.size(); ++i) CHECK_NEAR(s[i], want[i], 1e-6 * (1 + want[i]));
        for (int j = 0; j < b; ++j) {
            double sum = 0;
            for (int k = 0; k < d; ++k) sum += s[std::size_t(j * d + k)];
            CHECK_NEAR(sum, 1.0, 1e-6);
        }
    }
    // activate_block on an elementwise activation is activation_forward.
    const auto zr = random_vector(40, -3.0f, 3.0f, 31);
    AlignedFloats a(zr.begin(), zr.end()), b = a;
    activate_block(test_activation(Activation::elu), a.data(), 8, 5);
    activation_forward(test_activation(Activation::elu), b.data(), b.data(), 40);
    CHECK(a == b);
}

// ---- the output head ------------------------------------------------------------------------

// head_pass against head_naive for every valid (loss, output activation), with and without
// per-column weights, with and without the gradient, with per-sample losses.
TEST(head_pass_matches_naive_for_every_valid_head) {
    const int n = 7;
    int cases = 0;
    for (Head h : fastae_test::valid_heads()) {
        for (int d : {3, 19}) {  // 19: vectors and a tail (the vector BCE column)
            for (bool weighted : {false, true}) {
                for (bool want_grad : {true, false}) {
                    HeadSpec head;
                    head.loss = h.loss;
                    head.huber_delta = 0.6;  // not the default: used by huber only
                    const ActivationSpec out = test_activation(h.out);
                    // |z| <= 8: beyond about 17 the naive BCE's log(1 - sigmoid(z)) loses digits.
                    auto z = random_vector(std::size_t(d) * n, -8.0f, 8.0f, 3 + unsigned(d));
                    auto y = fastae_test::targets_for<float>(h.loss, n, d, 4 + unsigned(d));
                    if (h.loss == Loss::mae) {  // away from the kink of |a - y| at 0
                        for (std::size_t i = 0; i < z.size(); ++i) {
                            if (std::fabs(activation_naive(out, z[i]) - y[i]) < 1e-3) y[i] += 0.01f;
                        }
                    }
                    auto w = random_vector(n, 0.0f, 2.0f, 5);
                    w[2] = 0.0f;
                    const float scale_value = 0.125f;
                    const ColumnScale scale{scale_value, weighted ? w.data() : nullptr};
                    auto g = z;
                    std::vector<float> per_sample(n, -1.0f);
                    Eigen::VectorXf scratch(3 * d);
                    const double sum = head_pass(head, out, MutMatrixMap(g.data(), d, n), ConstMatrixMap(y.data(), d, n),
                                                 scale, want_grad, per_sample.data(), scratch.data());
                    const std::string what = label(h) + ", d " + std::to_string(d) + (weighted ? ", weighted" : "") +
                                             (want_grad ? ", gradient" : ", outputs");
                    double want_sum = 0;
                    for (int j = 0; j < n; ++j) {
                        std::vector<double> zd(z.begin() + j * d, z.begin() + (j + 1) * d);
                        std::vector<double> yd(y.begin() + j * d, y.begin() + (j + 1) * d);
                        std::vector<double> dz(static_cast<std::size_t>(d)), a(static_cast<std::size_t>(d));
                        const double l = head_naive(head, out, zd.data(), yd.data(), d, dz.data());
                        const double wj = weighted ? w[std::size_t(j)] : 1.0;
                        want_sum += wj * l;
                        const double per = traits_of(h.loss).per_sample ? l : l / d;
                        CHECK_IN(std::fabs(per_sample[std::size_t(j)] - per) <= 1e-5 * (1 + std::fabs(per)), what);
                        head_outputs_naive(head, out, zd.data(), d, a.data());
                        for (int k = 0; k < d; ++k) {
                            const float got = g[std::size_t(j * d + k)];
                            const double want = want_grad ? dz[std::size_t(k)] * scale_value * wj : a[std::size_t(k)];
                            CHECK_IN(std::fabs(got - want) <= 2e-6 * (1 + std::fabs(want)), what);
                        }
                    }
                    CHECK_IN(std::fabs(sum - want_sum) <= 1e-5 * (1 + std::fabs(want_sum)), what);
                    ++cases;
                }
            }
        }
    }
    CHECK(cases == int(fastae_test::valid_heads().size()) * 8);
}

// The independent check of head_naive: its dz against central differences of its own loss in
// float64, for every valid head, away from the kinks (relu-like outputs at z = 0, mae at a = y,
// huber's switch at |a - y| = delta, where the second derivative jumps).
TEST(head_naive_gradient_matches_finite_differences) {
    const int d = 6, n = 4;
    const double h = 1e-6;
    for (Head hd : fastae_test::valid_heads()) {
        HeadSpec head;
        head.loss = hd.loss;
        head.huber_delta = 0.4;
        const ActivationSpec out = test_activation(hd.out);
        auto z = fastae_test::random_doubles(std::size_t(d) * n, -3.0, 3.0, 40);
        auto y = fastae_test::targets_for<double>(hd.loss, n, d, 41);
        for (std::size_t i = 0; i < z.size(); ++i) {
            if (std::fabs(z[i]) < 0.05) z[i] += 0.1;
            const double e = head.loss == Loss::bce || out.kind == Activation::softmax ? 1.0
                                                                                        : activation_naive(out, z[i]) - y[i];
            if (std::fabs(e) < 0.05 || std::fabs(std::fabs(e) - head.huber_delta) < 1e-3) y[i] += 0.1;
        }
        for (int j = 0; j < n; ++j) {
            double* zj = z.data() + j * d;
            const double* yj = y.data() + j * d;
            std::vector<double> dz(static_cast<std::size_t>(d)), unused(static_cast<std::size_t>(d));
            head_naive(head, out, zj, yj, d, dz.data());
            for (int k = 0; k < d; ++k) {
                const double keep = zj[k];
                zj[k] = keep + h;
                const double up = head_naive(head, out, zj, yj, d, unused.data());
                zj[k] = keep - h;
                const double down = head_naive(head, out, zj, yj, d, unused.data());
                zj[k] = keep;
                const double fd = (up - down) / (2 * h);
                CHECK_IN(std::fabs(fd - dz[std::size_t(k)]) <= 1e-7 * (1 + std::fabs(dz[std::size_t(k)])), label(hd));
            }
        }
    }
}

// Huber with delta 0.3, errors e = a - y on both sides of |e| = delta (and at it), against the
// formula written out (torch.nn.HuberLoss): |e| <= delta: e^2 / 2, grad e; else
// delta (|e| - delta / 2), grad delta sign(e). Both branches meet at |e| = delta (value
// delta^2 / 2 = 0.045, grad +-0.3).
TEST(huber_with_non_default_delta_around_delta) {
    HeadSpec head;
    head.loss = Loss::huber;
    head.huber_delta = 0.3;
    const ActivationSpec out = activation_spec(Activation::linear);
    const std::vector<double> errors = {-0.9, -0.31, -0.3, -0.29, -0.1, 0.05, 0.29, 0.3, 0.301, 0.31, 0.9};
    const int d = int(errors.size());
    std::vector<float> z(errors.size()), y(errors.size(), 0.25f);
    for (int k = 0; k < d; ++k) z[std::size_t(k)] = 0.25f + float(errors[std::size_t(k)]);
    auto g = z;
    Eigen::VectorXf scratch(3 * d);
    float per_sample = 0;
    const double sum = head_pass(head, out, MutMatrixMap(g.data(), d, 1), ConstMatrixMap(y.data(), d, 1),
                                 ColumnScale{1.0f, nullptr}, true, &per_sample, scratch.data());
    std::vector<double> zd(z.begin(), z.end()), yd(y.begin(), y.end()), dz(errors.size());
    const double naive = head_naive(head, out, zd.data(), yd.data(), d, dz.data());
    double want_sum = 0;
    for (int k = 0; k < d; ++k) {
        const double e = double(z[std::size_t(k)]) - 0.25;  // the error as the floats hold it
        const double loss = std::fabs(e) <= 0.3 ? 0.5 * e * e : 0.3 * (std::fabs(e) - 0.15);
        const double grad = std::fabs(e) <= 0.3 ? e : (e > 0 ? 0.3 : -0.3);
        want_sum += loss;
        CHECK_NEAR(g[std::size_t(k)], grad, 1e-6);
        CHECK_NEAR(dz[std::size_t(k)], grad, 1e-12);
    }
    CHECK_NEAR(sum, want_sum, 1e-6);
    CHECK_NEAR(naive, want_sum, 1e-12);
    CHECK_NEAR(per_sample, want_sum / d, 1e-6);
    // Central differences of the naive loss just inside and outside |e| = delta.
    for (double e : {-0.301, -0.299, 0.299, 0.301}) {
        double zz = 0.25 + e, x = 0.25, unused;
        const double h = 1e-7;
        double up = zz + h, down = zz - h;
        const double fd = (head_naive(head, out, &up, &x, 1, &unused) - head_naive(head, out, &down, &x, 1, &unused)) / (2 * h);
        head_naive(head, out, &zz, &x, 1, &unused);
        CHECK_NEAR(fd, unused, 1e-7);
    }
}

// MAE away from 0: the loss |e| and the gradient sign(e) f'(z), for a linear and a tanh output;
// at e = 0 exactly the gradient is 0 (torch's sign(0)).
TEST(mae_matches_the_formula_away_from_zero) {
    HeadSpec head;
    head.loss = Loss::mae;
    for (Activation kind : {Activation::linear, Activation::tanh}) {
        const ActivationSpec out = activation_spec(kind);
        const std::vector<float> z = {-2.0f, -0.3f, 0.3f, 2.0f, 0.5f};
        std::vector<float> y = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        activation_forward(out, &z[4], &y[4], 1);  // the float output itself: e = 0 exactly
        auto g = z;
        Eigen::VectorXf scratch(15);
        const double sum = head_pass(head, out, MutMatrixMap(g.data(), 5, 1), ConstMatrixMap(y.data(), 5, 1),
                                     ColumnScale{1.0f, nullptr}, true, nullptr, scratch.data());
        double want_sum = 0;
        for (int k = 0; k < 4; ++k) {
            const double a = activation_naive(out, z[std::size_t(k)]);
            want_sum += std::fabs(a);
            const double want = (a > 0 ? 1.0 : -1.0) * activation_derivative_naive(out, z[std::size_t(k)]);
            CHECK_NEAR(g[std::size_t(k)], want, 1e-6);
        }
        CHECK(g[4] == 0.0f);
        CHECK_NEAR(sum, want_sum, 1e-6);
    }
}

// Cross-entropy with probability targets, one class at probability 0, against values computed
// independently (mpmath, 40 digits): with lse = log sum_k e^z_k, l = sum_k x_k (lse - z_k) and
// dl/dz = softmax(z) * sum_k x_k - x.
//   z = (2, -1, 0.5, 3), x = (0.7, 0, 0.3, 0):  l = 1.8340917012886903,
//       dz = (-0.44944872813288529, 0.012474213302103306, -0.24409445458289791, 0.6810689694136799)
//   same z, x = (0.25, 0.25, 0, 0) (mass 0.5): l = 1.4420458506443451,
//       dz = (-0.12472436406644265, -0.24376289334894835, 0.027952772708551043, 0.34053448470683995)
//   z = (100, -100, 50, 0), x = (0, 0, 1, 0): l = 50, dz = (1, ~1e-87, -1, ~4e-44)
TEST(cross_entropy_with_probability_targets_matches_hand_values) {
    HeadSpec head;
    head.loss = Loss::cross_entropy;
    const ActivationSpec out = activation_spec(Activation::softmax);
    const std::vector<float> z = {2.0f, -1.0f, 0.5f, 3.0f, 2.0f, -1.0f, 0.5f, 3.0f, 100.0f, -100.0f, 50.0f, 0.0f};
    const std::vector<float> x = {0.7f, 0.0f, 0.3f, 0.0f, 0.25f, 0.25f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f};
    const double want_loss[3] = {1.8340917012886903, 1.4420458506443451, 50.0};
    const double want_dz[12] = {-0.44944872813288529, 0.012474213302103306, -0.24409445458289791, 0.6810689694136799,
                                -0.12472436406644265, -0.24376289334894835, 0.027952772708551043, 0.34053448470683995,
                                1.0, 0.0, -1.0, 0.0};
    auto g = z;
    std::vector<float> per_sample(3);
    Eigen::VectorXf scratch(12);
    const double sum = head_pass(head, out, MutMatrixMap(g.data(), 4, 3), ConstMatrixMap(x.data(), 4, 3),
                                 ColumnScale{1.0f, nullptr}, true, per_sample.data(), scratch.data());
    CHECK_NEAR(sum, want_loss[0] + want_loss[1] + want_loss[2], 2e-5);
    for (int j = 0; j < 3; ++j) {
        CHECK_NEAR(per_sample[std::size_t(j)], want_loss[j], 1e-6 * (1 + want_loss[j]));
        std::vector<double> zd(z.begin() + 4 * j, z.begin() + 4 * j + 4), xd(x.begin() + 4 * j, x.begin() + 4 * j + 4);
        std::vector<double> dz(4);
        // The float targets 0.7 and 0.3 are not exactly those decimals: 1e-7 of slack.
        CHECK_NEAR(head_naive(head, out, zd.data(), xd.data(), 4, dz.data()), want_loss[j], 1e-6 * (1 + want_loss[j]));
        for (int k = 0; k < 4; ++k) {
            CHECK_NEAR(g[std::size_t(4 * j + k)], want_dz[4 * j + k], 1e-6);
            CHECK_NEAR(dz[std::size_t(k)], want_dz[4 * j + k], 1e-7);
        }
    }
    for (float v : g) CHECK(std::isfinite(v));
}

// Both versions of the BCE column (Eigen's, used by builds without AVX2, and the vector one the
// output pass uses here, at this build's widest width) against the naive twin, for lengths with
// every tail size. test_simd.cpp runs the vector one at every width.
TEST(bce_column_versions_match_naive) {
    HeadSpec head;
    head.loss = Loss::bce;
    const ActivationSpec out = activation_spec(Activation::sigmoid);
    for (int d : {1, 7, 8, 9, 16, 23, 784}) {
        // |z| <= 20: beyond it the naive twin's log(1 - sigmoid(z)) loses digits in double.
        auto z = random_vector(std::size_t(d), -20.0f, 20.0f, 11 + unsigned(d));
        auto y = random_vector(std::size_t(d), 0.0f, 1.0f, 12 + unsigned(d));
        z[0] = 0.0f;  // the z >= 0 branch at its edge
        std::vector<double> zd(z.begin(), z.end()), yd(y.begin(), y.end()), want_g(static_cast<std::size_t>(d));
        const double want_sum = head_naive(head, out, zd.data(), yd.data(), d, want_g.data());
        for (double& v : want_g) v *= 0.5;
        for (int version = 0; version < 2; ++version) {
            auto g = z;
            std::vector<float> scratch(3 * std::size_t(d));
            float sum = 0;
            if (version == 0) {
                sum = bce_column_eigen(Eigen::Map<Eigen::ArrayXf>(g.data(), d),
                                       Eigen::Map<const Eigen::ArrayXf>(y.data(), d), 0.5f, true, scratch.data());
            } else {
#ifdef FASTAE_HAVE_AVX2_MATH
                sum = bce_column<simd::Widest>(g.data(), y.data(), d, 0.5f, true);
#else
                continue;
#endif
            }
            CHECK_NEAR(sum, want_sum, 2e-6 * (1 + std::fabs(want_sum)));
            for (int i = 0; i < d; ++i) CHECK_NEAR(g[std::size_t(i)], want_g[std::size_t(i)], 3e-7);
        }
    }
}

TEST(bce_propagates_nan_logits_into_the_loss) {
    // The trainer stops on a non-finite loss, so a NaN logit must reach the sum.
    const int d = 11;
    HeadSpec head;
    head.loss = Loss::bce;
    std::vector<float> z(d, 0.5f), y(d, 0.25f), scratch(3 * d);
    z[9] = std::numeric_limits<float>::quiet_NaN();
    const double sum = head_pass(head, activation_spec(Activation::sigmoid), MutMatrixMap(z.data(), d, 1),
                                 ConstMatrixMap(y.data(), d, 1), ColumnScale{1.0f, nullptr}, true, nullptr, scratch.data());
    CHECK(std::isnan(sum));
}

TEST(bce_is_stable_for_saturated_logits) {
    // Naive log(sigmoid(z)) overflows here; the fused form must stay finite and exact.
    const int d = 4;
    HeadSpec head;
    head.loss = Loss::bce;
    std::vector<float> z = {100.0f, -100.0f, 100.0f, -100.0f};
    std::vector<float> y = {1.0f, 0.0f, 0.0f, 1.0f};
    std::vector<float> scratch(3 * d);
    const double sum = head_pass(head, activation_spec(Activation::sigmoid), MutMatrixMap(z.data(), d, 1),
                                 ConstMatrixMap(y.data(), d, 1), ColumnScale{1.0f, nullptr}, true, nullptr, scratch.data());
    CHECK_NEAR(sum, 200.0, 1e-3);  // two perfect predictions (~0) and two at loss 100
    CHECK_NEAR(z[0], 0.0, 1e-6);
    CHECK_NEAR(z[1], 0.0, 1e-6);
    CHECK_NEAR(z[2], 1.0, 1e-6);
    CHECK_NEAR(z[3], -1.0, 1e-6);
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

// ---- sparse input ---------------------------------------------------------------------------

// The first layer's sparse products (sparse_input.h) against their naive twins, over output
// widths that exercise every vector count and the scalar tail, batch sizes and densities; the
// dense GEMM gives the same to rounding.
TEST(sparse_input_products_match_naive) {
    std::mt19937 gen(21);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    for (int d : {1, 9, 70, 784}) {
        for (int n_out : {1, 7, 8, 64, 71, 130, 256}) {
            for (int b : {1, 13, 256}) {
                // The naive twins are dense triple loops: beyond 4M products a case (784 inputs
                // with 256 samples and over 8 outputs) costs most of the suite's time and adds no
                // path (every output width runs at 784 inputs with 13 samples, and with 256
                // samples at 70 inputs).
                if (std::size_t(d) * std::size_t(n_out) * std::size_t(b) > (std::size_t(1) << 22)) continue;
                for (double density : {0.0, 0.05, 0.39}) {
                    std::vector<float> x(std::size_t(d) * std::size_t(b));
                    for (float& v : x) v = unit(gen) < density ? unit(gen) * 2.0f - 1.0f : 0.0f;
                    auto w = random_vector(std::size_t(d) * std::size_t(n_out), -1.0f, 1.0f, 22);
                    auto dz = random_vector(std::size_t(n_out) * std::size_t(b), -1.0f, 1.0f, 23);
                    SparseInput sp(d, 256);
                    if (!sp.compress(x.data(), d, b)) {
                        // Only when the sample drew more than the budget allows.
                        std::size_t nnz = 0;
                        for (float v : x) nnz += v != 0.0f;
                        CHECK(double(nnz) > SparseInput::kMaxDensity * d * b);
                        continue;
                    }
                    std::vector<float> z(std::size_t(n_out) * std::size_t(b), -7.0f), dw(w.size(), -7.0f);
                    sp.forward(w.data(), n_out, z.data());
                    sp.weight_gradient(dz.data(), n_out, dw.data());
                    std::vector<double> z_want(z.size()), dw_want(dw.size());
                    sparse_forward_naive(x.data(), d, b, w.data(), n_out, z_want.data());
                    sparse_weight_gradient_naive(x.data(), d, b, dz.data(), n_out, dw_want.data());
                    double err = 0;
                    for (std::size_t i = 0; i < z.size(); ++i) err = std::max(err, std::fabs(z[i] - z_want[i]));
                    for (std::size_t i = 0; i < dw.size(); ++i) err = std::max(err, std::fabs(dw[i] - dw_want[i]));
                    CHECK(err < 1e-4);
                    // The dense products of the same matrices.
                    GemmWorkspace gws;
                    std::vector<float> z_dense(z.size()), dw_dense(dw.size());
                    gemm(false, false, n_out, b, d, 1.0f, w.data(), n_out, x.data(), d, 0.0f, z_dense.data(), n_out, gws);
                    gemm(false, true, n_out, d, b, 1.0f, dz.data(), n_out, x.data(), d, 0.0f, dw_dense.data(), n_out, gws);
                    double gap = 0;
                    for (std::size_t i = 0; i < z.size(); ++i) gap = std::max(gap, double(std::fabs(z[i] - z_dense[i])));
                    for (std::size_t i = 0; i < dw.size(); ++i) gap = std::max(gap, double(std::fabs(dw[i] - dw_dense[i])));
                    CHECK(gap < 1e-4);
                }
            }
        }
    }
}

TEST(sparse_input_declines_dense_batches_and_keeps_non_finite_values) {
    const int d = 50, b = 40;
    std::vector<float> x(std::size_t(d) * b, 0.0f);
    for (std::size_t i = 0; i < x.size(); i += 2) x[i] = 0.5f;  // 50% nonzeros: over the 40% budget
    SparseInput sp(d, 64);
    CHECK(!sp.compress(x.data(), d, b));
    CHECK(!sp.active());
    CHECK(!sp.compress(x.data(), d, 65));  // more samples than its capacity
    std::fill(x.begin(), x.end(), 0.0f);
    x[3 * d + 7] = std::numeric_limits<float>::quiet_NaN();
    x[5 * d + 1] = std::numeric_limits<float>::infinity();
    CHECK(sp.compress(x.data(), d, b));
    auto w = random_vector(std::size_t(d) * 8, -1.0f, 1.0f, 24);
    w[1 * 8 + 2] = 0.0f;  // inf * 0 is NaN: still non-finite
    std::vector<float> z(std::size_t(8) * b);
    sp.forward(w.data(), 8, z.data());
    for (int j = 0; j < b; ++j) {
        for (int o = 0; o < 8; ++o) {
            const bool finite = std::isfinite(z[std::size_t(j) * 8 + std::size_t(o)]);
            CHECK(finite == (j != 3 && j != 5));
        }
    }
}
