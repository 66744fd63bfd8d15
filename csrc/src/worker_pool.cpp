// worker_pool.cpp -- claiming, waking and waiting for worker_pool.h.
#include "worker_pool.h"

#include "float_env.h"

namespace fastae::detail {

namespace {

// Spin iterations before a waiting worker sleeps (about 1 ms on a Zen 5: pauses of 26 ns, and
// the yields below of 0.4 us): long enough to catch the next run of a training loop (the gap
// between two steps is tens of microseconds), short enough not to hold a core for long; the
// yields offer it to any other thread that needs it meanwhile.
constexpr int kSpinIterations = 20000;

// One iteration of a wait: a pause, and from iteration kYieldAfter on, every kYieldEvery-th time
// the core offered to another thread (std::this_thread::yield: about 0.4 us where none is
// waiting for it). Where the team has more threads than free cores (other processes busy, a
// host's n_threads past its CPUs) a member that holds an item may be waiting for a core that a
// spinning member occupies; pauses alone then kept it waiting for the rest of the time slice. 16
// threads on 2 vCPUs (Zen 5, `epoch_bench --threads 16`, s an epoch): tutorial 0.12-0.14 against
// 0.48-0.55, deep 0.42-0.53 against 0.81-0.86; on free cores even (2 threads, tutorial
// 0.082-0.096 against 0.083-0.094, 6 alternating pairs), and beside a busy core no slower
// (docs/performance-log.md, "Waiting members yield the core").
constexpr int kYieldAfter = 256;
constexpr int kYieldEvery = 16;

inline void wait_a_little(int iteration) {
    if (iteration >= kYieldAfter && iteration % kYieldEvery == 0) {
        std::this_thread::yield();
        return;
    }
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
    stopping_.store(true, std::memory_order_seq_cst);
    {
        std::lock_guard<std::mutex> lock(mutex_);
    }
    wake_.notify_all();
    for (auto& th : threads_) th.join();
}

void WorkerPool::work(int member) {
    for (;;) {
        // Past the last item the add still counts up, at most once per member and per late
        // wake-up in a run: 32 bits never wrap before dispatch stores the next run's word.
        const std::uint64_t c = claim_.fetch_add(1, std::memory_order_acq_rel);
        const std::uint32_t item = std::uint32_t(c), n_items = std::uint32_t(c >> 32);
        if (item >= n_items) return;
        // fn_ and task_ stay this run's until the item is counted done (dispatch waits for it).
        try {
            fn_(task_, int(item), member);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!error_) error_ = std::current_exception();
        }
        done_.fetch_add(1, std::memory_order_acq_rel);
    }
}

void WorkerPool::dispatch(void (*fn)(void*, int, int), void* task, int n_items) {
    if (n_items <= 0) return;
    fn_ = fn;
    task_ = task;
    error_ = nullptr;
    done_.store(0, std::memory_order_relaxed);
    claim_.store(std::uint64_t(n_items) << 32, std::memory_order_release);
    // Every run gets a new id; team runs publish it to wake the workers, solo runs do not.
    const std::uint32_t generation = ++run_id_;
    if (n_ > 1 && !solo_) {
        generation_.store(generation, std::memory_order_seq_cst);
        if (sleepers_.load(std::memory_order_seq_cst) > 0) {
            { std::lock_guard<std::mutex> lock(mutex_); }
            wake_.notify_all();
        }
    }
    work(0);
    // Only items a worker has already claimed can still be running here.
    for (int i = 0; done_.load(std::memory_order_acquire) != n_items; ++i) {
        if (i < kSpinIterations) {
            wait_a_little(i);
        } else {
            std::this_thread::yield();
        }
    }
    if (error_) std::rethrow_exception(error_);
}

void WorkerPool::worker_main(int member) {
    FlushDenormalsGuard ftz;  // the same floating-point mode as the training thread
    std::uint32_t seen = 0;
    for (;;) {
        for (int i = 0; i < kSpinIterations && generation_.load(std::memory_order_acquire) == seen &&
                        !stopping_.load(std::memory_order_relaxed);
             ++i) {
            wait_a_little(i);
        }
        if (generation_.load(std::memory_order_acquire) == seen && !stopping_.load()) {
            std::unique_lock<std::mutex> lock(mutex_);
            sleepers_.fetch_add(1, std::memory_order_seq_cst);
            while (generation_.load(std::memory_order_seq_cst) == seen && !stopping_.load(std::memory_order_seq_cst)) {
                wake_.wait(lock);
            }
            sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        }
        if (stopping_.load()) return;
        seen = generation_.load(std::memory_order_acquire);
        work(member);
    }
}

}  // namespace fastae::detail
