// test_concurrency.cpp -- one Model used from several threads at once: concurrent inference gives
// the serial results, and fit or a setter that would overlap other use is refused with
// std::runtime_error (model.h, "Threads") and changes nothing, as is use while a TrainingSession
// holds the model; inference's kept workspaces take memory for what they compute. Run under
// ASan/UBSan in CI.
#include <atomic>
#include <chrono>
#include <cmath>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "fastae/fastae.h"
#include "fastae/training.h"
#include "test_data.h"

using namespace fastae;

namespace {

using fastae_test::params_of;
using fastae_test::resident_bytes;
using fastae_test::uniform_data;

NetworkConfig config(int d, int hidden) {
    NetworkConfig c;
    c.layer_sizes = {d, hidden, d};
    return c;
}

// The message of the std::runtime_error (a refusal) `call` throws, or "" if it throws nothing.
template <typename Call>
std::string refusal_of(Call&& call) {
    return fastae_test::message_of<std::runtime_error>(call);
}

// predict, encode and sample_losses of x (n rows) at each thread count, `calls` times each, bit
// for bit against one thread's.
void check_threads_match_one(const Model& m, std::size_t n, const std::vector<float>& x,
                             std::initializer_list<int> thread_counts, int calls) {
    const auto d = std::size_t(m.n_inputs()), code = std::size_t(m.code_size());
    std::vector<float> one(n * d), many(n * d), codes_one(n * code), codes_many(n * code), l_one(n), l_many(n);
    m.predict(n, x.data(), one.data(), 1);
    m.encode(n, x.data(), codes_one.data(), 1);
    m.sample_losses(n, x.data(), nullptr, l_one.data(), 1);
    for (int threads : thread_counts) {
        for (int call = 0; call < calls; ++call) {
            m.predict(n, x.data(), many.data(), threads);
            m.encode(n, x.data(), codes_many.data(), threads);
            m.sample_losses(n, x.data(), nullptr, l_many.data(), threads);
            const std::string at = std::to_string(threads) + " threads";
            CHECK_IN(many == one, "predict, " + at);
            CHECK_IN(codes_many == codes_one, "encode, " + at);
            CHECK_IN(l_many == l_one, "sample_losses, " + at);
        }
    }
}

}  // namespace

TEST(eight_threads_of_inference_match_serial_results) {
    const int d = 32;
    const std::size_t n = 700;  // more than one inference chunk, and a partial one
    auto x = uniform_data(n, d, 1);
    Model m(config(d, 12));
    m.init_weights(3);
    std::vector<float> ref_out(n * d), ref_codes(n * 12), ref_losses(n);
    m.predict(n, x.data(), ref_out.data());
    m.encode(n, x.data(), ref_codes.data());
    m.sample_losses(n, x.data(), nullptr, ref_losses.data());

    constexpr int kThreads = 8, kRounds = 20;
    std::vector<int> mismatches(kThreads, 0);
    std::vector<std::thread> team;
    for (int t = 0; t < kThreads; ++t) {
        team.emplace_back([&, t] {
            std::vector<float> out(n * d), codes(n * 12), losses(n);
            for (int r = 0; r < kRounds; ++r) {
                m.predict(n, x.data(), out.data());
                m.encode(n, x.data(), codes.data());
                m.sample_losses(n, x.data(), nullptr, losses.data());
                mismatches[std::size_t(t)] += int(out != ref_out) + int(codes != ref_codes) + int(losses != ref_losses);
            }
        });
    }
    for (auto& th : team) th.join();
    for (int v : mismatches) CHECK(v == 0);
}

