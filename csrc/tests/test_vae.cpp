// test_vae.cpp -- a variational network (config.h: VariationalSpec, src/vae.h): the naive twin's
// gradient of the whole objective (reconstruction + beta KL through the reparameterisation, with a
// fixed step context, so fixed eps) against float64 central finite differences of its own loss;
// the fast float32 gradient (the training session's) against the naive one; the KL term against
// its closed form; the log-variance clamp's zero gradient; the KL warm-up; the draws keyed by row
// whatever the threads; a seed reproducing a fit bit for bit; sampling and decoding from a model
// read back from its file.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "check.h"
#include "fastae/autoencoder.h"
#include "fastae/model.h"
#include "fastae/model_file.h"
#include "fastae/training.h"
#include "model_file_reference.h"
#include "network.h"
#include "test_data.h"
#include "vae.h"

using namespace fastae;
using namespace fastae::detail;

namespace {

// 8 -> 6 (tanh) -> 2 x 3 (the code: means, log-variances) -> 6 (elu) -> 8 (sigmoid, bce or linear, mse).
NetworkSpec vae_spec(Loss loss, double beta, int warmup = 0) {
    NetworkSpec spec;
    spec.n_inputs = 8;
    const bool bce = loss == Loss::bce;
    const std::pair<int, Activation> layers[] = {{6, Activation::tanh},
                                                 {6, Activation::linear},
                                                 {6, Activation::elu},
                                                 {8, bce ? Activation::sigmoid : Activation::linear}};
    for (auto [units, act] : layers) {
        LayerSpec l;
        l.units = units;
        l.activation = activation_spec(act);
        spec.layers.push_back(l);
    }
    spec.code_layer = 1;
    spec.head.loss = loss;
    spec.variational = VariationalSpec{true, beta, warmup};
    return spec;
}

double max_fd_error(const Network& net, std::vector<double> p, const std::vector<double>& x, const double* weight,
                    const StepContext* context) {
    const std::size_t n = x.size() / std::size_t(net.width(0));
    std::vector<double> grad(net.n_params()), scratch(net.n_params());
    loss_gradient_naive(net, p.data(), n, x.data(), x.data(), weight, context, grad.data());
    const double h = 1e-6;
    double worst = 0, largest = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
        const double keep = p[i];
        p[i] = keep + h;
        const double up = loss_gradient_naive(net, p.data(), n, x.data(), x.data(), weight, context, scratch.data());
        p[i] = keep - h;
        const double down = loss_gradient_naive(net, p.data(), n, x.data(), x.data(), weight, context, scratch.data());
        p[i] = keep;
        worst = std::max(worst, std::fabs((up - down) / (2 * h) - grad[i]));
        largest = std::max(largest, std::fabs(grad[i]));
    }
    return largest > 0 ? worst / largest : 1.0;
}

}  // namespace

TEST(variational_layout_and_checks) {
    Network net(vae_spec(Loss::bce, 1.0));
    CHECK(net.variational());
    CHECK(net.width(2) == 3);        // the decoder reads k = 3
    CHECK(net.layer(2).n_in == 3);
    CHECK(net.n_params() == std::size_t(8 * 6 + 6 + 6 * 6 + 6 + 3 * 6 + 6 + 6 * 8 + 8));
    NetworkSpec odd = vae_spec(Loss::bce, 1.0);
    odd.layers[1].units = 5;
    CHECK_THROWS(Network{odd}, std::invalid_argument);
    NetworkSpec relu = vae_spec(Loss::bce, 1.0);
    relu.layers[1].activation = activation_spec(Activation::relu);
    CHECK_THROWS(Network{relu}, std::invalid_argument);
    NetworkSpec bad_beta = vae_spec(Loss::bce, -1.0);
    CHECK_THROWS(Network{bad_beta}, std::invalid_argument);
    NetworkSpec last = vae_spec(Loss::bce, 1.0);
    last.code_layer = 3;
    CHECK_THROWS(Network{last}, std::invalid_argument);
    CHECK(param_count(vae_spec(Loss::bce, 1.0)) == net.n_params());
}

