// cpus.cpp -- the CPUs this process can keep busy (fastae/cpus.h): its affinity mask, capped by
// its control group's CPU bandwidth limit (cgroup_cpus.h).
#include "fastae/cpus.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cgroup_cpus.h"

#if defined(__linux__)
#include <sched.h>
#endif

namespace fastae {

namespace detail {

namespace {

// A file's whole text, or "" where it cannot be read (a missing limit file is no limit).
std::string file_text(const std::string& path) {
    std::ifstream in(path);
    if (!in) return "";
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> split(const std::string& text, char sep) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (std::size_t at; (at = text.find(sep, start)) != std::string::npos; start = at + 1) {
        parts.push_back(text.substr(start, at - start));
    }
    parts.push_back(text.substr(start));
    return parts;
}

// mountinfo writes a space, tab, newline or backslash in a path as \ and three octal digits.
std::string unescape(const std::string& field) {
    const auto octal = [&field](std::size_t k) { return field[k] >= '0' && field[k] <= '7'; };
    std::string out;
    for (std::size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size() && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
            out += char((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0'));
            i += 3;
        } else {
            out += field[i];
        }
    }
    return out;
}

struct Mount {
    std::string root, point, fstype;
    std::vector<std::string> options;  // the super options: a v1 hierarchy's controllers
};

// mountinfo's lines: "id parent major:minor root point options [optional...] - fstype source
// super-options".
std::vector<Mount> cgroup_mounts(const std::string& mountinfo) {
    std::vector<Mount> mounts;
    std::istringstream lines(mountinfo);
    for (std::string line; std::getline(lines, line);) {
        const std::size_t dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        std::istringstream head(line.substr(0, dash)), tail(line.substr(dash + 3));
        std::string id, parent, device, root, point, fstype, source, options;
        if (!(head >> id >> parent >> device >> root >> point) || !(tail >> fstype >> source >> options)) continue;
        if (fstype != "cgroup" && fstype != "cgroup2") continue;
        mounts.push_back({unescape(root), unescape(point), fstype, split(options, ',')});
    }
    return mounts;
}

// The group's path below a mount whose root is `root` ("" for the root itself, else "/a/b"), or
// false where the group lies outside it.
bool path_below(const std::string& group, const std::string& root, std::string* below) {
    if (root == "/") {
        *below = group == "/" ? "" : group;
    } else if (group == root) {
        below->clear();
    } else if (group.size() > root.size() && group.compare(0, root.size(), root) == 0 && group[root.size()] == '/') {
        *below = group.substr(root.size());
    } else {
        return false;
    }
    return below->empty() || (*below)[0] == '/';
}

bool positive_number(const std::string& text, double* value) {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 18) return false;
    *value = std::stod(text);
    return *value > 0;
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// A group's limit in CPUs, or 0: v2's cpu.max ("quota period", quota "max" for none).
double v2_limit(const std::string& dir) {
    const std::vector<std::string> fields = split(first_line(file_text(dir + "/cpu.max")), ' ');
    double quota = 0, period = 0;
    if (fields.size() != 2 || !positive_number(fields[0], &quota) || !positive_number(fields[1], &period)) return 0;
    return quota / period;
}

// v1's cpu.cfs_quota_us (-1 for none) over cpu.cfs_period_us.
double v1_limit(const std::string& dir) {
    double quota = 0, period = 0;
    if (!positive_number(first_line(file_text(dir + "/cpu.cfs_quota_us")), &quota) ||
        !positive_number(first_line(file_text(dir + "/cpu.cfs_period_us")), &period)) {
        return 0;
    }
    return quota / period;
}

// The smaller of two limits, 0 being none.
double tighter(double a, double b) { return a > 0 && (b <= 0 || a < b) ? a : b; }

bool has(const std::vector<std::string>& words, const char* word) {
    return std::find(words.begin(), words.end(), word) != words.end();
}

// The smallest limit from the group at point + below up to the mount's root, or 0.
template <typename Limit>
double smallest_up_to_root(const std::string& point, std::string below, Limit limit) {
    double smallest = 0;
    for (;;) {
        smallest = tighter(limit(point + below), smallest);
        if (below.empty()) return smallest;
        below.resize(below.rfind('/'));  // "/a/b" -> "/a" -> ""
    }
}

}  // namespace

double cgroup_cpu_limit(const std::string& proc_cgroup, const std::string& mountinfo) {
    const std::vector<Mount> mounts = cgroup_mounts(mountinfo);
    double smallest = 0;
    std::istringstream lines(proc_cgroup);
    for (std::string line; std::getline(lines, line);) {  // "id:controllers:path"
        const std::size_t first = line.find(':');
        const std::size_t second = first == std::string::npos ? first : line.find(':', first + 1);
        if (second == std::string::npos) continue;
        const std::string id = line.substr(0, first), path = line.substr(second + 1);
        const std::vector<std::string> controllers = split(line.substr(first + 1, second - first - 1), ',');
        const bool v2 = id == "0" && controllers == std::vector<std::string>{""};
        if ((!v2 && !has(controllers, "cpu")) || path.empty() || path[0] != '/') continue;
        for (const Mount& m : mounts) {
            const bool serves = v2 ? m.fstype == "cgroup2" : m.fstype == "cgroup" && has(m.options, "cpu");
            std::string below;
            if (!serves || !path_below(path, m.root, &below)) continue;
            smallest = tighter(v2 ? smallest_up_to_root(m.point, below, v2_limit)
                                  : smallest_up_to_root(m.point, below, v1_limit),
                               smallest);
            break;  // further mounts of the same hierarchy show the same files
        }
    }
    return smallest;
}

int cpus_within(int affinity, double limit) {
    int cpus = std::max(affinity, 1);
    if (limit > 0 && limit < double(cpus)) cpus = std::max(1, int(std::ceil(limit)));
    return cpus;
}

}  // namespace detail

// A larger set where the machine has more than CPU_SETSIZE CPUs.
int affinity_cpus() {
#if defined(__linux__)
    for (int n = CPU_SETSIZE; n <= (1 << 20); n *= 2) {
        cpu_set_t* set = CPU_ALLOC(n);
        if (set == nullptr) break;
        const std::size_t size = CPU_ALLOC_SIZE(n);
        CPU_ZERO_S(size, set);
        const int got = sched_getaffinity(0, size, set);
        const int count = got == 0 ? CPU_COUNT_S(size, set) : 0;
        const bool too_small = got != 0 && errno == EINVAL;
        CPU_FREE(set);
        if (count > 0) return count;
        if (!too_small) break;
    }
#endif
    return std::max(1, int(std::thread::hardware_concurrency()));
}

double cpu_limit() {
#if defined(__linux__)
    // Read at most once a second: the files take about 117 us to read, and Python asks on every
    // inference call (its n_threads are checked against available_cpus): a 1-row transform took
    // 121-142 us reading them each time, 17-23 us reading them once. A limit changes rarely (a
    // Kubernetes in-place resize), and a second late is nothing. Atomics, not a lock: two threads
    // may both read the files, and a process forked mid-read cannot inherit a held lock.
    using Clock = std::chrono::steady_clock;
    static std::atomic<std::int64_t> read_at{0};  // Clock's nanoseconds + 1 at the last read; 0: never
    static std::atomic<double> limit{0.0};
    const std::int64_t now =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count() + 1;
    const std::int64_t last = read_at.load(std::memory_order_acquire);
    if (last != 0 && now - last < std::int64_t(1000000000)) return limit.load(std::memory_order_relaxed);
    const std::string groups = detail::file_text("/proc/self/cgroup");
    limit.store(detail::cgroup_cpu_limit(groups, detail::file_text("/proc/self/mountinfo")), std::memory_order_relaxed);
    read_at.store(now, std::memory_order_release);
    return limit.load(std::memory_order_relaxed);
#else
    return 0.0;
#endif
}

int available_cpus() { return detail::cpus_within(affinity_cpus(), cpu_limit()); }

}  // namespace fastae
