"""Griffe extension for the documentation site: the package's docstrings use Sphinx markup that Markdown would
show literally.

- Roles (``:func:`simulate```, ``:class:`Status```, ``:mod:`leap_sde.optimizers```) become inline code, linked
  to the object's API entry when the name resolves in the docstring's scope (an optional cross-reference: a name
  that is not rendered on any page stays plain code, without a warning).
- Field lines written ``name : description`` (this package's habit, where numpydoc expects ``name : type``
  and the description below) get the description moved under the name, so the rendered table shows it as
  the description and takes the type from the signature; a genuine type (``float``, ``int or None``,
  ``callable, optional``) is left where it is.
- rST literal-block markers: a lone ``::`` line is dropped and a trailing ``text::`` becomes ``text:`` (the
  indented block that follows is a Markdown code block already).
- ``.. math::`` directives (the directive line and its indented continuation) become ``$$ … $$`` display
  maths, typeset by MathJax through ``pymdownx.arithmatex``.
"""
from __future__ import annotations

import re

import griffe

MATH = re.compile(r"^(\s*)\.\. math::(.*)$")
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


def _literal_markers(text: str) -> str:
    text = re.sub(r"^[ \t]*::[ \t]*$", "", text, flags=re.M)
    return re.sub(r"(\S)::(?=[ \t]*$|  )", r"\1:", text, flags=re.M)


def _math_blocks(text: str) -> str:
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        m = MATH.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent, body = m.group(1), [m.group(2).strip()]
        i += 1
        while i < len(lines) and lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) > len(indent):
            body.append(lines[i].strip())
            i += 1
        out += ["", f"{indent}$$", *(f"{indent}{b}" for b in body if b), f"{indent}$$", ""]
    return "\n".join(out)


FIELD_SECTIONS = {"parameters", "other parameters", "attributes", "keyword arguments"}
FIELD = re.compile(r"^(\s*)([A-Za-z_*][\w*]*(?:\s*,\s*[A-Za-z_*][\w*]*)*) : (.+)$")
TYPE_LIKE = re.compile(r"^[\w.\[\]]+(?:\s+or\s+[\w.\[\]]+)*(?:,\s*optional)?$")


def _field_descriptions(text: str) -> str:
    lines = text.split("\n")
    out, section, base = [], None, ""
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if nxt.strip() and set(nxt.strip()) == {"-"} and line.strip():
            section, base = line.strip().lower(), line[: len(line) - len(line.lstrip())]
            out.append(line)
            continue
        m = FIELD.match(line)
        if section in FIELD_SECTIONS and m and m.group(1) == base and not TYPE_LIKE.match(m.group(3).strip()):
            out += [f"{base}{m.group(2)}", f"{base}    {m.group(3)}"]
        else:
            out.append(line)
    return "\n".join(out)


class RstRoles(griffe.Extension):
    def _fix(self, obj) -> None:
        doc = obj.docstring
        if doc is None or ":" not in doc.value:
            return
        if ".. math::" in doc.value:
            doc.value = _math_blocks(doc.value)
        doc.value = _literal_markers(_field_descriptions(doc.value))

        def repl(m):
            name = m.group(1)
            shown = name.removeprefix("~").split(".")[-1] if m.group(0).count("~") else name
            target = _target(obj, name)
            if target is None or not target.startswith("leap_sde"):
                return f"`{shown}`"
            return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>'

        lines = doc.value.split("\n")
        for i, line in enumerate(lines[:-1]):   # section titles: plain code (they become HTML attributes too)
            if lines[i + 1].strip() and set(lines[i + 1].strip()) == {"-"}:
                lines[i] = ROLE.sub(lambda m: f"`{m.group(1).split('.')[-1]}`", line)
        doc.value = ROLE.sub(repl, "\n".join(lines))

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
