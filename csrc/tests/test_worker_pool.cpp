// test_worker_pool.cpp -- the fork/join of a training step (worker_pool.h): every item of every
// run runs exactly once, with that run's task, on a member in [0, size()); runs follow each other
// faster than the workers wake (more members than this machine's cores, items of uneven length),
// so workers join runs late, and a member still looking for items of one run meets the next.
// Team and solo runs alternate; an item's exception reaches the caller and the pool goes on.
// Run under ASan/UBSan in CI.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "worker_pool.h"

using fastae::detail::WorkerPool;

namespace {

// One run's record: how often each item ran, and any item that ran on a member out of range.
struct RunRecord {
    std::vector<std::atomic<int>> hits;
    std::atomic<int> bad_member{0};
    explicit RunRecord(int n) : hits(std::size_t(n)) {
        for (auto& h : hits) h.store(0);
    }
};

// Busy work of about `spins` iterations, so that items end at uneven times.
void spin(int spins) {
    volatile int sink = 0;
    for (int i = 0; i < spins; ++i) sink = sink + i;
}

// `runs` runs of varied sizes on a pool of `members`; returns the number of items that did not run
// exactly once (in their own run's record) or ran on a member out of range.
int run_many(int members, int runs, bool alternate_solo, std::uint32_t seed) {
    WorkerPool pool(members);
    std::mt19937 rng(seed);
    const int sizes[] = {1, 2, members - 1, members, members + 1, 3 * members, 97};
    int wrong = 0;
    for (int r = 0; r < runs; ++r) {
        if (alternate_solo) pool.set_solo(r % 3 == 2);
        const int n = std::max(1, sizes[rng() % (sizeof(sizes) / sizeof(sizes[0]))]);
        RunRecord record(n);
        std::vector<int> work(static_cast<std::size_t>(n), 0);
        for (auto& w : work) w = int(rng() % 4 == 0 ? rng() % 20000 : rng() % 200);
        // Every run's task is its own object: an item run with another run's task would count in
        // that run's record, not this one's.
        auto task = [&record, &work, members](int item, int member) {
            spin(work[std::size_t(item)]);
            if (member < 0 || member >= members) record.bad_member.fetch_add(1);
            record.hits[std::size_t(item)].fetch_add(1);
        };
        pool.run(task, n);
        for (int i = 0; i < n; ++i) wrong += record.hits[std::size_t(i)].load() != 1;
        wrong += record.bad_member.load();
        // Now and then the caller pauses, so that the workers go to sleep and wake for the next run.
        if (rng() % 50 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    }
    return wrong;
}

}  // namespace

TEST(every_item_runs_once_per_run_whatever_the_members) {
    for (int members : {1, 2, 3, 4, 8, 16}) {
        const int wrong = run_many(members, 3000, false, std::uint32_t(members));
        CHECK_IN(wrong == 0, std::to_string(members) + " members: " + std::to_string(wrong) + " items wrong");
    }
}

TEST(team_and_solo_runs_alternating) {
    for (int members : {2, 4, 8}) {
        const int wrong = run_many(members, 3000, true, std::uint32_t(100 + members));
        CHECK_IN(wrong == 0, std::to_string(members) + " members: " + std::to_string(wrong) + " items wrong");
    }
}

TEST(a_solo_run_runs_on_the_caller_when_the_workers_sleep) {
    WorkerPool pool(4);
    pool.set_solo(true);
    // Workers that have never been woken are asleep or spinning on the run id, which solo runs
    // do not publish: every item of the first runs lands on member 0.
    std::vector<int> member_of(64, -1);
    auto task = [&member_of](int item, int member) { member_of[std::size_t(item)] = member; };
    pool.run(task, 64);
    for (int m : member_of) CHECK(m == 0);
}

TEST(an_items_exception_reaches_the_caller_and_the_pool_goes_on) {
    for (int members : {1, 2, 4}) {
        WorkerPool pool(members);
        std::atomic<int> ran{0};
        auto failing = [&ran](int item, int) {
            ran.fetch_add(1);
            if (item == 5) throw std::runtime_error("item 5");
        };
        std::string message;
        try {
            pool.run(failing, 12);
        } catch (const std::runtime_error& e) {
            message = e.what();
        }
        CHECK(message == "item 5");
        CHECK(ran.load() == 12);  // the other items still ran: the run ends when all are done
        RunRecord record(40);
        auto task = [&record](int item, int) { record.hits[std::size_t(item)].fetch_add(1); };
        for (int r = 0; r < 50; ++r) {
            for (auto& h : record.hits) h.store(0);
            pool.run(task, 40);
            for (auto& h : record.hits) CHECK(h.load() == 1);
        }
    }
}

TEST(runs_of_many_items) {
    WorkerPool pool(3);
    RunRecord record(65535);
    auto task = [&record](int item, int) { record.hits[std::size_t(item)].fetch_add(1); };
    for (int r = 0; r < 3; ++r) {
        for (auto& h : record.hits) h.store(0);
        pool.run(task, 65535);
        int wrong = 0;
        for (auto& h : record.hits) wrong += h.load() != 1;
        CHECK(wrong == 0);
    }
}
