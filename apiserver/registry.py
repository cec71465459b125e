"""The generic registry: one code path for create, get, list, update, patch and delete.

Every request runs the same pipeline — system metadata, strategy preparation,
defaults, validation, storage, error mapping — and the per-kind differences come
from the `Strategy` of the resource. Writes are optimistic: they carry the revision
they read and retry or answer 409 Conflict when etcd moved on.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from apimachinery import errors
from apimachinery.meta import format_time, generate_name, meta, new_uid, now
from apimachinery.resources import ResourceInfo, by_plural
from apiserver.admission import AdmissionAttributes, MutatingPlugin, ValidatingPlugin
from apiserver.admission.chain import AdmissionChain
from apiserver.context import UserInfo
from apiserver.continuetoken import ContinueTokens, ListScope
from apiserver.options import ListOptions, WriteOptions, parse_resource_version
from apiserver.storage import (
    Compacted,
    Deletion,
    EtcdStorage,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    RevisionConflict,
    StorageUnavailable,
    StoredObject,
    TryUpdate,
)
from apiserver.strategy import Finish, Strategy, raise_if
from apiserver.watch_cache import WatchCache

if TYPE_CHECKING:
    from apiserver.kindregistry import KindRegistry

__all__ = ["Registry", "WriteResult"]

log = logging.getLogger("apiserver.registry")

NAMESPACE_RES = by_plural("", "namespaces")
# Tries of one read-modify-write before 409: a try fails only when another process wrote meanwhile
# (this process's writers of one key take turns) or the first, cached, read was stale.
_MAX_ATTEMPTS = 10
_MAX_RETRIES = 20
_MAX_REVISION = (1 << 63) - 1  # etcd revisions are int64; a larger resourceVersion is one etcd never reached
# Subresources whose server-side code sets exactly what may change (not client input).
_TRUSTED_SUBRESOURCES = ("binding", "finalize")
_GC_FINALIZERS = ("orphan", "foregroundDeletion")
_IMMUTABLE_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")


@dataclass
class WriteResult:
    """The object a write produced and whether it created it (201) or not (200)."""

    stored: StoredObject  # its JSON is the one written (no encode for the answer)
    created: bool = False

    @property
    def obj(self) -> dict[str, Any]:
        """The object written."""
        return self.stored.obj


def _storage_errors(e: Exception) -> errors.StatusError:
    if isinstance(e, StorageUnavailable):
        return errors.service_unavailable(str(e))
    return errors.internal_error(str(e))


class Registry:
    """CRUD and list for every resource over etcd, with the watch cache for reads."""

    def __init__(
        self,
        storage: EtcdStorage,
        cache: WatchCache,
        kinds: KindRegistry,
        tokens: ContinueTokens | None = None,
    ) -> None:
        self.storage = storage
        self.cache = cache
        self.kinds = kinds
        self.admission = AdmissionChain()
        self.tokens = tokens or ContinueTokens()

    # --- keys and helpers ------------------------------------------------------------
    def strategy(self, res: ResourceInfo) -> Strategy:
        """The strategy of a served resource."""
        return self.kinds.strategy(res)

    @staticmethod
    def key(res: ResourceInfo, namespace: str | None, name: str) -> str:
        """`/registry/<plural>/[<ns>/]<name>`; custom resources under `/registry/<group>/<plural>/`."""
        if res.namespaced:
            return f"/registry/{res.storage_name}/{namespace}/{name}"
        return f"/registry/{res.storage_name}/{name}"

    @staticmethod
    def prefix(res: ResourceInfo, namespace: str | None) -> str:
        """Key prefix of a collection (all namespaces when namespace is empty)."""
        if res.namespaced and namespace:
            return f"/registry/{res.storage_name}/{namespace}/"
        return f"/registry/{res.storage_name}/"

    async def snapshot(self, plural: str, *, consistent: bool = False) -> list[StoredObject]:
        """Every object of a resource as the watch cache holds it (for admission checks); `consistent`
        first waits until the cache has seen etcd's current revision (a write just answered is in it)."""
        if consistent:
            await self.cache.wait_for_revision(await self.cache.current_revision())
        return self.cache.cache(plural).snapshot()

    def predicate(
        self, res: ResourceInfo, namespace: str | None, opts: ListOptions
    ) -> Callable[[dict[str, Any]], bool]:
        """The filter of a list or watch: namespace, label and field selectors."""
        labels, fields = opts.label_selector, opts.field_selector
        check_fields = bool(fields.requirements)
        field_values = self.kinds.of(res).fields.values

        def match(obj: dict[str, Any]) -> bool:
            m = obj.get("metadata") or {}
            if namespace and res.namespaced and m.get("namespace") != namespace:
                return False
            if not labels.matches(m.get("labels") or {}):
                return False
            return not check_fields or fields.matches(field_values(obj))

        return match

    def filter(
        self, res: ResourceInfo, namespace: str | None, opts: ListOptions
    ) -> Callable[[dict[str, Any]], bool] | None:
        """`predicate`, or None when it would let every object through (no namespace scope, no selectors)."""
        scoped = bool(namespace) and res.namespaced
        if not scoped and opts.label_selector.empty and opts.field_selector.empty:
            return None
        return self.predicate(res, namespace, opts)

    async def _read(self, key: str, res: ResourceInfo, name: str, cached: bool = False) -> StoredObject:
        """The object at key: from etcd, or (with `cached`) from the watch cache when it holds it.

        A cached read may be stale; writers use it only as the first guess of an optimistic write
        whose revision compare in etcd catches staleness (then they re-read from etcd).
        """
        if cached and self.cache.ready.is_set():
            stored = self.cache.cache(res.storage_name).get(key)
            if stored is not None:
                return stored
        try:
            return await self.storage.get(key)
        except KeyNotFound as e:
            raise errors.not_found(res.plural, name, res.group) from e
        except StorageUnavailable as e:
            raise _storage_errors(e) from e

    # --- get and list ------------------------------------------------------------------
    async def get(
        self, res: ResourceInfo, namespace: str | None, name: str, rv: str = "", *, shared: bool = False
    ) -> dict[str, Any]:
        """Read one object: resourceVersion "0" from the cache as it is, unset (a quorum read) from the
        cache once it has reached etcd's current revision (etcd when the cache lacks the key).

        With `shared` the caller only reads the object (e.g. to serialize it) and gets the cache's own
        copy; otherwise the object is the caller's to change (a copy decoded from the JSON the stored object
        keeps: cheaper than deepcopy).
        """
        stored = await self.get_stored(res, namespace, name, rv)
        return stored.obj if shared else orjson.loads(stored.json())

    async def get_stored(self, res: ResourceInfo, namespace: str | None, name: str, rv: str = "") -> StoredObject:
        """`get`'s object as stored (no one may change it): its JSON is made once and kept."""
        key = self.key(res, namespace, name)
        parse_resource_version(rv)
        if rv == "0" and self.cache.ready.is_set():
            stored = self.cache.cache(res.storage_name).get(key)
            if stored is None:
                raise errors.not_found(res.plural, name, res.group)
            return stored
        if not rv:
            try:
                stored = await self.cache.consistent_get(res.storage_name, key)
            except KeyNotFound as e:
                raise errors.not_found(res.plural, name, res.group) from e
            except StorageUnavailable as e:
                raise _storage_errors(e) from e
            if stored is not None:
                return stored
        return await self._read(key, res, name)

    async def list(self, res: ResourceInfo, namespace: str | None, opts: ListOptions) -> dict[str, Any]:
        """A `<Kind>List` honouring selectors, limit/continue and resourceVersion rules."""
        match = self.predicate(res, namespace, opts)
        prefix = self.prefix(res, namespace)
        scope = ListScope(res.group, prefix, str(opts.label_selector), str(opts.field_selector))
        if opts.continue_token:
            revision, start = self.tokens.decode(opts.continue_token, scope)
            page = self._continue_from_cache(res, scope, match, opts.limit, revision, start)
            if page is None:
                page = await self._list_etcd(scope, match, opts.limit, revision, start)
            items, rev, token, remaining = page
        elif opts.resource_version_match == "Exact":
            items, rev, token, remaining = await self._list_etcd(
                scope, match, opts.limit, min(int(opts.resource_version), _MAX_REVISION), prefix
            )
        else:
            items, rev, token, remaining = await self._list_cache(res, scope, match, opts)
        listing: dict[str, Any] = {"resourceVersion": str(rev)}
        if token:
            listing["continue"] = token
            if remaining:
                listing["remainingItemCount"] = remaining
        return {
            "kind": res.list_kind,
            "apiVersion": res.api_version,
            "metadata": listing,
            "items": items,
        }

    async def _list_cache(
        self,
        res: ResourceInfo,
        scope: ListScope,
        match: Callable[[dict[str, Any]], bool],
        opts: ListOptions,
    ) -> tuple[list[dict[str, Any]], int, str, int]:
        prefix = scope.prefix
        rv = opts.resource_version
        if rv == "0":
            wanted = 0
        elif rv:
            wanted = int(rv)
        else:
            wanted = await self._current_revision()
        if not await self.cache.wait_for_revision(wanted):
            if rv and wanted > await self._current_revision():
                raise errors.too_large_resource_version(wanted, self.cache.revision)
            return await self._list_etcd(scope, match, opts.limit, 0, prefix)
        snapshot, revision = self.cache.cache(res.storage_name).snapshot(), self.cache.revision
        return self._page(snapshot, scope, match, opts.limit, revision)

    def _continue_from_cache(
        self,
        res: ResourceInfo,
        scope: ListScope,
        match: Callable[[dict[str, Any]], bool],
        limit: int,
        revision: int,
        start: str,
    ) -> tuple[list[dict[str, Any]], int, str, int] | None:
        """The next page of a list from the watch cache when none of these objects changed since the token's
        revision, so the cache holds exactly the list at that revision (what upstream's cache serves from its
        snapshots); None when it must be read from etcd at that revision."""
        if not self.cache.ready.is_set():
            return None
        cached = self.cache.cache(res.storage_name)
        if not cached.changed <= revision <= self.cache.revision:
            return None
        return self._page(cached.ordered_from(start), scope, match, limit, revision)

    def _page(
        self,
        ordered: list[StoredObject],
        scope: ListScope,
        match: Callable[[dict[str, Any]], bool],
        limit: int,
        revision: int,
    ) -> tuple[list[dict[str, Any]], int, str, int]:
        """Up to `limit` matching objects of `ordered` (key order) under the scope's prefix, as of `revision`,
        with the token continuing after them and how many more match."""
        prefix = scope.prefix
        items = CachedItems()
        token, remaining = "", 0
        for i, stored in enumerate(ordered):
            if not stored.key.startswith(prefix) or not match(stored.obj):
                continue
            if limit and len(items) == limit:
                token = self.tokens.encode(revision, stored.key, scope)
                remaining = sum(1 for s in ordered[i:] if s.key.startswith(prefix) and match(s.obj))
                break
            items.add(stored)
        return items, revision, token, remaining

    async def _list_etcd(
        self,
        scope: ListScope,
        match: Callable[[dict[str, Any]], bool],
        limit: int,
        revision: int,
        start: str,
    ) -> tuple[list[dict[str, Any]], int, str, int]:
        prefix = scope.prefix
        items: list[dict[str, Any]] = []
        batch = max(limit, 500) if limit else 0
        try:
            while True:
                page, rev, remaining = await self.storage.list(prefix, revision=revision, limit=batch, start_key=start)
                revision = revision or rev
                for i, stored in enumerate(page):
                    if not match(stored.obj):
                        continue
                    if limit and len(items) == limit:
                        left = len(page) - i + remaining
                        return items, revision, self.tokens.encode(revision, stored.key, scope), left
                    items.append(stored.obj)
                if not remaining or not page:
                    return items, revision, "", 0
                start = page[-1].key + "\x00"
        except Compacted as e:
            raise errors.expired(
                "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter, or use the continue "
                "token in this response to retrieve the remainder of the results. Continuing with "
                "the provided token results in an inconsistent list - objects that were created, "
                "modified, or deleted between the time the first chunk was returned and now may "
                "show up in the list."
            ) from e
        except FutureRevision as e:
            raise errors.too_large_resource_version(revision, self.cache.revision) from e
        except StorageUnavailable as e:
            raise _storage_errors(e) from e

    async def _current_revision(self) -> int:
        try:
            return await self.storage.ping()
        except StorageUnavailable as e:
            raise _storage_errors(e) from e

    # --- the write path ---------------------------------------------------------------------
    # Every write is a sequence of named steps (upstream's registry.Store with rest.BeforeCreate /
    # BeforeUpdate): read → mutate → preconditions → prepare/default → mutating admission → allocate →
    # validate → validating admission → write. Updates and deletes run their steps inside the ONE
    # read-modify-write loop, `EtcdStorage.guaranteed_update`, which redoes them on a fresh read
    # after a conflict; only a resourceVersion the caller put in the object can end in 409.

    def use_admission(self, mutating: Sequence[MutatingPlugin], validating: Sequence[ValidatingPlugin]) -> None:
        """Install the admission chain (built after the registry: plug-ins may read through it)."""
        self.admission = AdmissionChain(mutating, validating)

    # --- create ------------------------------------------------------------------------
    async def create(
        self,
        res: ResourceInfo,
        namespace: str | None,
        body: dict[str, Any],
        wo: WriteOptions,
        *,
        user: UserInfo | None = None,
    ) -> StoredObject:
        """Create an object: 201 with it, 409 AlreadyExists, 422 Invalid, 404/403 from NamespaceLifecycle.

        The registry takes ownership of `body` (it is changed in place, not copied). The answer is the object as
        stored: its `obj` is the caller's, its JSON the one written.
        """
        strategy = self.strategy(res)
        named = isinstance(body, dict) and bool((body.get("metadata") or {}).get("name"))
        obj = self._check_type(res, body, copy_body=False)
        self._prepare_create(res, strategy, namespace, obj)
        attrs = _attributes("CREATE", res, "", namespace, obj, None, user, wo)
        await self.admission.admit(attrs, self)
        m = meta(obj)
        if not m.get("name") and m.get("generateName"):
            m["name"] = generate_name(m["generateName"])
        finish = await strategy.begin_create(obj, self, wo.dry_run)
        stored = False
        try:
            self._validate(res, strategy, obj, None, m.get("name", ""))
            await self.admission.validate(attrs, self)
            if wo.dry_run:
                created = StoredObject(self.key(res, namespace, m.get("name", "")), obj, 0)
            else:
                created = await self._store_new(res, namespace, obj, named)
            stored = True
            return created
        finally:
            await _finish(finish, stored, res, m.get("name", ""))

    def _prepare_create(
        self, res: ResourceInfo, strategy: Strategy, namespace: str | None, obj: dict[str, Any]
    ) -> None:
        """System fields, the namespace from the URL, what clients may not set, and defaults."""
        m = meta(obj)
        if not res.namespaced:
            m.pop("namespace", None)
        elif m.get("namespace") and m["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        else:
            m["namespace"] = namespace
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            m.pop(k, None)
        m["uid"] = new_uid()
        m["creationTimestamp"] = now()
        if strategy.tracks_generation:
            m["generation"] = 1
        else:
            m.pop("generation", None)
        strategy.prepare_for_create(obj)
        strategy.default(obj)

    async def _store_new(
        self, res: ResourceInfo, namespace: str | None, obj: dict[str, Any], named: bool
    ) -> StoredObject:
        """Write a new key; a generated name that is taken is generated again (a few times)."""
        m = meta(obj)
        for _ in range(5 if m.get("generateName") and not named else 1):
            try:
                return await self.storage.create(self.key(res, namespace, m["name"]), obj)
            except KeyExists:
                if named:
                    break
                m["name"] = generate_name(m["generateName"])
            except StorageUnavailable as e:
                raise _storage_errors(e) from e
        raise errors.already_exists(res.plural, m["name"], res.group)

    @staticmethod
    def _check_type(res: ResourceInfo, body: Any, copy_body: bool = True) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request(f"the body of the request was not a {res.kind} object")
        obj = copy.deepcopy(body) if copy_body else body
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if res.custom and kind == res.kind and str(api_version).rpartition("/")[0] == res.group:
            api_version = res.api_version  # stored in an earlier storage version, not yet migrated (conversion None)
        if (kind and kind != res.kind) or (api_version and api_version != res.api_version):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({res.api_version})"
                if kind == res.kind
                else f'{kind} in version "{api_version}" cannot be handled as a {res.kind}: '
                f"the object provided is unrecognized (must be of type {res.kind})"
            )
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        return obj

    # --- update and patch ----------------------------------------------------------------
    async def update(
        self,
        res: ResourceInfo,
        namespace: str | None,
        name: str,
        mutate: Callable[[dict[str, Any]], dict[str, Any]],
        wo: WriteOptions,
        subresource: str = "",
        *,
        user: UserInfo | None = None,
    ) -> WriteResult:
        """Apply `mutate` to (a copy of) the stored object and write the result, redoing every step on
        a conflict. A resourceVersion in the result that is not the stored one → 409 Conflict."""
        strategy = self.strategy(res)
        finishes: list[Finish] = []
        deleting = [False]

        async def try_update(current: StoredObject) -> dict[str, Any] | Deletion | None:
            await _finish_all(finishes, False, res, name)
            # a copy from the JSON the stored object keeps (encoded once, then kept): cheaper than deepcopy
            new = self._check_type(res, mutate(orjson.loads(current.json())), copy_body=False)
            self._check_resource_version(res, name, new, current)
            self._prepare_update(res, strategy, new, current.obj, name, subresource)
            attrs = _attributes("UPDATE", res, subresource, namespace, new, current.obj, user, wo, name)
            await self.admission.admit(attrs, self)
            finish = await strategy.begin_update(new, current.obj, self, wo.dry_run)
            if finish is not None:
                finishes.append(finish)
            self._validate(res, strategy, new, current.obj, name, subresource)
            await self.admission.validate(attrs, self)
            deleting[0] = self._finalized(strategy, new)
            if self._unchanged(new, current.obj):
                return None
            return Deletion(new) if deleting[0] else new

        key = self.key(res, namespace, name)
        try:
            stored = await self._guaranteed_update(key, res, name, try_update, wo.dry_run, self._cached(key, res))
        except BaseException:
            await _finish_all(finishes, False, res, name)
            raise
        await _finish_all(finishes, True, res, name)
        if deleting[0] and not wo.dry_run:
            await self._after_delete(strategy, stored.obj)
        return WriteResult(stored)

    async def update_stored(
        self,
        res: ResourceInfo,
        namespace: str | None,
        name: str,
        mutate: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Apply `mutate` to (a copy of) the stored object and write it as it comes back: no strategy, admission
        or validation (upstream's `Storage.GuaranteedUpdate`, as pods/binding uses it). The object keeps its
        resourceVersion rules, watch events and 409s; `preconditions` (uid, resourceVersion) are checked on
        every try. Whatever `mutate` raises ends the write."""

        async def try_update(current: StoredObject) -> dict[str, Any]:
            obj = orjson.loads(current.json())  # a copy, from the JSON the stored object keeps: cheaper than deepcopy
            self._check_preconditions(res, name, obj, preconditions or {})
            return mutate(obj)

        key = self.key(res, namespace, name)
        stored = await self._guaranteed_update(key, res, name, try_update, dry_run, self._cached(key, res))
        return stored.obj

    def _cached(self, key: str, res: ResourceInfo) -> StoredObject | None:
        """The watch cache's copy of an object: a first guess that saves a read (checked by the write)."""
        if not self.cache.ready.is_set():
            return None
        return self.cache.cache(res.storage_name).get(key)

    async def _guaranteed_update(
        self,
        key: str,
        res: ResourceInfo,
        name: str,
        try_update: TryUpdate,
        dry_run: bool,
        cached: StoredObject | None = None,
    ) -> StoredObject:
        """`EtcdStorage.guaranteed_update` with storage errors as API errors."""
        try:
            return await self.storage.guaranteed_update(
                key, try_update, cached=cached, dry_run=dry_run, max_attempts=_MAX_ATTEMPTS
            )
        except KeyNotFound as e:
            raise errors.not_found(res.plural, name, res.group) from e
        except RevisionConflict as e:
            raise errors.conflict(res.plural, name, res.group) from e
        except StorageUnavailable as e:
            raise _storage_errors(e) from e

    @staticmethod
    def _check_resource_version(res: ResourceInfo, name: str, new: dict[str, Any], current: StoredObject) -> None:
        """The optimistic-lock precondition: a resourceVersion in the new object must be the stored one."""
        rv = meta(new).get("resourceVersion")
        if rv and rv != str(current.revision):
            raise errors.conflict(res.plural, name, res.group)

    async def _after_delete(self, strategy: Strategy, obj: dict[str, Any]) -> None:
        """Run the kind's after-delete hook; a failure there is logged, the delete has happened."""
        try:
            await strategy.after_delete(obj, self)
        except Exception:
            m = obj.get("metadata") or {}
            log.exception("after deleting %s %s/%s", strategy.resource.plural, m.get("namespace"), m.get("name"))

    @staticmethod
    def _prepare_update(
        res: ResourceInfo,
        strategy: Strategy,
        new: dict[str, Any],
        old: dict[str, Any],
        name: str,
        subresource: str,
    ) -> None:
        m, om = meta(new), old.get("metadata", {})
        if m.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({m.get('name')}) does not match the name on the URL ({name})"
            )
        if res.namespaced and m.get("namespace", om.get("namespace")) != om.get("namespace"):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        m["name"], m["namespace"] = name, om.get("namespace")
        if not res.namespaced:
            m.pop("namespace")
        for k in _IMMUTABLE_META:
            if k in om:
                m[k] = om[k]
            else:
                m.pop(k, None)
        if om.get("deletionTimestamp"):
            added = set(m.get("finalizers") or []) - set(om.get("finalizers") or [])
            if added:
                raise errors.invalid(
                    res.kind,
                    name,
                    [
                        errors.Cause(
                            "metadata.finalizers",
                            "Forbidden: no new finalizers can be added if the "
                            "object is being deleted, found new finalizers " + str(sorted(added)),
                            "FieldValueForbidden",
                        )
                    ],
                    res.group,
                )
        if subresource == "status":
            strategy.prepare_for_status_update(new, old)
        elif subresource not in _TRUSTED_SUBRESOURCES:
            strategy.prepare_for_update(new, old)
        strategy.default(new)

    @staticmethod
    def _validate(
        res: ResourceInfo,
        strategy: Strategy,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        name: str,
        subresource: str = "",
    ) -> None:
        """Validate a prepared object and give it every required field: the one place all writes pass.

        Required fields are filled after validation (so a missing field is reported as missing, not as an
        invalid zero) and before the checks against the stored object, which has them already.
        """
        if subresource == "status" and old is not None and strategy.model_unchanged(obj, old):
            causes = strategy.validate(obj, model_known=True)  # the model's fields are the stored object's
        else:
            causes = strategy.validate(obj)
        strategy.fill_required(obj)
        if old is not None and subresource not in _TRUSTED_SUBRESOURCES:
            causes += strategy.validate_update(obj, old)
        raise_if(res.kind, name, res.group, causes)
        if old is not None and strategy.tracks_generation:
            generation = old.get("metadata", {}).get("generation", 1)
            if strategy.spec_of(obj) != strategy.spec_of(old):
                generation += 1
            meta(obj)["generation"] = generation

    @staticmethod
    def _unchanged(new: dict[str, Any], old: dict[str, Any]) -> bool:
        a = {
            **new,
            "metadata": {k: v for k, v in new.get("metadata", {}).items() if k != "resourceVersion"},
        }
        b = {
            **old,
            "metadata": {k: v for k, v in old.get("metadata", {}).items() if k != "resourceVersion"},
        }
        return a == b

    @staticmethod
    def _finalized(strategy: Strategy, obj: dict[str, Any]) -> bool:
        m = obj.get("metadata", {})
        return bool(m.get("deletionTimestamp")) and not m.get("finalizers") and not strategy.deletion_pending(obj)

    # --- delete --------------------------------------------------------------------------
    async def delete(
        self,
        res: ResourceInfo,
        namespace: str | None,
        name: str,
        options: dict[str, Any],
        dry_run: bool,
        *,
        user: UserInfo | None = None,
    ) -> dict[str, Any]:
        """Delete, or mark for deletion when finalizers or a grace period keep the object.

        Steps, in the one read-modify-write loop: read (the watch cache's copy first, unless a dry run: the
        write's compare on its revision checks it, and a stale copy is read again from etcd) → preconditions →
        admission → grace period → mark (an update) or delete.
        """
        strategy = self.strategy(res)
        deleting = [False]

        async def try_delete(current: StoredObject) -> dict[str, Any] | Deletion | None:
            obj = orjson.loads(current.json())
            self._check_preconditions(res, name, obj, options.get("preconditions") or {})
            attrs = _attributes("DELETE", res, "", namespace, None, current.obj, user, None, name, options, dry_run)
            await self.admission.admit(attrs, self)
            await self.admission.validate(attrs, self)
            grace = await strategy.grace_period(obj, options, self)
            deleting[0] = not self._mark_deleting(strategy, obj, options, grace)
            if deleting[0]:
                return Deletion(obj)
            return None if self._unchanged(obj, current.obj) else obj

        key = self.key(res, namespace, name)
        cached = None if dry_run else self._cached(key, res)  # a dry run's answer is checked by no write
        stored = await self._guaranteed_update(key, res, name, try_delete, dry_run, cached)
        if deleting[0] and not dry_run:
            await self._after_delete(strategy, stored.obj)
        return stored.obj

    @staticmethod
    def _check_preconditions(res: ResourceInfo, name: str, obj: dict[str, Any], pre: dict[str, Any]) -> None:
        m = obj.get("metadata", {})
        for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            want = pre.get(field)
            if want and want != m.get(field):
                raise errors.conflict(
                    res.plural,
                    name,
                    res.group,
                    f"Precondition failed: {label} in precondition: {want}, {label} in object meta: {m.get(field)}",
                )

    @staticmethod
    def _mark_deleting(strategy: Strategy, obj: dict[str, Any], options: dict[str, Any], grace: int) -> bool:
        """Set deletionTimestamp and finalizers when the object must stay a while; True if so."""
        m = meta(obj)
        finalizers = list(m.get("finalizers") or [])
        policy = options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents") is not None:
            policy = "Orphan" if options["orphanDependents"] else "Background"
        if policy is None:  # keep what an earlier delete chose, else the kind's default
            if "orphan" in finalizers:
                policy = "Orphan"
            elif "foregroundDeletion" in finalizers:
                policy = "Foreground"
            else:
                policy = strategy.default_propagation
        wanted = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}.get(policy)
        if strategy.resource.kind != "Event":
            finalizers = [f for f in finalizers if f not in _GC_FINALIZERS or f == wanted]
            if wanted and wanted not in finalizers:
                finalizers.append(wanted)
        if not finalizers and grace == 0 and not strategy.deletion_pending(obj):
            return False
        if finalizers:
            m["finalizers"] = finalizers
        else:
            m.pop("finalizers", None)
        when = datetime.now(UTC) + timedelta(seconds=grace)
        if not m.get("deletionTimestamp"):
            m["deletionTimestamp"] = format_time(when)
            m["deletionGracePeriodSeconds"] = grace
        elif grace < m.get("deletionGracePeriodSeconds", grace):
            m["deletionTimestamp"] = format_time(when)
            m["deletionGracePeriodSeconds"] = grace
        strategy.mark_deleting(obj)
        if m.get("deletionGracePeriodSeconds") == 0 and not finalizers and not strategy.deletion_pending(obj):
            return False
        return True


