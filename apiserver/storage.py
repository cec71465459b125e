"""The only code that talks to etcd: JSON objects under /registry keys, revisions as versions.

Guarantees: create is a transaction that fails when the key exists; updates and
deletes compare `mod_revision` (optimistic concurrency); a list reads one
revision. Every call has a timeout; a lost etcd surfaces as `StorageUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aetcd
import aetcd.exceptions as etcd_errors
import orjson
from aetcd import rpc, utils
from prometheus_client import Histogram

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

ETCD_LATENCY = Histogram(
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


@dataclass(frozen=True)
class StoredObject:
    """An object as read from etcd, with its key and mod revision."""

    key: str
    obj: dict[str, Any]
    revision: int


@dataclass(frozen=True)
class Deletion:
    """A `guaranteed_update` step's answer meaning: delete the key (at the revision read) instead of
    writing it; `obj` is the object's last state (returned with the deletion's revision)."""

    obj: dict[str, Any]


# One try of a read-modify-write: the object to write, a Deletion, or None for "no change".
TryUpdate = Callable[[StoredObject], Awaitable[dict[str, Any] | Deletion | None]]


@dataclass(frozen=True)
class WatchEvent:
    """One etcd change: PUT or DELETE of a key at a revision, with the previous value."""

    type: str  # "PUT" or "DELETE"
    key: str
    obj: dict[str, Any] | None
    prev_obj: dict[str, Any] | None
    revision: int
    created: bool


def _decode(value: bytes) -> dict[str, Any]:
    return orjson.loads(value)


def _encode(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj)


def _with_rv(obj: dict[str, Any], revision: int) -> dict[str, Any]:
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return obj


def _failed(key: str, responses: list[Any]) -> StorageError:
    """Why a compare-and-write failed: the key is gone, or it moved on (with what it holds now)."""
    if not responses or not responses[0]:
        return KeyNotFound(key)
    value, kv = responses[0][0]
    return RevisionConflict(key, StoredObject(key, _with_rv(_decode(value), kv.mod_revision), kv.mod_revision))


class _Writers:
    """This process's writers of one key: one at a time, and what the last one stored."""

    __slots__ = ("latest", "lock", "waiting")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.waiting = 0
        self.latest: StoredObject | None = None


