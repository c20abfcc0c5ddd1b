"""The documentation site: ``mkdocs build --strict`` succeeds (every warning, griffe's docstring warnings
included, is an error), the API pages hold the public objects, and every tutorial's (and the home page's) ```python
blocks run in order in a fresh interpreter, writing their figures only under a temporary folder."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from _markdown_code import block_outputs, python_blocks, run_blocks

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIALS = sorted((DOCS / "tutorials").glob("*.md"))
EXECUTED = [DOCS / "index.md", *TUTORIALS]  # pages whose ```python blocks are run


def _nav_files(nav):
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            yield from _nav_files(value)
        else:
            yield value


def test_every_tutorial_and_api_page_is_in_the_nav():
    nav = set(_nav_files(yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]))
    pages = {str(p.relative_to(DOCS)) for p in TUTORIALS + sorted((DOCS / "api").glob("*.md"))}
    assert len(TUTORIALS) >= 4
    assert pages <= nav, pages - nav
    assert {"index.md", "theory.md", "developing.md", "results-format.md"} <= nav
    assert all((DOCS / f).is_file() for f in nav), [f for f in nav if not (DOCS / f).is_file()]


def test_site_builds_strict(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "WARNING -" not in proc.stderr, proc.stderr[-5000:]
    # the API reference was generated from the docstrings: one anchor per documented object
    expect = {
        "api/simulate": ["leap_sde.simulate.simulate", "leap_sde.simulate.EscapeResult", "leap_sde.ams.ams",
                         "leap_sde.estimates.arrhenius_fit"],
        "api/landscapes": ["leap_sde.landscapes.SharpFlatWell", "leap_sde.landscapes.CustomLandscape"],
        "api/dynamics": ["leap_sde.dynamics.LEAP", "leap_sde.dynamics.HessianNoise"],
        "api/schedules": ["leap_sde.schedules.CosineAnnealingLR"],
        "api/optimizers": ["leap_sde.optimizers.Adam"],
        "api/theory": ["leap_sde.theory.kramers_time", "leap_sde.theory.discrete_mfpt_1d"],
        "api/sweep": ["leap_sde.sweep.run_sweep"],
        "api/runs": ["leap_sde.runs.load_run", "leap_sde.runs.compare_runs"],
        "api/experiment": ["leap_sde.experiment.run_experiment", "leap_sde.config.ConfigError"],
        "api/reduced": ["leap_sde.reduced.fit_reduced_chain"],
        "api/torch": ["leap_sde.torch.LEAP", "leap_sde.torch.hessian_eigenvalues"],
    }
    for page, ids in expect.items():
        html = (site / page / "index.html").read_text(encoding="utf-8")
        missing = [i for i in ids if f'id="{i}"' not in html]
        assert not missing, (page, missing)
        assert ":func:`" not in html and ":class:`" not in html, page  # Sphinx roles were converted
    for tutorial in TUTORIALS:
        assert (site / "tutorials" / tutorial.stem / "index.html").is_file()


def _tutorial_param(path):
    marks = []
    if "torch" in path.read_text(encoding="utf-8") and importlib.util.find_spec("torch") is None:
        marks.append(pytest.mark.skip(reason="needs the torch extra"))
    return pytest.param(path, id=path.stem, marks=marks)


@pytest.mark.parametrize("path", [_tutorial_param(p) for p in EXECUTED])
def test_tutorial_runs(path, tmp_path):
    blocks = python_blocks(path)
    assert len(blocks) >= (3 if path in TUTORIALS else 1)
    before = set(DOCS.rglob("*"))
    proc = run_blocks(blocks, name=path.name, cwd=tmp_path, env={"TMPDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-5000:]
    outputs = block_outputs(proc.stdout)
    assert len(outputs) == len(blocks)
    assert sum(bool(o.strip()) for o in outputs) >= len(blocks) - 1  # the blocks print what they show
    assert set(DOCS.rglob("*")) == before  # figures go to the temporary folder, never into the docs
    figures = list(tmp_path.rglob("*.png"))
    if "savefig" in path.read_text(encoding="utf-8") or "plot_sweep" in path.read_text(encoding="utf-8"):
        assert figures, "the tutorial draws a figure but none was written under TMPDIR"