TEST(use_during_fit_is_refused_and_changes_nothing) {
    const int d = 16;
    const std::size_t n = 200;
    auto x = uniform_data(n, d, 2);
    TrainOptions t;
    t.epochs = 2;
    t.batch_size = 32;
    t.seed = 7;

    // The same training with no interference, for comparison.
    Model alone(config(d, 6));
    alone.init_weights(1);
    alone.fit(n, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t);

    Model m(config(d, 6));
    m.init_weights(1);
    std::atomic<bool> in_fit{false}, probed{false};
    TrainOptions paused = t;
    paused.on_epoch = [&](const EpochReport& r) {
        if (r.epoch == 1) {  // hold fit here, between epochs, while the main thread probes
            in_fit = true;
            while (!probed) std::this_thread::yield();
        }
        return true;
    };
    std::thread trainer([&] { m.fit(n, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, paused); });
    while (!in_fit) std::this_thread::yield();

    std::vector<float> out(n * d), params(m.n_params(), 0.5f);
    const std::string inference = refusal_of([&] { m.predict(n, x.data(), out.data()); });
    CHECK(inference.find("cannot run inference") != std::string::npos);
    CHECK(inference.find("another thread") != std::string::npos);
    CHECK(!refusal_of([&] { m.encode(n, x.data(), out.data()); }).empty());
    CHECK(!refusal_of([&] { m.sample_losses(n, x.data(), nullptr, out.data()); }).empty());
    CHECK(!refusal_of([&] { m.loss_and_gradient(n, x.data(), nullptr, params.data()); }).empty());
    CHECK(!refusal_of([&] { m.copy_params(params.data()); }).empty());
    CHECK(!refusal_of([&] { m.copy_optimizer_state(); }).empty());
    CHECK(!refusal_of([&] { Model copy(m); }).empty());
    Model target(config(d, 6));
    CHECK(!refusal_of([&] { target = m; }).empty());
    const std::string second_fit =
        refusal_of([&] { m.fit(n, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t); });
    CHECK(second_fit.find("cannot run fit") != std::string::npos);
    CHECK(!refusal_of([&] { m.set_params(params.data(), params.size()); }).empty());
    CHECK(!refusal_of([&] { m.init_weights(99); }).empty());
    CHECK(!refusal_of([&] { m.clear_optimizer_state(); }).empty());
    probed = true;
    trainer.join();

    // The refused calls changed nothing: the weights and optimizer state are those of the
    // undisturbed run, and the model is usable again.
    CHECK(params_of(m) == params_of(alone));
    CHECK(m.optimizer_state().steps == alone.optimizer_state().steps);
    CHECK(m.optimizer_state().m == alone.optimizer_state().m);
    CHECK(m.optimizer_state().v == alone.optimizer_state().v);
    CHECK(refusal_of([&] { m.predict(n, x.data(), out.data()); }).empty());
    target = m;
    CHECK(params_of(target) == params_of(m));
}

TEST(fit_and_setters_during_inference_are_refused) {
    const int d = 64;
    const std::size_t n = 4000;
    auto x = uniform_data(n, d, 3);
    Model m(config(d, 32));
    m.init_weights(5);
    std::vector<float> ref(n * d);
    m.predict(n, x.data(), ref.data());

    std::atomic<bool> stop{false};
    std::atomic<int> mismatches{0}, rounds{0};
    std::thread reader([&] {
        std::vector<float> out(n * d);
        while (!stop) {
            // In a close race both sides may back out (model.cpp, UseGuard): a refused predict
            // is allowed here; a wrong one is not.
            if (!refusal_of([&] { m.predict(n, x.data(), out.data()); }).empty()) continue;
            if (out != ref) ++mismatches;
            ++rounds;
        }
    });
    while (rounds == 0) std::this_thread::yield();  // the reader is running

    // init_weights(5) rewrites the same weights, so one that slips between two predicts changes
    // no result; one that overlaps a predict must be refused.
    int refused = 0;
    std::string message;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (refused < 3 && std::chrono::steady_clock::now() < deadline) {
        const std::string r = refusal_of([&] { m.init_weights(5); });
        if (!r.empty()) {
            ++refused;
            message = r;
        }
    }
    TrainOptions t;
    t.epochs = 1;
    int fit_refused = 0;
    while (fit_refused == 0 && std::chrono::steady_clock::now() < deadline) {
        // epochs = -1 is invalid: a fit that is not refused throws std::invalid_argument before
        // touching the weights, so the reader's results stay comparable.
        t.epochs = -1;
        try {
            m.fit(n, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t);
        } catch (const std::runtime_error& e) {
            fit_refused += std::string(e.what()).find("cannot run fit while") != std::string::npos;
        } catch (const std::invalid_argument&) {
        }
    }
    stop = true;
    reader.join();
    CHECK(refused == 3);
    CHECK(fit_refused == 1);
    CHECK(message.find("cannot run init_weights while") != std::string::npos);
    CHECK(mismatches == 0);
    CHECK(rounds > 0);
}

