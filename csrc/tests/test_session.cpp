// test_session.cpp -- the three-call training step (fastae/training.h) as a host drives it: a host
// loop equals Model::fit bit for bit, apply() without reduce() equals reduce() then apply(), the
// MPI normaliser (global_size), the l1/l2 penalty terms, divergence, bad data, sample weights,
// and the session's claim on the model (threads: test_session_threads.cpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "fastae/fastae.h"
#include "fastae/training.h"
#include "rng.h"
#include "test_data.h"

using namespace fastae;
using fastae_test::make_data;
using fastae_test::gradient_of;
using fastae_test::params_of;

namespace {

// 10 -> 12 (relu, dropout 0.2, l1) -> 6 (elu, l2) -> 4 (sigmoid), mse: dropout and penalties
// ride along in every comparison.
NetworkSpec session_spec() {
    NetworkSpec spec;
    spec.n_inputs = 10;
    spec.layers.resize(3);
    spec.layers[0].units = 12;
    spec.layers[0].dropout = 0.2;
    spec.layers[0].l1 = 1e-3;
    spec.layers[1].units = 6;
    spec.layers[1].activation = fastae_test::test_activation(Activation::elu);
    spec.layers[1].l2 = 2e-3;
    spec.layers[2].units = 4;
    spec.layers[2].activation = activation_spec(Activation::sigmoid);
    spec.head.loss = Loss::mse;
    return spec;
}

struct Dataset {
    std::size_t n;
    std::vector<float> x, y, w;
    TrainingData data(bool weighted = true) const {
        TrainingData d;
        d.n = n;
        d.x = x.data();
        d.y = y.data();
        d.sample_weight = weighted ? w.data() : nullptr;
        return d;
    }
};

Dataset make_dataset(std::size_t n, unsigned seed) {
    Dataset d;
    d.n = n;
    d.x = make_data(n, 10, seed);
    d.y = fastae_test::uniform_data(n, 4, seed + 1);
    d.w = fastae_test::random_vector(n, 0.0f, 2.0f, seed + 2);
    return d;
}

Model make_model(unsigned seed, const NetworkSpec& spec = session_spec()) {
    Model m(spec);
    m.init_weights(seed);
    return m;
}

// Largest |a - b| relative to b's largest entry.
double relative_gap(const std::vector<float>& a, const std::vector<float>& b) {
    double largest = 0;
    const double gap = fastae_test::max_abs_diff(a, b, &largest);
    return largest > 0 ? gap / largest : gap;
}

}  // namespace

// A host loop over the batches fit makes (shuffle off: consecutive rows; on: the rows of the
// seeded shuffle, as trainer.cpp draws it) gives fit's weights, epoch losses and optimizer state
// bit for bit, for one thread and three.
TEST(host_loop_equals_fit_bit_for_bit) {
    const Dataset ds = make_dataset(150, 1);
    const TrainingData data = ds.data();
    OptimizerConfig opt;
    opt.learning_rate = 3e-3;
    for (int threads : {1, 3}) {
        for (bool shuffle : {false, true}) {
            TrainOptions t;
            t.epochs = 3;
            t.batch_size = 32;  // 150 = 4 * 32 + 22: a partial last batch
            t.shuffle = shuffle;
            t.seed = 77;
            t.n_threads = threads;
            Model by_fit = make_model(5);
            std::vector<EpochReport> history;
            by_fit.fit(data, nullptr, opt, t, &history);

            Model by_host = make_model(5);
            std::vector<double> epoch_loss;
            {
                TrainingSession s(by_host, data, opt, t);
                std::vector<std::size_t> order(ds.n);
                std::iota(order.begin(), order.end(), std::size_t(0));
                detail::Rng rng(t.seed);
                for (int epoch = 1; epoch <= t.epochs; ++epoch) {
                    if (shuffle) rng.shuffle(order.data(), ds.n);
                    double sum = 0;
                    for (std::size_t start = 0; start < ds.n; start += 32) {
                        Batch b;
                        b.rows = shuffle ? order.data() + start : nullptr;
                        b.first = start;
                        b.size = std::min<std::size_t>(32, ds.n - start);
                        b.epoch = epoch;
                        const double loss = s.compute_gradients(b);
                        s.reduce();
                        sum += s.apply(loss) * double(b.size);
                    }
                    epoch_loss.push_back(sum / double(ds.n));
                }
                CHECK(s.steps() == 15);
            }
            CHECK(params_of(by_host) == params_of(by_fit));
            CHECK(history.size() == epoch_loss.size());
            for (std::size_t e = 0; e < history.size() && e < epoch_loss.size(); ++e) CHECK(history[e].loss == epoch_loss[e]);
            // The session left its optimizer state in the model, as fit does.
            CHECK(by_host.has_optimizer_state() && by_host.optimizer_state().steps == 15);
            CHECK(by_host.optimizer_state().m == by_fit.optimizer_state().m);
            CHECK(by_host.optimizer_state().v == by_fit.optimizer_state().v);
        }
    }
}

