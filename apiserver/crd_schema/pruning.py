"""Pruning: drop the fields a structural schema does not specify (apiextensions `schema/pruning`).

At the resource root, and in every `x-kubernetes-embedded-resource` object, `apiVersion` and `kind`
(strings) and `metadata` (an object) are kept; `x-kubernetes-preserve-unknown-fields` keeps the unknown
fields of its object but still prunes inside the fields the schema does specify.
"""

from __future__ import annotations

from typing import Any

from apimachinery.meta import OBJECT_META_FIELDS
from apiserver.crd_schema.node import Node

__all__ = ["prune"]

# metav1.ObjectMeta's fields: an embedded object's metadata keeps these and loses the rest, as upstream's
# objectmeta.Coerce does by decoding it into ObjectMeta
_OBJECT_META_FIELDS = frozenset(OBJECT_META_FIELDS)


def _coerce_metadata(meta: dict[str, Any], path: str, pruned: list[str]) -> None:
    for k in [k for k in meta if k not in _OBJECT_META_FIELDS]:
        pruned.append(_child(_child(path, "metadata"), k))
        del meta[k]


def _keep_meta(k: str, v: Any) -> bool:
    if k in ("apiVersion", "kind"):
        return isinstance(v, str)
    return k == "metadata" and isinstance(v, dict)


def prune(value: Any, n: Node | None, embedded: bool, path: str, pruned: list[str], root: bool = False) -> None:
    """Prune `value` in place against `n`; the paths of dropped fields are appended to `pruned`.

    The resource root's own metadata is left to the registry; an embedded object's loses unknown fields.
    """
    if (
        n is not None
        and n.embedded
        and not root
        and isinstance(value, dict)
        and isinstance(value.get("metadata"), dict)
    ):
        _coerce_metadata(value["metadata"], path, pruned)
    if n is not None and n.preserve_unknown:
        _skip_prune(value, n, embedded or n.embedded, path, pruned)
        return
    if isinstance(value, dict):
        if n is None:
            for k in list(value):
                pruned.append(_child(path, k))
            value.clear()
            return
        meta = embedded or n.embedded
        for k in list(value):
            v = value[k]
            if meta and _keep_meta(k, v):
                continue
            sub = n.properties.get(k)
            if sub is not None:
                prune(v, sub, False, _child(path, k), pruned)
            elif n.additional_allows is not None:
                prune(v, n.additional, False, _child(path, k), pruned)
            else:
                pruned.append(_child(path, k))
                del value[k]
    elif isinstance(value, list):
        items = n.items if n is not None else None
        for i, v in enumerate(value):
            prune(v, items, False, f"{path}[{i}]", pruned)


def _skip_prune(value: Any, n: Node, embedded: bool, path: str, pruned: list[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if embedded and k in ("apiVersion", "kind", "metadata"):
                continue
            sub = n.properties.get(k)
            if sub is not None:
                prune(v, sub, False, _child(path, k), pruned)
            elif n.additional is not None:
                prune(v, n.additional, False, _child(path, k), pruned)
    elif isinstance(value, list) and n.items is not None:
        for i, v in enumerate(value):
            _skip_prune(v, n.items, False, f"{path}[{i}]", pruned)


def _child(path: str, k: str) -> str:
    return f"{path}.{k}" if path else k
