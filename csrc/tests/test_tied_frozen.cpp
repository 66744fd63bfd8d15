// test_tied_frozen.cpp -- tied weights (LayerSpec::tied_to), the contractive penalty
// (LayerSpec::contractive) and frozen layers (LayerSpec::trainable): the session's gradient
// against the naive twin (loss_gradient_naive, plain loops in double), the naive twin against
// float64 central finite differences of its own loss (the independent check of the formulas,
// including the closed-form Jacobian norm against an explicit Jacobian), frozen parameters
// untouched by training while the others follow the gradient, the parameter layout, the model
// file, and the specs that are refused.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "gradient_check.h"
#include "fastae/model.h"
#include "fastae/model_file.h"
#include "fastae/training.h"
#include "network.h"

using namespace fastae;
using namespace fastae::detail;
using namespace fastae_test;

namespace {

struct Options {
    bool tied = false;
    double contractive = 0.0;
    Activation code = Activation::sigmoid;  // layer 0's activation
    double dropout = 0.0;
    Noise noise = Noise::none;
    double l2 = 0.0;
    double activity_l1 = 0.0;
};

// 10 -> 6 (code: layer 0) -> 10, or 10 -> 6 -> 4 -> 6 -> 10 with `deep`; tied: each decoder
// layer uses its mirror's W transposed. bce on a sigmoid output.
NetworkSpec spec_of(const Options& o, bool deep = false) {
    NetworkSpec spec;
    spec.n_inputs = 10;
    std::vector<std::pair<int, Activation>> layers = {{6, o.code}, {10, Activation::sigmoid}};
    if (deep) layers = {{6, o.code}, {4, Activation::tanh}, {6, Activation::elu}, {10, Activation::sigmoid}};
    for (std::size_t i = 0; i < layers.size(); ++i) {
        LayerSpec l;
        l.units = layers[i].first;
        l.activation = activation_spec(layers[i].second);
        const bool decoder = i >= layers.size() / 2;
        if (o.tied && decoder) l.tied_to = int(layers.size() - 1 - i);
        l.l2 = o.tied && decoder ? 0.0 : o.l2;
        l.dropout = i + 1 < layers.size() ? o.dropout : 0.0;
        spec.layers.push_back(l);
    }
    spec.layers[0].contractive = o.contractive;
    spec.layers[0].noise = o.noise;
    spec.layers[0].noise_level = o.noise == Noise::none ? 0.0 : 0.2;
    spec.layers[0].activity_l1 = o.activity_l1;
    spec.head.loss = Loss::bce;
    return spec;
}

TrainingData data_of(const std::vector<float>& x, std::size_t n) {
    TrainingData data;
    data.n = n;
    data.x = x.data();
    return data;
}

const Options kCases[] = {
    {true, 0.0, Activation::sigmoid, 0.0, Noise::none, 0.0, 0.0},
    {true, 0.0, Activation::tanh, 0.3, Noise::gaussian, 0.01, 0.02},
    {false, 0.5, Activation::sigmoid, 0.0, Noise::none, 0.0, 0.0},
    {false, 0.3, Activation::tanh, 0.0, Noise::masking, 0.0, 0.01},
    {false, 0.4, Activation::sigmoid, 0.25, Noise::none, 0.0, 0.0},  // the penalty on the code before dropout
    {true, 0.7, Activation::tanh, 0.2, Noise::gaussian, 0.0, 0.0},
};

}  // namespace

