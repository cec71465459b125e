"""The Deployment controller (upstream pkg/controller/deployment): one ReplicaSet per pod template
("<deployment>-<pod-template-hash>"), rolled from old to new by RollingUpdate (maxSurge /
maxUnavailable) or Recreate; revisions and their annotations (a template that matches an old
ReplicaSet reuses it under a new revision, which is how `kubectl rollout undo` works), pause,
proportional scaling mid-rollout, revisionHistoryLimit clean-up, and the status and conditions
(`Progressing`, `Available`, `ReplicaFailure`) that `kubectl rollout status` reads.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from apimachinery.errors import StatusError
from apimachinery.selectors import SelectorError, selector_from_label_selector
from client.request import Obj
from client.store import NAMESPACE_INDEX, meta_key
from controller_manager.base import Controller
from controller_manager.controllers import deployment_util as du
from controller_manager.controllers import register
from controller_manager.controllers.replicaset_util import ControllerRefManager, controller_of, parse_time
from controller_manager.podtemplate import controller_ref

__all__ = ["DeploymentController"]


def _typed(obj: Obj, kind: str) -> Obj:
    return {**obj, "kind": kind, "apiVersion": "apps/v1"}


def _uid(obj: Obj | None) -> str:
    return ((obj or {}).get("metadata") or {}).get("uid", "")


def _name(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("name", "")


def _namespace_terminating(e: StatusError) -> bool:
    return any(c.get("reason") == "NamespaceTerminating" for c in (e.details or {}).get("causes") or [])


@register
class DeploymentController(Controller):
    """Rolls Deployments out through ReplicaSets."""

    name = "deployment"
    workers = 5

    def setup(self) -> None:
        """Watch deployments, replicasets and (for Recreate) pod deletions."""
        self.deployments = self.ctx.factory.informer("deployments")
        self.rss = self.ctx.factory.informer("replicasets")
        self.pods = self.ctx.factory.informer("pods")
        self.deployments.add_handler(**self.handlers())
        self.rss.add_handler(on_add=self._rs_added, on_update=self._rs_updated, on_delete=self._rs_deleted)
        self.pods.add_handler(on_delete=self._pod_deleted)

    # -- handlers ---------------------------------------------------------------------------

    def _resolve(self, namespace: str, ref: dict[str, Any]) -> Obj | None:
        if ref.get("kind") != "Deployment":
            return None
        d = self.deployments.store.get(f"{namespace}/{ref.get('name', '')}")
        if d is None or _uid(d) != ref.get("uid"):
            return None
        return d

    def _deployments_for_rs(self, rs: Obj) -> list[Obj]:
        meta = rs.get("metadata") or {}
        labels = meta.get("labels") or {}
        if not labels:
            return []
        out = []
        for d in self.deployments.store.by_index(NAMESPACE_INDEX, meta.get("namespace", "")):
            try:
                sel = selector_from_label_selector((d.get("spec") or {}).get("selector"))
            except SelectorError:
                continue
            if not sel.empty and sel.matches(labels):
                out.append(d)
        return out

    def _rs_added(self, rs: Obj) -> None:
        meta = rs.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            self._rs_deleted(rs)
            return
        ref = controller_of(rs)
        if ref is not None:
            d = self._resolve(meta.get("namespace", ""), ref)
            if d is not None:
                self.enqueue(d)
            return
        for d in self._deployments_for_rs(rs):
            self.enqueue(d)

    def _rs_updated(self, old: Obj, cur: Obj) -> None:
        om, cm = old.get("metadata") or {}, cur.get("metadata") or {}
        if om.get("resourceVersion") == cm.get("resourceVersion"):
            return
        ns = cm.get("namespace", "")
        cur_ref, old_ref = controller_of(cur), controller_of(old)
        if cur_ref != old_ref and old_ref is not None:
            d = self._resolve(ns, old_ref)
            if d is not None:
                self.enqueue(d)
        if cur_ref is not None:
            d = self._resolve(ns, cur_ref)
            if d is not None:
                self.enqueue(d)
            return
        if (om.get("labels") or {}) != (cm.get("labels") or {}) or cur_ref != old_ref:
            for d in self._deployments_for_rs(cur):
                self.enqueue(d)

    def _rs_deleted(self, rs: Obj) -> None:
        ref = controller_of(rs)
        if ref is not None:
            d = self._resolve((rs.get("metadata") or {}).get("namespace", ""), ref)
            if d is not None:
                self.enqueue(d)

    def _pod_deleted(self, pod: Obj) -> None:
        """Recreate waits for old pods to be gone: look again when one goes."""
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        ns = (pod.get("metadata") or {}).get("namespace", "")
        rs = self.rss.store.get(f"{ns}/{ref.get('name', '')}")
        rs_ref = controller_of(rs) if rs is not None and _uid(rs) == ref.get("uid") else None
        d = self._resolve(ns, rs_ref) if rs_ref is not None else None
        if d is not None and ((d.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate":
            self.enqueue(d)

    # -- sync -------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        """Reconcile one Deployment."""
        cached = self.deployments.store.get(key)
        if cached is None:
            return
        d = _typed(copy.deepcopy(cached), "Deployment")
        spec = d.get("spec") or {}
        selector = spec.get("selector") or {}
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            msg = "This deployment is selecting all pods. A non-empty selector is required."
            self.events.record(d, "Warning", "SelectingAll", msg)
            status = d.setdefault("status", {})
            if int(status.get("observedGeneration") or 0) < int(d["metadata"].get("generation") or 0):
                status["observedGeneration"] = d["metadata"]["generation"]
                await self._write_status(d)
            return
        rs_list = await self._replica_sets_for(d)
        pod_map = self._pod_map(d, rs_list)
        if d["metadata"].get("deletionTimestamp"):
            new_rs, old_rss = await self._all_replica_sets(d, rs_list, False)
            await self._sync_deployment_status([*old_rss, new_rs], new_rs, d)
            return
        await self._check_paused_conditions(d)
        if spec.get("paused"):
            await self._sync(d, rs_list)
            return
        if await self._is_scaling_event(d, rs_list):
            await self._sync(d, rs_list)
            return
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            await self._rollout_recreate(d, rs_list, pod_map)
        else:
            await self._rollout_rolling(d, rs_list)

    async def _replica_sets_for(self, d: Obj) -> list[Obj]:
        """Every ReplicaSet this deployment controls, adopting matching orphans and releasing non-matching ones."""
        meta = d["metadata"]
        selector = selector_from_label_selector(d["spec"].get("selector"))

        async def can_adopt() -> None:
            fresh = await self.api.get("deployments", meta["name"], meta.get("namespace"))
            fm = fresh.get("metadata") or {}
            if fm.get("uid") != meta.get("uid"):
                raise RuntimeError(
                    f"original Deployment {meta.get('namespace')}/{meta['name']} is gone: "
                    f"got uid {fm.get('uid')}, wanted {meta.get('uid')}"
                )
            if fm.get("deletionTimestamp"):
                raise RuntimeError(
                    f"{meta.get('namespace')}/{meta['name']} has just been deleted at {fm['deletionTimestamp']}"
                )

        candidates = self.rss.store.by_index(NAMESPACE_INDEX, meta.get("namespace", ""))
        manager = ControllerRefManager(self.api, d, selector, "replicasets", can_adopt)
        return [_typed(rs, "ReplicaSet") for rs in await manager.claim(candidates)]

    def _pod_map(self, d: Obj, rs_list: list[Obj]) -> dict[str, list[Obj]]:
        """Pods of this deployment grouped by the uid of their ReplicaSet."""
        selector = selector_from_label_selector(d["spec"].get("selector"))
        out: dict[str, list[Obj]] = {_uid(rs): [] for rs in rs_list}
        for pod in self.pods.store.by_index(NAMESPACE_INDEX, d["metadata"].get("namespace", "")):
            if not selector.matches((pod.get("metadata") or {}).get("labels") or {}):
                continue
            ref = controller_of(pod)
            if ref is not None and ref.get("uid") in out:
                out[ref["uid"]].append(pod)
        return out

    # -- writes to the deployment -----------------------------------------------------------

    async def _write_status(self, d: Obj) -> None:
        """PUT the deployment's status (conditional on the resourceVersion read)."""
        updated = await self.api.update_status("deployments", d)
        d["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"]

    async def _set_deployment_revision(self, d: Obj, rev: str) -> bool:
        """Write the revision annotation on the deployment if it differs; whether it did.

        Upstream sets it along with a status update; tinykube's /status keeps metadata, so it is
        written with a conditional merge patch of the annotation instead."""
        annotations = d["metadata"].setdefault("annotations", {})
        if annotations.get(du.REVISION_ANNOTATION) == rev:
            return False
        patch = {"metadata": {"annotations": {du.REVISION_ANNOTATION: rev}, "resourceVersion": _rv(d)}}
        updated = await self.api.patch("deployments", _name(d), patch, d["metadata"].get("namespace"))
        annotations[du.REVISION_ANNOTATION] = rev
        d["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"]
        d["metadata"]["generation"] = updated["metadata"].get("generation", d["metadata"].get("generation"))
        return True

    async def _check_paused_conditions(self, d: Obj) -> None:
        if not du.has_progress_deadline(d):
            return
        status = d.setdefault("status", {})
        cond = du.get_condition(status, "Progressing")
        if cond is not None and cond.get("reason") == du.TIMED_OUT_REASON:
            return
        paused_cond = cond is not None and cond.get("reason") == du.PAUSED_REASON
        now = datetime.now(UTC)
        if d["spec"].get("paused") and not paused_cond:
            du.set_condition(
                status, du.new_condition("Progressing", "Unknown", du.PAUSED_REASON, "Deployment is paused", now)
            )
        elif not d["spec"].get("paused") and paused_cond:
            du.set_condition(
                status, du.new_condition("Progressing", "Unknown", du.RESUMED_REASON, "Deployment is resumed", now)
            )
        else:
            return
        await self._write_status(d)

    # -- ReplicaSets ------------------------------------------------------------------------

    async def _all_replica_sets(self, d: Obj, rs_list: list[Obj], create: bool) -> tuple[Obj | None, list[Obj]]:
        """(new ReplicaSet with its revision synced, all old ReplicaSets) — getAllReplicaSetsAndSyncRevision."""
        _, all_old = du.find_old_replica_sets(d, rs_list)
        new_rs = await self._new_replica_set(d, rs_list, all_old, create)
        return new_rs, all_old

    async def _new_replica_set(self, d: Obj, rs_list: list[Obj], old_rss: list[Obj], create: bool) -> Obj | None:
        existing = du.find_new_replica_set(d, rs_list)
        new_revision = str(du.max_revision(old_rss) + 1)
        status = d.setdefault("status", {})
        now = datetime.now(UTC)
        ns = d["metadata"].get("namespace")
        min_ready = int(d["spec"].get("minReadySeconds") or 0)
        if existing is not None:
            rs_copy = copy.deepcopy(existing)
            annotations_updated = du.set_new_replica_set_annotations(d, rs_copy, new_revision, True)
            if annotations_updated or int(rs_copy["spec"].get("minReadySeconds") or 0) != min_ready:
                _set_min_ready(rs_copy, min_ready)
                return _typed(await self.api.update("replicasets", rs_copy), "ReplicaSet")
            rev = (rs_copy["metadata"].get("annotations") or {}).get(du.REVISION_ANNOTATION, "")
            await self._set_deployment_revision(d, rev)
            if du.has_progress_deadline(d) and du.get_condition(status, "Progressing") is None:
                msg = f'Found new replica set "{_name(rs_copy)}"'
                du.set_condition(status, du.new_condition("Progressing", "True", du.FOUND_NEW_RS_REASON, msg, now))
                await self._write_status(d)
            return rs_copy
        if not create:
            return None

        template = copy.deepcopy(d["spec"].get("template") or {})
        pod_hash = du.compute_hash(template, status.get("collisionCount"))
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), du.HASH_LABEL: pod_hash}
        selector = copy.deepcopy(d["spec"]["selector"])
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), du.HASH_LABEL: pod_hash}
        new_rs: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{_name(d)}-{pod_hash}",
                "namespace": ns,
                "ownerReferences": [controller_ref(d)],
                "labels": dict(tmeta["labels"]),
            },
            "spec": {"replicas": 0, "selector": selector, "template": template},
        }
        _set_min_ready(new_rs, min_ready)
        count = du.new_rs_new_replicas(d, [*old_rss, new_rs], new_rs)
        new_rs["spec"]["replicas"] = count
        du.set_new_replica_set_annotations(d, new_rs, new_revision, False)
        already_exists = False
        try:
            created = _typed(await self.api.create("replicasets", new_rs, ns), "ReplicaSet")
        except StatusError as e:
            if e.code == 409 and e.reason == "AlreadyExists":
                already_exists = True
                rs = await self.api.get("replicasets", new_rs["metadata"]["name"], ns)
                ref = controller_of(rs)
                if (
                    ref is not None
                    and ref.get("uid") == _uid(d)
                    and du.equal_ignore_hash(template, rs["spec"]["template"])
                ):
                    created = _typed(rs, "ReplicaSet")
                else:
                    # A hash collision: bump collisionCount and retry with a new name.
                    status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                    await self._write_status(d)
                    self.log.info("hash collision for %s: collisionCount now %d", meta_key(d), status["collisionCount"])
                    raise
            elif _namespace_terminating(e):
                raise
            else:
                msg = f'Failed to create new replica set "{new_rs["metadata"]["name"]}": {e}'
                if du.has_progress_deadline(d):
                    du.set_condition(
                        status, du.new_condition("Progressing", "False", du.FAILED_RS_CREATE_REASON, msg, now)
                    )
                    try:
                        await self._write_status(d)
                    except StatusError:
                        pass  # the create failure is the error worth reporting
                self.events.record(d, "Warning", du.FAILED_RS_CREATE_REASON, msg)
                raise
        if not already_exists and count > 0:
            msg = f"Scaled up replica set {_name(created)} from 0 to {count}"
            self.events.record(d, "Normal", "ScalingReplicaSet", msg)
        await self._set_deployment_revision(d, new_revision)
        if not already_exists and du.has_progress_deadline(d):
            msg = f'Created new replica set "{_name(created)}"'
            du.set_condition(status, du.new_condition("Progressing", "True", du.NEW_RS_REASON, msg, now))
            await self._write_status(d)
        return created

    async def _scale_replica_set(self, rs: Obj, new_scale: int, d: Obj) -> tuple[bool, Obj]:
        """Set the ReplicaSet's replicas and replicas annotations; record ScalingReplicaSet (scaleReplicaSet)."""
        size_changes = du.replicas(rs) != new_scale
        desired, most = du.replicas(d), du.replicas(d) + du.max_surge(d)
        if not size_changes and not du.replicas_annotations_need_update(rs, desired, most):
            return False, rs
        old_scale = du.replicas(rs)
        rs_copy = copy.deepcopy(rs)
        rs_copy["spec"]["replicas"] = new_scale
        du.set_replicas_annotations(rs_copy, desired, most)
        updated = _typed(await self.api.update("replicasets", rs_copy), "ReplicaSet")
        if size_changes:
            op = "up" if old_scale < new_scale else "down"
            msg = f"Scaled {op} replica set {_name(updated)} from {old_scale} to {new_scale}"
            self.events.record(d, "Normal", "ScalingReplicaSet", msg)
        return size_changes, updated

    async def _scale_and_record(self, rs: Obj, new_scale: int, d: Obj) -> tuple[bool, Obj]:
        if du.replicas(rs) == new_scale:
            return False, rs
        return await self._scale_replica_set(rs, new_scale, d)

    # -- scaling, paused and deleting deployments ---------------------------------------------

    async def _is_scaling_event(self, d: Obj, rs_list: list[Obj]) -> bool:
        new_rs, old_rss = await self._all_replica_sets(d, rs_list, False)
        for rs in du.filter_active([*old_rss, new_rs]):
            desired = (rs["metadata"].get("annotations") or {}).get(du.DESIRED_REPLICAS_ANNOTATION)
            try:
                if desired is not None and int(desired) != du.replicas(d):
                    return True
            except ValueError:
                continue
        return False

    async def _sync(self, d: Obj, rs_list: list[Obj]) -> None:
        """Scaling events and paused deployments: scale, clean up, write status."""
        new_rs, old_rss = await self._all_replica_sets(d, rs_list, False)
        await self._scale(d, new_rs, old_rss)
        if d["spec"].get("paused"):
            await self._cleanup(old_rss, d)
        await self._sync_deployment_status([*old_rss, new_rs], new_rs, d)

    async def _scale(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        only = du.find_active_or_latest(new_rs, old_rss)
        if only is not None:
            if du.replicas(only) != du.replicas(d):
                await self._scale_and_record(only, du.replicas(d), d)
            return
        if du.is_saturated(d, new_rs):
            for old in du.filter_active(old_rss):
                await self._scale_and_record(old, 0, d)
            return
        if ((d["spec"].get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate":
            for rs, size in du.proportional_sizes(d, du.filter_active([*old_rss, new_rs])):
                await self._scale_replica_set(rs, size, d)

    async def _cleanup(self, old_rss: list[Obj], d: Obj) -> None:
        """Delete the oldest ReplicaSets with no pods beyond revisionHistoryLimit."""
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in old_rss if not rs["metadata"].get("deletionTimestamp")]
        diff = len(alive) - int(limit)
        if diff <= 0:
            return
        for rs in du.sort_by_revision(alive)[:diff]:
            st = rs.get("status") or {}
            if (
                int(st.get("replicas") or 0) != 0
                or du.replicas(rs) != 0
                or int(rs["metadata"].get("generation") or 0) > int(st.get("observedGeneration") or 0)
            ):
                continue
            self.log.info("cleaning up replica set %s of deployment %s", _name(rs), meta_key(d))
            try:
                await self.api.delete("replicasets", _name(rs), rs["metadata"].get("namespace"))
            except StatusError as e:
                if e.code != 404:
                    raise

    # -- rollouts ----------------------------------------------------------------------------

    async def _rollout_rolling(self, d: Obj, rs_list: list[Obj]) -> None:
        new_rs, old_rss = await self._all_replica_sets(d, rs_list, True)
        assert new_rs is not None
        all_rss = [*old_rss, new_rs]
        if await self._reconcile_new(all_rss, new_rs, d):
            await self._sync_rollout_status(all_rss, new_rs, d)
            return
        if await self._reconcile_old(all_rss, du.filter_active(old_rss), new_rs, d):
            await self._sync_rollout_status(all_rss, new_rs, d)
            return
        if du.deployment_complete(d, d.get("status") or {}):
            await self._cleanup(old_rss, d)
        await self._sync_rollout_status(all_rss, new_rs, d)

    async def _reconcile_new(self, all_rss: list[Obj], new_rs: Obj, d: Obj) -> bool:
        if du.replicas(new_rs) == du.replicas(d):
            return False
        if du.replicas(new_rs) > du.replicas(d):
            return (await self._scale_and_record(new_rs, du.replicas(d), d))[0]
        count = du.new_rs_new_replicas(d, all_rss, new_rs)
        return (await self._scale_and_record(new_rs, count, d))[0]

    async def _reconcile_old(self, all_rss: list[Obj], old_rss: list[Obj], new_rs: Obj, d: Obj) -> bool:
        if sum(du.replicas(rs) for rs in old_rss) == 0:
            return False
        all_pods = sum(du.replicas(rs) for rs in all_rss)
        min_available = du.replicas(d) - du.max_unavailable(d)
        new_unavailable = du.replicas(new_rs) - int((new_rs.get("status") or {}).get("availableReplicas") or 0)
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        try:
            old_rss, cleaned = await self._cleanup_unhealthy(old_rss, d, max_scaled_down)
            scaled = await self._scale_down_old_for_rolling([*old_rss, new_rs], old_rss, d)
        except (StatusError, ValueError) as e:
            # As upstream: a failed step is not an error of the sync; the next sync tries again.
            self.log.debug("scaling down old replica sets of %s: %s", meta_key(d), e)
            return False
        return cleaned + scaled > 0

    async def _cleanup_unhealthy(self, old_rss: list[Obj], d: Obj, max_cleanup: int) -> tuple[list[Obj], int]:
        """Scale old ReplicaSets down by their unavailable replicas first (they add no availability)."""
        old_rss = du.sort_by_creation(old_rss)
        total = 0
        for i, rs in enumerate(old_rss):
            if total >= max_cleanup:
                break
            available = int((rs.get("status") or {}).get("availableReplicas") or 0)
            if du.replicas(rs) == 0 or du.replicas(rs) == available:
                continue
            count = min(max_cleanup - total, du.replicas(rs) - available)
            new_count = du.replicas(rs) - count
            if new_count > du.replicas(rs):
                raise ValueError(
                    f"when cleaning up unhealthy replicas, got invalid request to scale down "
                    f"{meta_key(rs)} {du.replicas(rs)} -> {new_count}"
                )
            _, old_rss[i] = await self._scale_and_record(rs, new_count, d)
            total += count
        return old_rss, total

    async def _scale_down_old_for_rolling(self, all_rss: list[Obj], old_rss: list[Obj], d: Obj) -> int:
        min_available = du.replicas(d) - du.max_unavailable(d)
        available = sum(int((rs.get("status") or {}).get("availableReplicas") or 0) for rs in all_rss)
        if available <= min_available:
            return 0
        total, target = 0, available - min_available
        for rs in du.sort_by_creation(old_rss):
            if total >= target:
                break
            if du.replicas(rs) == 0:
                continue
            count = min(du.replicas(rs), target - total)
            new_count = du.replicas(rs) - count
            if new_count > du.replicas(rs):
                raise ValueError(
                    f"when scaling down old RS, got invalid request to scale down "
                    f"{meta_key(rs)} {du.replicas(rs)} -> {new_count}"
                )
            await self._scale_and_record(rs, new_count, d)
            total += count
        return total

    async def _rollout_recreate(self, d: Obj, rs_list: list[Obj], pod_map: dict[str, list[Obj]]) -> None:
        new_rs, old_rss = await self._all_replica_sets(d, rs_list, False)
        all_rss = [*old_rss, new_rs]
        scaled_down = False
        for rs in du.filter_active(old_rss):
            scaled, _ = await self._scale_and_record(rs, 0, d)
            scaled_down = scaled_down or scaled
        if scaled_down:
            await self._sync_rollout_status(all_rss, new_rs, d)
            return
        if _old_pods_running(new_rs, old_rss, pod_map):
            await self._sync_rollout_status(all_rss, new_rs, d)
            return
        if new_rs is None:
            new_rs, old_rss = await self._all_replica_sets(d, rs_list, True)
            all_rss = [*old_rss, new_rs]
        assert new_rs is not None
        await self._scale_and_record(new_rs, du.replicas(d), d)
        if du.deployment_complete(d, d.get("status") or {}):
            await self._cleanup(old_rss, d)
        await self._sync_rollout_status(all_rss, new_rs, d)

    # -- status -----------------------------------------------------------------------------

    async def _sync_deployment_status(self, all_rss: list[Obj | None], new_rs: Obj | None, d: Obj) -> None:
        new_status = du.calculate_status(all_rss, new_rs, d, datetime.now(UTC))
        if (d.get("status") or {}) == new_status:
            return
        d["status"] = new_status
        await self._write_status(d)

    async def _sync_rollout_status(self, all_rss: list[Obj | None], new_rs: Obj | None, d: Obj) -> None:
        """Status plus the Progressing/ReplicaFailure conditions (upstream syncRolloutStatus)."""
        now = datetime.now(UTC)
        new_status = du.calculate_status(all_rss, new_rs, d, now)
        if not du.has_progress_deadline(d):
            du.remove_condition(new_status, "Progressing")
        cur = du.get_condition(d.get("status") or {}, "Progressing")
        complete = (
            int(new_status.get("replicas") or 0) == int(new_status.get("updatedReplicas") or 0)
            and cur is not None
            and cur.get("reason") == du.NEW_RS_AVAILABLE_REASON
        )
        if du.has_progress_deadline(d) and not complete:
            rs_name = _name(new_rs) if new_rs is not None else ""
            if du.deployment_complete(d, new_status):
                msg = (
                    f'ReplicaSet "{rs_name}" has successfully progressed.'
                    if new_rs is not None
                    else f'Deployment "{_name(d)}" has successfully progressed.'
                )
                du.set_condition(
                    new_status, du.new_condition("Progressing", "True", du.NEW_RS_AVAILABLE_REASON, msg, now)
                )
            elif du.deployment_progressing(d, new_status):
                msg = (
                    f'ReplicaSet "{rs_name}" is progressing.'
                    if new_rs is not None
                    else f'Deployment "{_name(d)}" is progressing.'
                )
                cond = du.new_condition("Progressing", "True", du.RS_UPDATED_REASON, msg, now)
                if cur is not None:
                    if cur.get("status") == "True":
                        cond["lastTransitionTime"] = cur.get("lastTransitionTime")
                    du.remove_condition(new_status, "Progressing")
                du.set_condition(new_status, cond)
            elif du.deployment_timed_out(d, new_status, now):
                msg = (
                    f'ReplicaSet "{rs_name}" has timed out progressing.'
                    if new_rs is not None
                    else f'Deployment "{_name(d)}" has timed out progressing.'
                )
                du.set_condition(new_status, du.new_condition("Progressing", "False", du.TIMED_OUT_REASON, msg, now))
        failures = _replica_failures(all_rss, new_rs)
        if failures:
            du.set_condition(new_status, failures[0])
        else:
            du.remove_condition(new_status, "ReplicaFailure")
        if (d.get("status") or {}) == new_status:
            self._requeue_stuck(d, new_status, now)
            return
        d["status"] = new_status
        await self._write_status(d)

    def _requeue_stuck(self, d: Obj, new_status: Obj, now: datetime) -> None:
        """Look again when the progress deadline would pass (requeueStuckDeployment)."""
        cur = du.get_condition(d.get("status") or {}, "Progressing")
        if not du.has_progress_deadline(d) or cur is None:
            return
        if du.deployment_complete(d, new_status) or cur.get("reason") == du.TIMED_OUT_REASON:
            return
        since = parse_time(cur.get("lastUpdateTime"))
        if since is None:
            return
        after = (since - now).total_seconds() + int(d["spec"]["progressDeadlineSeconds"])
        if after < 1:
            self.queue.add_rate_limited(meta_key(d))
        else:
            self.requeue_after(meta_key(d), after + 1)


def _rv(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("resourceVersion", "")


def _set_min_ready(rs: Obj, seconds: int) -> None:
    if seconds:
        rs["spec"]["minReadySeconds"] = seconds
    else:
        rs["spec"].pop("minReadySeconds", None)


def _old_pods_running(new_rs: Obj | None, old_rss: list[Obj], pod_map: dict[str, list[Obj]]) -> bool:
    """Whether old ReplicaSets still report pods, or any old pod is not terminal (oldPodsRunning)."""
    if sum(int((rs.get("status") or {}).get("replicas") or 0) for rs in old_rss) > 0:
        return True
    for uid, pods in pod_map.items():
        if new_rs is not None and uid == _uid(new_rs):
            continue
        for pod in pods:
            if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                return True
    return False


def _replica_failures(all_rss: list[Obj | None], new_rs: Obj | None) -> list[Obj]:
    """ReplicaFailure conditions of the new ReplicaSet, else of any, as deployment conditions."""

    def convert(c: Obj) -> Obj:
        return {
            "type": c["type"],
            "status": c.get("status"),
            "lastUpdateTime": c.get("lastTransitionTime"),
            "lastTransitionTime": c.get("lastTransitionTime"),
            "reason": c.get("reason"),
            "message": c.get("message"),
        }

    def of(rs: Obj | None) -> list[Obj]:
        conds = ((rs or {}).get("status") or {}).get("conditions") or []
        return [convert(c) for c in conds if c.get("type") == "ReplicaFailure"]

    found = of(new_rs)
    if found:
        return found
    return [c for rs in all_rss for c in of(rs)]
