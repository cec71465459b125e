"""The downward API: pod fields and container resources as strings, as the kubelet renders them."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from apimachinery.quantity import parse_quantity

__all__ = ["DownwardError", "field_value", "format_map", "go_quote", "resource_value"]

_SUBSCRIPT = re.compile(r"^(metadata\.(?:labels|annotations))\['(.*)'\]$")


class DownwardError(ValueError):
    """A fieldPath or resource the downward API does not support."""


def go_quote(s: str) -> str:
    """`s` as Go's `%q` prints it (a double-quoted string with Go escapes)."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable():
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def format_map(m: Mapping[str, str]) -> str:
    """Labels or annotations as the downward API writes them: sorted `key="value"` lines."""
    return "\n".join(f"{k}={go_quote(str(m[k]))}" for k in sorted(m))


def field_value(pod: Mapping[str, Any], path: str, *, whole_maps: bool = False) -> str:
    """The value of a fieldRef `path` of `pod`; whole label/annotation maps only for volumes."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    if m := _SUBSCRIPT.match(path):
        which = m.group(1).split(".")[1]
        return str((meta.get(which) or {}).get(m.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        if not whole_maps:
            raise DownwardError(f"unsupported fieldPath: {path}")
        return format_map(meta.get(path.split(".")[1]) or {})
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": status.get("podIP", ""),
        "status.hostIP": status.get("hostIP", ""),
    }
    if path in simple:
        return str(simple[path] or "")
    if path == "status.podIPs":
        return ",".join(str(p.get("ip", "")) for p in status.get("podIPs") or [])
    if path == "status.hostIPs":
        return ",".join(str(p.get("ip", "")) for p in status.get("hostIPs") or [])
    raise DownwardError(f"unsupported fieldPath: {path}")


def resource_value(
    container: Mapping[str, Any] | None,
    resource: str,
    divisor: str | int | None,
    allocatable: Mapping[str, str],
) -> str:
    """A resourceFieldRef value: the container's limit or request over `divisor`, rounded up.

    An unset limit is the node's allocatable (as the kubelet does); an unset request is 0, except
    that an unset request with a set limit defaults to the limit (apiserver defaulting)."""
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or name not in ("cpu", "memory", "ephemeral-storage"):
        raise DownwardError(f"unsupported container resource : {resource!r}")
    res = (container or {}).get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    if kind == "limits":
        raw = limits.get(name, allocatable.get(name, "0"))
    else:
        raw = requests.get(name, limits.get(name, "0"))
    value = parse_quantity(raw)
    div = parse_quantity(divisor if divisor not in (None, "", 0, "0") else "1")
    if name == "cpu":
        # the kubelet works in millicores: ceil(milli(value) / milli(divisor))
        milli = Decimal(math.ceil(value * 1000))
        div_milli = Decimal(math.ceil(div * 1000)) or Decimal(1)
        return str(math.ceil(milli / div_milli))
    return str(math.ceil(value / div))
