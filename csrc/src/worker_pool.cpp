// worker_pool.cpp -- the fork/join of worker_pool.h.
#include "worker_pool.h"

#include "float_env.h"

namespace fastae::detail {

namespace {
// Spin iterations before a waiting thread sleeps: long enough to catch the next step of a
// training loop (tens of microseconds), short enough not to burn a core that another process
// needs.
constexpr int kSpinIterations = 20000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}
}  // namespace

WorkerPool::WorkerPool(int n_threads) : n_(n_threads < 1 ? 1 : n_threads) {
    threads_.reserve(std::size_t(n_ - 1));
    for (int t = 1; t < n_; ++t) threads_.emplace_back([this, t] { worker_main(t); });
}

WorkerPool::~WorkerPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& th : threads_) th.join();
}

void WorkerPool::run_member(int t) {
    try {
        fn_(task_, t);
    } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
    }
}

void WorkerPool::dispatch(void (*fn)(void*, int), void* task) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        fn_ = fn;
        task_ = task;
        error_ = nullptr;
        pending_.store(n_ - 1, std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    run_member(0);
    for (int i = 0; i < kSpinIterations && pending_.load(std::memory_order_acquire) != 0; ++i) {
        cpu_relax();
    }
    if (pending_.load(std::memory_order_acquire) != 0) {
        std::unique_lock<std::mutex> lock(mutex_);
        done_cv_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    if (error_) std::rethrow_exception(error_);
}

void WorkerPool::worker_main(int t) {
    FlushDenormalsGuard ftz;  // the same floating-point mode as the training thread
    std::uint64_t seen = 0;
    for (;;) {
        for (int i = 0; i < kSpinIterations && generation_.load(std::memory_order_acquire) == seen; ++i) {
            cpu_relax();
        }
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
            seen = generation_.load(std::memory_order_acquire);
            if (stopping_) return;
        }
        run_member(t);
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::lock_guard<std::mutex> lock(mutex_);
            done_cv_.notify_one();
        }
    }
}

}  // namespace fastae::detail
