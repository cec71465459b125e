"""The only code that talks to etcd: JSON objects under /registry keys, revisions as versions.

Guarantees: create is a transaction that fails when the key exists; updates and
deletes compare `mod_revision` (optimistic concurrency); a list reads one
revision. Every call has a timeout; a lost etcd surfaces as `StorageUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aetcd import rpc, utils

from apimachinery import errors
from apimachinery.errors import StatusError, request_entity_too_large
from apimachinery.hotmetrics import HotHistogram
from apimachinery.meta import OBJECT_META_FIELDS
from apiserver.etcdclient import EtcdClient, EtcdTLS, parse_endpoints
from apiserver.etcdgrpc import GrpcError
from apiserver.etcdwire import range_request, txn_create, txn_delete, txn_update

__all__ = [
    "Compacted",
    "Deletion",
    "EtcdStorage",
    "FutureRevision",
    "KeyExists",
    "KeyNotFound",
    "RevisionConflict",
    "StorageError",
    "StorageUnavailable",
    "StoredObject",
    "TryUpdate",
    "WatchEvent",
]

log = logging.getLogger("apiserver.storage")

ETCD_LATENCY = HotHistogram(
    "etcd_request_duration_seconds",
    "etcd request latency by operation",
    ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class StorageError(Exception):
    """Base of storage errors."""


class KeyExists(StorageError):
    """Create found the key already present."""


class KeyNotFound(StorageError):
    """The key does not exist (at the revision asked for)."""


class RevisionConflict(StorageError):
    """The stored revision differs from the one the caller read; `current` is what is stored now."""

    def __init__(self, key: str, current: StoredObject | None = None) -> None:
        super().__init__(key)
        self.current = current


class FutureRevision(StorageError):
    """The revision asked for is newer than etcd's current one."""


class StorageUnavailable(StorageError):
    """etcd could not be reached in time."""


class Compacted(StorageError):
    """The revision asked for has been compacted away."""

    def __init__(self, compacted_revision: int = 0) -> None:
        super().__init__(f"revision compacted (compact revision {compacted_revision})")
        self.compacted_revision = compacted_revision


# How this apiserver lays out a stored object's JSON: kind, apiVersion and metadata first, the metadata's fields in
# the order of upstream's ObjectMeta (name, generateName, namespace, selfLink, uid, ...), and without
# resourceVersion (the key's mod revision says it). A value laid out so, with no resourceVersion anywhere in it, is
# served with the revision spliced in after the uid, where upstream writes it, and decoded only when someone reads
# the object.
_HEAD = re.compile(
    rb'\{"kind":"[^"\\]*","apiVersion":"[^"\\]*","metadata":\{"name":"[^"\\]*",'
    rb'(?:"generateName":"[^"\\]*",)?(?:"namespace":"[^"\\]*",)?(?:"selfLink":"[^"\\]*",)?"uid":"[^"\\]*"'
)
_RV_KEY = b'"resourceVersion":'
_RV_FIELD = b',"resourceVersion":"%d"'  # what is spliced in at a stored value's `splice_point`
_SPLICED = b"%s" + _RV_FIELD + b"%s"  # the value's head, that field, the value's rest
_TOP_FIRST = ("kind", "apiVersion", "metadata")
# ObjectMeta's fields in the order of upstream's type (resourceVersion, spliced in after uid, is not stored)
_META_ORDER = tuple(k for k in OBJECT_META_FIELDS if k != "resourceVersion")


def splice_point(value: bytes) -> int:
    """Where a stored value laid out by this apiserver takes its resourceVersion (0: it is not laid out so)."""
    head = _HEAD.match(value)
    return head.end() if head is not None and _RV_KEY not in value else 0