// apply() sums the threads' buffers itself when reduce() was not called; the result is the same
// bit for bit. After reduce(), gradient() holds the batch's whole data gradient.
TEST(apply_without_reduce_equals_reduce_then_apply) {
    const Dataset ds = make_dataset(90, 2);
    const TrainingData data = ds.data();
    TrainOptions t;
    t.batch_size = 30;
    t.n_threads = 3;
    for (OptimizerKind kind : all_optimizers()) {
        OptimizerConfig opt;
        opt.kind = kind;
        opt.learning_rate = 1e-2;
        Model a = make_model(3), b = make_model(3);
        {
            TrainingSession sa(a, data, opt, t), sb(b, data, opt, t);
            for (int step = 0; step < 6; ++step) {
                Batch batch;
                batch.first = std::size_t(step % 3) * 30;
                batch.size = 30;
                batch.epoch = 1 + step / 3;
                const double la = sa.compute_gradients(batch);
                const double lb = sb.compute_gradients(batch);
                CHECK(la == lb);
                sa.reduce();
                CHECK(sa.apply(la) == sb.apply(lb));
                CHECK(std::equal(sa.params(), sa.params() + sa.n_params(), sb.params()));
            }
        }
        CHECK(params_of(a) == params_of(b));
    }
}

// The mean over a batch is over global_size samples (the whole batch across processes): the
// same rows with global_size = 2 * size give half the loss and half the gradient, exactly (the
// scale is a power of two). Two "processes" that each compute half of a batch with
// global_size = the whole batch add up to the one-process loss and gradient; applying the summed
// gradient on both leaves them with the same weights as each other.
TEST(global_size_is_the_mpi_normaliser) {
    const Dataset ds = make_dataset(40, 3);
    const TrainingData data = ds.data();
    OptimizerConfig opt;
    TrainOptions t;
    t.batch_size = 40;
    t.n_threads = 2;
    Model m = make_model(4);
    std::vector<float> whole, halved;
    double whole_loss = 0, halved_loss = 0;
    {
        TrainingSession s(m, data, opt, t);
        Batch b;
        b.size = 40;
        whole_loss = s.compute_gradients(b);
        s.reduce();
        whole = gradient_of(s);
        b.global_size = 80;
        halved_loss = s.compute_gradients(b);
        s.reduce();
        halved = gradient_of(s);
    }
    CHECK(halved_loss == 0.5 * whole_loss);
    bool exact = true;
    for (std::size_t i = 0; i < whole.size(); ++i) exact = exact && halved[i] == 0.5f * whole[i];
    CHECK(exact);

    // Two processes, rows 0..19 and 20..39, each with global_size 40.
    Model p0 = make_model(4), p1 = make_model(4);
    {
        TrainingSession s0(p0, data, opt, t), s1(p1, data, opt, t);
        Batch b0, b1;
        b0.first = 0;
        b1.first = 20;
        b0.size = b1.size = 20;
        b0.global_size = b1.global_size = 40;
        const double loss = s0.compute_gradients(b0) + s1.compute_gradients(b1);
        CHECK_NEAR(loss, whole_loss, 1e-6 * whole_loss);
        s0.reduce();
        s1.reduce();
        std::vector<float> sum(s0.n_params());
        for (std::size_t i = 0; i < sum.size(); ++i) sum[i] = s0.gradient()[i] + s1.gradient()[i];  // the allreduce
        CHECK(relative_gap(sum, whole) < 1e-6);
        std::copy(sum.begin(), sum.end(), s0.gradient());
        std::copy(sum.begin(), sum.end(), s1.gradient());
        CHECK(s0.apply(loss) == s1.apply(loss));
    }
    CHECK(params_of(p0) == params_of(p1));
}

