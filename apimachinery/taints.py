"""Taints and tolerations, as core/v1 helpers define them (shared by scheduler, kubelet and controllers)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["tolerated", "tolerates"]


def tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    """Whether one toleration tolerates one taint (upstream Toleration.ToleratesTaint)."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerated(tolerations: Iterable[dict[str, Any]], taint: dict[str, Any]) -> bool:
    """Whether any of `tolerations` tolerates `taint`."""
    return any(tolerates(t, taint) for t in tolerations)
