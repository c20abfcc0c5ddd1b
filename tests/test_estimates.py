"""Escape statistics against samples with known laws."""
import numpy as np
import pytest

import leap_sde as ls


def _censored_exponential(rate, n, t_max, seed):
    t = np.random.default_rng(seed).exponential(1 / rate, n)
    return np.minimum(t, t_max), t < t_max


def test_censored_rate_mle_and_interval():
    # seed 1, n = 20 000 exponential(rate 0.02) times censored at 60 (≈70% censored): λ̂ within 3 SE,
    # and the naive mean of the uncensored times is biased low (which is why it is never used)
    t, e = _censored_exponential(0.02, 20_000, 60.0, 1)
    est = ls.exponential_rate(t, e, unit="time")
    assert abs(est.rate - 0.02) < 3 * est.rate_se
    assert est.rate_ci[0] < 0.02 < est.rate_ci[1]
    assert est.n_censored == np.sum(~e) and est.mean == pytest.approx(1 / est.rate)
    assert t[e].mean() < 0.5 * est.mean


def test_rate_interval_coverage():
    # seed 2: 400 replicates of 50 times; the 90% interval covers the truth in 90% ± 3 binomial SE
    rng = np.random.default_rng(2)
    cover = 0
    for _ in range(400):
        t = rng.exponential(1.0, 50)
        c = np.minimum(t, 1.5)
        lo, hi = ls.exponential_rate(c, t < 1.5, confidence=0.9).rate_ci
        cover += lo < 1.0 < hi
    assert abs(cover / 400 - 0.9) < 3 * np.sqrt(0.09 / 400)


def test_kaplan_meier_follows_the_true_survival():
    t, e = _censored_exponential(0.5, 5000, 3.0, 3)  # seed 3, n = 5000
    km = ls.kaplan_meier(t, e)
    true = np.exp(-0.5 * km.t)
    assert np.mean((km.lower <= true) & (true <= km.upper)) > 0.9
    assert np.max(np.abs(km.survival - true)) < 4 * np.sqrt(0.25 / 5000) * 2


def test_ks_accepts_exponential_and_rejects_other_laws():
    t, e = _censored_exponential(0.5, 5000, 6.0, 4)  # seed 4
    assert ls.ks_exponential(t, e, t0=0.5, t_max=6.0) > 1e-3
    u = np.random.default_rng(4).uniform(0, 4, 5000)  # a uniform law is far from exponential
    assert ls.ks_exponential(u, np.ones(5000, bool), t0=0.0, t_max=4.0) < 1e-6


def test_arrhenius_fit_recovers_slope():
    # seed 5: τ = 2·exp(1.3 x) with log-normal scatter of SE 1/√d; slope within 3 SE
    rng = np.random.default_rng(5)
    x = np.linspace(2, 8, 7)
    d = np.full(7, 2000)
    tau = 2 * np.exp(1.3 * x + rng.normal(0, 1 / np.sqrt(d)))
    fit = ls.arrhenius_fit(x, tau, d)
    assert abs(fit.slope - 1.3) < 3 * fit.slope_se
    assert abs(fit.intercept - np.log(2)) < 3 * fit.intercept_se


def test_estimates_reject_bad_input():
    with pytest.raises(ValueError, match="same length"):
        ls.exponential_rate([1.0, 2.0], [True])
    with pytest.raises(ValueError, match="confidence"):
        ls.exponential_rate([1.0], [True], confidence=1.5)
    with pytest.raises(ValueError, match="at least one escape"):
        ls.arrhenius_fit([1, 2], [1.0, 2.0], [0, 5])
