// fastae/cpus.h -- how many CPUs this process can keep busy at once: the Python estimators'
// default n_threads, and what a C++ host may give TrainOptions::n_threads.
#pragma once

namespace fastae {

// The CPUs this process may run on (its affinity mask: taskset, a container's cpuset), capped by
// its control group's CPU bandwidth limit rounded up (what `docker run --cpus=1.5` or a
// Kubernetes CPU limit sets): a 64-core server's container limited to 4 CPUs counts 4, not 64.
// At least 1. Threads past the limit do not add speed: once the group has used its quota, the
// kernel stops all of its threads for the rest of the period, and a step's threads wait for
// each other (a 1-CPU limit made a 2-thread epoch 20-33% slower than a 1-thread one: the note
// in docs/performance-log.md, "CPU limits").
int available_cpus();

// That bandwidth limit in CPUs (quota / period; the smallest on the path from this process's
// group to its hierarchy's root, cgroup v2's cpu.max or v1's cpu.cfs_quota_us and
// cpu.cfs_period_us), or 0 where none is set or none can be read (outside Linux, no cgroup
// file system). Read from the files at most once a second (the value of the last second
// otherwise).
double cpu_limit();

// The CPUs in this process's affinity mask (sched_getaffinity; the runtime's hardware threads
// where there is no such call), at least 1.
int affinity_cpus();

}  // namespace fastae
