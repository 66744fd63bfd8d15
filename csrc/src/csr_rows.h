// Rows of a CSR training matrix (TrainingData::csr_*) expanded into dense float columns: the
// batch gather and the validation hold-out read a CSR matrix through this, so the whole matrix is
// never densified. Its structure is checked once per fit (check_csr).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "fastae/config.h"

namespace fastae::detail {

inline bool is_csr(const TrainingData& d) { return d.csr_indptr != nullptr; }

// out[0, width) = row i of the CSR matrix (zeros where it has no entry; duplicates summed).
inline void csr_row(const TrainingData& d, std::size_t i, std::size_t width, float* out) {
    std::fill(out, out + width, 0.0f);
    for (std::int64_t k = d.csr_indptr[i]; k < d.csr_indptr[i + 1]; ++k) out[d.csr_indices[k]] += d.csr_values[k];
}

// The CSR arrays describe n rows of `width` columns: offsets start at 0 and never decrease,
// every column index lies in [0, width). O(nonzeros), once per fit.
inline void check_csr(const TrainingData& d, std::size_t width, const std::string& what) {
    if (d.csr_indices == nullptr || d.csr_values == nullptr) {
        throw std::invalid_argument(what + ": a CSR matrix needs csr_indptr, csr_indices and csr_values");
    }
    if (d.csr_indptr[0] != 0) throw std::invalid_argument(what + ": CSR offsets must start at 0");
    for (std::size_t i = 0; i < d.n; ++i) {
        if (d.csr_indptr[i + 1] < d.csr_indptr[i]) {
            throw std::invalid_argument(what + ": CSR offsets decrease at row " + std::to_string(i));
        }
    }
    for (std::int64_t k = 0; k < d.csr_indptr[d.n]; ++k) {
        if (d.csr_indices[k] < 0 || std::size_t(d.csr_indices[k]) >= width) {
            throw std::invalid_argument(what + ": CSR column index " + std::to_string(d.csr_indices[k]) +
                                        " is outside [0, " + std::to_string(width) + ")");
        }
    }
}

}  // namespace fastae::detail
