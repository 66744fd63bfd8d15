// eigen_types.h -- the Eigen types the kernels use, and how raw buffers map onto them.
//
// A row-major (n, d) buffer (layout.h) is viewed as a column-major Eigen matrix of d rows and
// n columns: features x samples. A batch of consecutive samples is then a block of columns, and
// a dense layer computes Z = W * A + b with W viewed as (n_out, n_in) column-major, which is
// exactly the row-major (n_in, n_out) storage of layout.h.
#pragma once

#include <vector>

#include <Eigen/Core>

namespace fastae::detail {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using Vector = Eigen::VectorXf;
using ConstMatrixMap = Eigen::Map<const Matrix>;
using MutMatrixMap = Eigen::Map<Matrix>;
using VectorMap = Eigen::Map<Vector>;
using ConstVectorMap = Eigen::Map<const Vector>;

// Every buffer the kernels own starts at Eigen's widest packet alignment. Eigen's vector loops
// peel their first elements by address, and a peeled element takes the scalar path (std::exp
// instead of Eigen's packet exp, for one): owning aligned buffers keeps results independent of
// where the allocator put them, so a seed reproduces a run bit for bit.
using AlignedFloats = std::vector<float, Eigen::aligned_allocator<float>>;

}  // namespace fastae::detail
