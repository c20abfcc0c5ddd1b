"""Progress bars (tqdm.auto): shown on a terminal and in a Jupyter notebook, never in logs or pipes.

Each bar has one label (the σ value and the phase of a run, or the sweep) and an honest total: the step
budget of the phase, the number of AMS estimates, the number of sweep points.
"""
from __future__ import annotations

import sys

__all__ = ["bars_shown", "PhaseBar"]


def bars_shown() -> bool:
    """True when a bar can be drawn: stderr is a terminal, or tqdm.auto picked its notebook widget."""
    from tqdm.auto import tqdm
    from tqdm.std import tqdm as std_tqdm

    if tqdm is not std_tqdm:  # IPython kernel: the notebook widget
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
