// model_impl.h -- what fastae::Model holds (model.h), shared by model.cpp and training.cpp: the
// network, the flat parameters, the saved optimizer state, the use guard (model.h, "Threads"),
// and the checks of caller data that name the first bad value.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "eigen_types.h"
#include "fastae/model.h"
#include "network.h"
#include "thread_mode.h"
#include "value_checks.h"
#include "worker_pool.h"

namespace fastae::detail {

inline void require(bool ok, const std::string& message) {
    if (!ok) throw std::invalid_argument(message);
}

// bce targets must lie in [0, 1]; this much rounding outside is forgiven (python/fastae/_arrays.py
// uses the same slack).
inline constexpr float kUnitRangeSlack = 1e-6f;

// Every value finite and, when `unit_range_loss` names a loss (vocabulary.h: unit_targets), inside
// [0, 1]; names the first offender. Row i of x is row first_row + i of the caller's array
// (row_ids[i] if given), for the message.
inline void check_values(std::size_t n, std::size_t d, const float* x, const char* name,
                         const char* unit_range_loss, std::size_t first_row = 0,
                         const std::size_t* row_ids = nullptr) {
    const bool unit_range = unit_range_loss != nullptr;
    // The common case in one vectorised pass over blocks of rows (value_checks.h: values_within);
    // the row-by-row scan below only runs to name an offender.
    const float lo = unit_range ? -kUnitRangeSlack : -std::numeric_limits<float>::max();
    const float hi = unit_range ? 1.0f + kUnitRangeSlack : std::numeric_limits<float>::max();
    const std::size_t block_rows = std::max<std::size_t>(1, (std::size_t(1) << 16) / std::max<std::size_t>(d, 1));
    bool all_ok = true;
    for (std::size_t r = 0; r < n && all_ok; r += block_rows) all_ok = values_within(std::min(block_rows, n - r) * d, x + r * d, lo, hi);
    if (all_ok) return;
    for (std::size_t i = 0; i < n; ++i) {
        const float* row = x + i * d;
        const std::size_t row_id = row_ids ? row_ids[i] : first_row + i;
        bool ok = true;
        for (std::size_t j = 0; j < d; ++j) ok &= std::isfinite(row[j]);
        if (unit_range) {
            for (std::size_t j = 0; j < d; ++j) ok &= row[j] >= -kUnitRangeSlack && row[j] <= 1.0f + kUnitRangeSlack;
        }
        if (ok) continue;
        for (std::size_t j = 0; j < d; ++j) {
            if (!std::isfinite(row[j])) {
                throw std::invalid_argument(std::string(name) + " contains a non-finite value (" +
                                            std::to_string(row[j]) + ") at row " + std::to_string(row_id) +
                                            ", column " + std::to_string(j));
            }
            if (unit_range && !(row[j] >= -kUnitRangeSlack && row[j] <= 1.0f + kUnitRangeSlack)) {
                throw std::invalid_argument(std::string(name) + " must lie in [0, 1] for loss='" + unit_range_loss +
                                            "' (its targets are probabilities); found " +
                                            std::to_string(row[j]) + " at row " + std::to_string(row_id) +
                                            ", column " + std::to_string(j) +
                                            ". Scale it (e.g. X / 255 for 8-bit images) or use loss='mse'");
            }
        }
    }
}

// b rows of training or validation data: the inputs (in [0, 1] when they are the targets of a
// loss with probability targets), the targets (unless they are the inputs) and the sample weights
// (finite, >= 0), each error naming the row (rows[i], or first + i) and the array. Messages are
// built only on failure.
inline void check_rows(const Network& net, std::size_t b, const float* x, const float* y, const float* w,
                       bool targets_are_inputs, const char* x_name, const char* y_name, const char* w_name,
                       std::size_t first = 0, const std::size_t* rows = nullptr) {
    const LossTraits& loss = traits_of(net.head().loss);
    const char* range = loss.unit_targets ? loss.name : nullptr;
    if (x) check_values(b, std::size_t(net.width(0)), x, x_name, targets_are_inputs ? range : nullptr, first, rows);
    if (!targets_are_inputs) check_values(b, std::size_t(net.width(net.n_layers())), y, y_name, range, first, rows);
    if (!w) return;
    for (std::size_t j = 0; j < b; ++j) {
        if (!(std::isfinite(w[j]) && w[j] >= 0.0f)) {
            throw std::invalid_argument(std::string(w_name) + " must hold finite numbers >= 0; found " +
                                        std::to_string(w[j]) + " at row " + std::to_string(rows ? rows[j] : first + j));
        }
    }
}

// Who is using a model (model.h, "Threads"): const calls count themselves in `readers`; fit and
// the setters raise `writer`. Each side announces itself and then looks at the other, with
// sequentially consistent atomics, so two overlapping calls cannot both miss each other; the one
// that sees the other backs out and throws (both may, in a close race: neither proceeds).
// Refusing rather than waiting: a fit runs for minutes, and an inference call blocked behind it
// (a request handler, a Python thread that cannot take Ctrl-C) would hang without a word.
// A copy of a model starts unused: the copy constructor and assignment leave the guard alone.
struct UseGuard {
    std::atomic<int> readers{0};
    std::atomic<bool> writer{false};
    UseGuard() = default;
    UseGuard(const UseGuard&) noexcept {}
    UseGuard& operator=(const UseGuard&) noexcept { return *this; }
};

class Reading {
public:
    Reading(UseGuard& guard, const char* what) : guard_(guard) {
        guard_.readers.fetch_add(1);
        if (guard_.writer.load()) {
            guard_.readers.fetch_sub(1);
            throw std::runtime_error(std::string("fastae: cannot run ") + what +
                                     " while fit (or a setter) is changing this model in another thread; "
                                     "wait for it to return");
        }
    }
    ~Reading() { guard_.readers.fetch_sub(1); }
    Reading(const Reading&) = delete;
    Reading& operator=(const Reading&) = delete;

private:
    UseGuard& guard_;
};

class Writing {
public:
    Writing(UseGuard& guard, const char* what) : guard_(guard) {
        if (guard_.writer.exchange(true)) {
            throw std::runtime_error(std::string("fastae: cannot run ") + what +
                                     " while fit (or a setter) is already changing this model in another thread");
        }
        if (const int readers = guard_.readers.load(); readers > 0) {
            guard_.writer.store(false);
            throw std::runtime_error(std::string("fastae: cannot run ") + what + " while " +
                                     std::to_string(readers) +
                                     " other call(s) (inference, loss or copy) use this model in other threads");
        }
    }
    ~Writing() { guard_.writer.store(false); }
    Writing(const Writing&) = delete;
    Writing& operator=(const Writing&) = delete;

private:
    UseGuard& guard_;
};

}  // namespace fastae::detail

