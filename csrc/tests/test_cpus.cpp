// test_cpus.cpp -- the CPU count (fastae/cpus.h): the control-group limit read from made-up
// /proc/self/cgroup and mountinfo texts over group directories written into a temporary folder,
// each layout a kernel or a container runtime produces, and the files it must not trust.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "cgroup_cpus.h"
#include "check.h"
#include "fastae/cpus.h"

namespace fs = std::filesystem;
using fastae::detail::cgroup_cpu_limit;
using fastae::detail::cpus_within;

namespace {

// A fresh folder under the system's temporary one, removed with the object.
struct TempTree {
    fs::path root;
    explicit TempTree(const std::string& name) : root(fs::temp_directory_path() / ("fastae_test_cpus_" + name)) {
        fs::remove_all(root);
        fs::create_directories(root);
    }
    ~TempTree() {
        std::error_code ignored;
        fs::remove_all(root, ignored);
    }
    // Writes `text` to the file at `relative`, creating its folders.
    void write(const std::string& relative, const std::string& text) const {
        const fs::path path = root / relative;
        fs::create_directories(path.parent_path());
        std::ofstream(path) << text;
    }
    std::string at(const std::string& relative) const { return (root / relative).string(); }
};

// One mountinfo line for a cgroup file system of type `fstype` whose `root` is mounted at `point`.
std::string mount_line(const std::string& root, const std::string& point, const std::string& fstype,
                       const std::string& options) {
    return "35 24 0:30 " + root + " " + point + " rw,nosuid,nodev,noexec,relatime shared:9 - " + fstype + " cgroup " +
           options + "\n";
}

}  // namespace

// cgroup v2 in a container with its own cgroup namespace (Docker's default today): the process
// sees its group as "/" and the mount's root is that group.
TEST(v2_container_limit) {
    TempTree t("v2_container");
    t.write("unified/cpu.max", "150000 100000\n");
    const std::string mounts = mount_line("/", t.at("unified"), "cgroup2", "rw,nsdelegate");
    CHECK_NEAR(cgroup_cpu_limit("0::/\n", mounts), 1.5, 1e-12);
    t.write("unified/cpu.max", "max 100000\n");  // no limit
    CHECK(cgroup_cpu_limit("0::/\n", mounts) == 0.0);
}

// Without a namespace: every group from the process's up to the mount's root counts, the
// smallest wins, a parent's limit included (a Kubernetes pod's limit sits above its containers').
TEST(v2_smallest_on_the_path_to_the_root) {
    TempTree t("v2_path");
    const std::string mounts = mount_line("/", t.at("fs"), "cgroup2", "rw");
    t.write("fs/kubepods/pod1/cpu.max", "400000 100000\n");
    t.write("fs/kubepods/pod1/ctr/cpu.max", "max 100000\n");
    t.write("fs/kubepods/cpu.max", "max 100000\n");
    CHECK_NEAR(cgroup_cpu_limit("0::/kubepods/pod1/ctr\n", mounts), 4.0, 1e-12);
    t.write("fs/kubepods/pod1/ctr/cpu.max", "250000 50000\n");  // 5 CPUs: the pod's 4 still bind
    CHECK_NEAR(cgroup_cpu_limit("0::/kubepods/pod1/ctr\n", mounts), 4.0, 1e-12);
    t.write("fs/kubepods/pod1/ctr/cpu.max", "50000 100000\n");
    CHECK_NEAR(cgroup_cpu_limit("0::/kubepods/pod1/ctr\n", mounts), 0.5, 1e-12);
    t.write("fs/cpu.max", "20000 100000\n");  // the mount's root is on the path too
    CHECK_NEAR(cgroup_cpu_limit("0::/kubepods/pod1/ctr\n", mounts), 0.2, 1e-12);
}

