"""The ReplicaSet controller (upstream pkg/controller/replicaset): keep `spec.replicas` active pods
matching the selector, creating them from the template in slow-start batches and deleting the
least valuable ones first; adopt matching orphans, release pods that stop matching; report
replicas/fullyLabeledReplicas/readyReplicas/availableReplicas and the ReplicaFailure condition.

The ReplicationController controller is this same controller with another `OwnerKind` (as upstream,
where the RC manager wraps the ReplicaSet manager); see replicationcontroller.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apimachinery.errors import StatusError
from apimachinery.selectors import LabelSelector, SelectorError, selector_from_label_selector, selector_from_map
from client.request import Obj
from client.store import NAMESPACE_INDEX, meta_key
from controller_manager.base import Controller
from controller_manager.controllers import register
from controller_manager.controllers.replicaset_util import (
    BURST_REPLICAS,
    SLOW_START_INITIAL_BATCH_SIZE,
    ControllerRefManager,
    calculate_status,
    controller_of,
    get_pods_to_delete,
    is_pod_terminating,
    parse_time,
    slow_start_batch,
)
from controller_manager.expectations import Expectations
from controller_manager.podtemplate import is_pod_active, is_pod_available, is_pod_ready, pod_from_template

__all__ = ["RC_KIND", "RS_KIND", "OwnerKind", "ReplicaSetController", "pod_controller_uid"]

POD_OWNER_INDEX = "replicaset:controller-uid"
_STATUS_FIELDS = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas")


@dataclass(frozen=True)
class OwnerKind:
    """What differs between ReplicaSets and ReplicationControllers."""

    kind: str
    api_version: str
    resource: str
    selector: Callable[[Obj], LabelSelector]
    reports_terminating: bool = False


def _rs_selector(obj: Obj) -> LabelSelector:
    return selector_from_label_selector((obj.get("spec") or {}).get("selector"))


def _rc_selector(obj: Obj) -> LabelSelector:
    return selector_from_map((obj.get("spec") or {}).get("selector") or {})


RS_KIND = OwnerKind("ReplicaSet", "apps/v1", "replicasets", _rs_selector, reports_terminating=True)
RC_KIND = OwnerKind("ReplicationController", "v1", "replicationcontrollers", _rc_selector)


def pod_controller_uid(obj: Obj) -> list[str]:
    """Index value: the uid of the object's controller, if any."""
    ref = controller_of(obj)
    return [ref["uid"]] if ref and ref.get("uid") else []


def _namespace_terminating(e: Exception) -> bool:
    causes = (getattr(e, "details", None) or {}).get("causes") or []
    return any(c.get("reason") == "NamespaceTerminating" for c in causes)


