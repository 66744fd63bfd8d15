// file_io.h -- the file system side of model files: replacing a file atomically (readers see the
// old content or the whole new content, and a failure leaves the old file as it was), and reading
// a regular file by offset. POSIX (Linux, macOS). Errors are std::filesystem::filesystem_error
// naming the step, with the errno.
#pragma once

#include <cstddef>
#include <filesystem>

namespace fastae::detail {

// Writes size bytes into a new temporary file beside `path` (same folder, so the rename stays on
// one file system), fsyncs it, gives it the mode of the file it replaces (or 0666 & ~umask), and
// renames it over `path`; then fsyncs the folder (best effort: the rename has happened by then).
// On failure removes the temporary file and throws.
void replace_file_atomically(const std::filesystem::path& path, const void* data, std::size_t size);

// An open regular file (a folder, FIFO or device is refused, so its size is known up front).
class ReadOnlyFile {
public:
    explicit ReadOnlyFile(const std::filesystem::path& path);
    ~ReadOnlyFile();
    ReadOnlyFile(const ReadOnlyFile&) = delete;
    ReadOnlyFile& operator=(const ReadOnlyFile&) = delete;

    std::size_t size() const { return size_; }
    // Reads exactly `count` bytes at `offset` into out; throws if the file ends before.
    void read_at(std::size_t offset, void* out, std::size_t count) const;

private:
    std::filesystem::path path_;
    int fd_ = -1;
    std::size_t size_ = 0;
};

}  // namespace fastae::detail