class StoredObject:
    """An object as read from etcd, with its key and mod revision.

    A stored object is never changed in place. One read from etcd keeps etcd's bytes when they are laid out
    as this apiserver writes them (`splice_point`), and decodes them only on the first use of `obj`: what only
    ever reaches clients as JSON is never decoded, and bytes cost the collector nothing."""

    __slots__ = ("_at", "_json", "_obj", "_value", "key", "revision")

    def __init__(self, key: str, obj: dict[str, Any], revision: int, value: bytes = b"", at: int = 0) -> None:
        """`value`, `at`: the object's JSON as stored and its `splice_point`, when the writer has them."""
        self.key = key
        self.revision = revision
        self._obj: dict[str, Any] | None = obj
        self._json: bytes | None = None
        self._value = value
        self._at = at

    @classmethod
    def of_value(cls, key: str, value: bytes, revision: int, at: int) -> StoredObject:
        """The object etcd holds as `value` (laid out, `at` its `splice_point`), decoded on first use."""
        stored = cls.__new__(cls)
        stored.key, stored.revision, stored._value, stored._at = key, revision, value, at
        stored._obj = stored._json = None
        return stored

    @property
    def obj(self) -> dict[str, Any]:
        """The object, with its resourceVersion."""
        obj = self._obj
        if obj is None:
            obj = self._obj = orjson.loads(self.json())
        return obj

    def json(self) -> bytes:
        """`obj` as JSON, made on first use and then kept."""
        data = self._json
        if data is not None:
            return data
        at = self._at
        if not at:
            data = self._json = orjson.dumps(self._obj)
            return data
        value = self._value
        if not value:  # another thread made the JSON meanwhile (it is set before the bytes are dropped)
            return self._json  # type: ignore[return-value]
        # etcd's bytes with the resourceVersion spliced in: nothing decoded or encoded
        data = self._json = _SPLICED % (value[:at], self.revision, value[at:])
        self._value = b""  # all of it is in the JSON now
        return data

    def at_revision(self, revision: int) -> StoredObject:
        """This object with `revision` as its resourceVersion (a deletion's, for its DELETED event): its JSON
        spliced again when it keeps one, so neither this object nor the new one is decoded."""
        at = self._at
        if at:
            value = self._value
            if value:
                return StoredObject.of_value(self.key, value, revision, at)
            data = self._json  # set before the value is dropped: the value with this revision spliced in at `at`
            spliced = _RV_FIELD % self.revision
            if data is not None and data.startswith(spliced, at):
                return StoredObject.of_value(self.key, data[:at] + data[at + len(spliced) :], revision, at)
        obj = self.obj
        return StoredObject(
            self.key, {**obj, "metadata": {**obj.get("metadata", {}), "resourceVersion": str(revision)}}, revision
        )

    def __repr__(self) -> str:
        return f"StoredObject({self.key!r} at {self.revision})"


@dataclass(frozen=True)
class Deletion:
    """A `guaranteed_update` step's answer meaning: delete the key (at the revision read) instead of
    writing it; `obj` is the object's last state (returned with the deletion's revision)."""

    obj: dict[str, Any]


# One try of a read-modify-write: the object to write, a Deletion, or None for "no change".
TryUpdate = Callable[[StoredObject], Awaitable[dict[str, Any] | Deletion | None]]


class WatchEvent:
    """One etcd change: PUT or DELETE of a key at a revision.

    It carries no previous value: the watch is opened without etcd's `prev_kv`, because its one consumer,
    the watch cache, holds every key's previous object already. Asking etcd for it made etcd read the
    previous revision of every changed key and send it along, ~30 us of etcd's CPU per write and twice the
    bytes, in every apiserver's watch (bench/README.md, "Session 16")."""

    __slots__ = ("created", "key", "revision", "stored", "type")

    def __init__(
        self,
        type: str,  # "PUT" or "DELETE"
        key: str,
        stored: StoredObject | None,  # what a PUT wrote
        revision: int,
        created: bool,
    ) -> None:
        self.type = type
        self.key = key
        self.stored = stored
        self.revision = revision
        self.created = created

    def __repr__(self) -> str:
        return f"WatchEvent({self.type} {self.key} at {self.revision})"


