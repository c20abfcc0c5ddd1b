"""leap_sde.torch.fit_reduced_model on a synthetic high-dimensional problem where the truth is known.

The problem (d = 1000 parameters, float64): the quartic double well W(y) = (y² − 1)² along a random unit direction
u of the first m = 8 coordinates (minimum y = −1, saddle y = 0), stiff-to-flat quadratic directions elsewhere
(curvatures 0.01..4 in the rest of the 8-dimensional block, 1e-4..4 on the other 992 coordinates), and a finite
sum of N = 512 per-sample losses ℓ_i(θ) = (1 + ζ_i) L(θ) + ω_i · (Aᵀθ): minibatch noise of rank 16 along noisy
directions (zero on the flat ones) plus a multiplicative part, state-dependent along u through W'. The loader
draws B = 10 samples with replacement per step. The coordinate is q = u · (θ − θ*) (0 at the minimum θ*,
saddle at q = 1). Training is SGD (lr 0.05), with or without the LEAP plug-in (per-coordinate, relative σ).

Brute force runs the same dynamics — SGD + LEAP from the plug-in, per-element — on R replicas held in one
(R, d) parameter tensor with per-replica batches (the replicas do not interact, so each row follows the law of
a single run), from θ* until q >= 1.
"""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import leap_sde.torch as lt  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: one intra-op thread (several threads on tiny ops only add overhead); restored after."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

ETA, B = 0.05, 10


