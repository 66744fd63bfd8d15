// test_network_spec.cpp -- a network's spec through the public API: every weight initializer
// (bounds, std, the unchanged glorot_uniform draws), each invalid field named, every pairing rule
// of the vocabulary's traits, names round-tripping through the parsers, and the code layer.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "check.h"
#include "fastae/fastae.h"
#include "rng.h"
#include "test_data.h"

using namespace fastae;
using fastae_test::contains;
using fastae_test::invalid_argument_of;
using fastae_test::make_data;
using fastae_test::params_of;

// ---- weight initializers --------------------------------------------------------------------

// Every initializer of the vocabulary on a 300 -> 100 -> 50 network (its traits give the scale
// and the fan): uniform draws within l = sqrt(3 scale / fan) and reaching it; normal draws
// within two std of the pre-scaled normal (std sqrt(scale / fan) / 0.8796...); the empirical
// std sqrt(scale / fan) either way (30000 draws: its standard error is about 0.4%); mean 0;
// zero biases; each layer with its own fan.
TEST(every_initializer_has_its_bounds_and_std) {
    for (Initializer init : all_initializers()) {
        const InitializerTraits& traits = traits_of(init);
        NetworkSpec spec;
        spec.n_inputs = 300;
        spec.layers.resize(2);
        spec.layers[0].units = 100;
        spec.layers[1].units = 50;
        spec.head.loss = Loss::mse;
        spec.layers[1].activation = activation_spec(Activation::linear);
        for (LayerSpec& l : spec.layers) l.initializer = init;
        Model m(spec);
        m.init_weights(11);
        for (int layer = 0; layer < 2; ++layer) {
            const int n_in = layer == 0 ? 300 : 100, n_out = layer == 0 ? 100 : 50;
            const double fan = traits.fan == 0 ? 0.5 * (n_in + n_out) : double(n_in);
            const double std_want = std::sqrt(traits.scale / fan);
            const double bound = traits.normal ? 2.0 * std_want / 0.87962566103423978 : std::sqrt(3.0 * traits.scale / fan);
            const float* w = m.params() + m.param_offset(layer);
            const std::size_t count = std::size_t(n_in) * std::size_t(n_out);
            double sum = 0, sq = 0, top = 0;
            for (std::size_t i = 0; i < count; ++i) {
                sum += w[i];
                sq += double(w[i]) * w[i];
                top = std::max(top, std::fabs(double(w[i])));
            }
            const std::string what = std::string(name_of(init)) + ", layer " + std::to_string(layer);
            const double mean = sum / double(count), sd = std::sqrt(sq / double(count) - mean * mean);
            if (!(top <= bound * (1 + 1e-7) && top > 0.97 * bound)) {
                fastae_test::fail(__FILE__, __LINE__, what + ": largest |w| " + std::to_string(top) + ", bound " + std::to_string(bound));
            }
            const double tolerance = layer == 0 ? 0.03 : 0.06;  // 30000 and 5000 draws
            if (!(std::fabs(sd / std_want - 1.0) < tolerance && std::fabs(mean) < 0.05 * std_want)) {
                fastae_test::fail(__FILE__, __LINE__, what + ": std " + std::to_string(sd) + " (want " +
                                                          std::to_string(std_want) + "), mean " + std::to_string(mean));
            }
            for (int o = 0; o < n_out; ++o) CHECK(w[count + std::size_t(o)] == 0.0f);
        }
        // A seed gives the same draws; another seed others.
        Model again(spec), other(spec);
        again.init_weights(11);
        other.init_weights(12);
        CHECK(params_of(again) == params_of(m));
        CHECK(params_of(other) != params_of(m));
    }
}

