"""Data-parallel training over MPI (mpi4py), for every estimator: ``est.fit(X_shard, comm=comm)``.

Each process (rank) holds a contiguous block of the dataset's rows, the blocks in rank order (as
:func:`shard` cuts them). Every process shuffles the global row numbers with the same seed and,
for each global batch of ``batch_size`` rows, computes the loss and gradient of the rows of it that
it holds; the engine then sums the gradient (one ``Allreduce`` over the flat gradient buffer) and
the loss across the processes, and every process applies the same update. So R processes visit
the batches one process would, and end with the weights one process would, up to the order of the
float sums. Validation losses, early stopping, learning-rate schedules and the history use the
global figures; ``validation_split`` holds out a seeded subset of the global rows.

Faults: an error on one process (bad data, a callback, Ctrl-C) is announced in the next collective
sum and raised on every process (``"rank r: ..."`` on the others), never a hang; hyperparameters
or data that give different networks on different ranks are an error before the first step.
After a failure, the ranks other than the failing one keep the steps done, as after a callback's
exception. Save from one rank (:func:`save`).

mpi4py is optional: this module imports without it, and asks for it when a ``comm`` is given
(``pip install "fastae[mpi]"`` brings mpi4py and the ``mpich`` wheel).
"""
from __future__ import annotations

import builtins
import functools
import os
from typing import Any, Callable, Optional

import numpy as np

from . import _core

__all__ = ["shard", "shard_range", "shard_file", "save"]


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("comm= needs mpi4py: pip install \"fastae[mpi]\" (mpi4py and an MPI library)") from exc
    return MPI


def _rank_size(comm):
    return comm.Get_rank(), comm.Get_size()


