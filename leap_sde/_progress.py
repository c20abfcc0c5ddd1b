"""Progress bars (tqdm.auto): shown on a terminal and in a Jupyter notebook, never in logs or pipes.

Each bar has one label (the σ value and the phase of a run, or the sweep) and an honest total: the step
budget of the phase, the number of AMS estimates, the number of sweep points.
"""
from __future__ import annotations

import sys

__all__ = ["bars_shown", "PhaseBar", "RunBars"]


def bars_shown() -> bool:
    """True when a bar can be drawn: stderr is a terminal, or tqdm.auto picked its notebook widget."""
    import warnings

    from tqdm.std import tqdm as std_tqdm

    with warnings.catch_warnings():  # tqdm.auto does the same (it warns about notebook mode otherwise)
        warnings.simplefilter("ignore")
        from tqdm.autonotebook import tqdm as auto_tqdm
    if auto_tqdm is not std_tqdm:  # an IPython kernel: tqdm.auto draws the notebook widget
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class PhaseBar:
    """One bar over a phase of ``total`` steps that may span several simulate calls (segments).

    :meth:`segment` returns the ``progress`` callable for one ``simulate`` call whose steps start at
    ``offset`` within the phase; ``escapes`` adds "escaped k/N" (not for a run without exit)."""

    def __init__(self, label: str, total: int, *, escapes: bool = True):
        from tqdm.auto import tqdm

        self.escapes = escapes
        self._bar = tqdm(total=total, desc=label, unit="step", unit_scale=True, dynamic_ncols=True, leave=False)

    def segment(self, offset: int = 0):
        def update(k, max_steps, n_escaped, n):
            if self.escapes:
                self._bar.set_postfix_str(f"escaped {n_escaped}/{n}", refresh=False)
            self._bar.update(offset + k - self._bar.n)

        return update

    def close(self):
        self._bar.close()


def _module():
    """This module, looked up at call time (tests replace its functions)."""
    return sys.modules[__name__]


class RunBars:
    """The progress of :func:`run_experiment`: one labelled bar per phase (``progress=True``), the user's
    callable for every simulate call, or nothing."""

    def __init__(self, progress, n_sigma):
        if progress is not True and progress is not False and progress is not None and not callable(progress):
            raise ValueError(f"progress must be a bool or a callable, got {progress!r}")
        self.user = progress if callable(progress) else None
        self.shown = progress is True and _module().bars_shown()
        self.n_sigma = n_sigma

    def label(self, i, sigma, phase):
        where = f" [{i + 1}/{self.n_sigma}]" if self.n_sigma > 1 else ""
        return f"σ={sigma:g}{where} {phase}"

    def phase(self, label, total, *, escapes=True):
        """A context manager yielding ``segment(offset) -> progress argument`` for the phase's simulate calls."""
        from contextlib import contextmanager

        @contextmanager
        def cm():
            if self.user is not None:
                yield lambda offset=0: self.user
            elif self.shown:
                bar = _module().PhaseBar(label, total, escapes=escapes)
                try:
                    yield bar.segment
                finally:
                    bar.close()
            else:
                yield lambda offset=0: False

        return cm()
