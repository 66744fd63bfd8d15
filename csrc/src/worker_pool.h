// worker_pool.h -- a team of threads that shares out the items of one task and waits until all
// are done: the fork/join of a training step. Items are claimed, not assigned: whichever member
// is awake takes the next one, the caller included, so a step never waits for a worker that the
// OS has not scheduled (the usual state of a shared server: another process busy on the other
// core). Which member ran an item never changes the result: items own their buffers.
#pragma once

#include <atomic>
#include <condition_variable>
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

    // Solo: runs go on the calling thread alone, the workers left asleep. Results are the same
    // either way (items own their buffers); only the speed differs.
    void set_solo(bool solo) { solo_ = solo; }
    bool solo() const { return solo_; }

private:
    template <typename Task>
    static void invoke(void* task, int item, int member) { (*static_cast<Task*>(task))(item, member); }

    void dispatch(void (*fn)(void*, int, int), void* task, int n_items);
    // Claims and runs items of run `generation` until none are left.
    void work(std::uint32_t generation, int member);
    void worker_main(int member);

    int n_;
    bool solo_ = false;
    std::uint32_t run_id_ = 0;  // the caller's count of runs
    std::vector<std::thread> threads_;
    // (generation << 32) | (n_items << 16) | next item: claiming is one compare-and-swap, and a
    // worker that wakes late for an old run can never take an item of a newer one.
    std::atomic<std::uint64_t> claim_{0};
    std::atomic<int> done_{0};
    std::atomic<std::uint32_t> generation_{0};
    std::atomic<int> sleepers_{0};
    std::atomic<bool> stopping_{false};
    void (*fn_)(void*, int, int) = nullptr;
    void* task_ = nullptr;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::exception_ptr error_;
};

}  // namespace fastae::detail
