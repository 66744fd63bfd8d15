// thread_mode.h -- chooses, step by step, whether a training step runs on the whole thread team
// or on the calling thread alone, by measuring both. On a shared server the other cores are
// often busy with other processes, and a fork/join then waits for the OS to schedule a worker:
// solo is faster there, the team is faster on free cores. Results do not depend on the choice.
#pragma once

namespace fastae::detail {

class ThreadModeChooser {
public:
    // Mode for the next step: true = solo.
    bool next_solo() {
        ++step_;
        if (step_ <= kWarmup) return step_ % 2 == 0;  // alternate to seed both estimates
        const bool solo_faster = best_solo();
        // Re-measure the other mode now and then: conditions change (a busy core frees up).
        if (step_ % kProbePeriod < kProbeSteps) return !solo_faster;
        return solo_faster;
    }
    // The mode measured faster so far (the team until both are measured), without advancing the
    // probing schedule: next_solo uses it, and so does work that is not a training step, such as
    // the validation pass.
    bool best_solo() const { return seconds_[0] > 0.0 && seconds_[1] > 0.0 && seconds_[1] < seconds_[0]; }

    void record(bool solo, double seconds) {
        double& s = seconds_[solo ? 1 : 0];
        s = s == 0.0 ? seconds : (1.0 - kSmoothing) * s + kSmoothing * seconds;
    }

private:
    static constexpr int kWarmup = 8;
    static constexpr int kProbePeriod = 64;
    static constexpr int kProbeSteps = 2;
    static constexpr double kSmoothing = 0.25;
    long step_ = 0;
    double seconds_[2] = {0.0, 0.0};  // smoothed step time: team, solo
};

}  // namespace fastae::detail
