// test_gradients.cpp -- analytic gradients against central finite differences in float64, for
// every hidden activation and every loss (with every output activation mse allows).
#include <random>
#include <vector>

#include "check.h"
#include "network.h"

using namespace fastae;
using namespace fastae::detail;

namespace {

double max_fd_error(const NetworkConfig& cfg, unsigned seed) {
    Network net(cfg);
    std::mt19937_64 gen(seed);
    std::uniform_real_distribution<double> w(-0.8, 0.8), u(0.05, 0.95);
    const std::size_t n = 5;
    const int d_in = net.width(0), d_out = net.width(net.n_layers());
    std::vector<double> p(net.n_params()), x(n * std::size_t(d_in)), y(n * std::size_t(d_out));
    for (auto& v : p) v = w(gen);
    for (auto& v : x) v = u(gen);
    for (auto& v : y) v = u(gen);
    std::vector<double> grad(net.n_params()), scratch(net.n_params());
    loss_gradient_naive(net, p.data(), n, x.data(), y.data(), grad.data());
    const double h = 1e-6;
    double worst = 0, largest = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
        const double keep = p[i];
        p[i] = keep + h;
        const double up = loss_gradient_naive(net, p.data(), n, x.data(), y.data(), scratch.data());
        p[i] = keep - h;
        const double down = loss_gradient_naive(net, p.data(), n, x.data(), y.data(), scratch.data());
        p[i] = keep;
        const double fd = (up - down) / (2 * h);
        worst = std::max(worst, std::fabs(fd - grad[i]));
        largest = std::max(largest, std::fabs(grad[i]));
    }
    // Largest error relative to the gradient's scale (a per-element ratio would divide
    // roundoff by near-zero entries).
    return largest > 0 ? worst / largest : 1.0;
}

}  // namespace

TEST(finite_differences_every_activation_and_loss) {
    const Activation acts[] = {Activation::linear, Activation::relu, Activation::sigmoid, Activation::tanh};
    for (Activation hidden : acts) {
        NetworkConfig cfg;
        cfg.layer_sizes = {6, 4, 3, 5};
        cfg.activation = hidden;
        cfg.output_activation = Activation::sigmoid;
        cfg.loss = Loss::bce;
        CHECK_NEAR(max_fd_error(cfg, 11), 0.0, 1e-6);
        for (Activation out : acts) {
            cfg.output_activation = out;
            cfg.loss = Loss::mse;
            CHECK_NEAR(max_fd_error(cfg, 12), 0.0, 1e-6);
        }
    }
}

TEST(float32_gradient_matches_float64_gradient) {
    // The fast float32 kernel against the float64 gradient that finite differences vouch for.
    NetworkConfig cfg;
    cfg.layer_sizes = {20, 8, 20};
    Network net(cfg);
    std::mt19937_64 gen(3);
    std::uniform_real_distribution<float> w(-0.5f, 0.5f), u(0.0f, 1.0f);
    const std::size_t n = 16;
    std::vector<float> p(net.n_params()), x(n * 20);
    for (auto& v : p) v = w(gen);
    for (auto& v : x) v = u(gen);
    std::vector<double> pd(p.begin(), p.end()), xd(x.begin(), x.end()), want(net.n_params());
    loss_gradient_naive(net, pd.data(), n, xd.data(), xd.data(), want.data());
    Workspace ws(net, n);
    std::vector<float> grad(net.n_params());
    loss_gradient_batch(net, p.data(), ConstMatrixMap(x.data(), 20, n), ConstMatrixMap(x.data(), 20, n),
                        1.0f / float(n * 20), ws, grad.data());
    for (std::size_t i = 0; i < grad.size(); ++i) CHECK_NEAR(grad[i], want[i], 1e-6 + 1e-4 * std::fabs(want[i]));
}
