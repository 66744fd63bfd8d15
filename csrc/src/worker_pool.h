// worker_pool.h -- a team of threads that shares out the items of one task and waits until all
// are done: the fork/join of a training step. Items are claimed, not assigned: whichever member
// is awake takes the next one, the caller included, so a step never waits for a worker that the
// OS has not scheduled (the usual state of a shared server: another process busy on the other
// core). Which member ran an item never changes the result: items own their buffers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace fastae::detail {

class WorkerPool {
public:
    // n_threads members: the calling thread and n_threads - 1 workers started here.
    explicit WorkerPool(int n_threads);
    ~WorkerPool();
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    int size() const { return n_; }

    // Runs task(item, member) once for every item in [0, n_items) (n_items <= 65535), member
    // being the index in [0, size()) of the thread that claimed it, and returns when all items
    // are done. The first exception thrown by any item is rethrown here.
    template <typename Task>
    void run(Task& task, int n_items) {
        dispatch(&invoke<Task>, &task, n_items);
    }

    // Solo: runs go on the calling thread alone, the workers left asleep (a worker still
    // looking for items of the team run before may take one of the first solo run's). Results
    // are the same either way (items own their buffers); only the speed differs.
    void set_solo(bool solo) { solo_ = solo; }
    bool solo() const { return solo_; }

private:
    template <typename Task>
    static void invoke(void* task, int item, int member) { (*static_cast<Task*>(task))(item, member); }

    void dispatch(void (*fn)(void*, int, int), void* task, int n_items);
    // Claims and runs items of the current run until none are left.
    void work(int member);
    void worker_main(int member);

    // A cache line: the words below that members write during a run each have one to themselves,
    // so that a claim or a count does not take the line away from members spinning on another.
    static constexpr std::size_t kLine = 64;

    int n_;
    bool solo_ = false;
    std::uint32_t run_id_ = 0;  // the caller's count of runs
    std::vector<std::thread> threads_;
    // (n_items << 32) | next item, set by dispatch for each run: claiming is one fetch_add, which
    // always succeeds (a compare-and-swap loop makes T members that start together retry up to T
    // times each, all on this line). Whoever adds reads the word of the run in progress, so a
    // worker that wakes late for an old run takes an item of the current one, if any is left, and
    // runs it as the current run's: dispatch writes fn_ and task_ before it stores the word
    // (release), the add reads it (acquire), and neither changes until that item is counted done.
    alignas(kLine) std::atomic<std::uint64_t> claim_{0};
    alignas(kLine) std::atomic<int> done_{0};
    alignas(kLine) std::atomic<std::uint32_t> generation_{0};  // what waiting members watch
    std::atomic<int> sleepers_{0};
    std::atomic<bool> stopping_{false};
    alignas(kLine) void (*fn_)(void*, int, int) = nullptr;
    void* task_ = nullptr;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::exception_ptr error_;
};

}  // namespace fastae::detail