// The penalty terms: apply() adds exactly l1 * sign(w) + 2 l2 w to the gradient of each
// penalised layer's W, nothing to biases or unpenalised layers; one SGD step (momentum 0) then
// moves every parameter by -lr times that gradient. last_penalty() is
// l1 * sum |W| + l2 * sum W^2 over the penalised layers, and apply returns loss + penalty.
TEST(penalties_go_to_the_weights_only) {
    NetworkSpec spec = session_spec();
    spec.layers[0].dropout = 0.0;
    spec.layers[0].l1 = 0.05;
    spec.layers[0].l2 = 0.1;
    spec.layers[1].l1 = 0.0;
    spec.layers[1].l2 = 0.0;  // unpenalised
    spec.layers[2].l2 = 0.2;
    const Dataset ds = make_dataset(30, 4);
    const TrainingData data = ds.data();
    OptimizerConfig opt;
    opt.kind = OptimizerKind::sgd;
    opt.learning_rate = 0.1;
    for (int threads : {1, 3}) {
        Model m(spec);
        // Nonzero biases (init_weights leaves them 0, where a penalty would not show) and a zero
        // weight (sign 0).
        std::vector<float> p = fastae_test::random_vector(m.n_params(), -0.7f, 0.7f, 9);
        p[3] = 0.0f;
        m.set_params(p.data(), p.size());
        TrainOptions t;
        t.batch_size = 30;
        t.n_threads = threads;
        TrainingSession s(m, data, opt, t);
        Batch b;
        b.size = 30;
        const double loss = s.compute_gradients(b);
        s.reduce();
        const std::vector<float> g = gradient_of(s);
        const double returned = s.apply(loss);
        double want_penalty = 0;
        std::vector<double> want(p.size());
        std::size_t offset = 0;
        int n_in = spec.n_inputs;
        for (const LayerSpec& layer : spec.layers) {
            const std::size_t n_w = std::size_t(n_in) * std::size_t(layer.units);
            for (std::size_t i = offset; i < offset + n_w + std::size_t(layer.units); ++i) {
                double grad = g[i];
                if (i < offset + n_w) {  // W
                    const double w = p[i];
                    grad += layer.l1 * double((w > 0) - (w < 0)) + 2 * layer.l2 * w;
                    // The session keeps l1 and l2 as floats: the value uses those.
                    want_penalty += double(float(layer.l1)) * std::fabs(w) + double(float(layer.l2)) * w * w;
                }
                want[i] = double(p[i]) - 0.1 * grad;
            }
            offset += n_w + std::size_t(layer.units);
            n_in = layer.units;
        }
        CHECK(offset == p.size());
        double worst = 0;
        for (std::size_t i = 0; i < p.size(); ++i) worst = std::max(worst, std::fabs(s.params()[i] - want[i]));
        CHECK(worst < 1e-7);
        CHECK_NEAR(s.last_penalty(), want_penalty, 1e-12 * want_penalty);
        CHECK(want_penalty > 0.1);
        CHECK_NEAR(returned, loss + s.last_penalty(), 1e-12);
    }
}