class EtcdStorage:
    """Async etcd access through aetcd with timeouts and error mapping."""

    def __init__(self, endpoint: str, timeout: float = 5.0) -> None:
        host, _, port = endpoint.removeprefix("http://").rstrip("/").partition(":")
        self._host = host or "127.0.0.1"
        self._port = int(port or 2379)
        self._timeout = timeout
        self._writers: dict[str, _Writers] = {}
        # gRPC's default 4 MiB receive limit would fail lists (and the cache's relist) past ~3k pods.
        self._client = aetcd.Client(
            host=self._host,
            port=self._port,
            timeout=timeout,
            options={"grpc.max_receive_message_length": 1 << 30},
        )

    @property
    def client(self) -> aetcd.Client:
        """The underlying aetcd client (for benchmarks and the watch cache)."""
        return self._client

    async def close(self) -> None:
        """Close the gRPC channel."""
        await self._client.close()

    async def _call(self, op: str, coro: Any) -> Any:
        start = time.perf_counter()
        try:
            return await asyncio.wait_for(coro, self._timeout)
        except (TimeoutError, etcd_errors.ConnectionFailedError) as e:
            raise StorageUnavailable(f"etcd unavailable: {e or 'timeout'}") from e
        except etcd_errors.ConnectionTimeoutError as e:
            raise StorageUnavailable(f"etcd timeout: {e}") from e
        except etcd_errors.RevisionCompactedError as e:
            raise Compacted(e.compacted_revision) from e
        except (etcd_errors.ClientError, rpc.AioRpcError) as e:
            text = e.details() if isinstance(e, rpc.AioRpcError) else str(e)
            if "compacted" in text:
                raise Compacted() from e
            if "future revision" in text:
                raise FutureRevision(text) from e
            raise StorageUnavailable(f"etcd error: {text}") from e
        finally:
            ETCD_LATENCY.labels(op).observe(time.perf_counter() - start)

    async def ping(self) -> int:
        """Return the current revision, raising StorageUnavailable when etcd is down."""
        resp = await self._call("status", self._range(b"\x00", limit=1, count_only=True))
        return resp.header.revision

    async def _range(
        self,
        key: bytes,
        range_end: bytes | None = None,
        *,
        revision: int = 0,
        limit: int = 0,
        count_only: bool = False,
    ) -> Any:
        await self._client.connect()
        req = rpc.RangeRequest(key=key, revision=revision, limit=limit, count_only=count_only)
        if range_end is not None:
            req.range_end = range_end
        return await self._client.kvstub.Range(req, timeout=self._timeout)

    async def get(self, key: str, revision: int = 0) -> StoredObject:
        """Read one object (optionally at an older revision)."""
        resp = await self._call("get", self._range(key.encode(), revision=revision))
        if not resp.kvs:
            raise KeyNotFound(key)
        kv = resp.kvs[0]
        return StoredObject(key, _with_rv(_decode(kv.value), kv.mod_revision), kv.mod_revision)

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_key: str | None = None
    ) -> tuple[list[StoredObject], int, int]:
        """Read keys under prefix at one revision: (objects, revision, remaining count)."""
        start = (start_key or prefix).encode()
        end = utils.prefix_range_end(prefix.encode())
        resp = await self._call("list", self._range(start, end, revision=revision, limit=limit))
        items = [
            StoredObject(kv.key.decode(), _with_rv(_decode(kv.value), kv.mod_revision), kv.mod_revision)
            for kv in resp.kvs
        ]
        remaining = resp.count - len(items) if resp.more else 0
        return items, resp.header.revision, remaining

    async def create(self, key: str, obj: dict[str, Any]) -> StoredObject:
        """Write a new key; KeyExists if it is already there."""
        tx = self._client.transactions
        ok, responses = await self._call(
            "create",
            self._client.transaction(
                compare=[tx.create(key.encode()) == 0],
                success=[tx.put(key.encode(), _encode(obj))],
                failure=[],
            ),
        )
        if not ok:
            raise KeyExists(key)
        rev = responses[0].response_put.header.revision
        return StoredObject(key, _with_rv(obj, rev), rev)

    async def put(self, key: str, obj: dict[str, Any]) -> int:
        """Write a key unconditionally; the revision of the write."""
        resp = await self._call("put", self._client.put(key.encode(), _encode(obj)))
        return resp.header.revision

    async def update(self, key: str, obj: dict[str, Any], expected_revision: int) -> StoredObject:
        """Overwrite a key only if its mod revision is still `expected_revision`."""
        tx = self._client.transactions
        ok, responses = await self._call(
            "update",
            self._client.transaction(
                compare=[tx.mod(key.encode()) == expected_revision],
                success=[tx.put(key.encode(), _encode(obj))],
                failure=[tx.get(key.encode())],
            ),
        )
        if not ok:
            raise _failed(key, responses)
        rev = responses[0].response_put.header.revision
        return StoredObject(key, _with_rv(obj, rev), rev)

    async def delete(self, key: str, expected_revision: int) -> int:
        """Delete a key only if its mod revision is still `expected_revision`; returns the
        deletion revision."""
        tx = self._client.transactions
        ok, responses = await self._call(
            "delete",
            self._client.transaction(
                compare=[tx.mod(key.encode()) == expected_revision],
                success=[tx.delete(key.encode())],
                failure=[tx.get(key.encode())],
            ),
        )
        if not ok:
            raise _failed(key, responses)
        return responses[0].response_delete_range.header.revision

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
        await self._call("compact", self._client.compact(revision))

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        """Stream changes under prefix from start_revision (inclusive)."""
        await self._client.connect()
        try:
            watch = await self._call(
                "watch",
                self._client.watch_prefix(prefix.encode(), start_revision=start_revision, prev_kv=True),
            )
        except StorageError:
            raise
        try:
            async for ev in watch:
                kv = ev.kv
                has_prev = ev.prev_kv is not None and ev.prev_kv.value
                prev = _decode(ev.prev_kv.value) if has_prev else None
                if prev is not None:
                    _with_rv(prev, ev.prev_kv.mod_revision)
                if ev.kind == "PUT":
                    obj = _with_rv(_decode(kv.value), kv.mod_revision)
                    yield WatchEvent("PUT", kv.key.decode(), obj, prev, kv.mod_revision, kv.version == 1)
                else:
                    yield WatchEvent("DELETE", kv.key.decode(), None, prev, kv.mod_revision, False)
        except etcd_errors.RevisionCompactedError as e:
            raise Compacted(e.compacted_revision) from e
        except etcd_errors.ClientError as e:
            raise StorageUnavailable(f"etcd watch failed: {e}") from e
        finally:
            try:
                await asyncio.wait_for(watch.cancel(), 2)
            except Exception:
                pass
