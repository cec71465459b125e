"""The audit log backend (`--audit-log-path`; `-` is stdout): one audit.k8s.io/v1 Event JSON per line.

Events are queued without blocking the event loop (a bounded queue) and written by one task in
batches, the file writes in a thread. When the queue is full the event is dropped and counted, as
upstream's buffered backend does under overload, rather than slowing requests down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from pathlib import Path
from typing import IO, Any

import orjson
from prometheus_client import Counter

__all__ = ["AuditLog"]

log = logging.getLogger("apiserver.audit")

EVENTS = Counter("apiserver_audit_event", "Audit events generated and sent to the audit backend")
ERRORS = Counter("apiserver_audit_error", "Audit events that could not be written (dropped)", ["plugin"])
_MAX_BATCH = 512


class AuditLog:
    """Writes audit events as JSON lines to a file or stdout, off the event loop."""

    def __init__(self, path: str, queue_size: int = 10_000) -> None:
        self.path = path
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=queue_size)
        self.dropped = 0
        self._file: IO[bytes] | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()  # a batch still being written when stop() flushes the rest

    def emit(self, event: dict[str, Any]) -> None:
        """Queue one event; never blocks (a full queue drops it and counts the drop)."""
        EVENTS.inc()
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            ERRORS.labels("log").inc()
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("audit queue full: %d events dropped so far", self.dropped)

    async def start(self) -> None:
        """Open the log and start the writer task."""
        self._file = await asyncio.to_thread(self._open)
        self._task = asyncio.create_task(self._run(), name="audit-log")

    async def stop(self) -> None:
        """Write what is queued, then close the log."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        rest = []
        while not self.queue.empty():
            rest.append(self.queue.get_nowait())
        if rest:
            await asyncio.to_thread(self._write, rest)
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            if self._file is not None and self._file is not sys.stdout.buffer:
                self._file.close()
            self._file = None

    def _open(self) -> IO[bytes]:
        if self.path == "-":
            return sys.stdout.buffer
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        return open(self.path, "ab")

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < _MAX_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await asyncio.to_thread(self._write, batch)
            except OSError as e:
                ERRORS.labels("log").inc(len(batch))
                log.error("writing %d audit events to %s: %s", len(batch), self.path, e)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        data = b"".join(orjson.dumps(ev) + b"\n" for ev in batch)
        with self._lock:
            if self._file is not None:
                self._file.write(data)
                self._file.flush()