// A step whose new weights are not finite throws TrainingDiverged and leaves the weights of the
// step before, bit for bit; a non-finite loss throws before any update.
TEST(divergence_restores_the_weights_before_the_step) {
    NetworkSpec spec = session_spec();
    spec.layers[2].activation = activation_spec(Activation::linear);
    const Dataset ds = make_dataset(32, 5);
    const TrainingData data = ds.data(false);
    OptimizerConfig opt;
    opt.kind = OptimizerKind::sgd;
    opt.learning_rate = 1e30;
    TrainOptions t;
    t.batch_size = 16;
    t.n_threads = 2;
    Model m = make_model(6, spec);
    TrainingSession s(m, data, opt, t);
    bool thrown = false;
    for (int step = 0; step < 50 && !thrown; ++step) {
        Batch b;
        b.first = std::size_t(step % 2) * 16;
        b.size = 16;
        const std::vector<float> before(s.params(), s.params() + s.n_params());
        double loss = 0;
        try {
            loss = s.compute_gradients(b);
        } catch (const std::exception& e) {
            fastae_test::fail(__FILE__, __LINE__, e.what());
            break;
        }
        try {
            s.apply(loss);
        } catch (const TrainingDiverged& e) {
            thrown = true;
            CHECK(std::string(e.what()).find("non-finite") != std::string::npos);
            CHECK(std::equal(before.begin(), before.end(), s.params()));
        }
    }
    CHECK(thrown);
    for (std::size_t i = 0; i < s.n_params(); ++i) CHECK(std::isfinite(s.params()[i]));
    const std::int64_t steps = s.steps();
    const std::vector<float> before(s.params(), s.params() + s.n_params());
    CHECK_THROWS(s.apply(std::numeric_limits<double>::quiet_NaN()), TrainingDiverged);
    CHECK_THROWS(s.apply(std::numeric_limits<double>::infinity()), TrainingDiverged);
    CHECK(s.steps() == steps);
    CHECK(std::equal(before.begin(), before.end(), s.params()));
}

