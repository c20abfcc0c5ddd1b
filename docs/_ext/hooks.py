"""MkDocs hooks of the documentation site.

``results-format.md`` (the layout of a run folder) is being written alongside the site; it joins the nav,
after the theory page, when it exists, so the site builds with or without it.
"""
from pathlib import Path

OPTIONAL_PAGES = [("Results format", "results-format.md", "theory.md")]  # (title, file, insert after)


def _files(nav):
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            yield from _files(value)
        else:
            yield value


def on_config(config, **kwargs):
    nav = config["nav"]
    present = set(_files(nav))
    for title, name, after in OPTIONAL_PAGES:
        if name in present or not (Path(config["docs_dir"]) / name).is_file():
            continue
        at = next((i + 1 for i, e in enumerate(nav) if isinstance(e, dict) and next(iter(e.values())) == after),
                  len(nav))
        nav.insert(at, {title: name})
    return config
