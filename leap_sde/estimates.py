"""Escape statistics from right-censored first-passage times.

For N particles with durations ``t_i`` (escape time, or the censoring time for particles still inside at
``max_steps``, or the divergence time for diverged particles — a competing risk, never counted as an escape):

* **Rate** (censored exponential MLE): ``λ̂ = d / T`` with ``d`` escapes and ``T = Σ t_i`` the total observed
  time, escaped or not (e.g. https://stat.ethz.ch/CRAN/web/packages/likelihood.model/vignettes/exponential-lifetime.html;
  docs/theory.md §6.1).  In steps, ``d / Σ k_i`` is also the MLE of a geometric law's per-step escape probability.
  Its confidence interval is the exact Poisson interval for ``d`` events in exposure ``T``:
  ``[χ²_{2d}(α/2) / 2T, χ²_{2d+2}(1 − α/2) / 2T]`` (Garwood 1936); ``rate_se ≈ λ̂/√d``.
* **Mean escape time** ``1/λ̂`` with the inverted interval (never the average of the uncensored times alone,
  which is biased low).
* **Kaplan–Meier** survival with Greenwood intervals, via ``scipy.stats.ecdf`` on censored data.
* **KS test** of the exponential law after a transient ``t0`` (see :func:`ks_exponential`).
* **Arrhenius fit** of ``log τ`` against a control variable (1/D, B/η, ...) by weighted least squares.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["RateEstimate", "SurvivalCurve", "ArrheniusFit", "exponential_rate", "kaplan_meier",
           "ks_exponential", "arrhenius_fit"]


@dataclass(frozen=True)
class RateEstimate:
    """Censored exponential escape-rate estimate (``unit``: 'steps' or 'time').

    Standard errors are ``<quantity>_se`` in every result object (``rate_se`` here, ``slope_se`` and
    ``intercept_se`` in :class:`ArrheniusFit`); ``stderr`` is a deprecated alias of ``rate_se``.
    """

    rate: float
    rate_ci: tuple
    rate_se: float
    mean: float
    mean_ci: tuple
    n_escaped: int
    n_censored: int
    n_diverged: int
    exposure: float
    unit: str
    confidence: float

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    @property
    def stderr(self) -> float:
        """Deprecated alias of :attr:`rate_se`."""
        warnings.warn("RateEstimate.stderr is deprecated; use RateEstimate.rate_se", DeprecationWarning,
                      stacklevel=2)
        return self.rate_se


@dataclass(frozen=True)
class SurvivalCurve:
    """Kaplan–Meier survival ``S(t)`` at the distinct escape times ``t`` with pointwise CI bounds."""

    t: np.ndarray
    survival: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


@dataclass(frozen=True)
class ArrheniusFit:
    """``log τ = intercept + slope·x`` with normal-theory CIs and the fit's χ² (``dof`` = n − 2)."""

    slope: float
    slope_ci: tuple
    slope_se: float
    intercept: float
    intercept_ci: tuple
    intercept_se: float
    chi2: float
    dof: int


def _check(durations, escaped):
    t = np.asarray(durations, dtype=np.float64).reshape(-1)
    e = np.asarray(escaped, dtype=bool).reshape(-1)
    if t.shape != e.shape:
        raise ValueError(f"durations and escaped must have the same length, got {t.shape} and {e.shape}")
    if t.size == 0 or not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("durations must be a non-empty array of finite values >= 0")
    return t, e


def _check_confidence(confidence):
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def exponential_rate(durations, escaped, *, n_diverged: int = 0, confidence: float = 0.95,
                     unit: str = "steps") -> RateEstimate:
    """Censored exponential MLE ``λ̂ = d/T`` and exact Poisson CI (see module docstring).

    ``durations`` (N,) and ``escaped`` (N,) bool; ``n_diverged`` of the non-escaped entries diverged
    (reported separately; their time until divergence counts as exposure).
    """
    from scipy import stats  # imported lazily: keeps `import leap_sde` light
    t, e = _check(durations, escaped)
    _check_confidence(confidence)
    d = int(e.sum())
    T = float(t.sum())
    a = 1.0 - confidence
    if T <= 0:
        raise ValueError("total observed time is zero: no step was simulated")
    lo = stats.chi2.ppf(a / 2, 2 * d) / (2 * T) if d > 0 else 0.0
    hi = stats.chi2.ppf(1 - a / 2, 2 * d + 2) / (2 * T)
    rate = d / T
    return RateEstimate(
        rate=rate, rate_ci=(float(lo), float(hi)), rate_se=rate / np.sqrt(d) if d else float("nan"),
        mean=1.0 / rate if d else float("inf"), mean_ci=(1.0 / hi, 1.0 / lo if lo > 0 else float("inf")),
        n_escaped=d, n_censored=int(t.size - d - n_diverged), n_diverged=int(n_diverged), exposure=T,
        unit=unit, confidence=confidence)