def _with_rv(obj: dict[str, Any], revision: int) -> dict[str, Any]:
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return obj


def _laid_out(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` as it is stored (`splice_point`): kind, apiVersion and metadata first, the metadata's fields in the order
    of upstream's ObjectMeta, and without resourceVersion (the write's revision gives it)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return obj
    m = {k: meta[k] for k in _META_ORDER if k in meta}
    if len(m) + ("resourceVersion" in meta) != len(meta):  # fields of no known place go last, in their order
        for k, v in meta.items():
            if k not in m and k != "resourceVersion":
                m[k] = v
    out = {k: obj[k] for k in _TOP_FIRST if k in obj}
    out["metadata"] = m
    for k, v in obj.items():
        if k not in out:
            out[k] = v
    return out


DEFAULT_MAX_OBJECT_BYTES = 1_572_864  # etcd's default --max-request-bytes (1.5 MiB)


class _Writers:
    """This process's writers of one key: one at a time, and what the last one stored."""

    __slots__ = ("latest", "lock", "waiting")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.waiting = 0
        self.latest: StoredObject | None = None


class Transformer(Protocol):
    """What turns an object's bytes into the value stored in etcd and back (encryption at rest)."""

    def to_storage(self, key: bytes, data: bytes) -> bytes:
        """The value to store."""

    def from_storage(self, key: bytes, value: bytes) -> bytes:
        """The data of a stored value."""


def _too_large() -> StatusError:
    # etcd's own refusal, in upstream's 413 (a client must not retry it as it would a 503)
    return request_entity_too_large("etcdserver: request is too large")


class EtcdStorage:
    """Async etcd access (`etcdgrpc`) with timeouts, error mapping and failover between members.

    `endpoints` is `--etcd-servers`: one or more comma-separated client URLs of one etcd cluster. Calls
    go to one current member; when it cannot be reached the storage moves to the next one (reads are
    retried there at once; a write is not, since it may have been applied: its caller gets 503).
    """

    def __init__(
        self,
        endpoints: str,
        timeout: float = 5.0,
        *,
        tls: EtcdTLS | None = None,
        transformer: Transformer | None = None,
        max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES,
    ) -> None:
        self._endpoints = parse_endpoints(endpoints)
        self._timeout = timeout
        self._writers: dict[str, _Writers] = {}
        self._tls = tls
        self._transformer = transformer
        self._max_object_bytes = max_object_bytes
        self.unreadable: set[str] = set()
        """Keys whose value no decoder could read when a list or the watch last saw it: the watch cache holds
        none of them, so its not having one of these keys does not mean etcd has none."""
        self._current = 0
        self._client = EtcdClient(self._endpoints[0], tls)
        self._retired: set[asyncio.Task[None]] = set()

    @property
    def endpoint(self) -> str:
        """The client URL of the member calls go to now."""
        return str(self._endpoints[self._current])

    async def close(self) -> None:
        """Close the channel to etcd."""
        await self._client.close()

    def _failover(self, failed: EtcdClient) -> None:
        """Move to the next member after `failed` (the current client) could not be reached."""
        if failed is not self._client or len(self._endpoints) < 2:
            return
        self._current = (self._current + 1) % len(self._endpoints)
        self._client = EtcdClient(self._endpoints[self._current], self._tls)
        log.warning("etcd: %s unreachable, using %s", failed.endpoint, self.endpoint)
        # calls still running on it end by their own timeout first; then the channel closes
        task = asyncio.get_running_loop().create_task(_close_quietly(failed, self._timeout + 1))
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    def _decode(self, key: bytes, value: bytes) -> dict[str, Any]:
        if self._transformer is not None:
            try:
                value = self._transformer.from_storage(key, value)
            except ValueError as e:  # as upstream: the value is there but cannot be read
                raise errors.internal_error(str(e)) from e
        return orjson.loads(value)

    def _encode(self, key: bytes, obj: dict[str, Any]) -> bytes:
        try:
            data = orjson.dumps(_laid_out(obj))
        except orjson.JSONEncodeError as e:  # deeper than orjson nests: the decoders bound depth well below
            raise errors.bad_request(f"the object cannot be serialized: {e}") from e
        if self._transformer is not None:
            data = self._transformer.to_storage(key, data)
        if self._max_object_bytes and len(data) + len(key) > self._max_object_bytes:
            raise _too_large()
        return data

    def _stored(self, kv: Any) -> StoredObject:
        value = kv.value
        if self._transformer is None and (at := splice_point(value)):
            return StoredObject.of_value(kv.key.decode(), value, kv.mod_revision, at)
        obj = _with_rv(self._decode(kv.key, value), kv.mod_revision)
        return StoredObject(kv.key.decode(), obj, kv.mod_revision)

    def _failed(self, key: str, resp: Any) -> StorageError:
        """Why a compare-and-write failed (its failure branch read the key): the key is gone, or it moved
        on (with what it holds now)."""
        kvs = resp.responses[0].response_range.kvs if resp.responses else ()
        if not kvs:
            return KeyNotFound(key)
        return RevisionConflict(key, self._stored(kvs[0]))

    def _readable(self, kv: Any) -> StoredObject | None:
        """The object of a listed or watched key, or None (logged, the key kept in `unreadable`) when no
        provider can read it: one value written under a key the configuration lost must not keep every other
        object from being listed or followed."""
        try:
            return self._stored(kv)
        except (StatusError, orjson.JSONDecodeError) as e:
            key = kv.key.decode(errors="replace")
            self.unreadable.add(key)
            log.error("skipping %s: %s", key, e)
            return None

    async def _call(
        self,
        op: str,
        make: Callable[[EtcdClient], Awaitable[Any]],
        *,
        read: bool = False,
        deadline: bool = False,
    ) -> Any:
        """Run `make(client)` on the current member with a timeout, mapping errors to storage errors.

        `deadline` says the call is one gRPC unary call carrying `self._timeout` as its own deadline
        (`_range`, `_unary`): that is its timeout, so the asyncio one (a timer per call) is not added.
        """
        attempts = len(self._endpoints) if read else 1
        observe = _observer(op)
        for attempt in range(attempts):
            client = self._client
            start = time.perf_counter()
            try:
                if deadline:
                    return await make(client)
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for runs the call in a task of its own
                async with asyncio.timeout(self._timeout):
                    return await make(client)
            except TimeoutError as e:
                self._failover(client)
                if attempt + 1 < attempts:
                    continue
                raise StorageUnavailable(f"etcd unavailable ({client.endpoint}): timeout") from e
            except GrpcError as e:
                text = e.details()
                if "compacted" in text:
                    raise Compacted() from e
                if "future revision" in text:
                    raise FutureRevision(text) from e
                if "request is too large" in text:
                    raise _too_large() from e
                code = e.code()
                if code in (rpc.StatusCode.UNAVAILABLE, rpc.StatusCode.DEADLINE_EXCEEDED):
                    self._failover(client)
                    if attempt + 1 < attempts:
                        continue
                if code == rpc.StatusCode.DEADLINE_EXCEEDED:  # the call's own timeout: said as the asyncio one
                    raise StorageUnavailable(f"etcd unavailable ({client.endpoint}): timeout") from e
                raise StorageUnavailable(f"etcd error: {text}") from e
            finally:
                observe(time.perf_counter() - start)
        raise StorageUnavailable("etcd unavailable")  # not reached: the last attempt raises

    async def ping(self) -> int:
        """Return the current revision, raising StorageUnavailable when etcd is down."""
        resp = await self._call("status", self._ping_range, read=True, deadline=True)
        return resp.header.revision

    def _ping_range(self, client: EtcdClient) -> Awaitable[Any]:
        return self._range(client, b"\x00", limit=1, count_only=True)

    async def _range(
        self,
        client: EtcdClient,
        key: bytes,
        range_end: bytes | None = None,
        *,
        revision: int = 0,
        limit: int = 0,
        count_only: bool = False,
    ) -> Any:
        data = range_request(key, range_end, revision=revision, limit=limit, count_only=count_only)
        return await client.channel.unary(_RANGE, data, _range_response, self._timeout)

    async def get(self, key: str, revision: int = 0) -> StoredObject:
        """Read one object (optionally at an older revision)."""
        k = key.encode()
        resp = await self._call("get", lambda c: self._range(c, k, revision=revision), read=True, deadline=True)
        if not resp.kvs:
            raise KeyNotFound(key)
        return self._stored(resp.kvs[0])

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_key: str | None = None
    ) -> tuple[list[StoredObject], int, int]:
        """Read keys under prefix at one revision: (objects, revision, remaining count)."""
        start = (start_key or prefix).encode()
        end = utils.prefix_range_end(prefix.encode())
        resp = await self._call(
            "list", lambda c: self._range(c, start, end, revision=revision, limit=limit), read=True, deadline=True
        )
        items = [item for item in map(self._readable, resp.kvs) if item is not None]
        remaining = resp.count - len(items) if resp.more else 0
        return items, resp.header.revision, remaining

    def _unary(self, op: str, path: str, data: bytes, parse: Callable[[bytes], Any]) -> Awaitable[Any]:
        """One unary call (its request's bytes) of the current member through `_call` (a write: not retried)."""
        return self._call(op, lambda c: c.channel.unary(path, data, parse, self._timeout), deadline=True)

    async def create(self, key: str, obj: dict[str, Any]) -> StoredObject:
        """Write a new key; KeyExists if it is already there."""
        k = key.encode()
        value = self._encode(k, obj)
        resp = await self._unary("create", _TXN, txn_create(k, value), _txn_response)
        if not resp.succeeded:
            raise KeyExists(key)
        return self._written(key, obj, value, resp.header.revision)

    def _written(self, key: str, obj: dict[str, Any], value: bytes, revision: int) -> StoredObject:
        """What a write of `obj` as `value` stored at `revision`: `obj` itself, given its resourceVersion."""
        if self._transformer is not None:
            return StoredObject(key, _with_rv(obj, revision), revision)
        return StoredObject(key, _with_rv(obj, revision), revision, value, splice_point(value))

    async def put(self, key: str, obj: dict[str, Any], *, lease: int = 0) -> int:
        """Write a key unconditionally (attached to `lease` when given); the revision of the write."""
        k = key.encode()
        req = rpc.PutRequest(key=k, value=self._encode(k, obj), lease=lease)
        resp = await self._unary("put", _PUT, req.SerializeToString(), rpc.PutResponse.FromString)
        return resp.header.revision

    async def put_if_version(self, key: str, version: int, value: bytes) -> int | None:
        """Write raw `value` only if the key's version (writes since its creation; 0: absent) is `version`:
        None when written, else the version the key has (upstream's compaction claim)."""
        k = key.encode()
        compare = rpc.Compare(result=rpc.Compare.EQUAL, target=rpc.Compare.VERSION, key=k, version=version)
        req = rpc.TxnRequest(
            compare=[compare],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))],
        )
        resp = await self._unary("put", _TXN, req.SerializeToString(), _txn_response)
        if resp.succeeded:
            return None
        kvs = resp.responses[0].response_range.kvs
        return kvs[0].version if kvs else 0

    async def grant_lease(self, ttl: int) -> int:
        """A new lease of `ttl` seconds: its ID (keys put with it go when it expires)."""
        resp = await self._unary(
            "lease", _LEASE_GRANT, rpc.LeaseGrantRequest(TTL=ttl).SerializeToString(), rpc.LeaseGrantResponse.FromString
        )
        if resp.error:
            raise StorageUnavailable(f"etcd error: {resp.error}")
        return resp.ID

    async def update(self, key: str, obj: dict[str, Any], expected_revision: int) -> StoredObject:
        """Overwrite a key only if its mod revision is still `expected_revision`."""
        k = key.encode()
        value = self._encode(k, obj)
        resp = await self._unary("update", _TXN, txn_update(k, value, expected_revision), _txn_response)
        if not resp.succeeded:
            raise self._failed(key, resp)
        return self._written(key, obj, value, resp.header.revision)

    async def delete(self, key: str, expected_revision: int) -> int:
        """Delete a key only if its mod revision is still `expected_revision`; returns the
        deletion revision."""
        k = key.encode()
        resp = await self._unary("delete", _TXN, txn_delete(k, expected_revision), _txn_response)
        if not resp.succeeded:
            raise self._failed(key, resp)
        return resp.header.revision

    async def guaranteed_update(
        self,
        key: str,
        try_update: TryUpdate,
        *,
        cached: StoredObject | None = None,
        dry_run: bool = False,
        max_attempts: int = 100,
    ) -> StoredObject:
        """The one read-modify-write loop (upstream's GuaranteedUpdate): read, let `try_update` build the
        new object, write it only if the key still has the revision read; on a conflict re-read and try
        again, up to `max_attempts` times (then RevisionConflict). This process's writers of one key
        take turns, so conflicts come only from other processes (or a stale first read).

        `cached` (e.g. from the watch cache) saves the first read; since it may be stale, a `try_update`
        that fails on it, or finds nothing to change, is retried once on a fresh read before its
        answer counts. `try_update` returns the object to write, a `Deletion`, or None for no change;
        whatever it raises ends the loop. A dry run stops before writing.
        """
        async with self._one_writer(key) as writers:
            latest = writers.latest
            if latest is not None and (cached is None or latest.revision > cached.revision):
                cached = latest  # what the writer before us stored: newer than the watch cache
            result, exists = await self._update_loop(key, try_update, cached, dry_run, max_attempts)
            if not dry_run:
                writers.latest = result if exists else None
            return result

    @contextlib.asynccontextmanager
    async def _one_writer(self, key: str) -> AsyncIterator[_Writers]:
        """Take this process's turn to read-modify-write `key`: its writers go one at a time, in order,
        so they do not redo their work on each other's conflicts (other processes still can conflict)."""
        writers = self._writers.get(key)
        if writers is None:
            writers = self._writers[key] = _Writers()
        writers.waiting += 1
        try:
            async with writers.lock:
                yield writers
        finally:
            writers.waiting -= 1
            if not writers.waiting:
                del self._writers[key]

    async def _update_loop(
        self, key: str, try_update: TryUpdate, cached: StoredObject | None, dry_run: bool, max_attempts: int
    ) -> tuple[StoredObject, bool]:
        """The loop itself: (the result, whether the key still exists)."""
        current, is_current = (cached, False) if cached is not None else (await self.get(key), True)
        for _ in range(max_attempts):
            try:
                new = await try_update(current)
            except Exception:
                if is_current:
                    raise
                fresh = await self.get(key)
                if fresh.revision == current.revision:
                    raise
                current, is_current = fresh, True
                continue
            if new is None:
                if is_current:
                    return current, True
                current, is_current = await self.get(key), True
                continue
            if dry_run:
                return StoredObject(key, new.obj if isinstance(new, Deletion) else new, current.revision), True
            try:
                return await self._write(key, new, current.revision), not isinstance(new, Deletion)
            except RevisionConflict as e:
                current = e.current or await self.get(key)
                is_current = True
            except KeyNotFound:
                if is_current:
                    raise
                current, is_current = await self.get(key), True
        raise RevisionConflict(key)

    async def _write(self, key: str, new: dict[str, Any] | Deletion, revision: int) -> StoredObject:
        if isinstance(new, Deletion):
            rev = await self.delete(key, revision)
            return StoredObject(key, _with_rv(new.obj, rev), rev)
        return await self.update(key, new, revision)

    async def compact(self, revision: int) -> None:
        """Compact etcd history up to `revision`."""
        await self._unary(
            "compact",
            _COMPACT,
            rpc.CompactionRequest(revision=revision).SerializeToString(),
            rpc.CompactionResponse.FromString,
        )

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        """Stream changes under prefix from start_revision (inclusive).

        One Watch stream of our own on the member's lean channel (`etcdgrpc`): its messages are parsed here,
        as this reader takes them."""
        client = self._client
        key = prefix.encode()
        create = rpc.WatchCreateRequest(key=key, range_end=utils.prefix_range_end(key), start_revision=start_revision)

        async def start(c: EtcdClient) -> Any:
            call = await c.channel.stream(_WATCH, self._timeout)
            try:
                call.send(rpc.WatchRequest(create_request=create).SerializeToString())
                created = await call.read()  # etcd answers the create first; until then the call may fail over
                if created is None:
                    raise GrpcError(rpc.StatusCode.UNAVAILABLE, "etcd ended the watch stream")
                _check_watch_response(rpc.WatchResponse.FromString(created))
            except BaseException:
                call.cancel()
                raise
            return call

        call = await self._call("watch", start)
        readable, put, parse = self._readable, rpc.Event.PUT, rpc.WatchResponse.FromString
        unreadable = self.unreadable
        try:
            while True:
                message = await call.read()
                if message is None:
                    raise StorageUnavailable("etcd watch failed: the stream ended")
                response = parse(message)
                _check_watch_response(response)
                for ev in response.events:
                    kv = ev.kv
                    revision = kv.mod_revision
                    if ev.type == put:
                        stored = readable(kv)
                        if stored is None:  # logged, and its key kept in `unreadable`
                            continue
                        if unreadable:
                            unreadable.discard(stored.key)
                        yield WatchEvent("PUT", stored.key, stored, revision, kv.version == 1)
                    else:
                        key = kv.key.decode()
                        if unreadable:
                            unreadable.discard(key)
                        yield WatchEvent("DELETE", key, None, revision, False)
        except GrpcError as e:
            if e.code() in (rpc.StatusCode.UNAVAILABLE, rpc.StatusCode.DEADLINE_EXCEEDED):
                self._failover(client)
            raise StorageUnavailable(f"etcd watch failed: {e.details() or e.code()}") from e
        finally:
            call.cancel()


_RANGE, _TXN, _PUT, _COMPACT = (
    "/etcdserverpb.KV/Range",
    "/etcdserverpb.KV/Txn",
    "/etcdserverpb.KV/Put",
    "/etcdserverpb.KV/Compact",
)
_WATCH, _LEASE_GRANT = "/etcdserverpb.Watch/Watch", "/etcdserverpb.Lease/LeaseGrant"
_range_response = rpc.RangeResponse.FromString
_txn_response = rpc.TxnResponse.FromString


def _check_watch_response(response: Any) -> None:
    """Raise for a watch response that ends the watch: compacted history (Compacted), or a cancel."""
    if response.compact_revision:
        raise Compacted(response.compact_revision)
    if response.canceled:
        raise StorageUnavailable(f"etcd watch canceled: {response.cancel_reason or 'no reason given'}")


_OBSERVERS: dict[str, Callable[[float], None]] = {}


def _observer(op: str) -> Callable[[float], None]:
    """The latency histogram's `observe` for one operation, its bound method kept (no label tuple per call)."""
    observe = _OBSERVERS.get(op)
    if observe is None:
        observe = _OBSERVERS[op] = ETCD_LATENCY.labels(op).observe
    return observe


async def _close_quietly(client: EtcdClient, after: float) -> None:
    """Close a client of a member left behind, once its calls are over; its errors no longer matter."""
    await asyncio.sleep(after)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.close(), 5)
