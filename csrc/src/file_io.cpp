// file_io.cpp -- atomic file replacement and checked reads (file_io.h), on POSIX calls: the
// standard library has no fsync and no exclusive create.
#include "file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <system_error>

namespace fastae::detail {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& what, const fs::path& path, int err) {
    throw fs::filesystem_error(what, path, std::error_code(err, std::generic_category()));
}

// A name no other writer is using: the process id, a counter and the clock, mixed.
std::string temporary_name(const fs::path& target) {
    static std::atomic<std::uint64_t> counter{0};
    std::uint64_t x = std::uint64_t(::getpid()) * 0x9E3779B97F4A7C15ull ^ (counter++ << 20) ^
                      std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    x = (x ^ (x >> 31)) * 0xBF58476D1CE4E5B9ull;
    char suffix[24];
    std::snprintf(suffix, sizeof suffix, ".tmp.%016llx", static_cast<unsigned long long>(x ^ (x >> 29)));
    return "." + target.filename().string() + suffix;
}

// Closes a descriptor and removes the temporary file unless released.
struct TemporaryFile {
    fs::path path;
    int fd = -1;
    bool keep = false;
    ~TemporaryFile() {
        if (fd >= 0) ::close(fd);
        if (!keep) ::unlink(path.c_str());
    }
};

}  // namespace

void replace_file_atomically(const fs::path& path, const void* data, std::size_t size) {
    if (path.empty() || !path.has_filename()) fail("cannot save: the path names no file", path, EINVAL);
    const fs::path folder = path.has_parent_path() ? path.parent_path() : fs::path(".");

    TemporaryFile tmp;
    for (int attempt = 0; attempt < 100 && tmp.fd < 0; ++attempt) {
        tmp.path = folder / temporary_name(path);
        tmp.fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (tmp.fd < 0 && errno != EEXIST) {
            const int err = errno;
            tmp.keep = true;  // nothing was created
            fail("cannot create a temporary file in the target's folder", path, err);
        }
    }
    if (tmp.fd < 0) {
        tmp.keep = true;
        fail("cannot find a free temporary file name in the target's folder", path, EEXIST);
    }

    const auto* p = static_cast<const unsigned char*>(data);
    std::size_t done = 0;
    while (done < size) {
        const ::ssize_t n = ::write(tmp.fd, p + done, size - done);
        if (n < 0) {
            const int err = errno;
            if (err == EINTR) continue;
            fail("cannot write the temporary file " + tmp.path.string(), path, err);
        }
        done += std::size_t(n);
    }
    // The file it replaces keeps its permissions; a new file gets 0666 & ~umask from open.
    struct stat old {};
    if (::stat(path.c_str(), &old) == 0 && S_ISREG(old.st_mode)) {
        (void)::fchmod(tmp.fd, old.st_mode & 07777);
    }
    if (::fsync(tmp.fd) != 0) {
        const int err = errno;
        fail("cannot flush the temporary file " + tmp.path.string() + " to disk", path, err);
    }
    const int fd = tmp.fd;
    tmp.fd = -1;
    if (::close(fd) != 0) {
        const int err = errno;
        fail("cannot close the temporary file " + tmp.path.string(), path, err);
    }
    if (::rename(tmp.path.c_str(), path.c_str()) != 0) {
        const int err = errno;
        fail("cannot rename the temporary file " + tmp.path.string() + " over the target", path, err);
    }
    tmp.keep = true;

    // Make the rename itself durable. It has happened, so a failure here is not reported.
    const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        (void)::fsync(dir);
        ::close(dir);
    }
}

ReadOnlyFile::ReadOnlyFile(const fs::path& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
        const int err = errno;
        fail("cannot open the model file", path, err);
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
        const int err = errno;
        ::close(fd_);
        fail("cannot stat the model file", path, err);
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd_);
        fail("not a regular file", path, S_ISDIR(st.st_mode) ? EISDIR : EINVAL);
    }
    size_ = std::size_t(st.st_size);
}

ReadOnlyFile::~ReadOnlyFile() {
    if (fd_ >= 0) ::close(fd_);
}

void ReadOnlyFile::read_at(std::size_t offset, void* out, std::size_t count) const {
    auto* p = static_cast<unsigned char*>(out);
    std::size_t done = 0;
    while (done < count) {
        const ::ssize_t n = ::pread(fd_, p + done, count - done, ::off_t(offset + done));
        if (n < 0) {
            const int err = errno;
            if (err == EINTR) continue;
            fail("cannot read the model file", path_, err);
        }
        if (n == 0) fail("the model file ended early (changed while being read?)", path_, EIO);
        done += std::size_t(n);
    }
}

}  // namespace fastae::detail
