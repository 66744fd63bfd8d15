// process_group.cpp -- data-parallel training's row split and failure agreement (process_group.h).
#include "process_group.h"

#include <stdexcept>
#include <string>

namespace fastae::detail {

void check_group(const ProcessGroup& g, std::size_t local_rows) {
    if (!in_group(g)) return;
    if (!g.sum) throw std::invalid_argument("processes: a group (global_rows > 0) needs its sum function");
    if (g.row_offset > g.global_rows || local_rows > g.global_rows - g.row_offset) {
        throw std::invalid_argument("processes: rows [" + std::to_string(g.row_offset) + ", " +
                                    std::to_string(g.row_offset + local_rows) + ") of this process lie past the " +
                                    std::to_string(g.global_rows) + " rows of the whole dataset");
    }
}

Batch local_part(const Batch& global, const ProcessGroup& g, std::size_t local_rows, std::size_t* mine) {
    Batch b = global;
    b.global_size = global.size;
    std::size_t k = 0;
    for (std::size_t j = 0; j < global.size; ++j) {
        const std::size_t row = global.rows ? global.rows[j] : global.first + j;
        if (row >= g.row_offset && row - g.row_offset < local_rows) mine[k++] = row - g.row_offset;
    }
    b.rows = mine;
    b.first = 0;
    b.size = k;
    return b;
}

void announce_failure(const ProcessGroup& g) {
    double failed = 1.0;
    g.sum(nullptr, 0, &failed, 1);
}

void agree_to_start(const ProcessGroup& g) {
    double failed = 0.0;
    g.sum(nullptr, 0, &failed, 1);
    if (failed != 0.0) throw PeerFailed("another process of the group failed before training started");
}

void Agreement::sum(double* figures, std::size_t n) {
    figures[n - 1] = pending_ ? 1.0 : 0.0;
    group_.sum(nullptr, 0, figures, n);
    if (pending_) {
        std::exception_ptr e = pending_;
        pending_ = nullptr;
        std::rethrow_exception(e);
    }
    if (figures[n - 1] != 0.0) throw PeerFailed("another process of the group failed");
}

}  // namespace fastae::detail