@register
class ReplicaSetController(Controller):
    """Keeps the number of active pods of each ReplicaSet at spec.replicas."""

    name = "replicaset"
    workers = 5
    owner_kind: OwnerKind = RS_KIND

    def setup(self) -> None:
        """Watch the owners and all pods."""
        self.expectations = Expectations()
        self.owners = self.ctx.factory.informer(self.owner_kind.resource)
        self.pods = self.ctx.factory.informer("pods", indexers={POD_OWNER_INDEX: pod_controller_uid})
        self.owners.add_handler(on_add=self.enqueue, on_update=self._owner_updated, on_delete=self._owner_deleted)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)

    # -- handlers ---------------------------------------------------------------------------

    def _typed(self, obj: Obj) -> Obj:
        return {**obj, "kind": self.owner_kind.kind, "apiVersion": self.owner_kind.api_version}

    def _resolve(self, namespace: str, ref: dict[str, Any]) -> Obj | None:
        if ref.get("kind") != self.owner_kind.kind:
            return None
        owner = self.owners.store.get(f"{namespace}/{ref.get('name', '')}")
        if owner is None or (owner.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return owner

    def _owners_for_pod(self, pod: Obj) -> list[Obj]:
        meta = pod.get("metadata") or {}
        out = []
        for owner in self.owners.store.by_index(NAMESPACE_INDEX, meta.get("namespace", "")):
            try:
                sel = self.owner_kind.selector(owner)
            except SelectorError:
                continue
            if not sel.empty and sel.matches(meta.get("labels") or {}):
                out.append(owner)
        return out

    def _owner_updated(self, old: Obj, new: Obj) -> None:
        if (old.get("metadata") or {}).get("uid") != (new.get("metadata") or {}).get("uid"):
            self._owner_deleted(old)
        self.enqueue(new)

    def _owner_deleted(self, obj: Obj) -> None:
        key = meta_key(obj)
        self.expectations.forget(key)
        self.enqueue_key(key)

    def _pod_added(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        ref = controller_of(pod)
        if ref is not None:
            owner = self._resolve(meta.get("namespace", ""), ref)
            if owner is not None:
                key = meta_key(owner)
                self.expectations.creation_observed(key)
                self.enqueue_key(key)
            return
        for owner in self._owners_for_pod(pod):
            self.enqueue(owner)

    def _pod_updated(self, old: Obj, cur: Obj) -> None:
        om, cm = old.get("metadata") or {}, cur.get("metadata") or {}
        if om.get("resourceVersion") == cm.get("resourceVersion"):
            return
        label_changed = (om.get("labels") or {}) != (cm.get("labels") or {})
        if cm.get("deletionTimestamp"):
            self._pod_deleted(cur)
            if label_changed:
                self._pod_deleted(old)
            return
        cur_ref, old_ref = controller_of(cur), controller_of(old)
        ref_changed = cur_ref != old_ref
        ns = cm.get("namespace", "")
        if ref_changed and old_ref is not None:
            prev = self._resolve(ns, old_ref)
            if prev is not None:
                self.enqueue(prev)
        if cur_ref is not None:
            owner = self._resolve(ns, cur_ref)
            if owner is None:
                return
            self.enqueue(owner)
            min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(cur):
                self.requeue_after(meta_key(owner), min_ready + 1)
            return
        if label_changed or ref_changed:
            for owner in self._owners_for_pod(cur):
                self.enqueue(owner)

    def _pod_deleted(self, pod: Obj) -> None:
        ref = controller_of(pod)
        if ref is None:
            return
        owner = self._resolve((pod.get("metadata") or {}).get("namespace", ""), ref)
        if owner is None:
            return
        key = meta_key(owner)
        self.expectations.deletion_observed(key, meta_key(pod))
        self.enqueue_key(key)

    # -- reconcile --------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        """Reconcile one owner: claim pods, create/delete to reach spec.replicas, write status."""
        cached = self.owners.store.get(key)
        if cached is None:
            self.expectations.forget(key)
            return
        owner = self._typed(cached)
        needs_sync = self.expectations.satisfied(key)
        try:
            selector = self.owner_kind.selector(owner)
        except SelectorError as e:
            self.log.warning("%s %s has an invalid selector: %s", self.owner_kind.kind, key, e)
            return
        meta = owner["metadata"]
        ns = meta.get("namespace", "")
        in_namespace = self.pods.store.by_index(NAMESPACE_INDEX, ns)
        filtered = await self._claim_pods(owner, selector, [p for p in in_namespace if is_pod_active(p)])
        terminating = None
        if self.owner_kind.reports_terminating:
            terminating = sum(
                1
                for p in self.pods.store.by_index(POD_OWNER_INDEX, meta.get("uid", ""))
                if is_pod_terminating(p) and selector.matches((p.get("metadata") or {}).get("labels") or {})
            )

        manage_error: Exception | None = None
        if needs_sync and not meta.get("deletionTimestamp"):
            try:
                await self._manage_replicas(filtered, owner, key)
            except (StatusError, ValueError) as e:
                manage_error = e

        now = datetime.now(UTC)
        status = calculate_status(owner, filtered, manage_error, now, terminating)
        updated = await self._update_status(owner, status)
        spec = updated.get("spec") or {}
        st = updated.get("status") or {}
        replicas = int(spec.get("replicas", 1))
        min_ready = int(spec.get("minReadySeconds") or 0)
        if (
            manage_error is None
            and min_ready > 0
            and st.get("readyReplicas", 0) == replicas
            and st.get("availableReplicas", 0) != replicas
        ):
            self.requeue_after(key, _until_available(filtered, min_ready, now))
        if manage_error is not None:
            raise manage_error

    async def _claim_pods(self, owner: Obj, selector: LabelSelector, pods: list[Obj]) -> list[Obj]:
        meta = owner["metadata"]

        async def can_adopt() -> None:
            fresh = await self.api.get(self.owner_kind.resource, meta["name"], meta.get("namespace"))
            fm = fresh.get("metadata") or {}
            if fm.get("uid") != meta.get("uid"):
                raise RuntimeError(
                    f"original {self.owner_kind.kind} {meta.get('namespace')}/{meta['name']} is gone: "
                    f"got uid {fm.get('uid')}, wanted {meta.get('uid')}"
                )
            if fm.get("deletionTimestamp"):
                raise RuntimeError(
                    f"{meta.get('namespace')}/{meta['name']} has just been deleted at {fm['deletionTimestamp']}"
                )

        return await ControllerRefManager(self.api, owner, selector, "pods", can_adopt).claim(pods)

    async def _manage_replicas(self, pods: list[Obj], owner: Obj, key: str) -> None:
        spec = owner.get("spec") or {}
        diff = len(pods) - int(spec.get("replicas", 1))
        if diff < 0:
            count = min(-diff, BURST_REPLICAS)
            self.expectations.expect_creations(key, count)
            self.log.info("too few replicas for %s: need %s, creating %d", key, spec.get("replicas"), count)

            async def create() -> None:
                try:
                    await self._create_pod(owner)
                except StatusError as e:
                    if _namespace_terminating(e):
                        return
                    raise

            successes, err = await slow_start_batch(count, SLOW_START_INITIAL_BATCH_SIZE, create)
            for _ in range(count - successes):
                # The informer will never see these: don't wait for them.
                self.expectations.creation_observed(key)
            if err is not None:
                raise err
        elif diff > 0:
            count = min(diff, BURST_REPLICAS)
            self.log.info("too many replicas for %s: need %s, deleting %d", key, spec.get("replicas"), count)
            to_delete = get_pods_to_delete(pods, self._related_pods(owner), count)
            self.expectations.expect_deletions(key, [meta_key(p) for p in to_delete])
            results = await asyncio.gather(*(self._delete_pod(owner, key, p) for p in to_delete))
            errors = [e for e in results if e is not None]
            if errors:
                raise errors[0]

    async def _create_pod(self, owner: Obj) -> None:
        template = (owner.get("spec") or {}).get("template") or {}
        pod = pod_from_template(owner, template)
        if not pod["metadata"]["labels"]:
            raise ValueError("unable to create pods, no labels")
        ns = owner["metadata"].get("namespace")
        try:
            created = await self.api.create("pods", pod, ns)
        except StatusError as e:
            if not _namespace_terminating(e):
                self.events.record(owner, "Warning", "FailedCreate", f"Error creating: {e}")
            raise
        self.events.record(owner, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

    async def _delete_pod(self, owner: Obj, key: str, pod: Obj) -> StatusError | None:
        name = pod["metadata"]["name"]
        try:
            await self.api.delete("pods", name, owner["metadata"].get("namespace"))
        except StatusError as e:
            # The informer won't see this deletion: stop waiting for it.
            self.expectations.deletion_observed(key, meta_key(pod))
            if e.code == 404:
                return None
            self.events.record(owner, "Warning", "FailedDelete", f"Error deleting: {e}")
            return e
        self.events.record(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        return None

    def _related_pods(self, owner: Obj) -> list[Obj]:
        """Active pods of every owner sharing this owner's controller (e.g. all ReplicaSets of a Deployment)."""
        meta = owner["metadata"]
        ref = controller_of(owner)
        if ref is None:
            related = [owner]
        else:
            related = [
                o
                for o in self.owners.store.by_index(NAMESPACE_INDEX, meta.get("namespace", ""))
                if (controller_of(o) or {}).get("uid") == ref.get("uid")
            ]
        seen: set[str] = set()
        out: list[Obj] = []
        for o in related:
            for p in self.pods.store.by_index(POD_OWNER_INDEX, (o.get("metadata") or {}).get("uid", "")):
                uid = (p.get("metadata") or {}).get("uid", "")
                if uid not in seen:
                    seen.add(uid)
                    out.append(p)
        return out

    async def _update_status(self, owner: Obj, status: Obj) -> Obj:
        meta = owner["metadata"]
        cur = owner.get("status") or {}
        generation = meta.get("generation", 0)
        if (
            all(cur.get(f, 0) == status.get(f, 0) for f in _STATUS_FIELDS)
            and cur.get("terminatingReplicas") == status.get("terminatingReplicas")
            and cur.get("observedGeneration", 0) == generation
            and (cur.get("conditions") or []) == (status.get("conditions") or [])
        ):
            return owner
        status["observedGeneration"] = generation
        body = owner
        for attempt in range(2):
            try:
                return await self.api.update_status(self.owner_kind.resource, {**body, "status": status})
            except StatusError:
                if attempt:
                    raise
                fresh = await self.api.get(self.owner_kind.resource, meta["name"], meta.get("namespace"))
                body = self._typed(fresh)
        return owner  # unreachable


def _until_available(pods: list[Obj], min_ready: int, now: datetime) -> float:
    """Seconds until the next ready pod becomes available (minReadySeconds), at least a moment."""
    waits = []
    for p in pods:
        if not is_pod_ready(p) or is_pod_available(p, min_ready, now):
            continue
        for c in (p.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Ready":
                t = parse_time(c.get("lastTransitionTime"))
                if t is not None:
                    waits.append(min_ready - (now - t).total_seconds())
    return max(min(waits, default=float(min_ready)), 0.0) + 0.05
