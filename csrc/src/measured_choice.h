// measured_choice.h -- a choice between two ways of doing the same work, made by timing both as
// the work repeats: each is tried at the start, then the faster one runs, and the other is
// re-measured now and then, since conditions change (a busy core frees up, a batch's density
// drifts). For work whose result does not depend on the way chosen: the team or one thread for a
// training step (thread_mode.h), the sparse or dense products of the first layer (network.h).
//
// Each way's time is the median of its last kWindow counted runs: one run's time scatters by 20%
// and more (interrupts, the batch's own density), and a smoothed mean of every run was pulled
// across often enough that the first layer ran its slower path for a quarter of the steps of an
// MNIST epoch, or most of them (medians 188 against 235 us a step, Zen 5).
#pragma once

#include <algorithm>

namespace fastae::detail {

class MeasuredChoice {
public:
    // probe_runs of the other way every probe_period runs; skip_after_switch: whether the first
    // run after the way changed goes uncounted (record).
    explicit MeasuredChoice(int probe_period = 64, int probe_runs = 2, bool skip_after_switch = false)
        : probe_period_(probe_period), probe_runs_(probe_runs), skip_after_switch_(skip_after_switch) {}

    // The way for the next run of the work: true = the alternative, false = the default.
    bool next() {
        ++runs_;
        if (runs_ <= kWarmup) return runs_ > kWarmup / 2;  // a block of each to seed both estimates
        const bool alternative = best();
        if (runs_ % probe_period_ < probe_runs_) return !alternative;
        return alternative;
    }
    // The way measured faster so far (the default until both are measured), without advancing
    // the probing schedule: for work that is not a run of the measured kind.
    bool best() const {
        if (count_[0] == 0 || count_[1] == 0) return false;
        return median(1) < median(0);
    }

    // With skip_after_switch, a run right after the other way ran is not counted: it pays for the
    // caches that way left (its buffers evicted, the packing or list buffers cold), so every probe
    // would measure the way that is not running as slower than it is, and a choice once made
    // would stick.
    void record(bool alternative, double seconds) {
        const int k = alternative ? 1 : 0;
        const bool after_switch = last_ != k;
        last_ = k;
        if (after_switch && skip_after_switch_) return;
        recent_[k][next_[k]] = seconds;
        next_[k] = (next_[k] + 1) % kWindow;
        count_[k] = std::min(count_[k] + 1, kWindow);
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

    int probe_period_, probe_runs_;
    bool skip_after_switch_;
    long runs_ = 0;
    double recent_[2][kWindow] = {};  // each way's last counted runs (default, alternative), a ring
    int next_[2] = {0, 0}, count_[2] = {0, 0};
    int last_ = -1;  // the way of the last run recorded
};

}  // namespace fastae::detail
