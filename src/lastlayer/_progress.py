"""Per-phase messages and progress bars on stderr (never stdout).

:class:`PhaseLog` is what ``LastLayerClassifier(verbose=...)`` and the ``lastlayer``
command use: ``verbose=0`` is silent; ``verbose>=1`` prints one line per phase of
the fit (statistics, alpha, weights, layer) with its wall time, and a progress bar
over long loops (the grid of ``weighting="tuned"``, the alphas of a cross-entropy
leave-one-out path).
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

__all__ = ["PhaseLog"]


class PhaseLog:
    """Timed phase messages on stderr when ``verbose`` (silent otherwise)."""

    def __init__(self, verbose=0, name="LastLayerClassifier", stream=None):
        self.verbose = int(verbose)
        self.name = name
        self.stream = stream

    def _out(self):
        return self.stream if self.stream is not None else sys.stderr

    def info(self, message):
        if self.verbose:
            print(f"[{self.name}] {message}", file=self._out(), flush=True)

    @contextmanager
    def phase(self, what):
        """Time the block; print ``what`` and the seconds when it ends. ``what`` may
        be a callable, called at the end (to report what the block found)."""
        t0 = time.perf_counter()
        yield
        if self.verbose:
            text = what() if callable(what) else what
            self.info(f"{text} ({time.perf_counter() - t0:.2f} s)")

    @contextmanager
    def steps(self, total, desc):
        """A progress bar of up to ``total`` steps (stderr) over the block; yields the
        function that advances it (a no-op when silent). Closed when the block ends,
        also when it stops early."""
        if not self.verbose:
            yield lambda: None
            return
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"[{self.name}] {desc}", file=self._out(), leave=False)
        try:
            yield bar.update
        finally:
            bar.close()

    def counted(self, fn, total, desc):
        """``fn`` wrapped to advance a progress bar of ``total`` calls (stderr)."""
        if not self.verbose:
            return fn
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"[{self.name}] {desc}", file=self._out(),
                   leave=False)

        def wrapped(*args, **kwargs):
            out = fn(*args, **kwargs)
            bar.update()
            if bar.n >= total:
                bar.close()
            return out
        return wrapped