namespace fastae {

namespace detail {

// The threads and workspaces of inference, kept from call to call: starting a thread and
// allocating the workspaces cost about as much as encoding a few thousand samples. One call at a
// time uses them (a concurrent call makes its own, as every call did before); the results never
// depend on which thread ran a chunk. Copies start empty. A process forked after the threads were
// started has none of them: its copy of the team is left alone (never joined) and replaced.
struct InferenceTeam {
    std::mutex mutex;
    int members = 0;
    pid_t owner = 0;                    // the process that started the pool
    std::unique_ptr<WorkerPool> pool;   // null for one member
    std::vector<Workspace> ws;

    // Workspaces of `capacity` samples for `members` threads (and their pool).
    void build(const Network& net, int n_members, std::size_t capacity) {
        forget_if_forked();
        pool.reset();
        ws.clear();
        ws.reserve(std::size_t(n_members));
        for (int t = 0; t < n_members; ++t) {
            ws.emplace_back(net, capacity);
        }
        if (n_members > 1) pool = std::make_unique<WorkerPool>(n_members);
        members = n_members;
        owner = getpid();
    }
    void forget_if_forked() {
        if (owner != 0 && owner != getpid()) (void)pool.release();  // its threads are not in this process
    }
    ~InferenceTeam() { forget_if_forked(); }
};

class InferenceCache {
public:
    InferenceCache() : team_(std::make_unique<InferenceTeam>()) {}
    InferenceCache(const InferenceCache&) : InferenceCache() {}
    InferenceCache& operator=(const InferenceCache&) {  // the network may have changed: start again
        team_ = std::make_unique<InferenceTeam>();
        return *this;
    }
    InferenceCache(InferenceCache&&) noexcept = default;
    InferenceCache& operator=(InferenceCache&&) noexcept = default;
    InferenceTeam& team() const { return *team_; }

private:
    std::unique_ptr<InferenceTeam> team_;
};

}  // namespace detail

struct Model::Impl {
    explicit Impl(const NetworkSpec& spec) : net(spec), params(net.n_params(), 0.0f) {}
    detail::Network net;
    NetworkConfig config;  // the summary Model::config() returns
    detail::AlignedFloats params;
    std::optional<OptimizerState> optimizer;
    mutable detail::UseGuard guard;
    detail::InferenceCache inference;  // inference's threads and workspaces (model.cpp: for_each_chunk)

    // The team-or-solo choice of training steps (thread_mode.h), kept from session to session so
    // that a loop of partial_fit calls does not warm it up again (4 solo steps among the first 8)
    // in every call; made anew when the team's size changes.
    detail::ThreadModeChooser& thread_mode_for(int team) {
        if (team != thread_mode_team) {
            thread_mode = detail::ThreadModeChooser();
            thread_mode_team = team;
        }
        return thread_mode;
    }
    detail::ThreadModeChooser thread_mode;
    int thread_mode_team = 0;
};

}  // namespace fastae