// compute_gradients checks the batch's rows (when check_data is on) and names the dataset row
// and column of the first bad value, also for rows given by index; batches that do not fit the
// session are refused.
TEST(bad_data_is_named_by_row_and_column) {
    Dataset ds = make_dataset(60, 6);
    ds.x[37 * 10 + 4] = std::nanf("");
    ds.y[41 * 4 + 2] = std::numeric_limits<float>::infinity();
    ds.w[50] = -1.0f;
    const TrainingData data = ds.data();
    TrainOptions t;
    t.batch_size = 20;
    t.n_threads = 2;
    Model m = make_model(7);
    TrainingSession s(m, data, OptimizerConfig{}, t);
    auto message = [&s](const Batch& b) -> std::string {
        try {
            s.compute_gradients(b);
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "";
    };
    Batch b;
    b.first = 20;
    b.size = 20;
    const std::string x_error = message(b);
    CHECK(x_error.find("X") == 0 && x_error.find("row 37, column 4") != std::string::npos);
    std::vector<std::size_t> rows = {3, 41, 5};
    b.rows = rows.data();
    b.size = 3;
    const std::string y_error = message(b);
    CHECK(y_error.find("y") == 0 && y_error.find("row 41, column 2") != std::string::npos);
    rows = {50, 2};
    b.size = 2;
    const std::string w_error = message(b);
    CHECK(w_error.find("sample_weight") != std::string::npos && w_error.find("row 50") != std::string::npos);
    // Batches the session cannot take.
    rows = {1, 60};
    CHECK(message(b).find("past the end") != std::string::npos);
    b.rows = nullptr;
    b.first = 0;
    b.size = 21;
    CHECK(message(b).find("batch_size") != std::string::npos);  // more than batch_size rows
    b.first = 50;
    b.size = 11;
    CHECK(message(b).find("past the end") != std::string::npos);
    b.size = 0;
    CHECK(!message(b).empty());
    // With the checks off, the NaN goes through to the loss; apply then refuses it.
    s.set_check_data(false);
    b.first = 20;
    b.size = 20;
    const double loss = s.compute_gradients(b);
    CHECK(std::isnan(loss));
    CHECK_THROWS(s.apply(loss), TrainingDiverged);
}

// Sample weights: weights all 2 give twice the loss and gradient of weights all 1; a row of
// weight 0 contributes nothing, exactly as if it were absent: the batch of the other rows (by
// index, so that each keeps its dropout mask) with the same normaliser (global_size 24).
TEST(sample_weights_scale_the_gradient) {
    Dataset ds = make_dataset(24, 8);
    TrainOptions t;
    t.batch_size = 24;
    t.n_threads = 3;
    auto gradient = [&](const Dataset& d, const std::vector<std::size_t>* rows, double* loss) {
        Model m = make_model(9);
        TrainingSession s(m, d.data(), OptimizerConfig{}, t);
        Batch b;
        b.rows = rows ? rows->data() : nullptr;
        b.size = rows ? rows->size() : d.n;
        b.global_size = d.n;
        *loss = s.compute_gradients(b);
        s.reduce();
        return gradient_of(s);
    };
    double l1 = 0, l2 = 0, lz = 0, la = 0;
    std::fill(ds.w.begin(), ds.w.end(), 1.0f);
    const auto g1 = gradient(ds, nullptr, &l1);
    std::fill(ds.w.begin(), ds.w.end(), 2.0f);
    const auto g2 = gradient(ds, nullptr, &l2);
    CHECK_NEAR(l2, 2 * l1, 1e-6 * l1);
    std::vector<float> twice(g1.size());
    for (std::size_t i = 0; i < g1.size(); ++i) twice[i] = 2.0f * g1[i];
    CHECK(relative_gap(g2, twice) < 1e-6);

    ds.w = fastae_test::random_vector(24, 0.5f, 2.0f, 10);
    ds.w[13] = 0.0f;
    const auto gz = gradient(ds, nullptr, &lz);
    std::vector<std::size_t> others;
    for (std::size_t i = 0; i < 24; ++i) {
        if (i != 13) others.push_back(i);
    }
    const auto ga = gradient(ds, &others, &la);
    CHECK_NEAR(lz, la, 1e-6 * la);
    CHECK(relative_gap(gz, ga) < 1e-6);
    // Row 13 does count when it has weight: the check above can see a row.
    ds.w[13] = 1.0f;
    double lw = 0;
    CHECK(relative_gap(gradient(ds, nullptr, &lw), ga) > 1e-4);
}

// A session claims its model as fit does: other use is refused until it ends; it leaves its
// optimizer state in the model only once a step was applied; evaluate() is the model's loss.
TEST(session_claims_the_model) {
    const Dataset ds = make_dataset(50, 11);
    const TrainingData data = ds.data(false);
    Model m = make_model(12);
    std::vector<float> out(50 * 4);
    TrainOptions t;
    t.batch_size = 25;
    {
        TrainingSession s(m, data, OptimizerConfig{}, t);
        CHECK_THROWS(m.predict(50, ds.x.data(), out.data()), std::runtime_error);
        CHECK_THROWS(m.init_weights(1), std::runtime_error);
        CHECK_THROWS(TrainingSession(m, data, OptimizerConfig{}, t), std::runtime_error);
    }
    CHECK(!m.has_optimizer_state());  // no step was applied
    m.predict(50, ds.x.data(), out.data());
    double evaluated = 0;
    {
        TrainingSession s(m, data, OptimizerConfig{}, t);
        Batch b;
        b.size = 25;
        s.apply(s.compute_gradients(b));
        evaluated = s.evaluate(data);
    }
    CHECK(m.has_optimizer_state() && m.optimizer_state().steps == 1);
    const double loss = m.loss(50, ds.x.data(), ds.y.data());
    CHECK_NEAR(evaluated, loss, 1e-6 * loss);
    // Bad options or shapes are refused before anything is claimed.
    TrainOptions bad = t;
    bad.batch_size = 0;
    CHECK_THROWS(TrainingSession(m, data, OptimizerConfig{}, bad), std::invalid_argument);
    TrainingData no_targets = data;
    no_targets.y = nullptr;  // 10 inputs, 4 outputs: targets are required
    CHECK_THROWS(TrainingSession(m, no_targets, OptimizerConfig{}, t), std::invalid_argument);
    m.predict(50, ds.x.data(), out.data());  // not claimed by the refused sessions
}
