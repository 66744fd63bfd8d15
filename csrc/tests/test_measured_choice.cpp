// test_measured_choice.cpp -- the timed choice between two ways of the same work
// (measured_choice.h), on scripted timings.
#include <vector>

#include "check.h"
#include "measured_choice.h"

using fastae::detail::MeasuredChoice;

namespace {

// Runs `steps` runs with way times (default, alternative) given by cost(step, way) and returns
// how many ran the alternative.
template <class Cost>
int run(MeasuredChoice& choice, int steps, Cost cost, int first_step = 0) {
    int alternative_runs = 0;
    for (int s = first_step; s < first_step + steps; ++s) {
        const bool alt = choice.next();
        alternative_runs += alt;
        choice.record(alt, cost(s, alt));
    }
    return alternative_runs;
}

}  // namespace

// The faster way runs except for the warm-up block and the probes (4 runs each, 16 to 256 runs
// apart: 16, 32, 64, 128, 256, 256 within 640 runs).
TEST(measured_choice_runs_the_faster_way) {
    for (bool alternative_faster : {false, true}) {
        MeasuredChoice choice(16, 256, 4, true);
        const int alt = run(choice, 640, [&](int, bool a) { return a == alternative_faster ? 1.0 : 1.3; });
        const int slower_runs = alternative_faster ? 640 - alt : alt;
        CHECK(slower_runs <= 4 + 6 * 4);
        CHECK(choice.best() == alternative_faster);
    }
}

// The runs right after a switch pay for cold caches: the first must not count, or the way that
// is not running would look slower than it is and the first choice would stick. Here the two
// runs after every switch cost 3x and the alternative is 20% faster: it must win (counting the
// first of them puts half of each probe's runs at 3x, and the median with them).
TEST(measured_choice_ignores_the_run_after_a_switch) {
    MeasuredChoice choice(16, 256, 4, true);
    bool last = false;
    int since_switch = 0, alt = 0;
    for (int s = 0; s < 640; ++s) {
        const bool a = choice.next();
        alt += a;
        since_switch = s > 0 && a != last ? 0 : since_switch + 1;
        last = a;
        choice.record(a, (a ? 1.0 : 1.2) * (s > 0 && since_switch < 2 ? 3.0 : 1.0));
    }
    CHECK(choice.best());
    CHECK(alt > 560);
}

// Spikes (one run in 5 at 4x, on the faster way only) do not move the median of 7: the faster
// way keeps running.
TEST(measured_choice_is_robust_to_spikes) {
    MeasuredChoice choice(16, 256, 2, false);
    const int alt = run(choice, 640, [](int s, bool a) { return a ? (s % 5 == 0 ? 4.0 : 1.0) : 1.25; });
    CHECK(choice.best());
    CHECK(alt > 560);
}

// When the ways' costs cross, the probes find it and the choice follows within a few periods.
TEST(measured_choice_follows_a_change) {
    MeasuredChoice choice(16, 256, 2, false);
    run(choice, 320, [](int, bool a) { return a ? 1.0 : 1.5; });
    CHECK(choice.best());
    run(choice, 320, [](int, bool a) { return a ? 1.5 : 1.0; }, 320);
    CHECK(!choice.best());
}

// A burst of slow runs on the faster way (another process took its core for a moment) switches
// the choice; once the burst is over the next probes, judged on their own runs, switch back soon:
// here within 40 runs (probes 16 runs apart after a switch), where keeping old probe times with a
// fixed 256-run gap ran the slower way for hundreds of runs.
TEST(measured_choice_recovers_from_a_burst) {
    MeasuredChoice choice(16, 256, 2, false);
    run(choice, 600, [](int, bool a) { return a ? 2.0 : 1.0; });
    CHECK(!choice.best());
    run(choice, 20, [](int, bool a) { return a ? 2.0 : 5.0; }, 600);  // the burst
    CHECK(choice.best());
    const int alt = run(choice, 200, [](int, bool a) { return a ? 2.0 : 1.0; }, 620);
    CHECK(!choice.best());
    CHECK(alt <= 40 + 4 * 2);
}

// The way not running is judged on its latest probe alone: its old times are stale (they are what
// made it lose). After 600 runs where the alternative is slow, it becomes twice as fast as the
// default: the next probe (at most 256 runs away) must be enough, where old probe times kept in
// its window of 7 would outvote two fresh ones for several probes.
TEST(measured_choice_judges_the_idle_way_on_its_latest_probe) {
    MeasuredChoice choice(16, 256, 2, false);
    run(choice, 600, [](int, bool a) { return a ? 3.0 : 1.0; });
    CHECK(!choice.best());
    run(choice, 300, [](int, bool a) { return a ? 0.5 : 1.0; }, 600);
    CHECK(choice.best());
}
