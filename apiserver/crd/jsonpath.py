"""The JSONPath subset of additionalPrinterColumns and selectableFields (`.spec.replicas`,
`.status.conditions[?(@.type=="Ready")].status`, `.items[*].name`, `.items[0]`, `.metadata.labels['a.b/c']`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["JSONPath", "JSONPathError"]

_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_\-$]+)"""
    r"""|\[(?P<index>-?\d+)\]"""
    r"""|\[(?P<all>\*)\]|\.\*"""
    r"""|\[['"](?P<quoted>[^'"]+)['"]\]"""
    r"""|\[\?\(@(?P<fpath>(?:\.[A-Za-z0-9_\-]+)+)\s*(?P<op>==|!=)\s*(?P<lit>"[^"]*"|'[^']*'|-?\d+(?:\.\d+)?|true|false)\)\]"""
)


class JSONPathError(ValueError):
    """A path outside the supported subset."""


@dataclass(frozen=True)
class _Step:
    kind: str  # field, index, all, filter
    name: str = ""
    index: int = 0
    path: tuple[str, ...] = ()
    op: str = ""
    value: Any = None


def _literal(text: str) -> Any:
    if text[0] in "\"'":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    return float(text) if "." in text else int(text)


class JSONPath:
    """A compiled path; `find(obj)` gives every value it reaches (none when a step misses)."""

    def __init__(self, expression: str) -> None:
        text = expression.strip()
        if text.startswith("{") and text.endswith("}"):
            text = text[1:-1].strip()
        if text.startswith("$"):
            text = text[1:]
        self.expression = expression
        self.steps: list[_Step] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise JSONPathError(f"unsupported JSONPath {expression!r} at {text[pos:]!r}")
            pos = m.end()
            if m.group("field") is not None:
                self.steps.append(_Step("field", name=m.group("field")))
            elif m.group("quoted") is not None:
                self.steps.append(_Step("field", name=m.group("quoted")))
            elif m.group("index") is not None:
                self.steps.append(_Step("index", index=int(m.group("index"))))
            elif m.group("fpath") is not None:
                path = tuple(m.group("fpath").split(".")[1:])
                self.steps.append(_Step("filter", path=path, op=m.group("op"), value=_literal(m.group("lit"))))
            else:
                self.steps.append(_Step("all"))
        if not self.steps:
            raise JSONPathError(f"empty JSONPath {expression!r}")

    @property
    def simple(self) -> bool:
        """Whether the path names fields only (what selectableFields allow)."""
        return all(s.kind == "field" for s in self.steps)

    def find(self, obj: Any) -> list[Any]:
        """The values the path reaches in `obj`."""
        current = [obj]
        for step in self.steps:
            current = [out for value in current for out in _apply(step, value)]
        return current


def _get(value: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


def _apply(step: _Step, value: Any) -> list[Any]:
    if step.kind == "field":
        return [value[step.name]] if isinstance(value, Mapping) and step.name in value else []
    if step.kind == "index":
        if isinstance(value, list) and -len(value) <= step.index < len(value):
            return [value[step.index]]
        return []
    items = list(value.values()) if isinstance(value, Mapping) else value if isinstance(value, list) else []
    if step.kind == "all":
        return items
    matched = [item for item in items if (_get(item, step.path) == step.value) == (step.op == "==")]
    return matched
