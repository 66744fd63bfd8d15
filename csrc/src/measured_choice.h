// measured_choice.h -- a choice between two ways of doing the same work, made by timing both as
// the work repeats: each is tried at the start, then the faster one runs, and the other is
// re-measured now and then, since conditions change (a busy core frees up, a batch's density
// drifts). For work whose result does not depend on the way chosen: the team or one thread for a
// training step (thread_mode.h), the sparse or dense products of the first layer (network.h).
//
// Each way's time is the median of its last kWindow counted runs: one run's time scatters by 20%
// and more (interrupts, the batch's own density), and a smoothed mean of every run was pulled
// across often enough that the first layer ran its slower path for a quarter of the steps of an
// MNIST epoch, or most of them (medians 188 against 235 us a step, Zen 5). The way not running is
// judged on its latest probe alone, and probes come soon after a switch and ever rarer while the
// choice holds (16 to 256 runs apart): with a fixed 256-run gap and old probe times kept, a
// 2-thread deep-model epoch once ran solo throughout (0.686 s against 0.436) after a few slow team
// steps.
#pragma once

#include <algorithm>

namespace fastae::detail {

class MeasuredChoice {
public:
    // Probes of probe_runs runs of the other way, every min_period runs after a switch, the gap
    // doubling up to max_period while the choice holds; skip_after_switch: whether the first run
    // after the way changed goes uncounted (record).
    MeasuredChoice(int min_period, int max_period, int probe_runs, bool skip_after_switch)
        : min_period_(min_period), max_period_(max_period), probe_runs_(probe_runs),
          skip_after_switch_(skip_after_switch), period_(min_period), next_probe_(kWarmup + min_period) {}

    // The way for the next run of the work: true = the alternative, false = the default.
    bool next() {
        ++runs_;
        if (runs_ <= kWarmup) return runs_ > kWarmup / 2;  // a block of each to seed both estimates
        if (probe_left_ == 0 && runs_ >= next_probe_) {
            // A probe of the way not running: its old times are stale (they were what made it
            // lose), so it is judged on this probe's runs alone.
            probed_ = !best();
            clear(probed_ ? 1 : 0);
            probe_left_ = probe_runs_;
        }
        if (probe_left_ > 0) {
            decide_after_record_ = --probe_left_ == 0;
            return probed_;
        }
        const bool way = best();
        if (way != running_) {  // a switch (the running way slowed, or a probe won): probe soon
            running_ = way;
            period_ = min_period_;
            next_probe_ = runs_ + period_;
        }
        return way;
    }
    // The way measured faster so far (the default until both are measured), without advancing
    // the probing schedule: for work that is not a run of the measured kind.
    bool best() const {
        if (count_[0] == 0 || count_[1] == 0) return count_[0] == 0 && count_[1] > 0;
        return median(1) < median(0);
    }

    // With skip_after_switch, a run right after the other way ran is not counted: it pays for the
    // caches that way left (its buffers evicted, the packing or list buffers cold), so every probe
    // would measure the way that is not running as slower than it is.
    void record(bool alternative, double seconds) {
        const int k = alternative ? 1 : 0;
        const bool after_switch = last_ != k;
        last_ = k;
        if (!(after_switch && skip_after_switch_)) {
            recent_[k][next_[k]] = seconds;
            next_[k] = (next_[k] + 1) % kWindow;
            count_[k] = std::min(count_[k] + 1, kWindow);
        }
        if (decide_after_record_) {  // the probe is complete: the next one sooner if it won
            decide_after_record_ = false;
            period_ = best() == probed_ ? min_period_ : std::min(2 * period_, long(max_period_));
            next_probe_ = runs_ + period_;
        }
    }

private:
    static constexpr int kWarmup = 8;
    static constexpr int kWindow = 7;

    double median(int k) const {
        double v[kWindow];
        std::copy(recent_[k], recent_[k] + count_[k], v);
        std::nth_element(v, v + count_[k] / 2, v + count_[k]);
        return v[count_[k] / 2];
    }
    void clear(int k) { count_[k] = next_[k] = 0; }

    int min_period_, max_period_, probe_runs_;
    bool skip_after_switch_;
    long period_, next_probe_;
    long runs_ = 0;
    int probe_left_ = 0;
    bool probed_ = false, decide_after_record_ = false;
    bool running_ = false;  // the way of the last run outside the probes
    double recent_[2][kWindow] = {};  // each way's last counted runs (default, alternative), a ring
    int next_[2] = {0, 0}, count_[2] = {0, 0};
    int last_ = -1;  // the way of the last run recorded
};

}  // namespace fastae::detail
