"""Griffe extension for the documentation site: the package's docstrings use Sphinx roles
(``:func:`simulate```, ``:class:`Status```, ``:mod:`leap_sde.optimizers```), which Markdown would show literally.
Each role becomes inline code, linked to the object's API entry when the name resolves in the docstring's scope
(an optional cross-reference: a name that is not rendered on any page stays plain code, without a warning).
"""
from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|obj|exc|const):`~?([^`]+)`")


def _target(obj, name: str) -> str | None:
    name = name.strip().removesuffix("()")
    if name.startswith("leap_sde"):
        return name
    scope = obj
    while scope is not None:
        try:
            return scope.resolve(name.split(".")[0]) + name[len(name.split(".")[0]):]
        except Exception:  # noqa: BLE001 - griffe raises NameResolutionError or KeyError on unknown names
            scope = scope.parent
    return None


class RstRoles(griffe.Extension):
    def _fix(self, obj) -> None:
        doc = obj.docstring
        if doc is None or ":" not in doc.value:
            return

        def repl(m):
            name = m.group(1)
            shown = name.removeprefix("~").split(".")[-1] if m.group(0).count("~") else name
            target = _target(obj, name)
            if target is None or not target.startswith("leap_sde"):
                return f"`{shown}`"
            return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>'

        doc.value = ROLE.sub(repl, doc.value)

    def on_package(self, *, pkg, loader, **kwargs) -> None:  # noqa: ARG002
        seen = set()
        stack = [pkg]
        while stack:
            obj = stack.pop()
            if id(obj) in seen or obj.is_alias:
                continue
            seen.add(id(obj))
            self._fix(obj)
            stack.extend(m for m in obj.members.values() if not m.is_alias)