// The whole objective's gradient, through z = mu + exp(v / 2) eps with eps fixed by the context.
TEST(finite_differences_whole_objective) {
    const std::size_t rows[5] = {3, 17, 2, 900, 41};
    const StepContext context{7, 3, rows, 0};
    int cases = 0;
    for (Loss loss : {Loss::bce, Loss::mse}) {
        for (double beta : {1.0, 0.25}) {
            for (bool weighted : {false, true}) {
                Network net(vae_spec(loss, beta));
                const auto p = fastae_test::random_doubles(net.n_params(), -0.8, 0.8, 5 + unsigned(cases));
                const auto x = fastae_test::random_doubles(5 * 8, 0.05, 0.95, 50 + unsigned(cases));
                std::vector<double> w = fastae_test::random_doubles(5, 0.2, 2.0, 9);
                w[2] = 0.0;
                for (const StepContext* c : {&context, static_cast<const StepContext*>(nullptr)}) {
                    const double error = max_fd_error(net, p, x, weighted ? w.data() : nullptr, c);
                    if (!(error <= 1e-6)) {
                        fastae_test::fail(__FILE__, __LINE__, std::string(name_of(loss)) + " beta " +
                                                                  std::to_string(beta) + (c ? " drawn" : " means") +
                                                                  ": relative error " + std::to_string(error));
                    }
                }
                ++cases;
            }
        }
    }
}

// A log-variance beyond the clamp passes no gradient (as torch.clamp), and finite differences
// agree there too (the loss is flat in it).
TEST(clamped_logvar_has_zero_gradient) {
    Network net(vae_spec(Loss::mse, 1.0));
    auto p = fastae_test::random_doubles(net.n_params(), -0.5, 0.5, 3);
    const DenseLayer& code = net.layer(1);
    p[code.bias_offset() + 4] = 45.0;  // unit 1's log-variance: far above kLogVarMax
    const auto x = fastae_test::random_doubles(3 * 8, 0.0, 1.0, 4);
    const StepContext context{1, 1, nullptr, 0};
    std::vector<double> g(net.n_params());
    loss_gradient_naive(net, p.data(), 3, x.data(), x.data(), nullptr, &context, g.data());
    CHECK(g[code.bias_offset() + 4] == 0.0);
    CHECK(g[code.bias_offset() + 3] != 0.0);
    CHECK(max_fd_error(net, p, x, nullptr, &context) <= 1e-6);
}

// The KL part against 1/2 sum (mu^2 + exp(v) - v - 1), written out here from the code layer's
// outputs: the naive loss minus the same network's loss with beta = 0.
TEST(kl_term_matches_closed_form) {
    Network net(vae_spec(Loss::bce, 0.7)), plain(vae_spec(Loss::bce, 0.0));
    const auto p = fastae_test::random_doubles(net.n_params(), -0.9, 0.9, 21);
    const auto x = fastae_test::random_doubles(4 * 8, 0.0, 1.0, 22);
    const StepContext context{5, 1, nullptr, 0};
    std::vector<double> g(net.n_params());
    const double with = loss_gradient_naive(net, p.data(), 4, x.data(), x.data(), nullptr, &context, g.data());
    const double without = loss_gradient_naive(plain, p.data(), 4, x.data(), x.data(), nullptr, &context, g.data());
    double kl = 0.0;
    for (int s = 0; s < 4; ++s) {
        std::vector<double> h(6, 0.0), code(6, 0.0);
        for (int o = 0; o < 6; ++o) {
            double v = p[net.layer(0).bias_offset() + std::size_t(o)];
            for (int i = 0; i < 8; ++i) v += p[std::size_t(i) * 6 + std::size_t(o)] * x[std::size_t(s) * 8 + std::size_t(i)];
            h[std::size_t(o)] = std::tanh(v);
        }
        for (int o = 0; o < 6; ++o) {
            double v = p[net.layer(1).bias_offset() + std::size_t(o)];
            for (int i = 0; i < 6; ++i) v += p[net.layer(1).offset + std::size_t(i) * 6 + std::size_t(o)] * h[std::size_t(i)];
            code[std::size_t(o)] = v;
        }
        for (int i = 0; i < 3; ++i) {
            const double mu = code[std::size_t(i)], lv = code[3 + std::size_t(i)];
            kl += 0.5 * (mu * mu + std::exp(lv) - lv - 1.0);
        }
    }
    CHECK_NEAR(with - without, 0.7 * kl / 4, 1e-12);
}

