// zero_pages.h -- a buffer of zeros (floats or indices) whose memory the system provides only
// where it is written.
//
// A training step of T shards gives each shard a gradient buffer laid out as the parameters, but
// from 4 shards on a shard writes only part of it: the deferred weight gradients are computed by
// the step's sum straight into the first buffer (training_deferred.cpp), and nothing reads the
// shards' copies of those ranges. A workspace (network.h) holds every layer's activations and the
// backward pass's buffer, where inference uses the activations up to the layer it returns and no
// backward buffer; its sparse input's lists have room for 40% nonzeros, and the re-sorted lists
// of the weight gradient serve training alone (sparse_input.h).
//
// On POSIX systems a buffer of 64 KB or more is an anonymous mapping, whose pages read as zeros
// and take memory only once written, so the parts never written cost nothing (the deep model's
// 1.7 MB a shard, 110 MB at 64 threads). Smaller buffers, and every buffer elsewhere, come from
// the heap, zero-filled: their pages would be touched soon anyway, and a mapping each would count
// against the system's limit on a process's mappings. Either way a buffer starts at Eigen's
// widest packet boundary (64 bytes into a page when mapped: kLead), as AlignedFloats does
// (eigen_types.h), and allocation failure throws std::bad_alloc.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include <Eigen/Core>

#if defined(__unix__) || defined(__APPLE__)
#define FASTAE_ZERO_PAGES_MMAP 1
#include <sys/mman.h>
#endif

namespace fastae::detail {

template <class T>
class ZeroPagesOf {
    static_assert(std::is_trivially_copyable_v<T>, "ZeroPagesOf holds plain numbers");

public:
    ZeroPagesOf() = default;
    explicit ZeroPagesOf(std::size_t n) : size_(n) {
        if (n == 0) return;
#ifdef FASTAE_ZERO_PAGES_MMAP
        if (mapped()) {
            void* p = mmap(nullptr, bytes() + kLead, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) throw std::bad_alloc();
            data_ = reinterpret_cast<T*>(static_cast<char*>(p) + kLead);
            return;
        }
#endif
        data_ = static_cast<T*>(Eigen::internal::aligned_malloc(bytes()));  // throws std::bad_alloc
        std::memset(data_, 0, bytes());
    }
    ~ZeroPagesOf() { release(); }
    ZeroPagesOf(ZeroPagesOf&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    ZeroPagesOf& operator=(ZeroPagesOf&& other) noexcept {
        if (this != &other) {
            release();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    ZeroPagesOf(const ZeroPagesOf&) = delete;
    ZeroPagesOf& operator=(const ZeroPagesOf&) = delete;

    T* data() { return data_; }
    const T* data() const { return data_; }
    std::size_t size() const { return size_; }
    T& operator[](std::size_t i) { return data_[i]; }
    const T& operator[](std::size_t i) const { return data_[i]; }

private:
    static constexpr std::size_t kMapBytes = std::size_t(64) << 10;  // mapped from this size on
    // A mapped buffer starts 64 bytes into its first page, where the heap put such buffers
    // (AlignedFloats: 16 bytes of the allocator's header, then Eigen's alignment). At the page's
    // start the tutorial epoch measured 1.7-2.3% slower than before the buffers were mapped
    // (Zen 4, 1 thread, 10 alternating pairs, 7-10 of them slower); at 64 bytes 0.998 of the
    // time (16 rounds of four binaries, where the same binary twice differed by 1.7%).
    static constexpr std::size_t kLead = 64;
    std::size_t bytes() const { return size_ * sizeof(T); }
    bool mapped() const {
#ifdef FASTAE_ZERO_PAGES_MMAP
        return bytes() >= kMapBytes;
#else
        return false;
#endif
    }
    void release() {
        if (data_ == nullptr) return;
#ifdef FASTAE_ZERO_PAGES_MMAP
        if (mapped()) {
            munmap(reinterpret_cast<char*>(data_) - kLead, bytes() + kLead);
            data_ = nullptr;
            return;
        }
#endif
        Eigen::internal::aligned_free(data_);
        data_ = nullptr;
    }

    T* data_ = nullptr;
    std::size_t size_ = 0;
};

using ZeroPages = ZeroPagesOf<float>;

}  // namespace fastae::detail
