"""The garbage collector (upstream pkg/controller/garbagecollector): deletes objects whose owners are
gone, orphans dependents of owners deleted with propagationPolicy=Orphan, and deletes dependents
first for owners deleted with propagationPolicy=Foreground.

The graph is two in-memory indexes over the shared informers of every kind in the resource table
(events excepted, as upstream) and of the custom resources discovery lists (re-read when a CRD
changes, and every 30 s): uid → object, and owner uid → dependents. The work queue holds
object keys (`<resource>|<namespace/name>`); a sync looks at one object as it is now:
- being deleted with the `orphan` finalizer: strip its ownerReferences from its dependents, then
  drop the finalizer;
- being deleted with `foregroundDeletion`: delete its dependents; once no dependent with
  blockOwnerDeletion=true is left, drop the finalizer so the object goes;
- holding ownerReferences: when no owner is "solid" (present with that uid and not itself
  waiting for its dependents), delete the object (uid precondition); when some are solid, remove
  the references to the dangling or waiting owners. A cluster-scoped object naming a namespaced
  owner is reported with an OwnerRefInvalidNamespace event and left alone, as upstream.
An owner missing from the cache is confirmed with a live GET before anything is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from apimachinery.errors import StatusError
from apimachinery.resources import RESOURCES, ResourceInfo, by_kind
from client.discovery import preferred_resources
from client.request import DeleteOptions, Obj, Preconditions
from client.store import meta_key
from controller_manager.base import Controller
from controller_manager.controllers import register

__all__ = ["FOREGROUND", "ORPHAN", "GarbageCollector", "classify_owner"]

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
IGNORED = frozenset({"events"})  # upstream's GC ignores events
_REDISCOVER_EVERY = 30.0  # upstream's GC re-reads discovery this often; a CRD change triggers it at once
_MONITORED_VERBS = frozenset({"list", "watch", "delete"})

SOLID, DANGLING, WAITING, INVALID = "solid", "dangling", "waiting", "invalid"


def _meta(obj: Obj) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _refs(obj: Obj | None) -> list[dict[str, Any]]:
    return list(_meta(obj).get("ownerReferences") or []) if obj else []


def classify_owner(owner: Obj | None, uid: str) -> str:
    """How an owner reference stands: dangling (absent or another uid), waiting (foreground-deleting), solid."""
    if owner is None or _meta(owner).get("uid") != uid:
        return DANGLING
    m = _meta(owner)
    if m.get("deletionTimestamp") and FOREGROUND in (m.get("finalizers") or []):
        return WAITING
    return SOLID


@register
class GarbageCollector(Controller):
    """Cascading deletion through ownerReferences (background, orphan, foreground)."""

    name = "garbagecollector"
    event_source = "garbage-collector-controller"
    workers = 4

    def setup(self) -> None:
        self.resources: dict[str, ResourceInfo] = {}
        self.by_uid: dict[str, str] = {}  # uid → queue key
        self.dependents: dict[str, set[str]] = {}  # owner uid → queue keys of dependents
        self.discovered: dict[tuple[str, str], ResourceInfo] = {}  # (group, kind) → a custom resource monitored
        self._rediscover = asyncio.Event()
        for res in RESOURCES:
            self._monitor(res)
        crds = self.ctx.factory.informer("customresourcedefinitions")
        crds.add_handler(**self.handlers(lambda _crd: self._rediscover.set()))

    def _monitor(self, res: ResourceInfo) -> None:
        """Follow one resource's objects in the graph."""
        if res.plural in IGNORED or not _MONITORED_VERBS <= set(res.verbs):  # create-only kinds are never stored
            return
        tag = res.group_resource
        if tag in self.resources:
            return
        self.resources[tag] = res
        inf = self.ctx.factory.informer(res)
        inf.add_handler(
            on_add=lambda obj, t=tag: self._on_add(t, obj),
            on_update=lambda old, new, t=tag: self._on_update(t, old, new),
            on_delete=lambda obj, t=tag: self._on_delete(t, obj),
        )

    async def run(self) -> None:
        """The workers, and the discovery of kinds added or removed while running (custom resources)."""
        follow = asyncio.create_task(self._follow_discovery(), name="garbagecollector-discovery")
        try:
            await super().run()
        finally:
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follow

    async def _follow_discovery(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_REDISCOVER_EVERY):
                    await self._rediscover.wait()
            self._rediscover.clear()
            try:
                await self.sync_monitors()
            except (StatusError, OSError) as e:
                self.log.warning("discovery failed: %s", e)

    async def sync_monitors(self) -> None:
        """Monitor the custom resources discovery lists now; stop monitoring those it no longer lists."""
        served = {(r.group, r.kind): r for r in await preferred_resources(self.api) if r not in RESOURCES}
        for key, res in list(self.discovered.items()):
            if served.get(key) != res:
                del self.discovered[key]
                self.resources.pop(res.group_resource, None)
                await self.ctx.factory.discard(res)
        added = False
        for key, res in served.items():
            if key not in self.discovered and _MONITORED_VERBS <= set(res.verbs):
                self.discovered[key] = res
                self._monitor(res)
                added = True
        if added:  # owners of a kind unknown until now were taken as present: look at their dependents again
            for keys in list(self.dependents.values()):
                for qkey in keys:
                    self.queue.add(qkey)

    # --- graph upkeep (handlers only index and enqueue) ---------------------------------

    def _index(self, qkey: str, obj: Obj) -> None:
        uid = _meta(obj).get("uid")
        if uid:
            self.by_uid[uid] = qkey
        for ref in _refs(obj):
            self.dependents.setdefault(ref.get("uid", ""), set()).add(qkey)

    def _unindex(self, qkey: str, obj: Obj, drop_uid: bool) -> None:
        uid = _meta(obj).get("uid")
        if drop_uid and uid and self.by_uid.get(uid) == qkey:
            del self.by_uid[uid]
        for ref in _refs(obj):
            deps = self.dependents.get(ref.get("uid", ""))
            if deps is not None:
                deps.discard(qkey)
                if not deps:
                    del self.dependents[ref.get("uid", "")]

    @staticmethod
    def _interesting(obj: Obj) -> bool:
        m = _meta(obj)
        fins = m.get("finalizers") or []
        return bool(m.get("ownerReferences")) or (
            bool(m.get("deletionTimestamp")) and (ORPHAN in fins or FOREGROUND in fins)
        )

    def _on_add(self, tag: str, obj: Obj) -> None:
        qkey = f"{tag}|{meta_key(obj)}"
        self._index(qkey, obj)
        if self._interesting(obj):
            self.queue.add(qkey)
        self._poke_waiting_owners(obj)

    def _on_update(self, tag: str, old: Obj, new: Obj) -> None:
        qkey = f"{tag}|{meta_key(new)}"
        self._unindex(qkey, old, drop_uid=_meta(old).get("uid") != _meta(new).get("uid"))
        self._index(qkey, new)
        om, nm = _meta(old), _meta(new)
        changed = (
            om.get("ownerReferences") != nm.get("ownerReferences")
            or om.get("deletionTimestamp") != nm.get("deletionTimestamp")
            or om.get("finalizers") != nm.get("finalizers")
            or om.get("uid") != nm.get("uid")
        )
        if changed and self._interesting(new):
            self.queue.add(qkey)
        if changed:
            self._poke_waiting_owners(old)
            self._poke_waiting_owners(new)

    def _on_delete(self, tag: str, obj: Obj) -> None:
        qkey = f"{tag}|{meta_key(obj)}"
        self._unindex(qkey, obj, drop_uid=True)
        for dep in self.dependents.get(_meta(obj).get("uid", ""), set()).copy():
            self.queue.add(dep)
        self._poke_waiting_owners(obj)

    def _poke_waiting_owners(self, obj: Obj) -> None:
        """Owners deleting their dependents in the foreground re-check when a dependent changes or goes."""
        for ref in _refs(obj):
            qkey = self.by_uid.get(ref.get("uid", ""))
            if qkey is None:
                continue
            owner = self._cached(qkey)
            if owner is not None and classify_owner(owner, ref.get("uid", "")) == WAITING:
                self.queue.add(qkey)

    # --- lookups ------------------------------------------------------------------------

    def _split(self, qkey: str) -> tuple[ResourceInfo, str]:
        tag, _, key = qkey.partition("|")
        return self.resources[tag], key

    def _cached(self, qkey: str) -> Obj | None:
        if qkey.partition("|")[0] not in self.resources:  # a custom resource no longer served
            return None
        res, key = self._split(qkey)
        return self.ctx.factory.informer(res).store.get(key)

    async def _owner_state(self, dependent: Obj, ref: dict[str, Any]) -> str:
        """solid / dangling / waiting / invalid for one ownerReference; absence is confirmed with a live GET."""
        api_version, kind = str(ref.get("apiVersion", "")), str(ref.get("kind", ""))
        ores = by_kind(api_version, kind) or self.discovered.get((api_version.rpartition("/")[0], kind))
        if ores is None or ores.plural in IGNORED:
            return SOLID  # a kind we do not serve: never delete on its account
        ns = _meta(dependent).get("namespace")
        if ores.namespaced and not ns:
            return INVALID  # a cluster-scoped object cannot be owned by a namespaced one
        owner_ns = ns if ores.namespaced else None
        uid = str(ref.get("uid", ""))
        owner = self.ctx.factory.informer(ores).store.get_by_name(str(ref.get("name", "")), owner_ns)
        if classify_owner(owner, uid) == DANGLING:
            try:
                owner = await self.api.get(ores, str(ref.get("name", "")), owner_ns)
            except StatusError as e:
                if e.code != 404:
                    raise
                owner = None
        return classify_owner(owner, uid)

    def _dependents_of(self, uid: str) -> list[tuple[str, Obj]]:
        out = []
        for qkey in sorted(self.dependents.get(uid, set())):
            obj = self._cached(qkey)
            if obj is not None and any(r.get("uid") == uid for r in _refs(obj)):
                out.append((qkey, obj))
        return out

    # --- the sync -------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        """Reconcile one object of the graph."""
        if key.partition("|")[0] not in self.resources:
            return
        res, _okey = self._split(key)
        obj = self._cached(key)
        if obj is None:
            return
        m = _meta(obj)
        if m.get("deletionTimestamp"):
            fins = m.get("finalizers") or []
            if ORPHAN in fins:
                await self._orphan_dependents(res, obj)
            elif FOREGROUND in fins:
                await self._process_deleting_dependents(res, obj)
            return
        if _refs(obj):
            await self._attempt_to_delete(res, obj)

    async def _attempt_to_delete(self, res: ResourceInfo, obj: Obj) -> None:
        m = _meta(obj)
        states = [(ref, await self._owner_state(obj, ref)) for ref in _refs(obj)]
        invalid = [r for r, s in states if s == INVALID]
        if invalid:  # upstream gives up on such an object (never collected) and reports it
            for r in invalid:
                desc = (
                    f"[{r.get('apiVersion')}/{r.get('kind')}, namespace: , name: {r.get('name')}, uid: {r.get('uid')}]"
                )
                self.events.record(
                    obj, "Warning", "OwnerRefInvalidNamespace", f'ownerRef {desc} does not exist in namespace ""'
                )
            return
        solid = [r for r, s in states if s == SOLID]
        gone = {str(r.get("uid")) for r, s in states if s != SOLID}
        if solid:
            if gone:
                self.log.info("removing dangling ownerReferences %s from %s %s", sorted(gone), res.kind, meta_key(obj))
                await self._patch_meta(res, obj, {"ownerReferences": solid})
            return
        waiting = any(s == WAITING for _, s in states)
        fins = m.get("finalizers") or []
        if waiting and self.dependents.get(str(m.get("uid", ""))):
            policy = "Foreground"
        elif ORPHAN in fins:
            policy = "Orphan"
        elif FOREGROUND in fins:
            policy = "Foreground"
        else:
            policy = "Background"
        self.log.info("deleting %s %s (owners gone), propagation %s", res.kind, meta_key(obj), policy)
        await self._delete_object(res, obj, policy)

    async def _delete_object(self, res: ResourceInfo, obj: Obj, policy: str) -> None:
        """Delete guarded by uid and the resourceVersion read; on a conflict, delete anyway only if the
        ownerReferences we judged are still the live ones (upstream's deleteObject)."""
        m = _meta(obj)
        pre = Preconditions(uid=m.get("uid"), resource_version=m.get("resourceVersion"))
        try:
            await self.api.delete(
                res, m["name"], m.get("namespace"), options=DeleteOptions(propagation_policy=policy, preconditions=pre)
            )
        except StatusError as e:
            if e.code == 404:
                return
            if e.code != 409:
                raise
            try:
                live = await self.api.get(res, m["name"], m.get("namespace"))
            except StatusError as e2:
                if e2.code == 404:
                    return
                raise
            if _meta(live).get("uid") != m.get("uid") or _refs(live) != _refs(obj):
                raise  # the object changed under us: look again
            pre = Preconditions(uid=m.get("uid"))
            try:
                await self.api.delete(
                    res,
                    m["name"],
                    m.get("namespace"),
                    options=DeleteOptions(propagation_policy=policy, preconditions=pre),
                )
            except StatusError as e3:
                if e3.code != 404:
                    raise

    async def _orphan_dependents(self, res: ResourceInfo, owner: Obj) -> None:
        uid = _meta(owner).get("uid", "")
        for qkey, dep in self._dependents_of(uid):
            dres, _ = self._split(qkey)
            keep = [r for r in _refs(dep) if r.get("uid") != uid]
            await self._patch_meta(dres, dep, {"ownerReferences": keep or None})
        await self._remove_finalizer(res, owner, ORPHAN)

    async def _process_deleting_dependents(self, res: ResourceInfo, owner: Obj) -> None:
        uid = _meta(owner).get("uid", "")
        deps = self._dependents_of(uid)
        blocking = [
            (qkey, dep)
            for qkey, dep in deps
            if any(r.get("uid") == uid and r.get("blockOwnerDeletion") for r in _refs(dep))
        ]
        if not blocking:
            await self._remove_finalizer(res, owner, FOREGROUND)
            return
        for qkey, dep in deps:
            if not _meta(dep).get("deletionTimestamp"):
                self.queue.add(qkey)

    # --- writes -----------------------------------------------------------------------------

    async def _patch_meta(self, res: ResourceInfo, obj: Obj, changes: dict[str, Any]) -> None:
        """Merge-patch metadata, guarded by the resourceVersion read (409 → retried by the queue)."""
        m = _meta(obj)
        body = {"metadata": {**changes, "resourceVersion": m.get("resourceVersion")}}
        try:
            await self.api.patch(res, m["name"], body, m.get("namespace"))
        except StatusError as e:
            if e.code != 404:
                raise

    async def _remove_finalizer(self, res: ResourceInfo, obj: Obj, finalizer: str) -> None:
        rest = [f for f in _meta(obj).get("finalizers") or [] if f != finalizer]
        await self._patch_meta(res, obj, {"finalizers": rest or None})
