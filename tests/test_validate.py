"""Tests of the validation suite (leap_sde.validate): verdict rule, NumPy landscape mirrors, runner."""
import numpy as np
import pytest

import leap_sde as ls
from leap_sde.validate import Verdict, judge, make_case, run_suite
from leap_sde.validate._np import finite_sum_funcs, funcs_1d


@pytest.mark.parametrize(
    "args,expected",
    [
        # (theory, estimate, se, model_tol, kind, sided)
        ((1.0, 1.05, 0.01, 0.03, "exact", "two"), Verdict.PASS),       # 0.05 ≤ 0.03 + 3·0.01
        ((1.0, 1.07, 0.01, 0.03, "exact", "two"), Verdict.FAIL),
        ((1.0, 1.07, 0.01, 0.03, "asymptotic", "two"), Verdict.OUTSIDE),
        ((1.0, 1.07, 0.01, 0.03, "claim", "two"), Verdict.REFUTED),
        ((1.0, 1.0, 0.01, 0.0, "context", "two"), Verdict.OUTSIDE),
        ((0.01, 0.5, 0.0, 0.0, "exact", "upper"), Verdict.FAIL),       # estimate must stay below the bound
        ((0.01, 0.005, 0.001, 0.0, "exact", "upper"), Verdict.PASS),
        ((0.0, 0.5, 0.1, 0.0, "claim", "greater"), Verdict.PASS),       # 0.5 > 0 + 3·0.1
        ((0.0, 0.2, 0.1, 0.0, "claim", "greater"), Verdict.INCONCLUSIVE),
        ((0.0, -0.5, 0.1, 0.0, "claim", "greater"), Verdict.REFUTED),
        ((1.0, float("nan"), 0.1, 0.0, "exact", "two"), Verdict.FAIL),
    ],
)
def test_verdict_rule(args, expected):
    assert judge(*args) == expected


def test_make_case_ci_and_bad_kind():
    c = make_case("x", "y", claim="c", source="s", kind="exact", theory=1.0, estimate=1.0, se=0.1, model_tol=0.0,
                  tol_note="t")
    assert c.ci == pytest.approx((1.0 - 0.196, 1.0 + 0.196))
    with pytest.raises(ValueError, match="kind"):
        judge(1.0, 1.0, 0.1, 0.0, "maybe")


@pytest.mark.parametrize(
    "land",
    [
        ls.Polynomial([0.0, 0.08, -0.5, 0.0, 0.25]),
        ls.SharpFlatWell(curv_flat=1.0, curv_sharp=4.0, barrier_flat=0.03, barrier_sharp=0.05, curv_saddle=3.0),
        ls.DoubleWell(barrier=0.5, curv_min=2.0, curv_saddle=1.0),
        ls.Quadratic([[2.5]]),
        ls.StyblinskiTang(dim=1, sharpness=0.3),
    ],
)
def test_numpy_mirrors_match_landscapes(land):
    U, dU, d2U = funcs_1d(land)
    xs = np.linspace(-3.0, 3.0, 37) + 0.013
    ref = np.array([[land.loss([x]), land.grad([x])[0], land.hessian([x])[0, 0]] for x in xs])
    assert np.allclose(U(xs) - U(xs[:1]), ref[:, 0] - ref[0, 0], atol=1e-10)  # Quadratic: same up to a constant
    assert np.allclose(dU(xs), ref[:, 1], atol=1e-10)
    assert np.allclose(d2U(xs), ref[:, 2], atol=1e-10)


def test_finite_sum_mirror():
    fs = ls.FiniteSum.gaussian(ls.Polynomial([1.0, 0.0, -2.0, 0.0, 1.0]), 5, 0.3, seed=2)
    U, dU, C = finite_sum_funcs(fs)
    for x in (-1.1, 0.2, 0.9):
        assert U(np.array([x]))[0] == pytest.approx(fs.loss([x]), abs=1e-12)
        assert dU(np.array([x]))[0] == pytest.approx(fs.grad([x])[0], abs=1e-12)
        assert C(np.array([x]))[0] == pytest.approx(fs.gradient_covariance([x])[0, 0], abs=1e-12)


def test_runner_quick_two_cases(tmp_path, capsys):
    code = run_suite(["--quick", "--only", "4", "trace-indicator", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    report = (tmp_path / "report.md").read_text()
    assert "| 4 sgd-variance" in report and "| 10 trace-indicator" in report
    assert (tmp_path / "case4_sgd_variance.png").exists() and (tmp_path / "case10_trace_indicator.png").exists()
    for ext in ("pdf", "svg"):  # every figure in the three formats (issue 15)
        assert (tmp_path / f"case4_sgd_variance.{ext}").stat().st_size > 0
    assert "FAIL 0" in out


def test_runner_list_and_unknown_case(capsys):
    assert run_suite(["--list"]) == 0
    names = capsys.readouterr().out
    for n in ("kramers", "arrhenius", "eyring-kramers", "sgd-variance", "leap-quadratic", "xie-sgd", "leap-escape",
              "convergence", "minibatch", "trace-indicator"):
        assert n in names
    with pytest.raises(SystemExit, match="unknown case"):
        run_suite(["--only", "nope"])


@pytest.mark.slow
def test_full_quick_suite_passes(tmp_path):
    """The CI run: every case in quick mode, no FAIL (REFUTED / OUTSIDE / INCONCLUSIVE are results)."""
    assert run_suite(["--quick", "--out", str(tmp_path)]) == 0