class Problem:
    def __init__(self, *, d=1000, m=8, k=16, N=512, noise_u2=130.0, s_zeta=1.0, seed=0):
        rng = np.random.default_rng(seed)
        Q, _ = np.linalg.qr(rng.standard_normal((m, m)))  # columns: orthonormal directions of the block
        self.m, self.N = m, N
        self.Qt = torch.tensor(Q.T.copy())  # y = Qᵀ θ_block, y_0 along u
        self.h_block = torch.tensor(np.geomspace(0.01, 4.0, m - 1))
        self.h_rest = torch.tensor(np.geomspace(1e-4, 4.0, d - m))
        A = np.zeros((d, k))
        A[:m] = rng.standard_normal((m, k))
        A[m:] = (rng.random((d - m, k)) < 0.05) * rng.standard_normal((d - m, k))
        A[m:][self.h_rest.numpy() < 1e-2] = 0.0  # flat directions carry no noise
        u = np.zeros(d)
        u[:m] = Q[:, 0]
        A *= math.sqrt(noise_u2 / np.sum((A.T @ u) ** 2))  # per-sample noise variance along u
        self.A = torch.tensor(A)
        om = rng.standard_normal((N, k))
        z = rng.standard_normal(N) * s_zeta
        self.om = torch.tensor(om - om.mean(0))
        self.zeta = torch.tensor(z - z.mean())
        th = np.zeros(d)
        th[:m] = -Q[:, 0]  # y_0 = −1, other y = 0
        self.theta_star = torch.tensor(th)
        self.u = torch.tensor(u)

    def full_loss(self, theta):  # (..., d) -> (...)
        y = theta[..., :self.m] @ self.Qt.T
        return ((y[..., 0] ** 2 - 1) ** 2 + 0.5 * (self.h_block * y[..., 1:] ** 2).sum(-1)
                + 0.5 * (self.h_rest * theta[..., self.m:] ** 2).sum(-1))

    def batch_loss(self, theta, idx):  # theta (..., d), idx (..., B) -> (...)
        return (1 + self.zeta[idx].mean(-1)) * self.full_loss(theta) + (self.om[idx].mean(-2) * (theta @ self.A)).sum(-1)

    def loader(self, g):  # one epoch: N/B batches of indices drawn with replacement
        return torch.randint(0, self.N, (self.N // B, B), generator=g)


class Net(nn.Module):
    def __init__(self, prob, R=None):
        super().__init__()
        self.theta = nn.Parameter(prob.theta_star.clone() if R is None else prob.theta_star.repeat(R, 1))


def brute_force(prob, leap, R, seed, q_exit=1.0, max_steps=20000):
    torch.manual_seed(seed)
    net = Net(prob, R)
    opt = torch.optim.SGD(net.parameters(), lr=ETA)
    if leap:
        opt = lt.LEAP(opt, seed=seed + 1, **leap)
    g = torch.Generator().manual_seed(seed + 2)
    steps = np.zeros(R)
    alive = torch.ones(R, dtype=torch.bool)
    for k in range(1, max_steps + 1):
        idx = torch.randint(0, prob.N, (R, B), generator=g)
        opt.zero_grad()
        prob.batch_loss(net.theta, idx).sum().backward()
        opt.step()
        q = (net.theta.detach() - prob.theta_star) @ prob.u
        new = alive & (q >= q_exit)
        steps[new.numpy()] = k
        alive &= ~new
        if not alive.any():
            break
    assert not alive.any(), "brute force: some replicas did not escape within max_steps"
    return steps


def _fit(prob, leap, *, n_replicas, n_steps, window_hi, seed):
    return lt.fit_reduced_model(
        Net(prob), lambda m, idx: prob.batch_loss(m.theta, idx), prob.loader, (prob.theta_star, prob.u),
        optimizer_factory=lambda p: torch.optim.SGD(p, lr=ETA), leap=leap, n_replicas=n_replicas, n_steps=n_steps,
        window=(-math.inf, window_hi), seed=seed, bins=15)


def _compare(fit, steps, *, n_boot):
    """|ln T_pred − ln T_bf| <= 3 sqrt(log_se² + (SE_bf/T_bf)²) + ln(1 + model_error/T_pred)."""
    pred = fit.predict_escape(exit_hi=1.0, n_boot=n_boot, seed=0)
    T_bf, se_bf = steps.mean(), steps.std(ddof=1) / math.sqrt(steps.size)
    tol = 3 * math.hypot(pred.log_se, se_bf / T_bf) + math.log1p(pred.model_error / pred.mean_steps)
    assert abs(math.log(pred.mean_steps / T_bf)) <= tol, (pred, T_bf, se_bf, tol)
    return pred, T_bf


LEAPS = [None, {"sigma": 0.5, "relative": True, "mode": "per-coordinate"}]


@pytest.mark.parametrize("leap", LEAPS, ids=["sgd", "sgd+leap"])
def test_reduced_model_predicts_brute_force_escape(leap):
    """Done-when test, fast tier: fit from 48 pre-escape replicas (stopped when q first reaches 0.6, 60 % of the
    way to the saddle; seed 1), predict the mean steps to q = 1, compare with 64 brute-force replicas (seed 5)
    within 3 combined SE (log scale) + the stated model error. ΔU/D ≈ 3 (mean escape ~ 150–300 steps)."""
    prob = Problem(noise_u2=130.0)
    fit = _fit(prob, leap, n_replicas=48, n_steps=300, window_hi=0.6, seed=1)
    # pre-escape: every recorded start point lies inside the window (only the last step of a run leaves it)
    assert fit.stopped.sum() >= 40 and max(x[:-1].max() for x in fit.trajectories) < 0.6
    pred, T_bf = _compare(fit, brute_force(prob, leap, 64, seed=5), n_boot=40)
    assert pred.status == "extrapolated"


@pytest.mark.slow
@pytest.mark.parametrize("leap", LEAPS, ids=["sgd", "sgd+leap"])
def test_reduced_model_predicts_brute_force_escape_large(leap):
    """Slow tier: ΔU/D ≈ 3.5, 384 pre-escape replicas stopped at q = 0.7 (seed 11), 300 brute-force replicas
    (seed 15), same criterion, and the prediction is informative: log_se < 0.4."""
    prob = Problem(noise_u2=114.0)
    fit = _fit(prob, leap, n_replicas=384, n_steps=600, window_hi=0.7, seed=11)
    assert max(x[:-1].max() for x in fit.trajectories) < 0.7
    pred, T_bf = _compare(fit, brute_force(prob, leap, 300, seed=15), n_boot=100)
    assert pred.log_se < 0.4


def test_pre_escape_runs_and_reproducibility():
    """Replicas stop the first step q leaves the window (that last value is the only one outside); the model is not
    modified; the same seed gives the same records, and a DataLoader with shuffling gets each replica's own order."""
    from torch.utils.data import DataLoader, TensorDataset

    prob = Problem(d=40, noise_u2=130.0)
    net = Net(prob)
    before = net.theta.detach().clone()
    loader = DataLoader(TensorDataset(torch.arange(prob.N)), batch_size=B, shuffle=True)
    seen = []

    def loss_fn(m, batch):
        seen.append(batch[0][:3].tolist())
        return prob.batch_loss(m.theta, batch[0])

    kw = dict(optimizer_factory=lambda p: torch.optim.SGD(p, lr=ETA), leap={"sigma": 0.3, "relative": True},
              n_replicas=6, n_steps=100, window=(-0.5, 0.4), seed=3, bins=6, min_count=5, drift_order=1, var_order=0)
    f1 = lt.fit_reduced_model(net, loss_fn, loader, (prob.theta_star, prob.u), **kw)
    first = [seen[0]]
    for n in f1.steps_run[:-1]:
        first.append(seen[sum(len(x) - 1 for x in f1.trajectories[:len(first)])])
    seen.clear()
    f2 = lt.fit_reduced_model(net, loss_fn, loader, (prob.theta_star, prob.u), **kw)
    assert torch.equal(net.theta.detach(), before)
    for a, b in zip(f1.trajectories, f2.trajectories):
        np.testing.assert_array_equal(a, b)
    for x, stopped, n in zip(f1.trajectories, f1.stopped, f1.steps_run):
        assert x.size == n + 1 and x[0] == f1.q_start
        assert np.all((x[:-1] > -0.5) & (x[:-1] < 0.4))
        assert stopped == (not -0.5 < x[-1] < 0.4)
    assert len({tuple(b) for b in first}) > 1  # replicas see different batch orders
    # a callable coordinate gives the same q as the (θ*, u) pair
    f3 = lt.fit_reduced_model(net, loss_fn, loader, lambda m: (m.theta - prob.theta_star) @ prob.u, **kw)
    np.testing.assert_allclose(f3.trajectories[0], f1.trajectories[0], rtol=0, atol=1e-12)
    # kernel="empirical" is passed through: same records and fit, the residual law in the predictions
    f4 = lt.fit_reduced_model(net, loss_fn, loader, (prob.theta_star, prob.u), kernel="empirical", **kw)
    assert f4.reduced.kernel == "empirical" and f1.reduced.kernel == "gaussian"
    np.testing.assert_array_equal(f4.reduced.drift_coef, f1.reduced.drift_coef)
    p4 = f4.predict_escape(exit_hi=0.6, n_boot=0)
    assert p4.kernel == "empirical" and math.isfinite(p4.mean_steps)
    assert f1.predict_escape(exit_hi=0.6, n_boot=0, kernel="empirical").mean_steps == p4.mean_steps


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(leap={"sigma": 0.1, "seed": 1}), ValueError, "set per replica"),
    (dict(leap={"mode": "scalar"}), ValueError, "sigma"),
    (dict(window=(0.1, 0.5)), ValueError, "start q"),
    (dict(n_replicas=1), ValueError, "n_replicas"),
    (dict(burn_in=50), ValueError, "burn_in"),
    (dict(coordinate=(torch.zeros(3), torch.zeros(3))), ValueError, "one entry per parameter"),
    (dict(coordinate="q"), TypeError, "coordinate"),
])
def test_argument_errors(kwargs, err, match):
    prob = Problem(d=20)
    args = dict(model=Net(prob), loss_fn=lambda m, idx: prob.batch_loss(m.theta, idx), loader=prob.loader,
                coordinate=(prob.theta_star, prob.u), optimizer_factory=lambda p: torch.optim.SGD(p, lr=ETA),
                n_replicas=4, n_steps=50, window=(-1.0, 0.6), seed=0)
    args.update(kwargs)
    with pytest.raises(err, match=match):
        lt.fit_reduced_model(**args)