TEST(tied_layers_own_only_their_bias) {
    Options o;
    o.tied = true;
    Model model(spec_of(o, true));
    // 10*6+6, 6*4+4, then the tied decoder's biases 6 and 10.
    CHECK(model.n_params() == std::size_t(66 + 28 + 6 + 10));
    CHECK(param_count(model.spec()) == model.n_params());
    CHECK(model.param_offset(3) == model.param_offset(0));  // layer 3 reads layer 0's W
    CHECK(model.param_offset(2) == model.param_offset(1));
    CHECK(model.bias_offset(2) == std::size_t(94));
    CHECK(model.bias_offset(3) == std::size_t(100));
    // The forward pass uses W_mirror^T: the naive twin's and the fast pass's outputs agree, and
    // both agree with an untied network holding the transposed copies.
    model.init_weights(3);
    std::vector<float> p(model.params(), model.params() + model.n_params());
    for (std::size_t i = 94; i < p.size(); ++i) p[i] = 0.01f * float(i % 7);  // nonzero tied biases
    model.set_params(p.data(), p.size());
    Model untied(spec_of(Options{}, true));
    std::vector<float> q(untied.n_params());
    const int widths[] = {10, 6, 4, 6, 10};
    for (int l = 0; l < 4; ++l) {
        const int n_in = widths[l], n_out = widths[l + 1];
        const std::size_t w = model.param_offset(l), b = model.bias_offset(l), qo = untied.param_offset(l);
        for (int i = 0; i < n_in; ++i) {
            for (int k = 0; k < n_out; ++k) {
                // a tied layer's weight from input i to output k is its mirror's from input k to output i
                q[qo + std::size_t(i * n_out + k)] = l >= 2 ? p[w + std::size_t(k * n_in + i)] : p[w + std::size_t(i * n_out + k)];
            }
        }
        std::copy(p.begin() + std::ptrdiff_t(b), p.begin() + std::ptrdiff_t(b + std::size_t(n_out)),
                  q.begin() + std::ptrdiff_t(qo + std::size_t(n_in * n_out)));
    }
    untied.set_params(q.data(), q.size());
    const auto x = unit_data(5, 10, 9);
    std::vector<float> a(50), b(50);
    model.predict(5, x.data(), a.data());
    untied.predict(5, x.data(), b.data());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK_NEAR(a[i], b[i], 1e-6);
}

TEST(session_gradient_matches_naive_twin_tied_and_contractive) {
    const std::size_t n = 23;
    const std::vector<std::size_t> rows = {4, 17, 0, 9, 22, 13, 5, 11, 2, 19, 8, 15};
    // Dense inputs, and inputs 80% zeros, which the first layer multiplies by their nonzeros
    // (sparse_input.h): a tied first layer's weight gradient then takes the dense product, which
    // adds to the decoder's share.
    auto sparse = unit_data(n, 10, 1);
    for (std::size_t i = 0; i < sparse.size(); ++i) sparse[i] = i % 5 == 2 ? sparse[i] : 0.0f;
    for (const auto& x : {unit_data(n, 10, 1), sparse})
    for (const Options& c : kCases) {
        for (bool deep : {false, true}) {
            for (int threads : {1, 3}) {
                Model model(spec_of(c, deep));
                model.init_weights(7);
                double loss = 0;
                const auto grad = session_gradient(model, x, n, threads, rows, 2, &loss);
                std::vector<double> want;
                const double want_loss = naive_gradient(model, x, 10, rows, 2, want);
                // The session adds the l2 penalty in apply; the naive twin has the data and activity terms.
                CHECK_NEAR(loss, want_loss, 1e-5 * (1 + std::fabs(want_loss)));
                double max_err = 0, max_ref = 0;
                gradient_error(grad, want, &max_err, &max_ref);
                CHECK(max_ref > 0);
                CHECK_NEAR(max_err, 0.0, 2e-6 * (1 + max_ref));
            }
        }
    }
}

// The naive twin's gradient is the derivative of its own loss (float64 central differences, the
// step's noise and masks fixed).
TEST(naive_twin_gradient_matches_finite_differences_tied_and_contractive) {
    const std::size_t n = 7;
    const auto xf = unit_data(n, 10, 2);
    const std::vector<double> x(xf.begin(), xf.end());
    for (const Options& c : kCases) {
        for (bool deep : {false, true}) {
            Model model(spec_of(c, deep));
            model.init_weights(11);
            const Network net(model.spec());
            std::vector<double> p(model.params(), model.params() + model.n_params());
            for (std::size_t i = 0; i < p.size(); ++i) p[i] += 0.05 * std::sin(double(i));  // nonzero biases
            const StepContext ctx{5, 1, nullptr, 0, double(n)};
            const double worst = naive_vs_finite_differences(net, p, n, x, ctx, 1);
            CHECK_NEAR(worst, 0.0, 1e-6);
        }
    }
}

