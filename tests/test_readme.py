"""Every ```python block of README.md runs as written (each in a fresh interpreter)."""
import re
from pathlib import Path

import pytest

from _markdown_code import block_outputs, python_blocks, run_blocks

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = python_blocks(README)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


def _run(code):
    proc = run_blocks([code], name="README.md", timeout=600)
    assert proc.returncode == 0, proc.stderr
    (out,) = block_outputs(proc.stdout)
    return out


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(code):
    assert _run(code).strip()  # each example prints its result


def test_readme_example_prints_rate_with_ci():
    out = _run(BLOCKS[0])
    m = re.search(r"escape rate ([\d.]+) per unit time, 95% CI \[([\d.]+), ([\d.]+)\]", out)
    assert m and float(m.group(2)) <= float(m.group(1)) <= float(m.group(3))
