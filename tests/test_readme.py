"""Every ```python block of README.md runs as written (in a fresh interpreter)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(code):
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()  # each example prints its result


def test_readme_example_prints_rate_with_ci():
    proc = subprocess.run([sys.executable, "-c", BLOCKS[0]], capture_output=True, text=True, timeout=600)
    m = re.search(r"escape rate ([\d.]+) per unit time, 95% CI \[([\d.]+), ([\d.]+)\]", proc.stdout)
    assert m and float(m.group(2)) <= float(m.group(1)) <= float(m.group(3))