// The contractive term's value is lambda * mean over samples of ||dh/dx||_F^2, with the Jacobian
// built column by column from finite differences of the code (forward_naive of the first layer).
TEST(contractive_value_is_the_jacobian_norm) {
    const std::size_t n = 4;
    const auto xf = unit_data(n, 10, 3);
    for (Activation act : {Activation::sigmoid, Activation::tanh}) {
        Options o;
        o.code = act;
        o.contractive = 0.8;
        Model with(spec_of(o));
        with.init_weights(5);
        o.contractive = 0.0;
        Model without(spec_of(o));
        without.set_params(with.params(), with.n_params());
        const Network net_with(with.spec()), net_without(without.spec());
        std::vector<double> p(with.params(), with.params() + with.n_params());
        const std::vector<double> x(xf.begin(), xf.end());
        StepContext ctx{1, 1, nullptr, 0, double(n)};
        std::vector<double> g(p.size());
        const double term = loss_gradient_naive(net_with, p.data(), n, x.data(), x.data(), nullptr, &ctx, g.data()) -
                            loss_gradient_naive(net_without, p.data(), n, x.data(), x.data(), nullptr, &ctx, g.data());
        // The code h(x) = f(W x + b), one sample at a time.
        auto code = [&](const std::vector<double>& xs, int j) {
            double z = p[60 + std::size_t(j)];
            for (int i = 0; i < 10; ++i) z += p[std::size_t(i * 6 + j)] * xs[std::size_t(i)];
            return act == Activation::sigmoid ? 1.0 / (1.0 + std::exp(-z)) : std::tanh(z);
        };
        double frob = 0;
        for (std::size_t s = 0; s < n; ++s) {
            std::vector<double> xs(x.begin() + std::ptrdiff_t(s * 10), x.begin() + std::ptrdiff_t(s * 10 + 10));
            for (int i = 0; i < 10; ++i) {
                for (int j = 0; j < 6; ++j) {
                    auto up = xs, down = xs;
                    up[std::size_t(i)] += 1e-6;
                    down[std::size_t(i)] -= 1e-6;
                    const double dh = (code(up, j) - code(down, j)) / 2e-6;
                    frob += dh * dh;
                }
            }
        }
        CHECK(term > 0);
        CHECK_NEAR(term, 0.8 * frob / double(n), 1e-7);
    }
}

// Frozen layers: no update by any rule (AdamW's decay and a resumed momentum included), no
// penalty; the trainable layers take exactly the step of their gradient.
TEST(frozen_layers_are_not_updated_and_the_others_follow_their_gradient) {
    const std::size_t n = 16;
    const auto x = unit_data(n, 10, 4);
    for (int frozen_mask : {0b0001, 0b0011, 0b0100, 0b1110, 0b1111}) {
        for (OptimizerKind kind : {OptimizerKind::sgd, OptimizerKind::adamw}) {
            NetworkSpec spec = spec_of(Options{}, true);
            for (int l = 0; l < 4; ++l) {
                spec.layers[std::size_t(l)].trainable = !(frozen_mask >> l & 1);
                spec.layers[std::size_t(l)].l2 = 0.01;
            }
            Model model(spec);
            model.init_weights(13);
            const std::vector<float> before(model.params(), model.params() + model.n_params());
            // The gradient every parameter would have, from the naive twin.
            const Network net(model.spec());
            const std::vector<double> p(before.begin(), before.end());
            const std::vector<double> xd(x.begin(), x.end());
            std::vector<double> grad(p.size());
            loss_gradient_naive(net, p.data(), n, xd.data(), xd.data(), nullptr, nullptr, grad.data());
            OptimizerConfig opt;
            opt.kind = kind;
            opt.learning_rate = 0.1;
            TrainOptions options;
            options.batch_size = int(n);
            options.epochs = 1;
            options.shuffle = false;
            options.n_threads = 2;
            model.fit(data_of(x, n), nullptr, opt, options);
            for (int l = 0; l < 4; ++l) {
                const DenseLayer& L = net.layer(l);
                for (std::size_t i = L.owned_begin(); i < L.owned_end(); ++i) {
                    if (!L.trainable) {
                        CHECK(std::memcmp(&model.params()[i], &before[i], sizeof(float)) == 0);
                        continue;
                    }
                    const bool is_w = i < L.bias_offset();
                    const double g = grad[i] + (is_w ? 2 * 0.01 * p[i] : 0.0);
                    double want = p[i] - 0.1 * g;  // SGD without momentum
                    if (kind == OptimizerKind::adamw) {  // first Adam step: lr * sign(g), after the decay
                        want = p[i] * (1 - 0.1 * 0.01) - (g == 0 ? 0.0 : 0.1 * g / (std::fabs(g) + 1e-8));
                    }
                    CHECK_NEAR(model.params()[i], want, 2e-5);
                }
            }
        }
    }
}

