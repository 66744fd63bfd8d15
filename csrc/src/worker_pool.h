// worker_pool.h -- a fixed team of threads that runs one task on every member and waits for all:
// the fork/join of one training step. Thread 0 is the caller; the others are started once per
// fit and wait between steps (a short spin, then a condition variable).
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
    explicit WorkerPool(int n_threads);
    ~WorkerPool();
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    int size() const { return n_; }

    // Runs task(t) for every t in [0, size()), t = 0 on the calling thread, and returns when all
    // are done. The first exception thrown by any member is rethrown here.
    template <typename Task>
    void run(Task& task) {
        if (n_ == 1) {
            task(0);
            return;
        }
        dispatch(&invoke<Task>, &task);
    }

private:
    template <typename Task>
    static void invoke(void* task, int t) { (*static_cast<Task*>(task))(t); }

    void dispatch(void (*fn)(void*, int), void* task);
    void worker_main(int t);
    void run_member(int t);

    int n_;
    std::vector<std::thread> threads_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_cv_;
    std::atomic<std::uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    bool stopping_ = false;
    void (*fn_)(void*, int) = nullptr;
    void* task_ = nullptr;
    std::exception_ptr error_;
};

}  // namespace fastae::detail