def _attributes(
    operation: str,
    res: ResourceInfo,
    subresource: str,
    namespace: str | None,
    obj: dict[str, Any] | None,
    old: dict[str, Any] | None,
    user: UserInfo | None,
    wo: WriteOptions | None,
    name: str = "",
    options: dict[str, Any] | None = None,
    dry_run: bool = False,
) -> AdmissionAttributes:
    """What admission sees of one write."""
    if wo is not None:
        kind = "CreateOptions" if operation == "CREATE" else "UpdateOptions"
        options = {"kind": kind, "apiVersion": "meta.k8s.io/v1"}
        if wo.field_manager:
            options["fieldManager"] = wo.field_manager
        if wo.dry_run:
            options["dryRun"] = ["All"]
        dry_run = wo.dry_run
    if not name and obj is not None:
        name = str((obj.get("metadata") or {}).get("name") or "")
    return AdmissionAttributes(
        operation, res, subresource, namespace or "", name, obj, old, user, dry_run=dry_run, options=options
    )


async def _finish(finish: Finish | None, stored: bool, res: ResourceInfo, name: str) -> None:
    """End what begin_create/begin_update started; a failure to release is logged, not returned."""
    if finish is None:
        return
    try:
        await finish(stored)
    except Exception:
        log.exception("finishing the write of %s %s (stored=%s)", res.plural, name, stored)


async def _finish_all(finishes: list[Finish], stored: bool, res: ResourceInfo, name: str) -> None:
    """End (and forget) every begun write of an update's tries."""
    while finishes:
        await _finish(finishes.pop(), stored, res, name)


class CachedItems(list[dict[str, Any]]):
    """A list's items straight from the watch cache, beside the stored objects they are (each keeps its JSON)."""

    def __init__(self) -> None:
        super().__init__()
        self.stored: list[StoredObject] = []

    def add(self, stored: StoredObject) -> None:
        """Append `stored`'s object."""
        self.append(stored.obj)
        self.stored.append(stored)


def encode_list(listing: dict[str, Any]) -> bytes:
    """A `<Kind>List` as JSON, the same bytes as `orjson.dumps(listing)`; items from the watch cache are not
    encoded again (each object's JSON is kept with it until it changes)."""
    items = listing["items"]
    if not isinstance(items, CachedItems) or not items or next(reversed(listing)) != "items":
        return orjson.dumps(listing)
    head = orjson.dumps({k: v for k, v in listing.items() if k != "items"})
    return b"".join((head[:-1], b',"items":[', b",".join(s.json() for s in items.stored), b"]}"))