// The session's gradient of the trainable layers is the full gradient's there, whatever is frozen
// below or above (backward stops below the lowest trainable layer), tied or not; frozen entries
// stay 0.
TEST(frozen_layers_leave_the_trainable_gradient_unchanged) {
    const std::size_t n = 12;
    const auto x = unit_data(n, 10, 6);
    std::vector<std::size_t> rows(n);
    for (std::size_t i = 0; i < n; ++i) rows[i] = (i * 5) % n;
    const std::pair<bool, int> cases[] = {{false, 0b0001}, {false, 0b0011}, {false, 0b0111}, {false, 0b1010},
                                          {true, 0b0110}, {true, 0b1001}};  // tied pairs: (0, 3), (1, 2)
    for (auto [tied, frozen_mask] : cases) {
        Options o;
        o.dropout = 0.2;
        o.tied = tied;
        NetworkSpec spec = spec_of(o, true);
        for (int l = 0; l < 4; ++l) spec.layers[std::size_t(l)].trainable = !(frozen_mask >> l & 1);
        spec.layers[1].activity_l1 = frozen_mask & 0b0010 ? 0.0 : 0.05;
        Model model(spec);
        model.init_weights(2);
        double loss = 0;
        const auto grad = session_gradient(model, x, n, 2, rows, 2, &loss);
        std::vector<double> want;
        const double want_loss = naive_gradient(model, x, 10, rows, 2, want);
        CHECK_NEAR(loss, want_loss, 1e-5);
        const Network net(model.spec());
        for (int l = 0; l < 4; ++l) {
            const DenseLayer& L = net.layer(l);
            for (std::size_t i = L.owned_begin(); i < L.owned_end(); ++i) {
                CHECK_NEAR(grad[i], L.trainable ? want[i] : 0.0, 2e-6);
            }
        }
    }
}

TEST(tied_contractive_and_frozen_round_trip_through_the_model_file) {
    Options o;
    o.tied = true;
    o.contractive = 0.25;
    NetworkSpec spec = spec_of(o, true);
    spec.layers[1].trainable = spec.layers[2].trainable = false;
    Model model(spec);
    model.init_weights(1);
    const auto bytes = model_to_bytes(model);
    const ModelFile back = model_from_bytes(bytes.data(), bytes.size());
    for (std::size_t l = 0; l < 4; ++l) {
        CHECK(back.model.spec().layers[l].tied_to == spec.layers[l].tied_to);
        CHECK(back.model.spec().layers[l].trainable == spec.layers[l].trainable);
        CHECK(back.model.spec().layers[l].contractive == spec.layers[l].contractive);
    }
    CHECK(std::equal(model.params(), model.params() + model.n_params(), back.model.params()));
    CHECK(model_to_bytes(back.model) == bytes);
}

TEST(bad_tied_contractive_and_frozen_specs_are_refused) {
    auto refused = [](auto change, bool deep = true) {
        Options o;
        o.tied = true;
        NetworkSpec s = spec_of(o, deep);
        change(s);
        try {
            Model m(s);
        } catch (const std::invalid_argument&) {
            return true;
        }
        return false;
    };
    CHECK(!refused([](NetworkSpec&) {}));
    CHECK(refused([](NetworkSpec& s) { s.layers[3].tied_to = 3; }));   // not an earlier layer
    CHECK(refused([](NetworkSpec& s) { s.layers[3].tied_to = -2; }));
    CHECK(refused([](NetworkSpec& s) { s.layers[3].tied_to = 1; }));   // widths do not mirror
    CHECK(refused([](NetworkSpec& s) { s.layers[3].tied_to = 2; }));   // a tied layer
    CHECK(refused([](NetworkSpec& s) { s.layers[2].tied_to = 1; s.layers[3].tied_to = 1; }));
    CHECK(refused([](NetworkSpec& s) { s.layers[3].l1 = 0.1; }));      // penalised through its mirror
    CHECK(refused([](NetworkSpec& s) { s.layers[0].trainable = false; }));  // shares W with layer 3
    CHECK(!refused([](NetworkSpec& s) { s.layers[0].trainable = s.layers[3].trainable = false; }));
    CHECK(refused([](NetworkSpec& s) { s.layers[0].contractive = -1; }));
    CHECK(refused([](NetworkSpec& s) { s.layers[1].contractive = 0.1; }));  // not the first layer
    CHECK(refused([](NetworkSpec& s) { s.layers[0].activation = activation_spec(Activation::relu); s.layers[0].contractive = 0.1; }));
    CHECK(refused([](NetworkSpec& s) { s.layers.resize(1); s.layers[0].contractive = 0.1; }));  // the output layer
    // A term on a layer with everything up to it frozen would train nothing.
    CHECK(refused([](NetworkSpec& s) {
        s.layers[0].trainable = s.layers[3].trainable = false;
        s.layers[0].activity_l1 = 0.1;
    }));
}
