"""The CRD controller every apiserver runs: CRDs in the watch cache become kinds in the kind registry.

Level-triggered over the cache's CRDs (upstream's naming, establishing and finalizing controllers plus
the CRD handler's serving, in one loop): whenever a CRD changes, the whole set is reconciled —
names checked against older CRDs and built-in resources of the group (NamesAccepted), the kinds of
accepted CRDs added or replaced and those of vanished CRDs removed, then the conditions written
(Established once its kind is served here). A deleted CRD keeps its `customresourcecleanup` finalizer
until every one of its custom resources is gone; creating new ones is refused meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Mapping
from typing import Any

from apimachinery import errors
from apimachinery.meta import now
from apimachinery.resources import ResourceInfo, by_plural
from apiserver import managedfields, openapi
from apiserver.crd.conversion import WebhookConverter
from apiserver.crd.openapi import CustomResourceOpenAPI
from apiserver.crd.resource import CustomResourceStrategy, definition_from_crd, storage_schema
from apiserver.crd.strategy import CLEANUP_FINALIZER
from apiserver.kindregistry import KindRegistry
from apiserver.options import ListOptions, WriteOptions
from apiserver.registry import Registry

__all__ = ["CRDController"]

log = logging.getLogger("apiserver.crd")

Obj = dict[str, Any]
CRDS = by_plural("apiextensions.k8s.io", "customresourcedefinitions")
_NAME_FIELDS = (("plural", "PluralConflict"), ("singular", "SingularConflict"), ("kind", "KindConflict"))
_CLEANUP_RETRY = 1.0


def _everything(obj: Obj) -> bool:
    return True


def _names(crd: Mapping[str, Any]) -> Mapping[str, Any]:
    return (crd.get("spec") or {}).get("names") or {}


def _precedence(crd: Obj) -> tuple[bool, str, str]:
    """Who keeps a contested name: a CRD that has it accepted already, then the oldest (then by name)."""
    m = crd["metadata"]
    conditions = (crd.get("status") or {}).get("conditions") or []
    accepted = any(c.get("type") == "NamesAccepted" and c.get("status") == "True" for c in conditions)
    return (not accepted, m.get("creationTimestamp", ""), m["name"])


def _condition(type_: str, status: str, reason: str, message: str) -> Obj:
    return {"type": type_, "status": status, "reason": reason, "message": message}


class CRDController:
    """Serves the kinds of the CRDs in etcd and keeps their status (one per apiserver)."""

    def __init__(self, reg: Registry, kinds: KindRegistry) -> None:
        self.reg = reg
        self.kinds = kinds
        self.compile_schema = kinds.options.compile_schema  # the one seam to structural schemas
        self.converter = WebhookConverter(reg)
        self.synced = asyncio.Event()  # the CRDs stored at start are served (readiness)
        self._served: dict[tuple[str, str], tuple[Any, ...]] = {}  # (group, plural) → what it was built from
        self.openapi = CustomResourceOpenAPI()  # the served CRDs' OpenAPI v3 documents
        self._cleanups: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # storage-version migrations under way

    async def run(self) -> None:
        """Follow CRDs until cancelled."""
        cache = self.reg.cache
        try:
            while True:
                await cache.ready.wait()
                assert CRDS is not None
                feed = cache.cache(CRDS.storage_name)
                watcher = feed.watch(0, _everything, initial=True)
                try:
                    await self.sync()
                    while True:
                        item = await watcher.queue.get()
                        while item is not None and not watcher.queue.empty():
                            item = watcher.queue.get_nowait()
                        if item is None:  # relisted or overflowed: start over
                            break
                        try:
                            await self.sync()
                        except errors.StatusError as e:  # etcd trouble: the next change syncs again
                            log.warning("syncing CRDs: %s", e.message)
                finally:
                    feed.unwatch(watcher)
        finally:
            for task in [*self._cleanups.values(), *self._tasks]:
                task.cancel()
            await self.converter.aclose()

    async def sync(self) -> None:
        """Reconcile the served kinds and the CRDs' status with the CRDs in the cache."""
        assert CRDS is not None
        crds = [s.obj for s in self.reg.cache.cache(CRDS.storage_name).snapshot()]
        crds.sort(key=_precedence)
        accepted = self._accept_names(crds)
        self._serve({name: crd for name, crd in ((c["metadata"]["name"], c) for c in crds) if accepted[name][0]})
        self.synced.set()
        for crd in crds:
            name = crd["metadata"]["name"]
            try:
                await self._write_status(crd, *accepted[name])
            except errors.StatusError as e:
                if e.code not in (404, 409):
                    log.warning("CRD %s: status not written: %s", name, e.message)
            if crd["metadata"].get("deletionTimestamp") and name not in self._cleanups:
                self._cleanups[name] = asyncio.create_task(self._cleanup(crd), name=f"crd-cleanup-{name}")

    # --- names ---------------------------------------------------------------------------------
    def _accept_names(self, crds: list[Obj]) -> dict[str, tuple[bool, Obj]]:
        """Each CRD's NamesAccepted condition: older CRDs and built-in resources of its group win."""
        taken: dict[str, dict[str, set[str]]] = {}
        for d in self.kinds:
            if not d.resource.custom:
                r = d.resource
                names = taken.setdefault(r.group, {"resource": set(), "kind": set()})
                names["resource"] |= {r.plural, r.singular, *r.short_names}
                names["kind"] |= {r.kind, r.list_kind}
        out: dict[str, tuple[bool, Obj]] = {}
        for crd in crds:
            group = str((crd.get("spec") or {}).get("group", ""))
            names = _names(crd)
            used = taken.setdefault(group, {"resource": set(), "kind": set()})
            conflict = self._conflict(names, used)
            if conflict is None:
                used["resource"] |= {names.get("plural"), names.get("singular"), *(names.get("shortNames") or [])}
                used["kind"] |= {names.get("kind"), names.get("listKind")}
                out[crd["metadata"]["name"]] = (
                    True,
                    _condition("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
                )
            else:
                reason, value = conflict
                message = f"{value!r} is already in use".replace("'", '"')
                out[crd["metadata"]["name"]] = (False, _condition("NamesAccepted", "False", reason, message))
        return out

    @staticmethod
    def _conflict(names: Mapping[str, Any], used: dict[str, set[str]]) -> tuple[str, str] | None:
        for field, reason in _NAME_FIELDS:
            value = names.get(field)
            pool = used["kind"] if field == "kind" else used["resource"]
            if value and value in pool:
                return reason, str(value)
        for short in names.get("shortNames") or []:
            if short in used["resource"]:
                return "ShortNamesConflict", str(short)
        if names.get("listKind") in used["kind"]:
            return "ListKindConflict", str(names.get("listKind"))
        return None

    # --- serving -------------------------------------------------------------------------------
    def _serve(self, accepted: dict[str, Obj]) -> None:
        """Add or replace the kinds of accepted CRDs; remove those of CRDs gone or no longer accepted."""
        wanted: dict[tuple[str, str], Obj] = {}
        for crd in accepted.values():
            spec = crd.get("spec") or {}
            wanted[(str(spec.get("group")), str(_names(crd).get("plural")))] = crd
        for key in [k for k in self._served if k not in wanted]:
            gone = self.kinds.remove(*key)
            if gone is not None:
                managedfields.use_custom_schema(gone.resource, None)
                openapi.use_custom_fields(gone.resource, None)
            self.openapi.remove(f"{key[1]}.{key[0]}")
            del self._served[key]
            log.info("stopped serving %s.%s", key[1], key[0])
        for key, crd in wanted.items():
            m = crd["metadata"]
            built_from = (m.get("uid"), m.get("generation"), bool(m.get("deletionTimestamp")))
            if self._served.get(key) == built_from:
                continue
            try:
                definition = definition_from_crd(crd, self.compile_schema, self.converter)
            except Exception:  # a CRD stored before its validation grew stricter: not served, the rest are
                log.exception("CRD %s cannot be served", m.get("name"))
                continue
            previous = self.kinds.get(*key)
            if previous is not None:
                managedfields.use_custom_schema(previous.resource, None)
            self.kinds.add(definition)
            managedfields.use_custom_schema(definition.resource, storage_schema(crd))
            if isinstance(definition.strategy, CustomResourceStrategy):
                openapi.use_custom_fields(definition.resource, definition.strategy.unknown_fields)
            self.openapi.put(crd, definition.resource)
            self._served[key] = built_from
            webhook = ((crd.get("spec") or {}).get("conversion") or {}).get("strategy") == "Webhook"
            if not webhook and (previous is None or previous.resource.version != definition.resource.version):
                self._start(f"crd-migrate-{m.get('name')}", self._migrate(definition.resource))
            log.info("serving %s.%s", key[1], key[0])

    # --- storage version ---------------------------------------------------------------------
    def _start(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _migrate(self, res: ResourceInfo) -> None:
        """Rewrite the objects stored in an earlier version in the new storage version (conversion `None`:
        the apiVersion), as the storage version migrator would; a conflict means someone rewrote it already."""
        if self.kinds.get(res.group, res.plural) is None:
            return
        fields = self.kinds.of(res).fields
        try:
            listing = await self.reg.list(res, None, ListOptions.parse({}, fields))
        except errors.StatusError as e:
            log.warning("migrating %s: %s", res.group_resource, e.message)
            return
        migrated = 0
        for obj in listing["items"]:
            if obj.get("apiVersion") == res.api_version:
                continue
            m = obj["metadata"]
            with contextlib.suppress(errors.StatusError):
                await self.reg.update(res, m.get("namespace"), m["name"], lambda cur: cur, WriteOptions())
                migrated += 1
        log.info("migrated %d %s to %s", migrated, res.group_resource, res.version)

    # --- status --------------------------------------------------------------------------------
    async def _write_status(self, crd: Obj, accepted: bool, names_condition: Obj) -> None:
        status = crd.get("status") or {}
        wanted = [names_condition]
        if accepted:
            wanted.append(
                _condition("Established", "True", "InitialNamesAccepted", "the initial names have been accepted")
            )
        else:
            wanted.append(_condition("Established", "False", "NotAccepted", "not all names are accepted"))
        conditions = _merge(status.get("conditions") or [], wanted)
        accepted_names = dict(_names(crd)) if accepted else status.get("acceptedNames") or {"plural": "", "kind": ""}
        if conditions == status.get("conditions") and accepted_names == status.get("acceptedNames"):
            return

        def mutate(current: Obj) -> Obj:
            st = current.setdefault("status", {})
            st["conditions"] = _merge(st.get("conditions") or [], wanted)
            st["acceptedNames"] = accepted_names
            return current

        assert CRDS is not None
        await self.reg.update(CRDS, None, crd["metadata"]["name"], mutate, WriteOptions(), "status")

    # --- deletion ------------------------------------------------------------------------------
    async def _cleanup(self, crd: Obj) -> None:
        """Delete every custom resource of a deleted CRD, then drop its cleanup finalizer."""
        name = crd["metadata"]["name"]
        try:
            while True:
                try:
                    if await self._cleanup_once(crd):
                        return
                except errors.StatusError as e:  # etcd trouble, a conflict: try again shortly
                    log.warning("cleaning up CRD %s: %s", name, e.message)
                await asyncio.sleep(_CLEANUP_RETRY)  # objects with finalizers of their own are still there
        finally:
            self._cleanups.pop(name, None)

    async def _cleanup_once(self, crd: Obj) -> bool:
        """One round: delete what is left; True once nothing is and the finalizer is gone."""
        assert CRDS is not None
        name = crd["metadata"]["name"]
        if CLEANUP_FINALIZER not in (crd["metadata"].get("finalizers") or []):
            return True
        spec = crd.get("spec") or {}
        d = self.kinds.get(str(spec.get("group")), str(_names(crd).get("plural")))
        left = 0
        if d is not None and d.resource.custom:
            listing = await self.reg.list(d.resource, None, ListOptions.parse({}, d.fields))
            for obj in listing["items"]:
                m = obj["metadata"]
                left += 1
                with contextlib.suppress(errors.StatusError):
                    await self.reg.delete(d.resource, m.get("namespace"), m["name"], {}, False)
        if left:
            return False

        def drop_finalizer(current: Obj) -> Obj:
            m = current["metadata"]
            m["finalizers"] = [f for f in m.get("finalizers") or [] if f != CLEANUP_FINALIZER]
            return current

        try:
            await self.reg.update(CRDS, None, name, drop_finalizer, WriteOptions())
        except errors.StatusError as e:
            if e.code != 404:
                raise
        return True


def _merge(conditions: list[Obj], wanted: list[Obj]) -> list[Obj]:
    """`conditions` with `wanted` set, each keeping its lastTransitionTime while its status holds."""
    out = [dict(c) for c in conditions]
    for w in wanted:
        current = next((c for c in out if c.get("type") == w["type"]), None)
        if current is None:
            out.append({**w, "lastTransitionTime": now()})
            continue
        if current.get("status") != w["status"]:
            current["lastTransitionTime"] = now()
        current.update({k: w[k] for k in ("status", "reason", "message")})
    return out
