"""The namespace controller (upstream pkg/controller/namespace): empties a namespace that is being
deleted, reports progress in its status conditions, and then removes the `kubernetes` finalizer
through `PUT /api/v1/namespaces/{name}/finalize`, after which the apiserver drops the namespace.

Content is deleted per resource with a deletecollection (propagationPolicy=Background, as
upstream's namespaced-resources deleter), then counted with a live list; while anything remains
(graceful pods, objects with finalizers) the namespace is looked at again a little later.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from apimachinery.errors import StatusError
from apimachinery.meta import parse_time
from apimachinery.resources import RESOURCES, ResourceInfo
from client.discovery import preferred_resources
from client.events import now_rfc3339
from client.request import DeleteOptions, Obj
from controller_manager.base import Controller
from controller_manager.controllers import register

__all__ = ["CONDITION_TYPES", "FINALIZER", "NamespaceController", "content_conditions", "merge_conditions"]

FINALIZER = "kubernetes"
CONDITION_TYPES = (
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionGroupVersionParsingFailure",
    "NamespaceDeletionContentFailure",
    "NamespaceContentRemaining",
    "NamespaceFinalizersRemaining",
)
_OK = {
    "NamespaceDeletionDiscoveryFailure": ("ResourcesDiscovered", "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": ("ParsedGroupVersions", "All legacy kube types successfully parsed"),
    "NamespaceDeletionContentFailure": (
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    "NamespaceContentRemaining": ("ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": ("ContentRemoved", "All content successfully removed"),
}
_MAX_RECHECK = 30.0


def content_conditions(
    remaining: dict[ResourceInfo, int], finalizers: dict[str, int], errors: list[str]
) -> dict[str, tuple[str, str, str]]:
    """type → (status, reason, message) for what is left, as upstream's namespaceConditionUpdater words it."""
    out: dict[str, tuple[str, str, str]] = {}
    if errors:
        msgs = sorted(errors)
        out["NamespaceDeletionContentFailure"] = (
            "True",
            "ContentDeletionFailed",
            f"Failed to delete all resource types, {len(msgs)} remaining: {', '.join(msgs)}",
        )
    left = sorted(f"{r.plural}.{r.group} has {n} resource instances" for r, n in remaining.items() if n)
    if left:
        out["NamespaceContentRemaining"] = (
            "True",
            "SomeResourcesRemain",
            f"Some resources are remaining: {', '.join(left)}",
        )
    fins = sorted(f"{f} in {n} resource instances" for f, n in finalizers.items() if n)
    if fins:
        out["NamespaceFinalizersRemaining"] = (
            "True",
            "SomeFinalizerRemain",
            f"Some finalizers are remaining: {', '.join(fins)}",
        )
    return out


def merge_conditions(current: list[dict[str, Any]], wanted: dict[str, tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Conditions after this pass (failures as given, the rest their OK variant); times move on status flips."""
    out = [dict(c) for c in current]
    now = now_rfc3339()
    for ctype in CONDITION_TYPES:
        status, reason, message = wanted.get(ctype) or ("False", *_OK[ctype])
        old = next((c for c in out if c.get("type") == ctype), None)
        if old is None:
            out.append(
                {"type": ctype, "status": status, "lastTransitionTime": now, "reason": reason, "message": message}
            )
            continue
        if old.get("status") != status:
            old["lastTransitionTime"] = now
        old.update(status=status, reason=reason, message=message)
    return out


def _grace_left(obj: Obj) -> float:
    """Seconds until a gracefully deleted object is due (upstream estimates with the pods' grace)."""
    when = (obj.get("metadata") or {}).get("deletionTimestamp")
    if not when:
        return 0.0
    return max(0.0, (parse_time(when) - datetime.now(UTC)).total_seconds())


@register
class NamespaceController(Controller):
    """Deletes everything in a Terminating namespace, then finalizes it."""

    name = "namespace"
    workers = 2

    def setup(self) -> None:
        inf = self.ctx.factory.informer("namespaces")
        inf.add_handler(**self.handlers(self._maybe_enqueue))
        self.content = [r for r in RESOURCES if r.namespaced and "list" in r.verbs]

    def _maybe_enqueue(self, ns: Obj) -> None:
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            self.enqueue(ns)

    async def sync(self, key: str) -> None:
        """Empty and finalize one namespace that is being deleted."""
        try:
            ns = await self.api.get("namespaces", key)
        except StatusError as e:
            if e.code == 404:
                return
            raise
        if not ns["metadata"].get("deletionTimestamp"):
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return
        remaining, finalizers, errors, estimate = await self._delete_content(key)
        ns = await self._update_conditions(ns, content_conditions(remaining, finalizers, errors))
        if errors:
            raise RuntimeError(f"namespace {key}: {'; '.join(errors)}")
        if any(remaining.values()):
            self.log.info("namespace %s: content remains, checking again in %.1fs", key, estimate)
            self.requeue_after(key, min(max(estimate, 1.0), _MAX_RECHECK))
            return
        await self._finalize(ns)

    async def _delete_content(self, namespace: str) -> tuple[dict[ResourceInfo, int], dict[str, int], list[str], float]:
        remaining: dict[ResourceInfo, int] = {}
        finalizers: Counter[str] = Counter()
        errors: list[str] = []
        estimate = 0.0
        opts = DeleteOptions(propagation_policy="Background")
        for res in [*self.content, *await self._custom_content()]:
            try:
                deleted = await self.api.delete_collection(res, namespace, options=opts)
                if not deleted.get("items"):
                    continue
                left = (await self.api.list(res, namespace)).get("items") or []
            except StatusError as e:
                errors.append(f"{res.plural}.{res.group}: {e}")
                continue
            remaining[res] = len(left)
            for obj in left:
                finalizers.update((obj.get("metadata") or {}).get("finalizers") or [])
                estimate = max(estimate, _grace_left(obj))
        return remaining, dict(finalizers), errors, estimate

    async def _custom_content(self) -> list[ResourceInfo]:
        """The namespaced custom resources discovery lists now (CRDs come and go while running)."""
        found = await preferred_resources(self.api)
        return [
            r for r in found if r not in RESOURCES and r.namespaced and {"list", "deletecollection"} <= set(r.verbs)
        ]

    async def _update_conditions(self, ns: Obj, wanted: dict[str, tuple[str, str, str]]) -> Obj:
        status = ns.get("status") or {}
        conditions = merge_conditions(status.get("conditions") or [], wanted)
        if conditions == (status.get("conditions") or []):
            return ns
        ns = {**ns, "status": {**status, "conditions": conditions}}
        return await self.api.update_status("namespaces", ns)

    async def _finalize(self, ns: Obj) -> None:
        name = ns["metadata"]["name"]
        spec = dict(ns.get("spec") or {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
        body = {**ns, "spec": spec}
        try:
            await self.api.request("PUT", f"/api/v1/namespaces/{name}/finalize", body=body)
        except StatusError as e:
            if e.code != 404:
                raise
        self.log.info("namespace %s finalized", name)