// glorot_uniform (the default) draws exactly what the library drew before initializers were
// added: w = float((2u - 1) sqrt(6 / (n_in + n_out))), u from one Rng(seed) in layer order,
// biases not drawn. The values are those of the earlier code (computed with its rng.h).
TEST(glorot_uniform_draws_are_unchanged) {
    NetworkConfig cfg;
    cfg.layer_sizes = {5, 3, 4};
    Model m(cfg);
    m.init_weights(2024);
    detail::Rng rng(2024);
    std::vector<float> want(m.n_params(), -1.0f);
    std::size_t at = 0;
    for (int l = 0; l < 2; ++l) {
        const int n_in = cfg.layer_sizes[std::size_t(l)], n_out = cfg.layer_sizes[std::size_t(l) + 1];
        const double limit = std::sqrt(6.0 / double(n_in + n_out));
        for (int i = 0; i < n_in * n_out; ++i) want[at++] = float((2.0 * rng.uniform() - 1.0) * limit);
        for (int o = 0; o < n_out; ++o) want[at++] = 0.0f;
    }
    CHECK(at == want.size());
    CHECK(std::equal(want.begin(), want.end(), m.params()));
    const float* w = m.params();
    CHECK(w[0] == -0.769389272f && w[1] == 0.488618076f && w[2] == -0.74122256f && w[14] == 0.47355932f);
    const float* w1 = m.params() + m.param_offset(1);
    CHECK(w1[0] == -0.574181974f && w1[1] == -0.846471488f && w1[2] == 0.282795906f && w1[11] == 0.00428431947f);
}

TEST(glorot_uniform_init) {
    NetworkConfig cfg;
    cfg.layer_sizes = {300, 100, 300};
    Model m(cfg);
    m.init_weights(1);
    const double limit = std::sqrt(6.0 / 400.0);
    const float* w = m.params();
    double sum = 0, sq = 0, lo = 1, hi = -1;
    for (int i = 0; i < 300 * 100; ++i) {
        sum += w[i];
        sq += double(w[i]) * w[i];
        lo = std::min(lo, double(w[i]));
        hi = std::max(hi, double(w[i]));
    }
    const double n = 300 * 100;
    CHECK(lo >= -limit && hi <= limit);
    CHECK(hi > 0.99 * limit && lo < -0.99 * limit);
    CHECK_NEAR(sum / n, 0.0, 0.01 * limit);
    CHECK_NEAR(sq / n, limit * limit / 3.0, 0.02 * limit * limit);  // variance of U(-a, a)
    for (int i = 0; i < 100; ++i) CHECK(w[300 * 100 + i] == 0.0f);
}

// ---- network and vocabulary checks ----------------------------------------------------------

namespace {

// A valid spec to break one field at a time: 6 -> 5 (relu) -> 4 (tanh) -> 6 (sigmoid), bce.
NetworkSpec valid_spec() {
    NetworkSpec spec;
    spec.n_inputs = 6;
    spec.layers.resize(3);
    spec.layers[0].units = 5;
    spec.layers[1].units = 4;
    spec.layers[1].activation = activation_spec(Activation::tanh);
    spec.layers[2].units = 6;
    spec.layers[2].activation = activation_spec(Activation::sigmoid);
    spec.head.loss = Loss::bce;
    return spec;
}

}  // namespace

