"""Values as CEL rules see them: the schema's string formats become CEL types, as upstream's
UnstructuredToVal does (`date-time`/`date` → timestamp, `duration` → duration, `byte` → bytes)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import celpy
from celpy import celtypes

from apiserver.crd_schema.node import Node

__all__ = ["to_cel"]


def _string(n: Node, value: str) -> Any:
    fmt = n.format.replace("-", "")
    try:
        if fmt == "datetime":
            return celtypes.TimestampType(value)
        if fmt == "date":
            return celtypes.TimestampType(f"{value}T00:00:00Z")
        if fmt == "duration":
            return celtypes.DurationType(value)
        if fmt == "byte":
            return celtypes.BytesType(base64.b64decode(value))
    except (ValueError, TypeError, binascii.Error):
        pass  # a value the schema check already reports; the rule sees the string
    return celtypes.StringType(value)


def to_cel(n: Node | None, value: Any) -> Any:
    """Convert a decoded JSON value for CEL, typed by schema node `n` where it names a format."""
    if n is None or not n.cel_typed:
        return celpy.json_to_cel(value)
    if isinstance(value, str):
        return _string(n, value)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            sub = n.properties.get(k, n.additional)
            out[celtypes.StringType(k)] = to_cel(sub, v)
        return celtypes.MapType(out)
    if isinstance(value, list):
        return celtypes.ListType([to_cel(n.items, v) for v in value])
    return celpy.json_to_cel(value)
