// process_group.h -- the rules of data-parallel training across processes (TrainOptions::
// processes, config.h): which rows of a global batch this process holds, and the agreement that
// keeps every process in step when one of them fails (its error is announced in the next sum, so
// no process waits in a collective for a partner that has left).
#pragma once

#include <cstddef>
#include <exception>
#include <vector>

#include "fastae/config.h"
#include "fastae/training.h"

namespace fastae::detail {

inline bool in_group(const ProcessGroup& g) { return g.global_rows > 0; }

// The rows of the whole dataset: the group's, or this process's.
inline std::size_t dataset_rows(const ProcessGroup& g, std::size_t local_rows) {
    return in_group(g) ? g.global_rows : local_rows;
}

// Throws std::invalid_argument when the group's fields do not fit this process's rows.
void check_group(const ProcessGroup& g, std::size_t local_rows);

// This process's part of a global batch whose rows are dataset row numbers: the rows it holds,
// as its own row numbers, written to mine (capacity: the batch), in batch order.
Batch local_part(const Batch& global, const ProcessGroup& g, std::size_t local_rows, std::size_t* mine);

// Before the first step: a process whose preparation failed announces it (announce_failure)
// where the others agree to start (agree_to_start throws PeerFailed when one did not).
void announce_failure(const ProcessGroup& g);
void agree_to_start(const ProcessGroup& g);

// Local work and collective sums, in step. Alone (no group), attempt runs its work and lets
// exceptions through, and sum is never needed. In a group, attempt keeps an exception (and runs
// nothing more) until the next sum, whose last figure is the failure count: there this process
// rethrows its own error and every other process throws PeerFailed.
class Agreement {
public:
    explicit Agreement(const ProcessGroup& g) : group_(g) {}
    bool active() const { return in_group(group_); }

    template <class Work>
    void attempt(Work&& work) {
        if (!active()) {
            work();
            return;
        }
        if (pending_) return;
        try {
            work();
        } catch (...) {
            pending_ = std::current_exception();
        }
    }

    // Sums figures[0..n) across the group; figures[n - 1] is the failure slot (set here).
    void sum(double* figures, std::size_t n);

private:
    const ProcessGroup& group_;
    std::exception_ptr pending_;
};

}  // namespace fastae::detail