// Each invalid option of a NetworkSpec throws std::invalid_argument naming it.
TEST(network_validation_names_each_bad_field) {
    struct Case {
        const char* what;
        void (*breaks)(NetworkSpec&);
        const char* message;
    };
    const Case cases[] = {
        {"softmax on a hidden layer",
         [](NetworkSpec& s) { s.layers[1].activation = activation_spec(Activation::softmax); },
         "layers[1]: activation 'softmax' is allowed on the output layer only"},
        {"bce without a sigmoid output",
         [](NetworkSpec& s) { s.layers[2].activation = activation_spec(Activation::linear); },
         "loss 'bce' needs output_activation 'sigmoid', got 'linear'"},
        {"cross_entropy without softmax", [](NetworkSpec& s) { s.head.loss = Loss::cross_entropy; },
         "loss 'cross_entropy' needs output_activation 'softmax', got 'sigmoid'"},
        {"softmax with mse",
         [](NetworkSpec& s) {
             s.layers[2].activation = activation_spec(Activation::softmax);
             s.head.loss = Loss::mse;
         },
         "output_activation 'softmax' goes with its own loss only, not 'mse'"},
        {"negative leaky slope",
         [](NetworkSpec& s) { s.layers[0].activation = {Activation::leaky_relu, -0.1}; },
         "layers[0]: leaky_relu's slope (alpha) must be a finite number >= 0"},
        {"NaN leaky slope",
         [](NetworkSpec& s) { s.layers[0].activation = {Activation::leaky_relu, std::nan("")}; }, "leaky_relu's slope"},
        {"elu alpha 0", [](NetworkSpec& s) { s.layers[1].activation = {Activation::elu, 0.0}; },
         "layers[1]: elu's alpha must be a finite number > 0"},
        {"huber_delta 0",
         [](NetworkSpec& s) {
             s.head.loss = Loss::huber;
             s.head.huber_delta = 0.0;
         },
         "huber_delta must be a finite number > 0"},
        {"huber_delta inf",
         [](NetworkSpec& s) {
             s.head.loss = Loss::huber;
             s.head.huber_delta = std::numeric_limits<double>::infinity();
         },
         "huber_delta"},
        {"dropout 1.0", [](NetworkSpec& s) { s.layers[0].dropout = 1.0; }, "layers[0].dropout must be in [0, 1)"},
        {"negative dropout", [](NetworkSpec& s) { s.layers[1].dropout = -0.1; }, "layers[1].dropout must be in [0, 1)"},
        {"dropout on the output layer", [](NetworkSpec& s) { s.layers[2].dropout = 0.5; },
         "layers[2]: dropout is for hidden layers, not the output layer"},
        {"negative l1", [](NetworkSpec& s) { s.layers[1].l1 = -1e-3; }, "layers[1].l1 must be a finite number >= 0"},
        {"NaN l2", [](NetworkSpec& s) { s.layers[2].l2 = std::nan(""); }, "layers[2].l2 must be a finite number >= 0"},
        {"units 0", [](NetworkSpec& s) { s.layers[1].units = 0; }, "layers[1].units must be >= 1, got 0"},
        {"code_layer past the end", [](NetworkSpec& s) { s.code_layer = 3; }, "code_layer must be -1 or in [0, 3), got 3"},
        {"code_layer below -1", [](NetworkSpec& s) { s.code_layer = -2; }, "code_layer must be -1 or in [0, 3), got -2"},
        {"n_inputs 0", [](NetworkSpec& s) { s.n_inputs = 0; }, "n_inputs must be >= 1"},
        {"no layers", [](NetworkSpec& s) { s.layers.clear(); }, "at least one layer"},
        {"activation outside the vocabulary",
         [](NetworkSpec& s) { s.layers[0].activation.kind = static_cast<Activation>(all_activations().size()); },
         "invalid activation"},
        {"loss outside the vocabulary", [](NetworkSpec& s) { s.head.loss = static_cast<Loss>(all_losses().size()); },
         "invalid loss"},
        {"initializer outside the vocabulary",
         [](NetworkSpec& s) { s.layers[0].initializer = static_cast<Initializer>(all_initializers().size()); },
         "invalid initializer"},
    };
    CHECK(invalid_argument_of([] { Model m(valid_spec()); }).empty());
    for (const Case& c : cases) {
        NetworkSpec spec = valid_spec();
        c.breaks(spec);
        const std::string what = invalid_argument_of([&] { Model m(spec); });
        if (!contains(what, c.message)) {
            fastae_test::fail(__FILE__, __LINE__, std::string(c.what) + ": expected '" + c.message + "', got '" + what + "'");
        }
    }
    // The limits themselves are valid: slope 0, a code layer at either end.
    NetworkSpec edge = valid_spec();
    edge.layers[0].activation = {Activation::leaky_relu, 0.0};
    edge.code_layer = 0;
    CHECK(invalid_argument_of([&] { Model m(edge); }).empty());
    edge.code_layer = 2;
    CHECK(invalid_argument_of([&] { Model m(edge); }).empty());
}