def kaplan_meier(durations, escaped, *, confidence: float = 0.95) -> SurvivalCurve:
    """Kaplan–Meier estimate of ``P(τ > t)`` (``scipy.stats.ecdf``), Greenwood ('linear') intervals."""
    from scipy import stats  # imported lazily: keeps `import leap_sde` light
    t, e = _check(durations, escaped)
    _check_confidence(confidence)
    if not e.any():
        return SurvivalCurve(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0))
    res = stats.ecdf(stats.CensoredData(uncensored=t[e], right=t[~e]))
    with warnings.catch_warnings():  # Greenwood's interval is undefined where S = 0; NaN is mapped below
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = res.sf.confidence_interval(confidence)
    return SurvivalCurve(res.sf.quantiles, res.sf.probabilities, np.nan_to_num(ci.low.probabilities),
                         np.nan_to_num(ci.high.probabilities, nan=1.0))


def ks_exponential(durations, escaped, *, t0: float, t_max: float) -> float:
    """p-value of the KS test that escape times beyond a transient ``t0`` are exponential.

    Particles still inside at ``t0`` are kept; under the hypothesis their residual times ``t − t0`` are
    Exp(λ) and, with censoring at ``t_max``, the escaped ones follow the exponential truncated to
    ``[0, t_max − t0]``.  λ is the censored MLE of the same data (so the test is somewhat conservative:
    Lilliefors' correction is not applied).  Entries that are neither escaped nor censored at ``t_max``
    (diverged) should be excluded by the caller.  Returns NaN with fewer than 5 escapes after ``t0``.
    """
    from scipy import stats  # imported lazily: keeps `import leap_sde` light
    t, e = _check(durations, escaped)
    if not 0 <= t0 < t_max:
        raise ValueError(f"t0 must be in [0, t_max), got t0={t0}, t_max={t_max}")
    keep = t > t0
    r, ek = t[keep] - t0, e[keep]
    if ek.sum() < 5:
        return float("nan")
    lam = ek.sum() / r.sum()
    w = t_max - t0
    norm = -np.expm1(-lam * w)
    return float(stats.kstest(r[ek], lambda u: -np.expm1(-lam * np.minimum(u, w)) / norm).pvalue)


def arrhenius_fit(x, mean_times, n_escaped, *, confidence: float = 0.95) -> ArrheniusFit:
    """Weighted least-squares fit of ``log τ`` against ``x``.

    ``SE(log τ̂) ≈ 1/√d`` for the censored MLE with ``d`` escapes, so the weights are ``d``.  Arrhenius /
    Kramers (docs/theory.md §1.5): with ``x = 1/D`` the slope estimates the barrier ΔU; with ``x = B/η`` under
    SGD-like noise it estimates Xie et al.'s ``2ΔL(s/H_a + (1−s)/|H_b|)``.
    """
    from scipy import stats  # imported lazily: keeps `import leap_sde` light
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.log(np.asarray(mean_times, dtype=np.float64).reshape(-1))
    w = np.asarray(n_escaped, dtype=np.float64).reshape(-1)
    if not (x.shape == y.shape == w.shape) or x.size < 2:
        raise ValueError("x, mean_times and n_escaped must have the same length >= 2")
    if np.any(w <= 0) or not np.all(np.isfinite(y)):
        raise ValueError("every point needs at least one escape and a finite mean time")
    _check_confidence(confidence)
    A = np.column_stack([np.ones_like(x), x])
    cov = np.linalg.inv(A.T @ (A * w[:, None]))
    beta = cov @ (A.T @ (w * y))
    chi2 = float(np.sum(w * (y - A @ beta) ** 2))
    z = stats.norm.ppf(0.5 + confidence / 2)
    se = np.sqrt(np.diag(cov))
    return ArrheniusFit(slope=float(beta[1]), slope_ci=(beta[1] - z * se[1], beta[1] + z * se[1]),
                        slope_se=float(se[1]), intercept=float(beta[0]),
                        intercept_ci=(beta[0] - z * se[0], beta[0] + z * se[0]), intercept_se=float(se[0]),
                        chi2=chi2, dof=x.size - 2)
