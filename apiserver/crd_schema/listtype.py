"""x-kubernetes-list-type `set` and `map`: duplicate entries are errors (apiextensions `schema/listtype`)."""

from __future__ import annotations

from typing import Any

from apimachinery.validation import FieldErrorTuple
from apiserver.crd_schema.messages import duplicate, index, invalid, json_text
from apiserver.crd_schema.node import MISSING, Node

__all__ = ["check_list", "map_key"]

_UNSPECIFIED = "\x00unspecified"


def _scalar_key(value: Any) -> str:
    # one text per JSON value, so 1 and true and "1" stay apart as Go's interface{} keys do
    return json_text(value)


def map_key(n: Node, item: Any) -> str | None:
    """The identity of a list-type map entry (its key fields, defaults filled), None for a non-object."""
    if not isinstance(item, dict):
        return None
    parts = []
    for k in n.list_map_keys:
        if k in item:
            parts.append(_scalar_key(item[k]))
        else:
            sub = n.items.properties.get(k) if n.items is not None else None
            parts.append(_scalar_key(sub.default) if sub is not None and sub.default is not MISSING else _UNSPECIFIED)
    return "\x00".join(parts)


def check_list(n: Node, value: list[Any], path: str, out: list[FieldErrorTuple]) -> None:
    """Report duplicates of a `set` or `map` list at field path `path`."""
    if n.list_type == "set":
        seen: dict[str, int] = {}
        for i, item in enumerate(value):
            k = _scalar_key(item)
            seen[k] = seen.get(k, 0) + 1
            if seen[k] == 2:
                out.append(duplicate(index(path, i), item))
    elif n.list_type == "map":
        for i, item in enumerate(value):
            if item is not None and not isinstance(item, dict):
                out.append(invalid(index(path, i), item, "must be an object for an array of list-type map"))
                return
        seen = {}
        for i, item in enumerate(value):
            k = map_key(n, item)
            if k is None:
                continue
            seen[k] = seen.get(k, 0) + 1
            if seen[k] == 2:
                out.append(duplicate(index(path, i), item))