def shard_range(n_rows: int, comm: Any) -> tuple[int, int]:
    """Rows [start, stop) of a dataset of n_rows that this rank holds: contiguous blocks in rank
    order, the first n_rows % size ranks one row more (as numpy.array_split)."""
    rank, size = _rank_size(comm)
    n_rows = int(n_rows)
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    base, extra = divmod(n_rows, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def shard(X: Any, comm: Any) -> Any:
    """This rank's block of the rows of X (an array, or anything sliceable by rows with a len:
    a memory map, a data frame's ``.iloc``). A view where X allows one."""
    start, stop = shard_range(len(X), comm)
    return X[start:stop]


def shard_file(path: str | os.PathLike[str], comm: Any, key: Optional[str] = None) -> np.ndarray:
    """This rank's block of rows of a ``.npy`` file (memory-mapped: only its rows are read) or of
    array ``key`` of a ``.npz`` file (which numpy reads whole, then keeps the block)."""
    path = os.fspath(path)
    if path.endswith(".npz"):
        with np.load(path) as data:
            if key is None:
                if len(data.files) != 1:
                    raise ValueError(f"shard_file: {path!r} holds arrays {data.files}; name one with key=")
                key = data.files[0]
            return np.ascontiguousarray(shard(data[key], comm))
    return np.ascontiguousarray(shard(np.load(path, mmap_mode="r"), comm))


def save(estimator: Any, path: str | os.PathLike[str], comm: Any, **kwargs: Any) -> None:
    """Saves a model trained over comm from rank 0 only; every rank returns once the file is
    written, or raises rank 0's error."""
    error = None
    if comm.Get_rank() == 0:
        try:
            estimator.save(path, **kwargs)
        except Exception as exc:  # noqa: BLE001 - sent to every rank, raised there
            error = exc
    error = comm.bcast(None if error is None else _describe(error, 0), root=0)
    if error is not None:
        raise _rebuild(error, comm.Get_rank())


# ---- the fault protocol --------------------------------------------------------------------------

def _describe(exc, rank):
    return rank, type(exc).__name__, type(exc).__module__, str(exc)


def _rebuild(info, my_rank):
    """The exception another rank raised, raised here: the same built-in or fastae type when it
    can be made from a message, else RuntimeError."""
    rank, name, module, message = info
    kind = getattr(builtins, name, None) if module == "builtins" else getattr(_core, name, None)
    if not (isinstance(kind, type) and issubclass(kind, BaseException)):
        kind = RuntimeError
    try:
        return kind(f"rank {rank}: {message}" if rank != my_rank else message)
    except Exception:  # noqa: BLE001 - a type that wants other arguments
        return RuntimeError(f"rank {rank}: {name}: {message}")


class _PeerFailed(Exception):
    """Raised by _Group.agree on the ranks that did not fail (the failing rank raises its own)."""


class Group:
    """A communicator as one fit uses it: the collectives of setup (agree), the engine's sum,
    and the exchange of errors at the end. Every rank makes the same calls in the same order; a
    rank that fails makes, instead of the rest, the one its peers are waiting in (finish)."""

    def __init__(self, comm: Any) -> None:
        self.MPI = _mpi()
        if not isinstance(comm, self.MPI.Comm):
            raise TypeError(f"comm must be an mpi4py communicator (MPI.COMM_WORLD, say), got {type(comm).__name__}")
        self.comm = comm
        self.rank, self.size = _rank_size(comm)
        self.stage = "setup"        # setup -> engine -> done
        self.engine_called = False  # the engine has summed (it announces its own failures)
        self.global_rows = self.row_offset = 0
        self.unit_range: Optional[bool] = None

    # collectives -------------------------------------------------------------------------------

    def agree(self, facts: Any) -> list[Any]:
        """Every rank's facts, or every rank raises the first failure."""
        gathered = self.comm.allgather((None, facts))
        self._raise_first(gathered)
        return [facts for _, facts in gathered]

    def sum(self, values: Optional[np.ndarray], figures: Optional[np.ndarray]) -> None:
        """The engine's collective: float64 figures (loss, flags), then the float32 gradient."""
        self.engine_called = True
        if figures is not None:
            self.comm.Allreduce(self.MPI.IN_PLACE, figures, op=self.MPI.SUM)
        if values is not None:
            self.comm.Allreduce(self.MPI.IN_PLACE, values, op=self.MPI.SUM)

    def _raise_first(self, gathered):
        failures = [error for error, _ in gathered if error is not None]
        if failures:  # (the rank that failed is in finish, not here)
            self.stage = "done"
            raise _PeerFailed(failures[0])

    def finish(self, exc: Optional[BaseException]) -> None:
        """The end of a fit on this rank, however it ended: the failure announced where the others
        wait, then every rank's error exchanged; raises the first failure (its own on the rank that
        failed)."""
        if isinstance(exc, _PeerFailed):  # agree found a failure: every rank knows already
            raise _rebuild(exc.args[0], self.rank) from None
        mine = None
        if exc is not None and not isinstance(exc, _core.PeerFailedError):
            mine = _describe(exc, self.rank)
        if self.stage == "setup":  # the others are in agree (or failed before it too)
            self.stage = "done"
            gathered = self.comm.allgather((mine, None))
            errors = [e for e, _ in gathered if e is not None]
        else:
            if exc is not None and not self.engine_called:
                # failed between agree and the engine's first sum: the others wait to start
                self.sum(None, np.ones(1))
            self.stage = "done"
            errors = [e for e in self.comm.allgather(mine) if e is not None]
        if not errors:
            return
        if exc is not None and mine is not None:
            raise exc
        first = _rebuild(errors[0], self.rank)
        raise first from None

    # what _train needs ------------------------------------------------------------------------

    def setup(self, estimator: Any, p: dict[str, Any], X: Any, sample_weight: Optional[np.ndarray], needs_range: bool,
              unit_range_of: Callable[[], Any]) -> None:
        """The one agreement before a network is built: every rank's row count and width, the
        seed (rank 0's, for random_state=None), the data's range for loss="auto" (global), and
        that some sample weight somewhere is not zero."""
        local_range = unit_range_of() if needs_range else None
        weighted = None if sample_weight is None else bool(np.any(sample_weight))
        facts = self.agree((int(X.shape[0]), int(X.shape[1]), p["seed"], local_range, weighted))
        widths = [f[1] for f in facts]
        if len(set(widths)) != 1:
            raise ValueError(f"X has {widths[self.rank]} features on rank {self.rank}, but the ranks' shards have "
                             f"{widths} (every rank must hold rows of the same width)")
        counts = [f[0] for f in facts]
        if min(counts) == 0:
            raise ValueError(f"every rank needs at least one row of X; the ranks hold {counts}")
        if any(f[4] is not None for f in facts) and not any(f[4] for f in facts):
            raise ValueError("sample_weight is zero for every sample on every rank: there is nothing to train on")
        p["seed"] = facts[0][2]
        self.global_rows = sum(counts)
        self.row_offset = sum(counts[:self.rank])
        self.unit_range = all(f[3] for f in facts) if needs_range else None

    def check_model(self, model: Any) -> None:
        """Before the first step: the same network on every rank (sizes, head, parameter count),
        and rank 0's weights everywhere (a warm start from models that drifted apart would
        otherwise train different networks; an optimizer state resumed is each rank's own, the
        same when the ranks trained together)."""
        shape = (list(model.layer_sizes), model.loss, model.output_activation, int(model.n_params))
        # A mismatch is found by every rank from the same gathered list, so all raise together.
        shapes = self.agree(shape)
        if any(s != shapes[0] for s in shapes):
            raise ValueError("the ranks build different networks (layer sizes, loss, output activation, parameter "
                             "count): " + "; ".join(f"rank {r}: {s}" for r, s in enumerate(shapes)))
        params = np.ascontiguousarray(model.get_params(), dtype=np.float32)
        self.comm.Bcast(params, root=0)
        model.set_params(params)
        self.stage = "engine"  # from here the next collective is the engine's agreement to start

    def engine_args(self) -> tuple[int, int, bool, Callable[[Optional[np.ndarray], Optional[np.ndarray]], None]]:
        return self.global_rows, self.row_offset, self.rank == 0, self.sum


def collective(train: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator of the estimators' training driver: with comm=an MPI communicator, runs it as
    one rank of a data-parallel fit under the fault protocol (Group); comm=None: unchanged."""

    @functools.wraps(train)
    def run(estimator: Any, *args: Any, comm: Any = None, **kwargs: Any) -> Any:
        if comm is None:
            return train(estimator, *args, comm=None, **kwargs)
        group = Group(comm)
        try:
            result = train(estimator, *args, comm=group, **kwargs)
        except BaseException as exc:
            group.finish(exc)
            raise
        group.finish(None)
        return result

    return run
