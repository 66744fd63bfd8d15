// fuzz_model_file.cpp -- the fuzz target of the model-file reader (fuzz/README.md): every input goes
// through fastae::model_from_bytes and fastae::load_model, which must agree, accept it or throw
// ModelFileError, never anything else, and stay within a heap budget proportional to its size.
//
// Built two ways: with clang's -fsanitize=fuzzer,address,undefined as the libFuzzer binary
// fuzz_model_file (CMake option FASTAE_FUZZ, FASTAE_LIBFUZZER defined), and with any compiler and
// fuzz_replay_main.cpp as fuzz_model_file_replay, which CTest runs over the seed corpus. A broken
// property prints why and calls std::abort(): libFuzzer reports a crash and saves the input as an
// artifact, and the CTest replay fails.
//
// The properties, for an input of n bytes:
//   1. model_from_bytes returns or throws fastae::ModelFileError; any other exception is a bug.
//   2. load_model on a file holding the same bytes gives the same outcome: the same error text
//      (past its "model file <path>: " prefix), or a model that serializes to the same bytes.
//   3. Nothing a file holds is lost or changed by reading it: a model that loads writes back
//      (model_to_bytes with the file's settings, state and metadata; always version 2) to
//      exactly the input bytes, less any unknown optional sections (which a reader skips) and
//      with 72-byte layer records widened to this version's 88 (model_file_ref::widened_netw); a
//      version-1 input, written by model_file_reference.h's version-1 writer (made from
//      docs/model-format.md), is exactly the input. What is written back loads again and
//      writes back to itself, and the model runs: predict on one sample.
//   4. Sanitizer builds only: while loading, the heap never grows past its size at the start by
//      more than kHeapFactor * n + kHeapSlack bytes (malloc and free hooks of the sanitizer
//      allocator), so no field of a file can make the reader allocate beyond what the file holds.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "crc32.h"
#include "fastae/model_file.h"
#include "model_file_reference.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FASTAE_FUZZ_HEAP_HOOKS 1
#endif
#endif
#if !defined(FASTAE_FUZZ_HEAP_HOOKS) && defined(__SANITIZE_ADDRESS__)
#define FASTAE_FUZZ_HEAP_HOOKS 1
#endif
// The allocation hooks' header ships with clang's sanitizers, not always with GCC's.
#if defined(FASTAE_FUZZ_HEAP_HOOKS) && defined(__has_include)
#if !__has_include(<sanitizer/allocator_interface.h>)
#undef FASTAE_FUZZ_HEAP_HOOKS
#endif
#endif
#if defined(FASTAE_FUZZ_HEAP_HOOKS)
#include <sanitizer/allocator_interface.h>
#endif