// The fast float32 step (a session's gradient, threads 1 and 3) against the naive float64 one with
// the same rows, epoch and seed: the same eps and the same warm-up weight.
TEST(session_gradient_matches_naive) {
    for (int threads : {1, 3}) {
        Model model(vae_spec(Loss::bce, 1.0, 4));
        model.init_weights(11);
        const std::size_t n = 9;
        const std::vector<float> x = fastae_test::random_vector(n * 8, 0.0f, 1.0f, 12);
        TrainOptions options;
        options.batch_size = int(n);
        options.n_threads = threads;
        options.seed = 77;
        TrainingData data;
        data.n = n;
        data.x = x.data();
        TrainingSession session(model, data, OptimizerConfig{}, options);
        const std::size_t rows[9] = {8, 0, 5, 3, 1, 2, 7, 6, 4};
        Batch batch;
        batch.rows = rows;
        batch.size = n;
        batch.epoch = 2;  // beta_e = 1 * 2 / 4
        const double loss = session.compute_gradients(batch);
        session.reduce();
        Network net(vae_spec(Loss::bce, 1.0, 4));
        std::vector<double> pd(model.params(), model.params() + model.n_params()), xd(n * 8), g(model.n_params());
        for (std::size_t j = 0; j < n; ++j) {
            for (int i = 0; i < 8; ++i) xd[j * 8 + std::size_t(i)] = x[rows[j] * 8 + std::size_t(i)];
        }
        const StepContext context{77, 2, rows, 0};
        const double want = loss_gradient_naive(net, pd.data(), n, xd.data(), xd.data(), nullptr, &context, g.data());
        CHECK_NEAR(loss, want, 1e-5 * std::fabs(want));
        const float* grad = session.gradient();
        double largest = 0;
        for (double v : g) largest = std::max(largest, std::fabs(v));
        for (std::size_t i = 0; i < g.size(); ++i) CHECK_NEAR(grad[i], g[i], 2e-5 * largest);
        const char* names[TrainingSession::kMaxLossParts];
        double values[TrainingSession::kMaxLossParts];
        CHECK(session.loss_parts(names, values) == 2);
        CHECK(std::string(names[0]) == "reconstruction" && std::string(names[1]) == "kl");
        CHECK_NEAR(values[0] + 0.5 * values[1], loss, 1e-9 * std::fabs(loss));
        CHECK(values[1] > 0.0);
    }
}

TEST(kl_warmup_ramps_beta) {
    const VariationalSpec v{true, 2.0, 4};
    CHECK(kl_weight(v, 1) == 0.5);
    CHECK(kl_weight(v, 4) == 2.0);
    CHECK(kl_weight(v, 9) == 2.0);
    CHECK(kl_weight(VariationalSpec{true, 2.0, 0}, 1) == 2.0);
}

// The draws depend on (seed, epoch, row) only: the same for a row wherever it sits, different for
// another row, epoch or seed, and standard normal in the mean.
TEST(code_noise_is_keyed) {
    float a[3], b[3], c[3], d[3];
    code_noise(5, 1, 42, a, 3);
    code_noise(5, 1, 42, b, 3);
    code_noise(5, 2, 42, c, 3);
    code_noise(6, 1, 42, d, 3);
    CHECK(std::equal(a, a + 3, b));
    CHECK(!std::equal(a, a + 3, c));
    CHECK(!std::equal(a, a + 3, d));
    double sum = 0, squares = 0;
    std::vector<float> e(20000 * 2);
    for (std::size_t row = 0; row < 20000; ++row) code_noise(9, 1, row, e.data() + 2 * row, 2);
    for (float v : e) {
        sum += v;
        squares += double(v) * v;
    }
    CHECK(std::fabs(sum / double(e.size())) < 0.02);
    CHECK(std::fabs(squares / double(e.size()) - 1.0) < 0.03);
}

// fit: the same seed and threads give the same weights bit for bit; history has the two parts.
TEST(seed_reproduces_fit_and_reports_parts) {
    const std::size_t n = 40;
    const std::vector<float> x = fastae_test::random_vector(n * 8, 0.0f, 1.0f, 31);
    std::vector<float> first;
    for (int run = 0; run < 2; ++run) {
        Model model(vae_spec(Loss::bce, 1.0, 2));
        model.init_weights(3);
        TrainOptions options;
        options.epochs = 3;
        options.batch_size = 16;
        options.seed = 8;
        options.n_threads = 2;
        std::vector<EpochReport> history;
        model.fit(n, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, options, &history);
        CHECK(history.size() == 3);
        CHECK(history[0].metrics.size() == 2 && history[0].metrics[0].first == "reconstruction" &&
              history[0].metrics[1].first == "kl");
        // epoch 1 weighs the KL by 1/2, epoch 2 by 1
        CHECK_NEAR(history[0].metrics[0].second + 0.5 * history[0].metrics[1].second, history[0].loss, 1e-6);
        CHECK_NEAR(history[1].metrics[0].second + history[1].metrics[1].second, history[1].loss, 1e-6);
        std::vector<float> w(model.params(), model.params() + model.n_params());
        if (run == 0) first = w;
        else CHECK(w == first);
    }
}