// Inference split over threads (the n_threads argument): every output equals the one-thread
// result bit for bit, the error named is the first bad row whatever thread met it first, and a
// count below 1 is refused.
TEST(threaded_inference_matches_one_thread_bit_for_bit) {
    const int d = 24;
    Model m(config(d, 7));
    m.init_weights(5);
    const std::size_t n = 256 * 9 + 77;  // ten chunks, the last one partial
    const auto x = uniform_data(n, d, 6);
    check_threads_match_one(m, n, x, {2, 3, 8, 64}, 1);
    for (int threads : {2, 3, 8, 64}) CHECK(m.loss(n, x.data(), nullptr, threads) == m.loss(n, x.data(), nullptr, 1));
    auto bad = x;
    bad[(256 * 2 + 10) * d + 3] = std::nanf("");  // chunk 2
    bad[(256 * 7 + 1) * d + 5] = std::nanf("");   // chunk 7
    std::vector<float> out(n * d), codes(n * 7);
    for (int repeat = 0; repeat < 10; ++repeat) {
        const std::string what = fastae_test::invalid_argument_of([&] { m.predict(n, bad.data(), out.data(), 4); });
        CHECK(fastae_test::contains(what, "row " + std::to_string(256 * 2 + 10) + ", column 3"));
    }
    CHECK(!fastae_test::invalid_argument_of([&] { m.encode(n, x.data(), codes.data(), 0); }).empty());
}

// Many chunks a thread (model.cpp: run_chunks, whose threads claim groups of consecutive chunks
// and ask for each next chunk's rows during the products of the one before): on mostly-zero rows
// (the first layer's sparse path, sparse_input.h: stream_input) every output equals the
// one-thread result bit for bit, and of NaNs in two groups, twice in the first, the first row is
// the one named.
TEST(inference_in_groups_of_chunks_matches_one_thread) {
    const int d = 200;
    Model m(config(d, 16));
    m.init_weights(3);
    const std::size_t n = 256 * 40 + 77;  // 41 chunks: 2 threads claim 8 groups of 5 and one of 1
    auto x = uniform_data(n, d, 8);
    for (float& v : x) v = v < 0.8f ? 0.0f : v;
    check_threads_match_one(m, n, x, {2, 3}, 3);  // 3 calls: the first layer's path is measured over calls
    auto bad = x;
    bad[(256 * 12 + 3) * d + 7] = std::nanf("");    // chunk 12, group 2 at 2 threads
    bad[(256 * 13 + 200) * d + 1] = std::nanf("");  // chunk 13, the same group
    bad[(256 * 31 + 9) * d + 4] = std::nanf("");    // chunk 31, group 6
    std::vector<float> codes(n * 16);
    for (int threads : {1, 2, 3}) {
        for (int repeat = 0; repeat < 5; ++repeat) {
            const std::string what =
                fastae_test::invalid_argument_of([&] { m.encode(n, bad.data(), codes.data(), threads); });
            CHECK_IN(fastae_test::contains(what, "row " + std::to_string(256 * 12 + 3) + ", column 7"),
                     std::to_string(threads) + " threads: " + what);
        }
    }
}

// A TrainingSession claims its model as fit does: while a host thread holds one, inference, fit
// and a second session from other threads are refused; once it ends, they run.
TEST(a_session_in_one_thread_refuses_use_from_others) {
    const int d = 16;
    const std::size_t n = 64;
    auto x = uniform_data(n, d, 4);
    Model m(config(d, 6));
    m.init_weights(2);
    TrainingData data;
    data.n = n;
    data.x = x.data();
    TrainOptions t;
    t.batch_size = 32;
    std::atomic<bool> holding{false}, probed{false};
    std::thread host([&] {
        TrainingSession s(m, data, OptimizerConfig{}, t);
        Batch b;
        b.size = 32;
        s.apply(s.compute_gradients(b));
        holding = true;
        while (!probed) std::this_thread::yield();
    });
    while (!holding) std::this_thread::yield();
    std::vector<float> out(n * d);
    CHECK(refusal_of([&] { m.predict(n, x.data(), out.data()); }).find("cannot run inference") != std::string::npos);
    CHECK(!refusal_of([&] { m.fit(n, x.data(), nullptr, 0, nullptr, nullptr, OptimizerConfig{}, t); }).empty());
    CHECK(!refusal_of([&] { TrainingSession second(m, data, OptimizerConfig{}, t); }).empty());
    probed = true;
    host.join();
    CHECK(refusal_of([&] { m.predict(n, x.data(), out.data()); }).empty());
    CHECK(m.has_optimizer_state() && m.optimizer_state().steps == 1);
}

