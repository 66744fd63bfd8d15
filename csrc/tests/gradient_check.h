// gradient_check.h -- what the tests of objective terms share (test_activity_terms.cpp,
// test_tied_frozen.cpp): data in (0, 1), one batch's gradient from a TrainingSession, the same
// batch through the naive twin (network.h: loss_gradient_naive, in double), and the naive twin's
// float64 central finite differences.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include "fastae/model.h"
#include "fastae/training.h"
#include "network.h"

namespace fastae_test {

inline std::vector<float> unit_data(std::size_t n, std::size_t d, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(0.05f, 0.95f);
    std::vector<float> x(n * d);
    for (float& v : x) v = u(gen);
    return x;
}

// The session's gradient of one batch (the given rows of x, in epoch `epoch`, seed 42: the keys of
// dropout and noise) after reduce(), and its returned loss. SGD: apply is never called.
inline std::vector<float> session_gradient(fastae::Model& model, const std::vector<float>& x, std::size_t n,
                                           int threads, const std::vector<std::size_t>& rows, int epoch,
                                           double* loss) {
    fastae::TrainingData data;
    data.n = n;
    data.x = x.data();
    fastae::TrainOptions options;
    options.batch_size = int(rows.size());
    options.n_threads = threads;
    options.seed = 42;
    fastae::OptimizerConfig sgd;
    sgd.kind = fastae::OptimizerKind::sgd;
    fastae::TrainingSession session(model, data, sgd, options);
    fastae::Batch b;
    b.rows = rows.data();
    b.size = rows.size();
    b.epoch = epoch;
    *loss = session.compute_gradients(b);
    session.reduce();
    return std::vector<float>(session.gradient(), session.gradient() + session.n_params());
}

// The naive twin on the same batch (rows of the d-wide x, the session's keys): its loss, and its
// gradient into want.
inline double naive_gradient(const fastae::Model& model, const std::vector<float>& x, std::size_t d,
                             const std::vector<std::size_t>& rows, int epoch, std::vector<double>& want) {
    const fastae::detail::Network net(model.spec());
    const std::vector<double> p(model.params(), model.params() + model.n_params());
    std::vector<double> xb;
    for (std::size_t r : rows) xb.insert(xb.end(), x.begin() + std::ptrdiff_t(r * d), x.begin() + std::ptrdiff_t(r * d + d));
    const fastae::detail::StepContext ctx{42, epoch, rows.data(), 0, double(rows.size())};
    want.assign(model.n_params(), 0.0);
    return fastae::detail::loss_gradient_naive(net, p.data(), rows.size(), xb.data(), xb.data(), nullptr, &ctx,
                                               want.data());
}

// The largest |got - want| and the largest |want|.
inline void gradient_error(const std::vector<float>& got, const std::vector<double>& want, double* max_err,
                           double* max_ref) {
    *max_err = *max_ref = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        *max_err = std::max(*max_err, std::fabs(got[i] - want[i]));
        *max_ref = std::max(*max_ref, std::fabs(want[i]));
    }
}

// The largest difference between the naive twin's gradient at p and central differences (step
// 1e-6) of its own loss, over every `stride`-th parameter, with the context (noise, masks) fixed.
inline double naive_vs_finite_differences(const fastae::detail::Network& net, std::vector<double>& p, std::size_t n,
                                          const std::vector<double>& x, const fastae::detail::StepContext& ctx,
                                          std::size_t stride) {
    std::vector<double> grad(p.size()), scratch(p.size());
    fastae::detail::loss_gradient_naive(net, p.data(), n, x.data(), x.data(), nullptr, &ctx, grad.data());
    const double h = 1e-6;
    double worst = 0;
    for (std::size_t i = 0; i < p.size(); i += stride) {
        const double keep = p[i];
        p[i] = keep + h;
        const double up = fastae::detail::loss_gradient_naive(net, p.data(), n, x.data(), x.data(), nullptr, &ctx, scratch.data());
        p[i] = keep - h;
        const double down = fastae::detail::loss_gradient_naive(net, p.data(), n, x.data(), x.data(), nullptr, &ctx, scratch.data());
        p[i] = keep;
        worst = std::max(worst, std::fabs((up - down) / (2 * h) - grad[i]));
    }
    return worst;
}

}  // namespace fastae_test
