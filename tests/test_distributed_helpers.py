"""fastae.distributed's sharding helpers, with a stand-in communicator (no MPI needed): the blocks
are numpy.array_split's, contiguous and in rank order, for arrays and for .npy / .npz files."""
import numpy as np
import pytest

from fastae import distributed


class FakeComm:
    def __init__(self, rank, size):
        self.rank, self.size = rank, size

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size


@pytest.mark.parametrize("n, size", [(10, 3), (2, 3), (0, 2), (7, 1), (203, 3)])
def test_shard_is_array_split(n, size):
    X = np.arange(n * 2).reshape(n, 2)
    expected = np.array_split(X, size)
    for r in range(size):
        np.testing.assert_array_equal(distributed.shard(X, FakeComm(r, size)), expected[r])
    ranges = [distributed.shard_range(n, FakeComm(r, size)) for r in range(size)]
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))


def test_shard_file_npy_and_npz(tmp_path):
    X = np.random.default_rng(0).random((11, 4), dtype=np.float32)
    np.save(tmp_path / "x.npy", X)
    np.savez(tmp_path / "x.npz", X=X, y=np.arange(11))
    for r in range(3):
        comm = FakeComm(r, 3)
        np.testing.assert_array_equal(distributed.shard_file(tmp_path / "x.npy", comm), np.array_split(X, 3)[r])
        np.testing.assert_array_equal(distributed.shard_file(tmp_path / "x.npz", comm, key="X"),
                                      np.array_split(X, 3)[r])
    with pytest.raises(ValueError, match="key="):
        distributed.shard_file(tmp_path / "x.npz", FakeComm(0, 2))