namespace {

// The heap budget of loading an n-byte file. The reader holds the file (n), the parsed arrays
// (weights, optimizer slots, metadata: at most n together) and the model's copies of them
// (again at most n). Per layer it holds what the network is made of: in version 1, the widths
// twice and a layer record (at most 6 n: 24 bytes for each 4-byte width); in version 2, the
// LayerSpec twice (the parsed spec and the model's) and the model's layer record, 112 + 112 + 80
// bytes, about 4.2 n for the 72-byte records of NETW (less for the 88-byte ones). 8 n covers the largest sum, the slack error messages and
// fixed-size objects.
constexpr std::size_t kHeapFactor = 8;
constexpr std::size_t kHeapSlack = 64 * 1024;

[[noreturn]] void broken(const std::string& why, std::size_t size) {
    std::fprintf(stderr, "fuzz_model_file: property broken on a %zu-byte input: %s\n", size, why.c_str());
    std::fflush(stderr);
    std::abort();
}

// ---- heap accounting (sanitizer builds) ---------------------------------------------------

#if defined(FASTAE_FUZZ_HEAP_HOOKS)
// Bytes allocated minus bytes freed since the window opened, and its maximum. The hooks run on
// every thread; the reader is single-threaded and the fuzzer runs one input at a time.
bool g_counting = false;
long long g_live = 0;
long long g_peak = 0;
// The fullest use of the budget seen (peak / budget) and its input's size and peak.
double g_worst_use = 0.0;
std::size_t g_worst_size = 0;
long long g_worst_peak = 0;

void on_malloc(const volatile void*, std::size_t size) {
    if (!g_counting) return;
    g_live += static_cast<long long>(size);
    if (g_live > g_peak) g_peak = g_live;
}

void on_free(const volatile void* p) {
    if (!g_counting || p == nullptr) return;
    // The hook runs before the block is released, so the allocator still knows its size.
    const void* block = const_cast<const void*>(p);
    if (__sanitizer_get_ownership(block)) g_live -= static_cast<long long>(__sanitizer_get_allocated_size(block));
}

// Opens a counting window; close() ends it and checks the peak against the budget for size.
struct HeapWindow {
    HeapWindow() {
        static const bool installed = [] {
            __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
            return true;
        }();
        (void)installed;
        g_live = g_peak = 0;
        g_counting = true;
    }
    ~HeapWindow() { g_counting = false; }
    void close(std::size_t size) const {
        g_counting = false;
        const long long budget = static_cast<long long>(kHeapFactor * size + kHeapSlack);
        if (double(g_peak) / double(budget) > g_worst_use) {
            g_worst_use = double(g_peak) / double(budget);
            g_worst_size = size;
            g_worst_peak = g_peak;
        }
        if (g_peak > budget) {
            broken("loading used " + std::to_string(g_peak) + " bytes of heap, over the budget of " +
                       std::to_string(budget) + " (" + std::to_string(kHeapFactor) + " x size + " +
                       std::to_string(kHeapSlack) + ")",
                   size);
        }
    }
};
#else
struct HeapWindow {
    void close(std::size_t) const {}
};
#endif

// ---- what the inputs did, printed at exit when FASTAE_FUZZ_REPORT is set ------------------

struct Tally {
    unsigned long long loaded = 0, bad_magic = 0, bad_header = 0, bad_checksum = 0, bad_content = 0;
    ~Tally() {
        if (!std::getenv("FASTAE_FUZZ_REPORT")) return;
        std::fprintf(stderr,
                     "fuzz_model_file: inputs loaded %llu; rejected: magic %llu, header or size %llu, checksum "
                     "%llu, content %llu\n",
                     loaded, bad_magic, bad_header, bad_checksum, bad_content);
#if defined(FASTAE_FUZZ_HEAP_HOOKS)
        std::fprintf(stderr,
                     "fuzz_model_file: fullest heap budget while loading: %.1f%% (%lld bytes for a %zu-byte input; "
                     "budget %zu x size + %zu)\n",
                     100.0 * g_worst_use, g_worst_peak, g_worst_size, kHeapFactor, kHeapSlack);
#endif
    }
    void count(const std::string& error) {
        if (error.empty()) ++loaded;
        else if (error.rfind("not a fastae model file", 0) == 0) ++bad_magic;
        else if (error.rfind("checksum mismatch", 0) == 0) ++bad_checksum;
        else if (error.rfind("truncated at byte", 0) == 0 || error.rfind("unsupported model file version", 0) == 0 ||
                 error.rfind("bad byte-order mark", 0) == 0 || error.find("unexpected bytes after the end") != std::string::npos)
            ++bad_header;
        else ++bad_content;
    }
};
Tally g_tally;

// ---- the same bytes as a file, for load_model ---------------------------------------------

// One file reused for every input: an anonymous memory file on Linux (no disk traffic), else a
// temporary file removed at exit.
class InputFile {
public:
    InputFile() {
#if defined(__linux__)
        fd_ = ::memfd_create("fastae_fuzz_input", MFD_CLOEXEC);
        if (fd_ >= 0) path_ = "/proc/self/fd/" + std::to_string(fd_);
#endif
        if (fd_ < 0) {
            const char* dir = std::getenv("TMPDIR");
            std::string templ = std::string(dir && *dir ? dir : "/tmp") + "/fastae_fuzz_XXXXXX";
            fd_ = ::mkstemp(templ.data());
            if (fd_ < 0) broken("cannot create a temporary file", 0);
            path_ = templ;
            unlink_ = true;
        }
    }
    ~InputFile() {
        if (fd_ >= 0) ::close(fd_);
        if (unlink_) ::unlink(path_.c_str());
    }
    const std::string& hold(const std::uint8_t* data, std::size_t size) {
        if (::ftruncate(fd_, 0) != 0) broken("ftruncate failed", size);
        std::size_t done = 0;
        while (done < size) {
            const ::ssize_t n = ::pwrite(fd_, data + done, size - done, ::off_t(done));
            if (n <= 0) broken("writing the input file failed", size);
            done += std::size_t(n);
        }
        return path_;
    }

private:
    int fd_ = -1;
    std::string path_;
    bool unlink_ = false;
};

// ---- the properties ----------------------------------------------------------------------

struct Outcome {
    std::optional<fastae::ModelFile> file;  // when it loaded
    std::string error;                      // else the ModelFileError's text past its prefix
};

std::string past_prefix(const std::string& what, const std::string& prefix, std::size_t size) {
    if (what.compare(0, prefix.size(), prefix) != 0) {
        broken("a ModelFileError without the prefix '" + prefix + "': " + what, size);
    }
    return what.substr(prefix.size());
}

// Runs one entry point inside a heap window: property 1, and 4 in sanitizer builds.
template <typename Load>
Outcome outcome_of(Load load, const std::string& prefix, const char* entry, std::size_t size) {
    Outcome out;
    HeapWindow heap;
    try {
        out.file.emplace(load());
    } catch (const fastae::ModelFileError& e) {
        heap.close(size);
        out.error = past_prefix(e.what(), prefix, size);
        return out;
    } catch (const std::exception& e) {
        broken(std::string(entry) + " threw something other than ModelFileError: " + e.what(), size);
    } catch (...) {
        broken(std::string(entry) + " threw a non-standard exception", size);
    }
    heap.close(size);
    return out;
}

// The model written back with the file's settings, optimizer state and metadata.
std::vector<std::uint8_t> rewrite(const fastae::ModelFile& file, std::size_t size) {
    fastae::SaveOptions options;
    options.optimizer = file.optimizer;
    options.include_optimizer_state = true;
    options.metadata = file.metadata;
    try {
        return fastae::model_to_bytes(file.model, options);
    } catch (const std::exception& e) {
        broken(std::string("a model that loaded cannot be written back: ") + e.what(), size);
    }
}

// What is written back loads and writes back to itself.
void check_fixed_point(const std::vector<std::uint8_t>& written, std::size_t size) {
    try {
        const fastae::ModelFile again = fastae::model_from_bytes(written.data(), written.size());
        if (again.version != fastae::model_file_version || rewrite(again, size) != written) {
            broken("a file written back does not write back to itself", size);
        }
    } catch (const fastae::ModelFileError& e) {
        broken(std::string("a file written back does not load: ") + e.what(), size);
    }
}

// A model that loaded can run: one sample of zeros through every layer.
void run_once(const fastae::ModelFile& file, std::size_t size) {
    const fastae::Model& m = file.model;
    std::vector<float> x(std::size_t(m.n_inputs()), 0.0f), y(std::size_t(m.n_outputs()));
    try {
        m.predict(1, x.data(), y.data());
    } catch (const std::exception& e) {
        broken(std::string("a model that loaded cannot predict: ") + e.what(), size);
    }
}

InputFile& input_file() {
    static InputFile file;
    return file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string& path = input_file().hold(data, size);
    const Outcome from_bytes = outcome_of([&] { return fastae::model_from_bytes(data, size); }, "model file: ",
                                          "model_from_bytes", size);
    const Outcome from_file =
        outcome_of([&] { return fastae::load_model(path); }, "model file " + path + ": ", "load_model", size);

    if (from_bytes.file.has_value() != from_file.file.has_value() || from_bytes.error != from_file.error) {
        broken("model_from_bytes and load_model disagree: [" + (from_bytes.file ? "loaded" : from_bytes.error) +
                   "] vs [" + (from_file.file ? "loaded" : from_file.error) + "]",
               size);
    }
    g_tally.count(from_bytes.error);
    if (from_bytes.file) {
        const std::vector<std::uint8_t> input(data, data + size);
        const std::vector<std::uint8_t> written = rewrite(*from_bytes.file, size);
        if (rewrite(*from_file.file, size) != written) {
            broken("model_from_bytes and load_model load models that write back differently", size);
        }
        if (from_bytes.file->version == 1 && model_file_ref::v1_file(*from_bytes.file) != input) {
            broken("a version-1 file that loaded is not what the version-1 writer makes of what it read", size);
        }
        if (from_bytes.file->version == 2 && written != model_file_ref::without_unknown_sections(input)) {
            broken("a model that loaded does not write back to the same bytes (less unknown sections)", size);
        }
        check_fixed_point(written, size);
        run_once(*from_bytes.file, size);
    }
    return 0;
}

#if defined(FASTAE_LIBFUZZER)
// Almost every random change breaks the CRC-32, which the reader checks before anything else; to
// reach the fields behind it, 7 mutations in 8 re-seal the file (body size at byte 16, CRC-32 in
// the last 4 bytes) as a writer would. The eighth is left as mutated, to exercise the header and
// checksum checks. Inputs stay real files: a saved crash reproduces with fastae.load.
extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
    size = LLVMFuzzerMutate(data, size, max_size);
    if (seed % 8 != 0 && size >= 28) {
        const std::uint64_t body = size - 28;
        for (int i = 0; i < 8; ++i) data[16 + i] = std::uint8_t(body >> (8 * i));
        const std::uint32_t crc = fastae::detail::crc32(data, size - 4);
        for (int i = 0; i < 4; ++i) data[size - 4 + std::size_t(i)] = std::uint8_t(crc >> (8 * i));
    }
    return size;
}
#endif
