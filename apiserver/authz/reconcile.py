"""Writing the bootstrap policy at apiserver start (upstream's rbac/bootstrap-roles post-start hook).

As pkg/registry/rbac/reconciliation in its additive ("union") mode: a missing role or binding is
created; an existing one keeps everything it has and gains the labels, annotations, rules,
aggregation selectors and subjects the defaults add — unless it is annotated
`rbac.authorization.kubernetes.io/autoupdate: "false"`, then it is left alone. A binding whose
roleRef differs is deleted and created again (roleRef cannot change).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import TYPE_CHECKING, Any

from apimachinery import errors
from apimachinery.resources import ResourceInfo, by_plural
from apiserver.authz import bootstrap_policy as policy
from apiserver.authz.rules import Rule, covers
from apiserver.options import WriteOptions

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["reconcile_bootstrap_policy", "reconciled_binding", "reconciled_role"]

log = logging.getLogger("apiserver.rbac.bootstrap")


def _merged(expected: dict[str, str] | None, existing: dict[str, str] | None) -> dict[str, str]:
    """merge(expected, existing): the existing values win."""
    return {**(expected or {}), **(existing or {})}


def _protected(obj: dict[str, Any]) -> bool:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(policy.AUTOUPDATE_ANNOTATION) == "false"


def _merge_meta(out: dict[str, Any], expected: dict[str, Any]) -> None:
    m, e = out.setdefault("metadata", {}), expected["metadata"]
    for key in ("labels", "annotations"):
        merged = _merged(e.get(key), m.get(key))
        if merged:
            m[key] = merged


def reconciled_role(existing: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any] | None:
    """computeReconciledRole (union): the role with what the defaults add, or None when nothing changes."""
    out = copy.deepcopy(existing)
    _merge_meta(out, expected)
    have = [Rule.of(r) for r in existing.get("rules") or [] if isinstance(r, dict)]
    _, missing = covers(have, [Rule.of(r) for r in expected.get("rules") or []])
    if missing:
        out["rules"] = [*(existing.get("rules") or []), *(r.to_api() for r in missing)]
    want = expected.get("aggregationRule")
    current = existing.get("aggregationRule")
    if want is None and current is not None:
        out.pop("aggregationRule", None)
    elif want is not None:
        selectors = list((current or {}).get("clusterRoleSelectors") or [])
        added = [s for s in want.get("clusterRoleSelectors") or [] if s not in selectors]
        if added:
            out["aggregationRule"] = {"clusterRoleSelectors": selectors + added}
    return None if out == existing else out


def reconciled_binding(existing: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any] | None:
    """computeReconciledRoleBinding (union): gains the default subjects; None when nothing changes."""
    out = copy.deepcopy(existing)
    _merge_meta(out, expected)
    subjects = list(existing.get("subjects") or [])
    subjects += [s for s in expected.get("subjects") or [] if s not in subjects]
    if subjects:
        out["subjects"] = subjects
    return None if out == existing else out


async def _get(reg: Registry, res: ResourceInfo, namespace: str | None, name: str) -> dict[str, Any] | None:
    try:
        return await reg.get(res, namespace, name)
    except errors.StatusError as e:
        if e.code == 404:
            return None
        raise


async def _ensure(reg: Registry, plural: str, expected: dict[str, Any]) -> None:
    res = by_plural(policy.GROUP, plural)
    assert res is not None
    namespace = expected["metadata"].get("namespace")
    name = expected["metadata"]["name"]
    existing = await _get(reg, res, namespace, name)
    if existing is None:
        try:
            await reg.create(res, namespace, copy.deepcopy(expected), WriteOptions())
            log.info("created %s %s", res.kind, name)
            return
        except errors.StatusError as e:
            if e.code != 409:
                raise
            existing = await _get(reg, res, namespace, name)
            if existing is None:
                return
    if _protected(existing):
        return
    is_binding = plural.endswith("bindings")
    if is_binding and existing.get("roleRef") != expected["roleRef"]:
        await reg.delete(res, namespace, name, {"preconditions": {"uid": existing["metadata"]["uid"]}}, False)
        await reg.create(res, namespace, copy.deepcopy(expected), WriteOptions())
        log.info("recreated %s %s with roleRef %s", res.kind, name, expected["roleRef"]["name"])
        return
    desired = reconciled_binding(existing, expected) if is_binding else reconciled_role(existing, expected)
    if desired is None:
        return

    def mutate(current: dict[str, Any]) -> dict[str, Any]:
        fresh = reconciled_binding(current, expected) if is_binding else reconciled_role(current, expected)
        return fresh if fresh is not None else current

    await reg.update(res, namespace, name, mutate, WriteOptions())
    log.info("reconciled %s %s", res.kind, name)


async def reconcile_bootstrap_policy(reg: Registry) -> None:
    """Create or top up every default ClusterRole, ClusterRoleBinding, Role and RoleBinding, each kind's all at
    once (one after another, their hundred-odd reads and writes were a sixth of an apiserver's start)."""
    kinds = (
        ("clusterroles", policy.cluster_roles()),
        ("clusterrolebindings", policy.cluster_role_bindings()),
        ("roles", policy.namespace_roles()),
        ("rolebindings", policy.namespace_role_bindings()),
    )
    for plural, objects in kinds:
        await asyncio.gather(*(_ensure(reg, plural, obj) for obj in objects))
