"""Every public name of the modules reorganised in 0.2 still imports from where it did in 0.1.

The lists are the ``__all__`` of ``leap_sde``, ``leap_sde.theory`` (one module, now a package) and
``leap_sde.sweep`` (one module plus ``leap_sde._store``, now a package) as they were before the move,
written out here so that a name dropped from a new ``__all__`` fails the test as well.
"""
import importlib

import pytest

ROOT_0_1 = [
    "LEAP", "HessianNoise", "LeaveBall", "MinibatchNoise", "NoExit", "NoNoise", "ReachBall", "Threshold", "WhiteNoise",
    "ArrheniusFit", "RateEstimate", "SurvivalCurve", "arrhenius_fit", "exponential_rate", "kaplan_meier",
    "ks_exponential", "CriticalPoint", "CustomLandscape", "DoubleWell", "EntropicWell", "FiniteSum", "Landscape",
    "Polynomial", "Quadratic", "SharpFlatWell", "StyblinskiTang", "Constant", "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts", "CyclicLR", "ExponentialLR", "InverseTimeLR", "Schedule", "StepLR", "Warmup",
    "EscapeResult", "StabilityWarning", "Status", "normalize_seed", "simulate",
]
THEORY_0_1 = [
    "GOBET_MENOZZI_BETA", "STEP_VARIANTS", "mfpt_1d", "mfpt_1d_grid", "spectral_gap_1d", "spectral_gap_1d_grid",
    "kramers_time", "eyring_kramers_time", "xie_sgd_exponent", "xie_sgd_log_slope", "xie_sgd_escape_time",
    "xie_white_noise_escape_time", "leap_diffusion", "leap_diffusion_1d", "leap_mfpt_1d", "leap_effective_batch",
    "leap_xie_exponent", "leap_xie_escape_time", "sgd_stationary_variance", "langevin_stationary_variance",
    "ou_stationary_variance", "leap_stationary_variance", "stationary_covariance", "gd_stability_threshold",
    "leap_mean_square_threshold", "leap_lyapunov_exponent", "leap_almost_sure_threshold", "leap_abs_moment",
    "kesten_tail_index", "hill_estimator", "escape_indicator", "escape_indicator_isotropic", "ou_loss_increase",
    "discrete_loss_increase", "em_boundary_shift", "discrete_transition_matrix_1d", "discrete_mfpt_1d",
    "discrete_stationary_1d", "mfpt_sqra_grid",
]
# private helpers of the old theory module that tests import
THEORY_PRIVATE_0_1 = ["_step_of_z", "_z_of_step", "_log_abs_A", "_normal_expect", "_quad_abs_moment", "_step_moments"]
SWEEP_0_1 = [
    "SweepSpec", "SweepError", "SweepConflict", "SweepSummary", "CheckResult", "Plan", "load_spec", "plan_points",
    "point_config", "derive_seed", "config_hash", "check_store", "run_sweep", "make_runner", "headline",
    "write_table", "read_table", "load_results", "theory_log10_rate", "auto_plots", "plot_sweep", "main_sweep",
    "main_plot",
]
# names used from outside the old sweep module (tests, simulations/bench_sweep.py)
SWEEP_USED_0_1 = ["RECENT_VERIFY", "FULL_VERIFY_MAX", "MAX_ATTEMPTS", "_mp_context", "REPLICATE", "ROW_FIELDS"]
STORE_0_1 = ["Store", "StoreBusy", "IndexEntry", "canonical_json", "short_hash", "file_digest", "_index_line"]

CASES = ([("leap_sde", n) for n in ROOT_0_1] + [("leap_sde.theory", n) for n in THEORY_0_1 + THEORY_PRIVATE_0_1]
         + [("leap_sde.sweep", n) for n in SWEEP_0_1 + SWEEP_USED_0_1]
         + [("leap_sde.sweep.store", n) for n in STORE_0_1])


@pytest.mark.parametrize("module,name", CASES, ids=[f"{m}.{n}" for m, n in CASES])
def test_old_public_name_imports(module, name):
    mod = importlib.import_module(module)
    assert getattr(mod, name) is not None


@pytest.mark.parametrize("module,names", [("leap_sde", ROOT_0_1), ("leap_sde.theory", THEORY_0_1),
                                          ("leap_sde.sweep", SWEEP_0_1)])
def test_old_all_is_kept(module, names):
    """``__all__`` still lists every old public name (``from module import *`` keeps working)."""
    mod = importlib.import_module(module)
    assert set(names) <= set(mod.__all__), sorted(set(names) - set(mod.__all__))
    for n in mod.__all__:
        assert hasattr(mod, n), n


def test_theory_names_are_the_submodules_objects():
    """The package re-exports the submodules' objects, not copies (one function per name)."""
    import leap_sde.theory as th
    from leap_sde.theory import leap, mfpt, stability

    assert th.mfpt_1d is mfpt.mfpt_1d
    assert th.leap_diffusion is leap.leap_diffusion
    assert th.leap_lyapunov_exponent is stability.leap_lyapunov_exponent


def test_no_module_over_900_lines():
    from pathlib import Path

    root = Path(importlib.import_module("leap_sde").__file__).parent
    long = {str(p.relative_to(root)): n for p in root.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 900}
    assert not long, long