// The pairing rules, read from the traits for every (activation, loss): an output activation
// goes with a loss exactly when the loss requires it, or requires none and it is not
// output_only; a hidden layer takes every activation that is not output_only.
TEST(pairings_follow_the_traits) {
    int accepted = 0;
    for (Loss loss : all_losses()) {
        for (Activation out : all_activations()) {
            NetworkSpec spec = valid_spec();
            spec.layers[2].activation = activation_spec(out);
            spec.head.loss = loss;
            const bool valid = fastae_test::valid_head(loss, out);
            const std::string what = invalid_argument_of([&] { Model m(spec); });
            if (what.empty() != valid) {
                fastae_test::fail(__FILE__, __LINE__, std::string(name_of(loss)) + " with output " + name_of(out) +
                                                          (valid ? " refused: " + what : " accepted"));
            }
            accepted += valid;
        }
    }
    CHECK(accepted == int(fastae_test::valid_heads().size()));
    for (Activation hidden : all_activations()) {
        NetworkSpec spec = valid_spec();
        spec.layers[0].activation = fastae_test::test_activation(hidden);
        const bool refused = !invalid_argument_of([&] { Model m(spec); }).empty();
        CHECK(refused == traits_of(hidden).output_only);
    }
}

// Names round-trip through the parsers; a name outside the vocabulary is refused with the list
// of allowed ones.
TEST(vocabulary_names_round_trip) {
    for (Activation a : all_activations()) CHECK(parse_activation(name_of(a)) == a);
    for (Loss l : all_losses()) CHECK(parse_loss(name_of(l)) == l);
    for (OptimizerKind o : all_optimizers()) CHECK(parse_optimizer(name_of(o)) == o);
    for (Initializer i : all_initializers()) CHECK(parse_initializer(name_of(i)) == i);
    const std::string what = invalid_argument_of([] { parse_activation("swish"); });
    CHECK(contains(what, "'swish'"));
    for (Activation a : all_activations()) CHECK(contains(what, std::string("'") + name_of(a) + "'"));
    CHECK(contains(invalid_argument_of([] { parse_loss("hinge"); }), "'cross_entropy'"));
    CHECK(contains(invalid_argument_of([] { parse_optimizer("lbfgs"); }), "'rmsprop'"));
    CHECK(contains(invalid_argument_of([] { parse_initializer("orthogonal"); }), "'lecun_normal'"));
    for (Activation a : all_activations()) {
        const double alpha = default_alpha(a);
        CHECK(activation_spec(a).kind == a && activation_spec(a).alpha == alpha);
    }
    CHECK(default_alpha(Activation::leaky_relu) == 0.01 && default_alpha(Activation::elu) == 1.0);
}

TEST(code_layer_sets_the_encoder) {
    NetworkSpec spec = valid_spec();
    Model middle(spec);  // -1: the first layers.size() / 2 layers encode
    CHECK(middle.n_encoder_layers() == 1 && middle.code_size() == 5);
    spec.code_layer = 1;
    Model deeper(spec);
    CHECK(deeper.n_encoder_layers() == 2 && deeper.code_size() == 4);
    CHECK(deeper.spec().code_layer == 1 && deeper.n_layers() == 3);
    CHECK(deeper.config().layer_sizes == std::vector<int>({6, 5, 4, 6}));
    CHECK(deeper.config().output_activation == Activation::sigmoid && deeper.config().loss == Loss::bce);
    std::vector<float> x = make_data(3, 6, 1), codes(3 * 4), out(3 * 6), direct(3 * 6);
    deeper.init_weights(2);
    deeper.encode(3, x.data(), codes.data());
    deeper.decode(3, codes.data(), out.data());
    deeper.predict(3, x.data(), direct.data());
    CHECK(out == direct);
}
