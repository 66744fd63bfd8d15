"""What fit shows while it trains (the estimators' ``verbose``): 1 a live progress bar per epoch,
2 one line per epoch. The bar is tqdm's when tqdm is installed, else a plain one-line bar; when
the output is not a terminal, only the line per epoch is written. Nothing here changes what is
computed: the engine calls back between steps, at most every 0.1 s."""

from __future__ import annotations

import os
import sys
from typing import Any, Optional, TextIO


def _format_line(report: dict[str, Any], epochs_total: int) -> str:
    line = f"epoch {report['epoch']:>{len(str(epochs_total))}}/{epochs_total}  loss {report['loss']:.6f}"
    if "val_loss" in report:
        line += f"  val_loss {report['val_loss']:.6f}"
    return line + f"  lr {report['lr']:.3g}  {report['seconds']:.3f} s"


class EpochLines:
    """verbose=2 (and verbose=1 without a terminal): one line per epoch."""

    def __init__(self, epochs_total: int, stream: Optional[TextIO] = None) -> None:
        self.epochs_total = epochs_total
        self.stream = stream if stream is not None else sys.stdout

    def progress(self, p: dict[str, Any]) -> None:
        pass

    def epoch(self, report: dict[str, Any]) -> None:
        print(_format_line(report, self.epochs_total), file=self.stream, flush=True)

    def close(self) -> None:
        pass


class PlainBar(EpochLines):
    """A one-line bar redrawn in place: steps done, running loss, samples/s and the ETA. It is
    kept narrower than the terminal (a line that wraps cannot be redrawn with a carriage return)."""

    width = 30

    def __init__(self, epochs_total: int, stream: Optional[TextIO] = None) -> None:
        super().__init__(epochs_total, stream)
        self._drawn = False  # a bar is on screen, not yet replaced by its epoch's line

    def _columns(self) -> int:
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
        return columns if columns > 0 else 80

    def progress(self, p: dict[str, Any]) -> None:
        done = p["step"] / p["steps"]
        rate = p["samples"] / p["seconds"] if p["seconds"] > 0 else 0.0
        eta = p["seconds"] * (1 - done) / done if done > 0 else 0.0
        head = f"epoch {p['epoch']}/{self.epochs_total} "
        tail = f" {p['step']}/{p['steps']}  loss {p['loss']:.4f}  {rate:,.0f} samples/s  ETA {eta:.1f} s"
        room = self._columns() - 1  # the last column would wrap on some terminals
        width = min(self.width, room - len(head) - len(tail) - 2)
        if width >= 5:
            filled = int(width * done)
            text = f"{head}[{'=' * filled}{'.' * (width - filled)}]{tail}"
        else:
            text = (head + tail.lstrip())[:room]
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def epoch(self, report: dict[str, Any]) -> None:
        self.stream.write("\r\x1b[K")
        self._drawn = False
        super().epoch(report)

    def close(self) -> None:
        if self._drawn:  # stopped within an epoch (Ctrl-C, max_time): keep the bar, end its line
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


class TqdmBar(EpochLines):
    """tqdm's bar, one per epoch, kept on screen with the epoch's summary."""

    def __init__(self, epochs_total: int, stream: Optional[TextIO] = None) -> None:
        super().__init__(epochs_total, stream)
        import tqdm

        self._tqdm = tqdm.tqdm
        self._bar: Any = None

    def progress(self, p: dict[str, Any]) -> None:
        if self._bar is None:
            self._bar = self._tqdm(total=p["steps"], desc=f"epoch {p['epoch']}/{self.epochs_total}", unit="step",
                                   file=self.stream, leave=True, dynamic_ncols=True)
        self._rate = p["samples"] / p["seconds"] if p["seconds"] > 0 else 0.0
        # The postfix first: update() draws it (at most every tqdm's mininterval).
        self._bar.set_postfix_str(f"loss {p['loss']:.4f}, {self._rate:,.0f} samples/s", refresh=False)
        self._bar.update(p["step"] - self._bar.n)

    def epoch(self, report: dict[str, Any]) -> None:
        if self._bar is not None:
            summary = _format_line(report, self.epochs_total).split("  ", 1)[1]
            self._bar.set_postfix_str(f"{summary}, {self._rate:,.0f} samples/s", refresh=True)
            self._bar.close()
            self._bar = None
        else:
            super().epoch(report)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def display(verbose: int, epochs_total: int, stream: Optional[TextIO] = None) -> Optional[EpochLines]:
    """The display for a verbose level, or None for 0."""
    if not verbose:
        return None
    stream = stream if stream is not None else sys.stdout
    if verbose == 1 and getattr(stream, "isatty", lambda: False)():
        try:
            return TqdmBar(epochs_total, stream)
        except ImportError:
            return PlainBar(epochs_total, stream)
    return EpochLines(epochs_total, stream)
