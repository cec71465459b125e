"""The DaemonSet controller (upstream pkg/controller/daemon): one pod per eligible node, pinned by
required node affinity (the scheduler binds it); RollingUpdate (maxUnavailable) or OnDelete over
ControllerRevisions; status counts."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime
from typing import Any

from apimachinery.errors import StatusError
from client.request import Obj
from client.store import meta_key
from controller_manager.base import Controller, owner_key
from controller_manager.controllers import register
from controller_manager.controllers.controller_history import (
    REVISION_HASH_LABEL,
    cleanup_history,
    ensure_revision,
    owner_uid_indexer,
)
from controller_manager.controllers.daemonset_nodes import (
    add_daemon_tolerations,
    node_should_run,
    pin_to_node,
    target_node,
)
from controller_manager.expectations import Expectations
from controller_manager.podtemplate import is_pod_available, is_pod_ready, pod_from_template

__all__ = ["TEMPLATE_GENERATION_LABEL", "DaemonSetController", "max_surge", "max_unavailable", "surplus_pods"]

OWNER_INDEX = "daemonset:controller-uid"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"


def _scaled(ds: Obj, field: str, default: int, desired: int) -> int:
    ru = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    raw: Any = ru.get(field, default)
    if isinstance(raw, str) and raw.endswith("%"):
        return math.ceil(int(raw[:-1]) * desired / 100)
    return int(raw)


def max_unavailable(ds: Obj, desired: int) -> int:
    """rollingUpdate.maxUnavailable as a number of pods (percentages round up; default 1)."""
    return _scaled(ds, "maxUnavailable", 1, desired)


def max_surge(ds: Obj, desired: int) -> int:
    """rollingUpdate.maxSurge as a number of pods (percentages round up; default 0)."""
    return _scaled(ds, "maxSurge", 0, desired)


def _hash_of(pod: Obj) -> str | None:
    return (pod["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL)


def surplus_pods(running: list[Obj], h: str, surge: bool) -> list[Obj]:
    """Pods beyond the one a node should keep (upstream podsShouldBeOnNode). Without surge all but the
    oldest go; with surge an old and a new pod may coexist while the new one is not ready yet."""
    ordered = sorted(running, key=_age_key)
    if not surge:
        return ordered[1:]
    extra: list[Obj] = []
    oldest_new: Obj | None = None
    oldest_old: Obj | None = None
    for p in ordered:
        if _hash_of(p) == h:
            if oldest_new is None:
                oldest_new = p
                continue
        elif oldest_old is None:
            oldest_old = p
            continue
        extra.append(p)
    if oldest_new is not None and oldest_old is not None:
        if not is_pod_ready(oldest_old) or is_pod_ready(oldest_new):
            extra.append(oldest_old)
    return extra


def _age_key(pod: Obj) -> tuple[int, str]:
    # upstream podByCreationTimestampAndPhase: running pods first, then oldest
    phase = (pod.get("status") or {}).get("phase")
    return (0 if phase == "Running" else 1, (pod.get("metadata") or {}).get("creationTimestamp") or "")


@register
class DaemonSetController(Controller):
    """Reconciles DaemonSets with nodes and pods."""

    name = "daemonset"
    workers = 2

    def setup(self) -> None:
        """Watch daemonsets, their pods and revisions, and nodes."""
        self.expectations = Expectations()
        f = self.ctx.factory
        self.dsets = f.informer("daemonsets")
        self.dsets.add_handler(**self.handlers())
        self.pods = f.informer("pods", indexers={OWNER_INDEX: owner_uid_indexer("DaemonSet")})
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)
        self.revisions = f.informer("controllerrevisions", indexers={OWNER_INDEX: owner_uid_indexer("DaemonSet")})
        self.nodes = f.informer("nodes")
        self.nodes.add_handler(**self.handlers(self._node_changed))

    def _pod_added(self, pod: Obj) -> None:
        key = owner_key(pod, "DaemonSet")
        if key:
            self.expectations.creation_observed(key)
            self.enqueue_key(key)

    def _pod_updated(self, _old: Obj, new: Obj) -> None:
        key = owner_key(new, "DaemonSet")
        if key:
            self.enqueue_key(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = owner_key(pod, "DaemonSet")
        if key:
            self.expectations.deletion_observed(key, meta_key(pod))
            self.enqueue_key(key)

    def _node_changed(self, _node: Obj) -> None:
        for ds in self.dsets.store.list():
            self.enqueue(ds)

    # -- reconcile ---------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        """Reconcile one DaemonSet."""
        ds = self.dsets.store.get(key)
        if ds is None:
            self.expectations.forget(key)
            return
        meta = ds["metadata"]
        if meta.get("deletionTimestamp"):
            return
        revisions = self.revisions.store.by_index(OWNER_INDEX, meta["uid"])
        status = ds.get("status") or {}
        cur, collisions = await ensure_revision(
            self.api, ds, "apps/v1", "DaemonSet", revisions, int(status.get("collisionCount") or 0)
        )
        h = cur["metadata"]["labels"][REVISION_HASH_LABEL]
        pods = self.pods.store.by_index(OWNER_INDEX, meta["uid"])
        by_node: dict[str, list[Obj]] = {}
        for p in pods:
            node = target_node(p)
            if node is not None:
                by_node.setdefault(node, []).append(p)
        template_spec = copy.deepcopy(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
        add_daemon_tolerations(template_spec)
        nodes = self.nodes.store.list()
        should = {n["metadata"]["name"]: node_should_run(n, template_spec) for n in nodes}

        if self.expectations.satisfied(key):
            acted = await self._manage(key, ds, by_node, should, h)
            strategy = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate")
            if not acted and strategy == "RollingUpdate":
                await self._rolling_update(key, ds, by_node, should, h)
        live = {(p["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL) for p in pods} | {h}
        await cleanup_history(
            self.api, ds, [r for r in revisions if r["metadata"]["uid"] != cur["metadata"]["uid"]], live
        )
        await self._update_status(ds, by_node, should, h, collisions)

    async def _manage(
        self, key: str, ds: Obj, by_node: dict[str, list[Obj]], should: dict[str, tuple[bool, bool]], h: str
    ) -> bool:
        """Create missing daemon pods and delete misplaced, failed or duplicate ones; True if anything was issued."""
        to_create: list[str] = []
        to_delete: list[Obj] = []
        for node, (run, keep) in should.items():
            pods = by_node.get(node, [])
            if run and not pods:
                to_create.append(node)
            elif keep:
                running = []
                for p in pods:
                    if p["metadata"].get("deletionTimestamp"):
                        continue
                    if (p.get("status") or {}).get("phase") == "Failed":
                        to_delete.append(p)
                        continue
                    running.append(p)
                if not running and run:
                    to_create.append(node)
                if len(running) > 1:
                    to_delete.extend(surplus_pods(running, h, self._surge(ds, should) > 0))
            elif pods:
                to_delete.extend(p for p in pods if not p["metadata"].get("deletionTimestamp"))
        for node, pods in by_node.items():
            if node not in should:  # the node is gone
                to_delete.extend(p for p in pods if not p["metadata"].get("deletionTimestamp"))
        if to_delete:
            await self._delete_pods(key, ds, to_delete)
            return True
        if to_create:
            self.expectations.expect_creations(key, len(to_create))
            for node in to_create:
                await self._create_pod(key, ds, node, h)
            return True
        return False

    @staticmethod
    def _surge(ds: Obj, should: dict[str, tuple[bool, bool]]) -> int:
        return max_surge(ds, sum(1 for run, _ in should.values() if run))

    async def _rolling_update(
        self, key: str, ds: Obj, by_node: dict[str, list[Obj]], should: dict[str, tuple[bool, bool]], h: str
    ) -> None:
        """Replace old-revision pods: within maxUnavailable, or by surging new pods first (maxSurge > 0)."""
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        now = datetime.now(UTC)
        desired = sum(1 for run, _ in should.values() if run)
        surge = max_surge(ds, desired)
        if surge > 0:
            await self._surge_update(key, ds, by_node, should, h, surge, min_ready, now)
            return
        limit = max_unavailable(ds, desired)
        unavailable = 0
        replace: list[Obj] = []
        candidates: list[Obj] = []
        for node, pods in by_node.items():
            if node not in should:
                continue
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            new = [p for p in live if (p["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL) == h]
            old = [p for p in live if p not in new]
            if len(new) > 1 or len(old) > 1 or (new and old) or (not new and not old):
                unavailable += 1
            elif new:
                if not is_pod_available(new[0], min_ready, now):
                    unavailable += 1
            elif not is_pod_available(old[0], min_ready, now):
                replace.append(old[0])
            elif unavailable < limit:
                candidates.append(old[0])
        remaining = min(max(0, limit - unavailable), len(candidates))
        victims = replace + candidates[:remaining]
        if victims:
            await self._delete_pods(key, ds, victims)

    async def _surge_update(
        self,
        key: str,
        ds: Obj,
        by_node: dict[str, list[Obj]],
        should: dict[str, tuple[bool, bool]],
        h: str,
        surge: int,
        min_ready: int,
        now: datetime,
    ) -> None:
        """upstream rollingUpdate's surge path: start a new pod beside the old one, delete the old once
        the new one is available; at most maxSurge nodes wait on a new pod at a time."""
        surging = 0
        allowed: list[str] = []
        candidates: list[str] = []
        old_to_delete: list[Obj] = []
        for node, pods in by_node.items():
            if not should.get(node, (False, False))[0]:
                continue
            live = sorted((p for p in pods if not p["metadata"].get("deletionTimestamp")), key=_age_key)
            new = next((p for p in live if _hash_of(p) == h), None)
            old = next((p for p in live if _hash_of(p) != h), None)
            if old is None:
                continue
            if new is None:
                if not is_pod_available(old, min_ready, now):
                    allowed.append(node)
                elif surging < surge:
                    candidates.append(node)
            elif not is_pod_available(new, min_ready, now):
                surging += 1
            else:
                old_to_delete.append(old)
        create = allowed + candidates[: max(0, surge - surging)]
        if old_to_delete:
            await self._delete_pods(key, ds, old_to_delete)
        if create:
            self.expectations.expect_creations(key, len(create))
            for node in create:
                await self._create_pod(key, ds, node, h)

    def _pod_for(self, ds: Obj, node: str, h: str) -> Obj:
        meta = ds["metadata"]
        template = (ds.get("spec") or {}).get("template") or {}
        pod = pod_from_template(ds, template, generate_name=f"{meta['name']}-")
        pod["metadata"]["ownerReferences"][0].update(apiVersion="apps/v1", kind="DaemonSet")
        pod["metadata"]["labels"][REVISION_HASH_LABEL] = h
        pod["metadata"]["labels"][TEMPLATE_GENERATION_LABEL] = str(meta.get("generation", 1))
        add_daemon_tolerations(pod["spec"])
        pin_to_node(pod["spec"], node)
        return pod

    async def _create_pod(self, key: str, ds: Obj, node: str, h: str) -> None:
        try:
            created = await self.api.create("pods", self._pod_for(ds, node, h), ds["metadata"]["namespace"])
        except BaseException as e:
            self.expectations.creation_observed(key)
            if isinstance(e, StatusError):
                self.events.record(ds, "Warning", "FailedCreate", f"Error creating: {e}")
            raise
        self.events.record(ds, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

    async def _delete_pods(self, key: str, ds: Obj, pods: list[Obj]) -> None:
        self.expectations.expect_deletions(key, [meta_key(p) for p in pods])
        for p in pods:
            meta = p["metadata"]
            try:
                await self.api.delete("pods", meta["name"], meta["namespace"])
            except StatusError as e:
                self.expectations.deletion_observed(key, meta_key(p))
                if e.code != 404:
                    self.events.record(ds, "Warning", "FailedDelete", f"Error deleting: {e}")
                    raise
                continue
            self.events.record(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {meta['name']}")

    async def _update_status(
        self, ds: Obj, by_node: dict[str, list[Obj]], should: dict[str, tuple[bool, bool]], h: str, collisions: int
    ) -> None:
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        now = datetime.now(UTC)
        desired = scheduled = misscheduled = ready = available = updated = 0
        for node, (run, _keep) in should.items():
            pods = sorted(by_node.get(node, []), key=_age_key)
            if run:
                desired += 1
                if pods:
                    scheduled += 1
                    pod = pods[0]
                    if is_pod_ready(pod):
                        ready += 1
                        if is_pod_available(pod, min_ready, now):
                            available += 1
                    if (pod["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL) == h:
                        updated += 1
            elif pods:
                misscheduled += 1
        old = ds.get("status") or {}
        status: dict[str, Any] = {
            **old,
            "currentNumberScheduled": scheduled,
            "numberMisscheduled": misscheduled,
            "desiredNumberScheduled": desired,
            "numberReady": ready,
            "observedGeneration": ds["metadata"].get("generation", 1),
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
            "numberUnavailable": desired - available,
        }
        if collisions:
            status["collisionCount"] = collisions
        for k in ("numberAvailable", "numberUnavailable", "updatedNumberScheduled"):
            if not status[k]:
                status.pop(k)  # omitempty, as upstream serialises them
        if status != old:
            await self.api.update_status("daemonsets", {**ds, "status": status}, ds["metadata"]["namespace"])
