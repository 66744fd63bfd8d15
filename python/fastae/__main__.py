"""``python -m fastae``: the same command line as the ``fastae`` script (fastae/_cli.py;
docs/cli.md): train, encode, reconstruct, score, info, demo, --version and --cmake-dir."""

from __future__ import annotations

import sys

from ._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
