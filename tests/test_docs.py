"""Every ``docs/theory.md §N.M`` reference in the code, tests, simulations and READMEs names a section that
exists, and nothing points to the old, unpublished notes any more."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "theory.md"


def _sections():
    heads = set()
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#{2,3} (\d+(?:\.\d+)?)\.? ", line)
        if m:
            heads.add(m.group(1))
    return heads


def _files():
    for pattern in ("leap_sde/**/*.py", "tests/*.py", "simulations/**/*.py", "simulations/**/*.toml",
                    "simulations/**/*.md", "validation/**/*.md", "*.md"):
        yield from ROOT.glob(pattern)


def test_theory_doc_has_numbered_sections():
    heads = _sections()
    assert {"0", "0.2", "1.3", "4.3", "8.2", "8.3", "8.5"} <= heads


def test_every_reference_names_an_existing_section():
    heads = _sections()
    bad = []
    n_refs = 0
    for path in _files():
        text = path.read_text(encoding="utf-8")
        # a reference: "docs/theory.md" followed (in the same sentence, before any parenthesis) by §-numbers, e.g.
        # "docs/theory.md §2.2, §8.6" or "docs/theory.md §2.1–2.2"
        for m in re.finditer(r"docs/theory\.md((?:[^.;(\n]|\.(?=\d))*)", text):
            for num in re.findall(r"§(\d+(?:\.\d+)?)(?:–(\d+(?:\.\d+)?))?", m.group(1)):
                for n in filter(None, num):
                    n_refs += 1
                    if n not in heads:
                        bad.append(f"{path.relative_to(ROOT)}: §{n}")
    assert n_refs > 80  # the package cites the document throughout
    assert not bad, bad


def test_no_reference_to_the_old_notes():
    hits = []
    for path in _files():
        rel = str(path.relative_to(ROOT))
        if path.name == "test_docs.py":
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"theory[- ]notes|\bnotes §", line, re.IGNORECASE):
                hits.append(f"{rel}:{i}: {line.strip()[:80]}")
    assert not hits, hits
