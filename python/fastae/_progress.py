"""What fit shows while it trains (the estimators' ``verbose``): 1 a live progress bar per epoch,
2 one line per epoch. The bar is tqdm's when tqdm is installed, else a plain one-line bar; when
the output is not a terminal, only the line per epoch is written. Nothing here changes what is
computed: the engine calls back between steps, at most every 0.1 s."""

from __future__ import annotations

import sys


def _format_line(report, epochs_total):
    line = f"epoch {report['epoch']:>{len(str(epochs_total))}}/{epochs_total}  loss {report['loss']:.6f}"
    if "val_loss" in report:
        line += f"  val_loss {report['val_loss']:.6f}"
    return line + f"  lr {report['lr']:.3g}  {report['seconds']:.3f} s"


class EpochLines:
    """verbose=2 (and verbose=1 without a terminal): one line per epoch."""

    def __init__(self, epochs_total, stream=None):
        self.epochs_total = epochs_total
        self.stream = stream if stream is not None else sys.stdout

    def progress(self, p):
        pass

    def epoch(self, report):
        print(_format_line(report, self.epochs_total), file=self.stream, flush=True)

    def close(self):
        pass


class PlainBar(EpochLines):
    """A one-line bar redrawn in place: steps done, running loss, samples/s and the ETA."""

    width = 30

    def progress(self, p):
        done = p["step"] / p["steps"]
        filled = int(self.width * done)
        rate = p["samples"] / p["seconds"] if p["seconds"] > 0 else 0.0
        eta = p["seconds"] * (1 - done) / done if done > 0 else 0.0
        text = (f"\repoch {p['epoch']}/{self.epochs_total} [{'=' * filled}{'.' * (self.width - filled)}] "
                f"{p['step']}/{p['steps']}  loss {p['loss']:.4f}  {rate:,.0f} samples/s  ETA {eta:.1f} s")
        self.stream.write(text)
        self.stream.flush()

    def epoch(self, report):
        self.stream.write("\r\x1b[K")
        super().epoch(report)


class TqdmBar(EpochLines):
    """tqdm's bar, one per epoch, kept on screen with the epoch's summary."""

    def __init__(self, epochs_total, stream=None):
        super().__init__(epochs_total, stream)
        import tqdm

        self._tqdm = tqdm.tqdm
        self._bar = None

    def progress(self, p):
        if self._bar is None:
            self._bar = self._tqdm(total=p["steps"], desc=f"epoch {p['epoch']}/{self.epochs_total}", unit="step",
                                   file=self.stream, leave=True, dynamic_ncols=True)
        self._bar.update(p["step"] - self._bar.n)
        rate = p["samples"] / p["seconds"] if p["seconds"] > 0 else 0.0
        self._bar.set_postfix(loss=f"{p['loss']:.4f}", samples_per_s=f"{rate:,.0f}", refresh=False)

    def epoch(self, report):
        if self._bar is not None:
            self._bar.set_postfix_str(_format_line(report, self.epochs_total).split("  ", 1)[1], refresh=True)
            self._bar.close()
            self._bar = None
        else:
            super().epoch(report)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def display(verbose, epochs_total, stream=None):
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
