// csv_samples.h -- the sample files of the C++ examples: CSV, one sample per line, its features
// separated by commas; blank lines and lines starting with '#' are skipped. Numbers are written
// with 9 significant digits, which brings every float32 back exactly (numpy: np.savetxt(path, X,
// fmt="%.9g", delimiter=",") and np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)).
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

// n samples of d features, row-major: sample i, feature j is values[i * d + j] (fastae/layout.h).
struct Samples {
    std::size_t n = 0;
    std::size_t d = 0;
    std::vector<float> values;
};

inline Samples read_csv(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    Samples s;
    std::string line;
    for (std::size_t line_no = 1; std::getline(in, line); ++line_no) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        const std::string where = path + ":" + std::to_string(line_no);
        std::size_t count = 0;
        for (const char* p = line.c_str();;) {
            char* end = nullptr;
            errno = 0;
            const float v = std::strtof(p, &end);
            if (end == p || !std::isfinite(v)) throw std::runtime_error(where + ": value " + std::to_string(count + 1) + " is not a finite number");
            s.values.push_back(v);
            ++count;
            while (*end == ' ' || *end == '\t') ++end;
            if (*end == '\0') break;
            if (*end != ',') throw std::runtime_error(where + ": expected ',' after value " + std::to_string(count));
            p = end + 1;
        }
        if (s.n == 0) s.d = count;
        if (count != s.d) {
            throw std::runtime_error(where + ": " + std::to_string(count) + " values where the first sample has " + std::to_string(s.d));
        }
        ++s.n;
    }
    if (s.n == 0) throw std::runtime_error(path + " holds no samples");
    return s;
}

inline void write_csv(const std::string& path, std::size_t n, std::size_t d, const float* values) {
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (!f) throw std::runtime_error("cannot create " + path);
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < d; ++j) std::fprintf(f, j ? ",%.9g" : "%.9g", double(values[i * d + j]));
        std::fputc('\n', f);
    }
    const bool failed = std::ferror(f) != 0;
    if (std::fclose(f) != 0 || failed) throw std::runtime_error("cannot write " + path);
}
