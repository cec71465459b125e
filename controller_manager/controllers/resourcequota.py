"""The resource-quota controller (upstream pkg/controller/resourcequota): every ResourceQuota's
`status.hard` is its `spec.hard` and `status.used` what the namespace's objects really use —
recomputed when a quota is created or its limits change, when a tracked object is deleted or a pod
ends (the "replenishment" upstream does), and every `--resource-quota-sync-period` (5 minutes) so
charges of writes that failed after admission are given back.

The quota is read before the objects are listed and written back with that resourceVersion, so an
admission charge landing in between makes the write conflict and the sync run again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from apimachinery.errors import StatusError
from apimachinery.quota import (
    Evaluator,
    ResourceList,
    add,
    evaluator_for,
    evaluator_for_count,
    mask,
    parse_list,
    pod_counts_against_quota,
    render_list,
    scope_selectors,
)
from client.request import Obj
from client.store import NAMESPACE_INDEX, namespace_indexer
from controller_manager.base import Controller, split_key
from controller_manager.controllers import register

__all__ = ["ResourceQuotaController", "calculate_usage"]

# kinds whose deletion (or, for pods, whose end) gives quota back
_REPLENISHED = ("pods", "services", "persistentvolumeclaims", "configmaps", "secrets", "replicationcontrollers")


def _evaluators(hard: ResourceList) -> list[tuple[Evaluator, list[str]]]:
    """Each evaluator tracking something in `hard`, with the names it tracks."""
    found: dict[str, tuple[Evaluator, list[str]]] = {}
    for name in sorted(hard):
        ev = evaluator_for_count(name)
        if ev is None:
            continue
        found.setdefault(ev.resource.group_resource, (ev, []))[1].append(name)
    return list(found.values())


def calculate_usage(quota: Obj, objects: dict[str, list[Obj]], now: datetime) -> ResourceList:
    """quota.CalculateUsage: per tracked resource, the summed usage of the objects in its scopes
    (zero when none); `objects` maps `resource.group` to the namespace's objects of it."""
    hard = parse_list((quota.get("spec") or {}).get("hard"))
    usage: ResourceList = {}
    selectors = scope_selectors(quota)
    for ev, names in _evaluators(hard):
        used: ResourceList = {name: parse_list({name: "0"})[name] for name in names}
        for obj in objects.get(ev.resource.group_resource, []):
            if all(ev.matches_scope(sel, obj) for sel in selectors):
                used = add(used, ev.usage(obj, now))
        usage = add(usage, mask(used, names))
    return usage


@register
class ResourceQuotaController(Controller):
    """Keeps each ResourceQuota's status (hard and used) true to its spec and its namespace."""

    name = "resourcequota"
    event_source = "resourcequota-controller"
    workers = 2

    def setup(self) -> None:
        self.period = self.ctx.option("resource-quota-sync-period", 300.0)
        self.quotas = self.ctx.factory.informer("resourcequotas", indexers={NAMESPACE_INDEX: namespace_indexer})
        self.quotas.add_handler(on_add=self._quota_changed, on_update=lambda _old, new: self._quota_changed(new))
        for plural in _REPLENISHED:
            informer = self.ctx.factory.informer(plural)
            informer.add_handler(on_update=partial(self._updated, plural), on_delete=partial(self._replenish, plural))

    def _quota_changed(self, quota: Obj) -> None:
        """A new quota, changed limits, or a status missing something: recompute it."""
        spec, status = quota.get("spec") or {}, quota.get("status") or {}
        hard = parse_list(spec.get("hard"))
        if hard != parse_list(status.get("hard")) or set(hard) - set(status.get("used") or {}):
            self.enqueue(quota)

    def _updated(self, plural: str, old: Obj, new: Obj) -> None:
        """A pod that stops counting (terminal, or past its deletion grace period) gives back."""
        if plural != "pods":
            return
        now = datetime.now(UTC)
        if pod_counts_against_quota(old, now) and not pod_counts_against_quota(new, now):
            self._replenish(plural, new)

    def _replenish(self, plural: str, obj: Obj) -> None:
        """Recompute every quota of the object's namespace that tracks its resource."""
        ns = (obj.get("metadata") or {}).get("namespace")
        if not ns:
            return
        ev = evaluator_for(self.api.resource(plural))
        for quota in self.quotas.store.by_index(NAMESPACE_INDEX, ns):
            if ev.matching_resources(parse_list((quota.get("spec") or {}).get("hard"))):
                self.enqueue(quota)

    async def sync(self, key: str) -> None:
        """Read the quota, count the namespace, write status (a conflict retries with backoff)."""
        ns, name = split_key(key)
        try:
            quota = await self.api.get("resourcequotas", name, ns)
        except StatusError as e:
            if e.code == 404:
                return
            raise
        hard = parse_list((quota.get("spec") or {}).get("hard"))
        objects: dict[str, list[Obj]] = {}
        for ev, _names in _evaluators(hard):
            listing = await self.api.list_all(ev.resource, ns)
            objects[ev.resource.group_resource] = list(listing.get("items") or [])
        status = quota.get("status") or {}
        used = {**parse_list(status.get("used")), **calculate_usage(quota, objects, datetime.now(UTC))}
        wanted: dict[str, Any] = {"hard": render_list(hard), "used": render_list(mask(used, hard))}
        if parse_list(status.get("hard")) != hard or parse_list(status.get("used")) != mask(used, hard):
            await self.api.update_status("resourcequotas", {**quota, "status": wanted}, ns)
            self.log.debug("synced %s: used %s", key, wanted["used"])
        self.requeue_after(key, self.period)
