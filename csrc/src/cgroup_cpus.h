// cgroup_cpus.h -- the parts of fastae/cpus.h that read the control-group files, apart from the
// running process, so that the tests can hand them a made-up /proc/self/cgroup, mountinfo and
// group directories (csrc/tests/test_cpus.cpp).
#pragma once

#include <string>

namespace fastae::detail {

// The CPU bandwidth limit in CPUs of the group that proc_cgroup names (the text of
// /proc/self/cgroup), read from the group directories under the mounts that mountinfo lists (the
// text of /proc/self/mountinfo): cgroup v2 (the "0::" line, a cgroup2 mount, cpu.max: "max
// 100000" or "150000 100000") and v1 (the line whose controllers include "cpu", a cgroup mount
// with the cpu option, cpu.cfs_quota_us (-1: none) over cpu.cfs_period_us). Each group from the
// process's up to its mount's root counts; the smallest quota / period found wins. 0 where none
// is set, a file is missing or malformed, or the group lies outside every mount.
double cgroup_cpu_limit(const std::string& proc_cgroup, const std::string& mountinfo);

// min(affinity, the limit rounded up), at least 1; a limit <= 0 is none.
int cpus_within(int affinity, double limit);

}  // namespace fastae::detail
