// fuzz_replay_main.cpp -- runs a fuzz target's LLVMFuzzerTestOneInput on saved inputs, for builds
// without libFuzzer (any compiler): every file named, and every file in every folder named.
// CTest uses it to replay the seed corpus of fuzz/ on each build.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace fs = std::filesystem;

namespace {

// Replays one file; false when it cannot be read.
bool replay(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    const std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t count = 0;
    for (int i = 1; i < argc; ++i) {
        const fs::path arg = argv[i];
        std::error_code ec;
        if (fs::is_directory(arg, ec)) {
            std::vector<fs::path> files;
            for (const auto& entry : fs::directory_iterator(arg)) {
                if (entry.is_regular_file()) files.push_back(entry.path());
            }
            std::sort(files.begin(), files.end());
            for (const fs::path& f : files) {
                if (!replay(f)) {
                    std::fprintf(stderr, "cannot read %s\n", f.string().c_str());
                    return 2;
                }
                ++count;
            }
        } else if (!replay(arg)) {
            std::fprintf(stderr, "cannot read %s\n", arg.string().c_str());
            return 2;
        } else {
            ++count;
        }
    }
    std::printf("replayed %zu inputs\n", count);
    // An empty replay checks nothing: a missing corpus must fail, not pass.
    return count > 0 ? 0 : 1;
}
