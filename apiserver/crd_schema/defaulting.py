"""Defaulting from `default` (apiextensions `schema/defaulting`), then dropping nulls nothing allows.

A property that is absent, or null where the schema is not nullable, takes a copy of its default; a
list item or map value that is a non-nullable null takes its schema's default. Afterwards a
non-nullable null without a default is removed, as upstream's PruneNonNullableNullsWithoutDefaults.
"""

from __future__ import annotations

import copy
from typing import Any

from apiserver.crd_schema.node import MISSING, Node

__all__ = ["apply_defaults", "drop_nulls"]


def _non_nullable_null(value: Any, n: Node | None) -> bool:
    return value is None and n is not None and not n.nullable


def apply_defaults(value: Any, n: Node | None) -> None:
    """Fill defaults into `value` in place (only where the subtree has any)."""
    if n is None or not n.has_defaults:
        return
    if isinstance(value, dict):
        for k, sub in n.properties.items():
            if sub.default is MISSING:
                continue
            if k not in value or _non_nullable_null(value[k], sub):
                value[k] = copy.deepcopy(sub.default)
        for k, v in value.items():
            sub = n.properties.get(k)
            if sub is not None:
                apply_defaults(v, sub)
            elif n.additional is not None:
                if _non_nullable_null(v, n.additional) and n.additional.default is not MISSING:
                    value[k] = v = copy.deepcopy(n.additional.default)
                apply_defaults(v, n.additional)
    elif isinstance(value, list) and n.items is not None:
        for i, v in enumerate(value):
            if _non_nullable_null(v, n.items) and n.items.default is not MISSING:
                value[i] = v = copy.deepcopy(n.items.default)
            apply_defaults(v, n.items)


def drop_nulls(value: Any, n: Node | None) -> None:
    """Remove object fields that are null where the schema neither allows null nor has a default."""
    if n is None:
        return
    if isinstance(value, dict):
        for k in list(value):
            v = value[k]
            sub = n.properties.get(k)
            if sub is None:
                sub = n.additional
            if sub is None:
                continue
            if v is None:
                if not sub.nullable and sub.default is MISSING:
                    del value[k]
            else:
                drop_nulls(v, sub)
    elif isinstance(value, list) and n.items is not None:
        for v in value:
            drop_nulls(v, n.items)
