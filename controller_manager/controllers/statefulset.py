"""The StatefulSet controller (upstream pkg/controller/statefulset): pods `<set>-<ordinal>` with a
stable hostname, per-pod PVCs from volumeClaimTemplates, OrderedReady or Parallel management,
RollingUpdate (partition) or OnDelete over ControllerRevisions."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

from apimachinery.errors import StatusError
from client.request import Obj
from controller_manager.base import Controller, owner_key
from controller_manager.controllers import register
from controller_manager.controllers.controller_history import (
    REVISION_HASH_LABEL,
    cleanup_history,
    ensure_revision,
    owner_uid_indexer,
    template_from_revision,
)
from controller_manager.podtemplate import is_pod_available, is_pod_ready, pod_from_template

__all__ = ["POD_INDEX_LABEL", "POD_NAME_LABEL", "StatefulSetController", "pod_ordinal", "stateful_pod"]

OWNER_INDEX = "statefulset:controller-uid"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


def pod_ordinal(set_name: str, pod: Obj) -> int | None:
    """The ordinal of a pod named `<set>-<n>`, else None."""
    m = _ORDINAL.match((pod.get("metadata") or {}).get("name", ""))
    if not m or m.group(1) != set_name:
        return None
    return int(m.group(2))


def _revision_of(pod: Obj) -> str:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(REVISION_HASH_LABEL, "")


def _terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _running_ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and is_pod_ready(pod)


def _healthy(pod: Obj) -> bool:
    return _running_ready(pod) and not _terminating(pod)


def _failed(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")


def claim_name(template: Obj, pod_name: str) -> str:
    """`<claim template name>-<pod name>`."""
    return f"{(template.get('metadata') or {}).get('name', '')}-{pod_name}"


def stateful_pod(sts: Obj, template: Obj, ordinal: int, revision: str) -> Obj:
    """The pod for an ordinal: identity (name, hostname, subdomain, labels), storage and revision label."""
    meta = sts["metadata"]
    name = f"{meta['name']}-{ordinal}"
    pod = pod_from_template(sts, template, name=name)
    pod["metadata"]["ownerReferences"][0].update(apiVersion="apps/v1", kind="StatefulSet")
    labels = pod["metadata"]["labels"]
    labels[POD_NAME_LABEL] = name
    labels[POD_INDEX_LABEL] = str(ordinal)
    labels[REVISION_HASH_LABEL] = revision
    spec = pod["spec"]
    spec["hostname"] = name
    if (sts.get("spec") or {}).get("serviceName"):
        spec["subdomain"] = sts["spec"]["serviceName"]
    claims = (sts.get("spec") or {}).get("volumeClaimTemplates") or []
    if claims:
        names = {(c.get("metadata") or {}).get("name") for c in claims}
        volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in names]
        for c in claims:
            volumes.append({"name": c["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name(c, name)}})
        spec["volumes"] = volumes
    return pod


@register
class StatefulSetController(Controller):
    """Reconciles StatefulSets with their pods and claims."""

    name = "statefulset"
    workers = 2

    def setup(self) -> None:
        """Watch statefulsets, their pods and revisions."""
        f = self.ctx.factory
        self.sets = f.informer("statefulsets")
        self.sets.add_handler(**self.handlers())
        self.pods = f.informer("pods", indexers={OWNER_INDEX: owner_uid_indexer("StatefulSet")})
        self.pods.add_handler(**self.handlers(self._pod_changed))
        self.revisions = f.informer("controllerrevisions", indexers={OWNER_INDEX: owner_uid_indexer("StatefulSet")})

    def _pod_changed(self, pod: Obj) -> None:
        key = owner_key(pod, "StatefulSet")
        if key:
            self.enqueue_key(key)

    async def sync(self, key: str) -> None:
        """Reconcile one StatefulSet."""
        sts = self.sets.store.get(key)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        meta = sts["metadata"]
        spec = sts.get("spec") or {}
        status = sts.get("status") or {}
        revisions = self.revisions.store.by_index(OWNER_INDEX, meta["uid"])
        update_rev, collisions = await ensure_revision(
            self.api, sts, "apps/v1", "StatefulSet", revisions, int(status.get("collisionCount") or 0)
        )
        update_name = update_rev["metadata"]["name"]
        current_rev = next((r for r in revisions if r["metadata"]["name"] == status.get("currentRevision")), None)
        if current_rev is None:
            current_rev = update_rev
        current_name = current_rev["metadata"]["name"]

        pods = self.pods.store.by_index(OWNER_INDEX, meta["uid"])
        replicas = int(spec.get("replicas", 1))
        slots: list[Obj | None] = [None] * replicas
        condemned: list[Obj] = []
        for p in pods:
            o = pod_ordinal(meta["name"], p)
            if o is None:
                continue
            if o < replicas:
                slots[o] = p
            else:
                condemned.append(p)
        condemned.sort(key=lambda p: pod_ordinal(meta["name"], p) or 0, reverse=True)

        await self._update_pods(sts, slots, condemned, current_rev, update_rev)
        live = {current_name, update_name} | {_revision_of(p) for p in pods}
        others = [r for r in revisions if r["metadata"]["name"] not in (current_name, update_name)]
        await cleanup_history(
            self.api, sts, others, {_hash_label(r) for r in revisions if r["metadata"]["name"] in live}
        )
        await self._update_status(sts, pods, current_name, update_name, collisions)

    async def _update_pods(
        self, sts: Obj, slots: list[Obj | None], condemned: list[Obj], current_rev: Obj, update_rev: Obj
    ) -> None:
        """One pass of upstream updateStatefulSet: create, replace failed, scale down, roll."""
        spec = sts.get("spec") or {}
        monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        strategy = spec.get("updateStrategy") or {}
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        for ordinal, pod in enumerate(slots):
            if pod is not None and _failed(pod) and not _terminating(pod):
                await self._delete_pod(sts, pod)
                slots[ordinal] = None
                if monotonic:
                    return
                continue
            if pod is None:
                use_current = rolling and ordinal < partition
                rev = current_rev if use_current else update_rev
                template = template_from_revision(rev)
                await self._create_pod(sts, stateful_pod(sts, template, ordinal, rev["metadata"]["name"]))
                if monotonic:
                    return
                continue
            if monotonic and not _healthy(pod):
                return
        first_unhealthy = next((p for p in [*slots, *reversed(condemned)] if p is not None and not _healthy(p)), None)
        for pod in condemned:
            if _terminating(pod):
                if monotonic:
                    return
                continue
            if monotonic and not _running_ready(pod) and pod is not first_unhealthy:
                return
            await self._delete_pod(sts, pod)
            if monotonic:
                return
        if not rolling:
            return
        if any(p is None for p in slots):
            return
        update_name = update_rev["metadata"]["name"]
        for target in range(len(slots) - 1, partition - 1, -1):
            pod = slots[target]
            assert pod is not None
            if _revision_of(pod) != update_name and not _terminating(pod):
                await self._delete_pod(sts, pod)
                return
            if not _healthy(pod):
                return

    async def _create_pod(self, sts: Obj, pod: Obj) -> None:
        ns = sts["metadata"]["namespace"]
        set_name, pod_name = sts["metadata"]["name"], pod["metadata"]["name"]
        for tmpl in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
            await self._create_claim(sts, tmpl, pod_name)
        try:
            await self.api.create("pods", pod, ns)
        except StatusError as e:
            if e.code == 409:
                return  # our cache is behind: the pod exists
            self.events.record(
                sts, "Warning", "FailedCreate", f"create Pod {pod_name} in StatefulSet {set_name} failed error: {e}"
            )
            raise
        self.events.record(
            sts, "Normal", "SuccessfulCreate", f"create Pod {pod_name} in StatefulSet {set_name} successful"
        )

    async def _create_claim(self, sts: Obj, tmpl: Obj, pod_name: str) -> None:
        ns = sts["metadata"]["namespace"]
        tmeta = tmpl.get("metadata") or {}
        name = claim_name(tmpl, pod_name)
        labels = dict(tmeta.get("labels") or {})
        labels.update(((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
        claim = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": copy.deepcopy(tmpl.get("spec") or {}),
        }
        if tmeta.get("annotations"):
            claim["metadata"]["annotations"] = dict(tmeta["annotations"])
        set_name = sts["metadata"]["name"]
        try:
            await self.api.create("persistentvolumeclaims", claim, ns)
        except StatusError as e:
            if e.code == 409:
                return  # claims outlive pods: an existing one is reused
            self.events.record(
                sts,
                "Warning",
                "FailedCreate",
                f"create Claim {name} for Pod {pod_name} in StatefulSet {set_name} failed error: {e}",
            )
            raise
        self.events.record(
            sts, "Normal", "SuccessfulCreate", f"create Claim {name} Pod {pod_name} in StatefulSet {set_name} success"
        )

    async def _delete_pod(self, sts: Obj, pod: Obj) -> None:
        meta = pod["metadata"]
        set_name = sts["metadata"]["name"]
        try:
            await self.api.delete("pods", meta["name"], meta["namespace"])
        except StatusError as e:
            if e.code == 404:
                return
            self.events.record(
                sts, "Warning", "FailedDelete", f"delete Pod {meta['name']} in StatefulSet {set_name} failed error: {e}"
            )
            raise
        self.events.record(
            sts, "Normal", "SuccessfulDelete", f"delete Pod {meta['name']} in StatefulSet {set_name} successful"
        )

    async def _update_status(self, sts: Obj, pods: list[Obj], current: str, update: str, collisions: int) -> None:
        spec = sts.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = datetime.now(UTC)
        counts = {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0, "currentReplicas": 0, "updatedReplicas": 0}
        for p in pods:
            if pod_ordinal(sts["metadata"]["name"], p) is None or _terminating(p):
                continue
            counts["replicas"] += 1
            if _running_ready(p):
                counts["readyReplicas"] += 1
                if is_pod_available(p, min_ready, now):
                    counts["availableReplicas"] += 1
            rev = _revision_of(p)
            if rev == current:
                counts["currentReplicas"] += 1
            if rev == update:
                counts["updatedReplicas"] += 1
        rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
        replicas = int(spec.get("replicas", 1))
        if (
            rolling
            and counts["updatedReplicas"] == replicas
            and counts["readyReplicas"] == replicas
            and counts["replicas"] == replicas
        ):
            current = update
            counts["currentReplicas"] = counts["updatedReplicas"]
        old = sts.get("status") or {}
        status: dict[str, Any] = {
            **old,
            "observedGeneration": sts["metadata"].get("generation", 1),
            **counts,
            "currentRevision": current,
            "updateRevision": update,
            "collisionCount": collisions,
        }
        for k in ("readyReplicas", "currentReplicas", "updatedReplicas"):
            if not status[k]:
                status.pop(k)  # omitempty
        if status != old:
            await self.api.update_status("statefulsets", {**sts, "status": status}, sts["metadata"]["namespace"])


def _hash_label(rev: Obj) -> str:
    return (rev["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL, "")