// cgroup v1 as Docker mounted it without a namespace: the group's full path in
// /proc/self/cgroup, the container's group as the cpu mount's root; the quota in microseconds.
TEST(v1_cpu_controller) {
    TempTree t("v1");
    const std::string mounts = mount_line("/", t.at("sys/cpuset"), "cgroup", "rw,cpuset") +
                               mount_line("/docker/abc", t.at("sys/cpu,cpuacct"), "cgroup", "rw,cpu,cpuacct");
    const std::string groups = "5:cpuset:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n";
    t.write("sys/cpu,cpuacct/cpu.cfs_quota_us", "250000\n");
    t.write("sys/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    CHECK_NEAR(cgroup_cpu_limit(groups, mounts), 2.5, 1e-12);
    t.write("sys/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");  // no limit
    CHECK(cgroup_cpu_limit(groups, mounts) == 0.0);
    // A quota file in a hierarchy without the cpu controller is not read.
    t.write("sys/cpuset/docker/abc/cpu.cfs_quota_us", "100000\n");
    t.write("sys/cpuset/docker/abc/cpu.cfs_period_us", "100000\n");
    CHECK(cgroup_cpu_limit(groups, mounts) == 0.0);
    CHECK(cgroup_cpu_limit("4:cpuacct:/docker/abc\n", mount_line("/docker/abc", t.at("sys/cpu,cpuacct"), "cgroup",
                                                                 "rw,cpuacct")) == 0.0);
}

// Both hierarchies (systemd's hybrid layout): the smaller limit wins.
TEST(hybrid_takes_the_smaller) {
    TempTree t("hybrid");
    const std::string mounts =
        mount_line("/", t.at("cpu"), "cgroup", "rw,cpu") + mount_line("/", t.at("unified"), "cgroup2", "rw");
    t.write("cpu/job/cpu.cfs_quota_us", "300000");
    t.write("cpu/job/cpu.cfs_period_us", "100000");
    t.write("unified/job/cpu.max", "150000 100000");
    CHECK_NEAR(cgroup_cpu_limit("1:cpu:/job\n0::/job\n", mounts), 1.5, 1e-12);
    t.write("unified/job/cpu.max", "max 100000");
    CHECK_NEAR(cgroup_cpu_limit("1:cpu:/job\n0::/job\n", mounts), 3.0, 1e-12);
}

// A mount point with a space (mountinfo writes it \040); a group outside the mount, or one whose
// path merely starts with the mount root's letters, reads nothing.
TEST(mount_points_and_paths) {
    TempTree t("paths");
    t.write("with space/cpu.max", "100000 100000");
    CHECK_NEAR(cgroup_cpu_limit("0::/\n", mount_line("/", t.at("with\\040space"), "cgroup2", "rw")), 1.0, 1e-12);
    t.write("m/cpu.max", "100000 100000");
    const std::string mounts = mount_line("/mine", t.at("m"), "cgroup2", "rw");
    CHECK_NEAR(cgroup_cpu_limit("0::/mine\n", mounts), 1.0, 1e-12);
    CHECK(cgroup_cpu_limit("0::/other\n", mounts) == 0.0);
    CHECK(cgroup_cpu_limit("0::/mineral\n", mounts) == 0.0);
    CHECK(cgroup_cpu_limit("0::/\n", mounts) == 0.0);
}

// Files that are not what the kernel writes, and texts that are not its format: no limit, never
// a throw or a division by zero.
TEST(malformed_files_are_no_limit) {
    TempTree t("malformed");
    const std::string mounts = mount_line("/", t.at("u"), "cgroup2", "rw");
    for (const char* text : {"", "\n", "abc", "100000", "100000 100000 7", "0 100000", "100000 0", "-5 100000",
                             "1e5 100000", "100000  100000", "99999999999999999999 100000", "max"}) {
        t.write("u/cpu.max", text);
        CHECK_IN(cgroup_cpu_limit("0::/\n", mounts) == 0.0, std::string("cpu.max: '") + text + "'");
    }
    fs::remove(t.at("u/cpu.max"));
    CHECK(cgroup_cpu_limit("0::/\n", mounts) == 0.0);  // missing
    t.write("u/cpu.max", "100000 100000");
    for (const char* groups : {"", "garbage", "0:/", "0::", "::/", "0:x:/\n"}) {
        CHECK_IN(cgroup_cpu_limit(groups, mounts) == 0.0, std::string("cgroup: '") + groups + "'");
    }
    for (const char* info : {"", "no dash here", "1 2 3 - cgroup2", " - cgroup2 cgroup rw\n"}) {
        CHECK_IN(cgroup_cpu_limit("0::/\n", info) == 0.0, std::string("mountinfo: '") + info + "'");
    }
}

// The count: the limit rounded up, never above the affinity mask, never below 1.
TEST(cpus_within_rounds_the_limit_up) {
    CHECK(cpus_within(8, 0.0) == 8);
    CHECK(cpus_within(8, 1.5) == 2);
    CHECK(cpus_within(8, 1.0) == 1);
    CHECK(cpus_within(8, 0.2) == 1);
    CHECK(cpus_within(8, 7.01) == 8);
    CHECK(cpus_within(2, 4.0) == 2);
    CHECK(cpus_within(0, 0.0) == 1);
    CHECK(cpus_within(64, -1.0) == 64);
}

// This process: at least 1, at most the hardware threads (where the runtime knows them), and what
// the pieces above give for the files of the machine the test runs on.
TEST(this_process) {
    const int cpus = fastae::available_cpus();
    CHECK(cpus >= 1);
    CHECK(cpus <= fastae::affinity_cpus());
    const unsigned hardware = std::thread::hardware_concurrency();
    CHECK(hardware == 0 || cpus <= int(hardware));
    const double limit = fastae::cpu_limit();
    CHECK(limit >= 0.0);
    if (limit > 0.0) CHECK(cpus <= int(std::ceil(limit)));
}
