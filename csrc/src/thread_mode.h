// thread_mode.h -- chooses, step by step, whether a training step runs on the whole thread team
// or on the calling thread alone, by measuring both (measured_choice.h). On a shared server the
// other cores are often busy with other processes, and a fork/join then waits for the OS to
// schedule a worker: solo is faster there, the team is faster on free cores. Results do not
// depend on the choice.
#pragma once

#include "measured_choice.h"

namespace fastae::detail {

class ThreadModeChooser {
public:
    // Mode for the next step: true = solo.
    bool next_solo() { return choice_.next(); }
    // The mode measured faster so far (the team until both are measured), without advancing the
    // probing schedule: next_solo uses it, and so does work that is not a training step, such as
    // the validation pass.
    bool best_solo() const { return choice_.best(); }
    void record(bool solo, double seconds) { choice_.record(solo, seconds); }

private:
    // Probes of 3 steps in the other mode, 16 to 256 steps apart (measured_choice.h), the first
    // step after a switch uncounted: a team step after solo ones waits for its worker to wake
    // from sleep, and counting it kept a model that had once chosen solo in solo for good (a loop
    // of partial_fit calls at 2 threads then ran at 1-thread speed). A core that gets busy shows
    // at once in the running team's own times; one that frees up is found by the probes. A fixed
    // 64-step gap cost a 2-thread deep-model epoch on free cores about 3% (its solo probes take
    // twice a team step: 2.8 against 1.4 ms, Zen 5). A gap growing to 1024 steps instead of 256
    // gained on free cores (epoch_bench, 2-thread deep epoch: 0.311-0.329 against 0.322-0.339 s)
    // and lost beside a busy core (train_speed.py's contention section, 6 runs alternating:
    // default n_threads over 1 thread 1.11-1.21x against 1.06-1.14x): a wrong choice made in a
    // noisy probe then lasts 4 times longer.
    MeasuredChoice choice_{16, 256, 3, true};
};

}  // namespace fastae::detail
