// measured_choice.h -- a choice between two ways of doing the same work, made by timing both as
// the work repeats: each is tried at the start, then the faster one runs, and the other is
// re-measured now and then, since conditions change (a busy core frees up, a batch's density
// drifts). For work whose result does not depend on the way chosen: the team or one thread for a
// training step (thread_mode.h), the sparse or dense products of the first layer (network.h).
#pragma once

namespace fastae::detail {

class MeasuredChoice {
public:
    // The way for the next run of the work: true = the alternative, false = the default.
    bool next() {
        ++runs_;
        if (runs_ <= kWarmup) return runs_ % 2 == 0;  // alternate to seed both estimates
        const bool alternative = best();
        if (runs_ % kProbePeriod < kProbeRuns) return !alternative;
        return alternative;
    }
    // The way measured faster so far (the default until both are measured), without advancing
    // the probing schedule: for work that is not a run of the measured kind.
    bool best() const { return seconds_[0] > 0.0 && seconds_[1] > 0.0 && seconds_[1] < seconds_[0]; }

    void record(bool alternative, double seconds) {
        double& s = seconds_[alternative ? 1 : 0];
        s = s == 0.0 ? seconds : (1.0 - kSmoothing) * s + kSmoothing * seconds;
    }

private:
    static constexpr int kWarmup = 8;
    static constexpr int kProbePeriod = 64;
    static constexpr int kProbeRuns = 2;
    static constexpr double kSmoothing = 0.25;
    long runs_ = 0;
    double seconds_[2] = {0.0, 0.0};  // smoothed time: default, alternative
};

}  // namespace fastae::detail
