"""Assembles meta.k8s.io/v1 Tables (server-side printing for `kubectl get`) from stored objects.

This is the generic half: the Table envelope, list metadata, headers and the `includeObject`
policy, as the apiserver's table transform produces them. The per-kind columns and cells come from
`apiserver.printers`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from apiserver.printers import Printer, printer_for

__all__ = ["INCLUDE_OBJECT_POLICIES", "TABLE_API_VERSION", "build_table", "row_object"]

TABLE_API_VERSION = "meta.k8s.io/v1"
INCLUDE_OBJECT_POLICIES = ("None", "Metadata", "Object")


def row_object(obj: Mapping[str, Any], include_object: str = "Metadata") -> dict[str, Any] | None:
    """What a row's `object` holds under an includeObject policy (None, Metadata or Object)."""
    if include_object in ("Metadata", ""):
        return {
            "kind": "PartialObjectMetadata",
            "apiVersion": TABLE_API_VERSION,
            "metadata": obj.get("metadata") or {},
        }
    if include_object == "Object":
        return dict(obj)
    if include_object == "None":
        return None
    raise ValueError(f"includeObject must be one of {', '.join(INCLUDE_OBJECT_POLICIES)}, not {include_object!r}")


def build_table(
    kind: str | Printer,
    objects: Iterable[Mapping[str, Any]],
    *,
    resource_version: str = "",
    continue_token: str = "",
    include_object: str = "Metadata",
    now: datetime | None = None,
    with_headers: bool = True,
    remaining_item_count: int | None = None,
) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table of `objects` (all of kind `kind`, or printed by a `Printer`), wide columns included.

    `with_headers=False` leaves `columnDefinitions` empty, as for watch events after the first.
    A row's `object` is null under includeObject=None, as the apiserver encodes it.
    """
    if include_object not in (*INCLUDE_OBJECT_POLICIES, ""):
        row_object({}, include_object)  # raises the ValueError
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    printer = printer_for(kind) if isinstance(kind, str) else kind

    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    if remaining_item_count is not None:
        metadata["remainingItemCount"] = remaining_item_count

    rows = []
    for obj in objects:
        row = printer.row(obj, now)
        row["object"] = row_object(obj, include_object)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": TABLE_API_VERSION,
        "metadata": metadata,
        "columnDefinitions": printer.column_definitions() if with_headers else [],
        "rows": rows,
    }