// Threaded inference of a network with the newer kernels (gelu, elu, leaky_relu, softplus hidden
// layers, a softmax output) equals one thread's bit for bit, from several caller threads at once.
TEST(threaded_inference_of_every_kernel_matches_one_thread) {
    NetworkSpec spec;
    spec.n_inputs = 20;
    const Activation hidden[] = {Activation::gelu, Activation::elu, Activation::leaky_relu, Activation::softplus};
    for (Activation a : hidden) {
        LayerSpec l;
        l.units = 11;
        l.activation = fastae_test::test_activation(a);
        l.dropout = 0.25;  // training only: inference ignores it
        spec.layers.push_back(l);
    }
    LayerSpec out;
    out.units = 7;
    out.activation = activation_spec(Activation::softmax);
    spec.layers.push_back(out);
    spec.head.loss = Loss::cross_entropy;
    Model m(spec);
    m.init_weights(8);
    const std::size_t n = 256 * 3 + 5;
    const auto x = uniform_data(n, 20, 9);
    std::vector<float> one(n * 7);
    m.predict(n, x.data(), one.data(), 1);
    std::vector<int> mismatches(4, 0);
    std::vector<std::thread> team;
    for (int t = 0; t < 4; ++t) {
        team.emplace_back([&, t] {
            std::vector<float> many(n * 7);
            for (int r = 0; r < 5; ++r) {
                m.predict(n, x.data(), many.data(), 1 + (t + r) % 3);
                mismatches[std::size_t(t)] += many != one;
            }
        });
    }
    for (auto& th : team) th.join();
    for (int v : mismatches) CHECK(v == 0);
}

// The inference team's workspaces (model_impl.h) hold every layer's activations and the backward
// pass's buffer, but take memory only as written (zero_pages.h): encoding with a 300 -> 16 ->
// 3000 -> 300 autoencoder touches the code's activations and the input's lists, not the decoder's
// 3000 x 256 floats or the backward buffer (3 MB each); predict then writes the decoder's, and
// the process grows by them only then. (A heap buffer zero-filled at the workspace's making may
// reuse memory this process already holds, so the growth at encode alone could not tell.)
TEST(inference_workspaces_take_memory_for_what_they_compute) {
    NetworkConfig c;
    c.layer_sizes = {300, 16, 3000, 300};
    Model m(c);
    m.init_weights(2);
    const std::size_t n = 1000;
    std::vector<float> x = uniform_data(n, 300, 8);
    for (std::size_t i = 0; i < x.size(); i += 3) x[i] = 0.0f;  // a third zeros: the sparse path may run
    std::vector<float> codes(n * 16), out(n * 300);
    const std::size_t before = resident_bytes();
    m.encode(n, x.data(), codes.data(), 1);
    const std::size_t encoded = resident_bytes();
    m.predict(n, x.data(), out.data(), 1);
    const std::size_t predicted = resident_bytes();
    CHECK(std::all_of(codes.begin(), codes.end(), [](float v) { return std::isfinite(v); }));
    if (before > 0) {
        const double encode_mb = double(encoded - std::min(before, encoded)) / 1e6;
        const double predict_mb = double(predicted - std::min(encoded, predicted)) / 1e6;
        std::printf("  encode added %.2f MB, predict then %.2f MB\n", encode_mb, predict_mb);
        CHECK(encode_mb < 2.0);  // the decoder's and the backward buffers alone are 6.1 MB
        CHECK(predict_mb > 2.0);  // the decoder's activations: not resident until written
    }
}

