"""Learning-rate schedules reproduce torch's values step by step (where torch is installed)."""
import numpy as np
import pytest

import leap_sde as ls


def _torch_values(make, n, lr):
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = make(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


CASES = [
    (ls.StepLR(7, 0.5), lambda T, o: T.StepLR(o, 7, 0.5)),
    (ls.ExponentialLR(0.97), lambda T, o: T.ExponentialLR(o, 0.97)),
    (ls.CosineAnnealingLR(30, 0.01), lambda T, o: T.CosineAnnealingLR(o, 30, 0.01)),
    (ls.CosineAnnealingWarmRestarts(10, 2, 0.001), lambda T, o: T.CosineAnnealingWarmRestarts(o, 10, 2, 0.001)),
    (ls.CosineAnnealingWarmRestarts(7), lambda T, o: T.CosineAnnealingWarmRestarts(o, 7)),
    (ls.CyclicLR(1.0, 5, 8, "triangular"), lambda T, o: T.CyclicLR(o, 0.1, 1.0, 5, 8, "triangular", cycle_momentum=False)),
    (ls.CyclicLR(1.0, 5, 8, "triangular2"), lambda T, o: T.CyclicLR(o, 0.1, 1.0, 5, 8, "triangular2", cycle_momentum=False)),
    (ls.CyclicLR(1.0, 5, None, "exp_range", 0.99),
     lambda T, o: T.CyclicLR(o, 0.1, 1.0, 5, None, "exp_range", 0.99, cycle_momentum=False)),
    (ls.Warmup(ls.CosineAnnealingLR(40), 10, 0.1),
     lambda T, o: T.SequentialLR(o, [T.LinearLR(o, 0.1, 1.0, 10), T.CosineAnnealingLR(o, 40)], [10])),
    (ls.Warmup(ls.StepLR(5, 0.5), 4, 0.25),
     lambda T, o: T.SequentialLR(o, [T.LinearLR(o, 0.25, 1.0, 4), T.StepLR(o, 5, 0.5)], [4])),
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("ours, theirs", CASES, ids=lambda c: type(c).__name__ if isinstance(c, ls.Schedule) else "")
def test_schedule_matches_torch(ours, theirs):
    torch = pytest.importorskip("torch")
    ref = _torch_values(lambda o: theirs(torch.optim.lr_scheduler, o), 150, 0.1)
    # torch updates most schedules recursively: agreement to rounding (1e-12 relative)
    np.testing.assert_allclose(ours.values(0.1, 150), ref, rtol=1e-12)


def test_constant_and_composition_without_torch():
    np.testing.assert_array_equal(ls.Constant().values(0.3, 5), 0.3)
    v = ls.Warmup(ls.ExponentialLR(0.5), warmup_steps=4, start_factor=0.5).values(1.0, 7)
    np.testing.assert_allclose(v, [0.5, 0.625, 0.75, 0.875, 1.0, 0.5, 0.25])


def test_inverse_time_decay():
    np.testing.assert_allclose(ls.InverseTimeLR(0.5, power=0.75).values(2.0, 4),
                               [2.0 * (1 + 0.5 * k) ** -0.75 for k in range(4)], rtol=1e-15)