// A model read back from its file samples and decodes as the original; inference uses the means.
TEST(file_round_trip_samples_and_decodes) {
    Model model(vae_spec(Loss::bce, 0.5, 3));
    model.init_weights(4);
    const std::vector<std::uint8_t> bytes = model_to_bytes(model);
    // The library's bytes are those of the document's reference writer (VARC after NETW).
    CHECK(bytes == model_file_ref::v2_file(model, OptimizerConfig{}, nullptr, ""));
    const ModelFile file = model_from_bytes(bytes.data(), bytes.size());
    CHECK(file.model.spec().variational.enabled);
    CHECK(file.model.spec().variational.beta == 0.5 && file.model.spec().variational.kl_warmup_epochs == 3);
    std::vector<float> a(5 * 8), b(5 * 8);
    model.sample(5, 123, a.data());
    file.model.sample(5, 123, b.data());
    CHECK(a == b);
    std::vector<float> c(5 * 8);
    file.model.sample(5, 124, c.data());
    CHECK(a != c);
    const std::vector<float> x = fastae_test::random_vector(5 * 8, 0.0f, 1.0f, 5);
    std::vector<float> mean(5 * 3), logvar(5 * 3), codes(5 * 3), out(5 * 8), predicted(5 * 8);
    file.model.encode_gaussian(5, x.data(), mean.data(), logvar.data());
    file.model.encode(5, x.data(), codes.data());
    CHECK(mean == codes);
    file.model.decode(5, codes.data(), out.data());
    file.model.predict(5, x.data(), predicted.data());
    for (std::size_t i = 0; i < out.size(); ++i) CHECK_NEAR(out[i], predicted[i], 1e-6);
    // The ELBO's parts: KL as its closed form from encode_gaussian, and the same in any order.
    std::vector<float> rec(5), kl(5), rec2(5), kl2(5);
    file.model.elbo_terms(5, x.data(), 9, rec.data(), kl.data());
    std::vector<float> reversed(x.size());
    for (int s = 0; s < 5; ++s) std::copy(x.begin() + s * 8, x.begin() + s * 8 + 8, reversed.begin() + (4 - s) * 8);
    file.model.elbo_terms(5, reversed.data(), 9, rec2.data(), kl2.data());
    for (int s = 0; s < 5; ++s) {
        double want = 0;
        for (int i = 0; i < 3; ++i) {
            const double m = mean[std::size_t(s) * 3 + std::size_t(i)], v = logvar[std::size_t(s) * 3 + std::size_t(i)];
            want += 0.5 * (m * m + std::exp(v) - v - 1.0);
        }
        CHECK_NEAR(kl[std::size_t(s)], want, 1e-5 * want + 1e-6);
        CHECK(rec[std::size_t(s)] == rec2[std::size_t(4 - s)] && kl[std::size_t(s)] == kl2[std::size_t(4 - s)]);
        CHECK(rec[std::size_t(s)] > 0.0f);
    }
}

// The helper C++ hosts use for Python's network: 784-256-(2x32)-256-784 as the estimator builds it.
TEST(variational_autoencoder_spec_is_the_estimators_network) {
    const NetworkSpec spec = variational_autoencoder_spec(784, {256, 32}, 0.5, 3);
    Model model(spec);
    CHECK(model.n_layers() == 4 && model.code_size() == 32 && model.n_encoder_layers() == 2);
    CHECK(model.spec().layers[1].units == 64 && model.spec().layers[1].activation.kind == Activation::linear);
    CHECK(model.spec().layers[0].activation.kind == Activation::relu);
    CHECK(model.spec().layers[2].activation.kind == Activation::relu);
    CHECK(model.spec().layers[3].activation.kind == Activation::sigmoid && model.spec().head.loss == Loss::bce);
    CHECK(model.n_params() == std::size_t(784 * 256 + 256 + 256 * 64 + 64 + 32 * 256 + 256 + 256 * 784 + 784));
    CHECK(model.spec().variational.beta == 0.5 && model.spec().variational.kl_warmup_epochs == 3);
    const Model alone(variational_autoencoder_spec(10, {3}));
    CHECK(alone.n_layers() == 2 && alone.code_size() == 3 && alone.n_params() == std::size_t(10 * 6 + 6 + 3 * 10 + 10));
}
