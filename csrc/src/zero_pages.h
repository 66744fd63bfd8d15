// zero_pages.h -- a buffer of float zeros whose memory the system provides only where it is
// written.
//
// A training step of T shards gives each shard a gradient buffer laid out as the parameters, but
// from 4 shards on a shard writes only part of it: the deferred weight gradients are computed by
// the step's sum straight into the first buffer (training_deferred.cpp), and nothing reads the
// shards' copies of those ranges. On POSIX systems the buffer is an anonymous mapping, whose pages
// read as zeros and take memory only once written, so the unwritten ranges cost nothing (the deep
// model's 1.7 MB a shard, 110 MB at 64 threads). Elsewhere it is an ordinary zero-filled buffer.
// Either way it starts at a page (or Eigen's widest packet) boundary, as AlignedFloats does
// (eigen_types.h), and allocation failure throws std::bad_alloc.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <utility>

#if defined(__unix__) || defined(__APPLE__)
#define FASTAE_ZERO_PAGES_MMAP 1
#include <sys/mman.h>
#else
#include <Eigen/Core>
#endif

namespace fastae::detail {

class ZeroPages {
public:
    ZeroPages() = default;
    explicit ZeroPages(std::size_t n) : size_(n) {
        if (n == 0) return;
#ifdef FASTAE_ZERO_PAGES_MMAP
        void* p = mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        data_ = static_cast<float*>(p);
#else
        data_ = static_cast<float*>(Eigen::internal::aligned_malloc(bytes()));  // throws std::bad_alloc
        std::memset(data_, 0, bytes());
#endif
    }
    ~ZeroPages() { release(); }
    ZeroPages(ZeroPages&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    ZeroPages& operator=(ZeroPages&& other) noexcept {
        if (this != &other) {
            release();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    ZeroPages(const ZeroPages&) = delete;
    ZeroPages& operator=(const ZeroPages&) = delete;

    float* data() { return data_; }
    const float* data() const { return data_; }
    std::size_t size() const { return size_; }

private:
    std::size_t bytes() const { return size_ * sizeof(float); }
    void release() {
        if (data_ == nullptr) return;
#ifdef FASTAE_ZERO_PAGES_MMAP
        munmap(data_, bytes());
#else
        Eigen::internal::aligned_free(data_);
#endif
        data_ = nullptr;
    }

    float* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace fastae::detail
