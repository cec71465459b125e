"""Container logs as the kubelet serves them: CRI log files parsed, filtered and followed.

A CRI log file has one record per line, `<RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>`;
`P` records are parts of a line the runtime had to split, the `F` record ends it. Output is what
upstream's kuberuntime log reader writes: the content of each record (a newline after `F`), with
`timestamps=true` the line's first timestamp re-formatted as RFC3339Nano and a space in front.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from prometheus_client import Gauge

from client.component import _QuietServer as QuietServer

__all__ = [
    "LOG_STREAMS",
    "STREAMS",
    "LogOptions",
    "LogOptionsError",
    "LogRecord",
    "QuietServer",
    "StreamingRuntime",
    "follow_log",
    "format_timestamp",
    "parse_bool",
    "parse_cri_line",
    "parse_timestamp",
    "running_probe",
    "tail_offset",
]

STREAMS = ("stdout", "stderr")
_TS = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:\d\d)$")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False", ""}
POLL_INTERVAL = 0.1
CHECK_INTERVAL = 1.0
CHUNK = 64 * 1024

LOG_STREAMS = Gauge("kubelet_container_log_streams", "Container log requests being streamed right now")


class StreamingRuntime(Protocol):
    """What the kubelet server needs from the container runtime (implemented in kubelet/runtime.py)."""

    def log_path(self, namespace: str, pod: str, container: str, previous: bool = False) -> Path | None:
        """The CRI log file of the container's current (or, with previous, last terminated) instance."""
        ...

    async def exec_process(
        self, namespace: str, pod: str, container: str, command: list[str], tty: bool = False
    ) -> asyncio.subprocess.Process:
        """Start `command` in the container with piped stdio; LookupError when it is not running."""
        ...


class LogOptionsError(ValueError):
    """A query parameter of /containerLogs that cannot be parsed."""


def parse_bool(value: str | None, name: str = "") -> bool:
    """A boolean query parameter as Go's strconv.ParseBool reads it (absent → false)."""
    if value is None or value in _FALSE:
        return False
    if value in _TRUE:
        return True
    raise LogOptionsError(f'invalid value "{value}" for {name}: must be a boolean')


def parse_timestamp(text: str) -> int:
    """An RFC3339(Nano) timestamp as integer nanoseconds since the epoch (ValueError when malformed)."""
    m = _TS.match(text.strip())
    if not m:
        raise ValueError(f"not an RFC3339 timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac, zone = m.group(7) or "", m.group(8)
    seconds = int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp())
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * 1_000_000_000 + int(frac.ljust(9, "0") or 0)


def format_timestamp(ns: int) -> str:
    """Nanoseconds since the epoch in Go's RFC3339Nano layout (UTC, trailing zeros trimmed)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


@dataclass(frozen=True)
class LogRecord:
    """One parsed CRI log record."""

    timestamp: int
    stream: str
    partial: bool
    content: bytes


def parse_cri_line(line: bytes) -> LogRecord | None:
    """Parse one CRI log line (without its newline); None when it is malformed."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    try:
        ts = parse_timestamp(parts[0].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
    stream = parts[1].decode("ascii", "replace")
    if stream not in STREAMS:
        return None
    tag = parts[2]
    # Tags may carry more flags after a colon in future CRI versions ("F:x"); the first one is the one we need.
    flag = tag.split(b":", 1)[0]
    if flag not in (b"F", b"P"):
        return None
    return LogRecord(ts, stream, flag == b"P", parts[3] if len(parts) == 4 else b"")


@dataclass
class LogOptions:
    """The /containerLogs query (a v1.PodLogOptions as the kubelet reads it)."""

    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None
    since_ns: int | None = None
    stream: str = "All"

    @classmethod
    def parse(cls, query: Mapping[str, str], now_ns: Callable[[], int] | None = None) -> LogOptions:
        """Read the options from query parameters; LogOptionsError when one is malformed."""

        def integer(name: str) -> int | None:
            raw = query.get(name)
            if raw is None or raw == "":
                return None
            try:
                return int(raw)
            except ValueError:
                raise LogOptionsError(f'invalid value "{raw}" for {name}: must be an integer') from None

        opts = cls(
            follow=parse_bool(query.get("follow"), "follow"),
            previous=parse_bool(query.get("previous"), "previous"),
            timestamps=parse_bool(query.get("timestamps"), "timestamps"),
            tail_lines=integer("tailLines"),
            limit_bytes=integer("limitBytes"),
            stream=query.get("stream") or "All",
        )
        if opts.stream not in ("All", "Stdout", "Stderr"):
            raise LogOptionsError(f'invalid value "{opts.stream}" for stream: must be one of All, Stdout, Stderr')
        since_seconds = integer("sinceSeconds")
        since_time = query.get("sinceTime")
        if since_seconds is not None:
            clock = now_ns or (lambda: int(datetime.now(UTC).timestamp() * 1_000_000_000))
            opts.since_ns = clock() - since_seconds * 1_000_000_000
        elif since_time:
            try:
                opts.since_ns = parse_timestamp(since_time)
            except ValueError:
                raise LogOptionsError(f'invalid value "{since_time}" for sinceTime: must be RFC3339') from None
        if opts.tail_lines is not None and opts.tail_lines < 0:
            opts.tail_lines = None
        return opts


class LogWriter:
    """Turns records into output bytes, applying since, stream, timestamps and limitBytes."""

    def __init__(self, opts: LogOptions) -> None:
        self.opts = opts
        self.remaining = opts.limit_bytes if opts.limit_bytes and opts.limit_bytes > 0 else None
        self._line_start = True  # the previous record ended a line: the next one gets the timestamp prefix

    @property
    def done(self) -> bool:
        """True once limitBytes is used up."""
        return self.remaining is not None and self.remaining <= 0

    def write(self, rec: LogRecord) -> bytes:
        """The bytes this record contributes to the output (maybe none)."""
        add_prefix = self._line_start
        self._line_start = not rec.partial
        if self.opts.since_ns is not None and rec.timestamp < self.opts.since_ns:
            return b""
        if self.opts.stream != "All" and rec.stream != self.opts.stream.lower():
            return b""
        line = rec.content if rec.partial else rec.content + b"\n"
        if self.opts.timestamps and add_prefix:
            line = format_timestamp(rec.timestamp).encode() + b" " + line
        if self.remaining is not None:
            line = line[: self.remaining]
            self.remaining -= len(line)
        return line


def tail_offset(path: Path, lines: int) -> int:
    """The file offset where the last `lines` log lines start (a line ends with an F record)."""
    if lines <= 0:
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return 0
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return 0
    with f:
        end = f.seek(0, os.SEEK_END)
        pos, carry, found = end, b"", 0
        while pos > 0:
            at_end = pos == end
            step = min(CHUNK, pos)
            pos -= step
            f.seek(pos)
            block = f.read(step) + carry
            records = block.split(b"\n")
            # records[0] may be cut at the block start: keep it for the next (earlier) block unless at file start
            carry = records[0] if pos > 0 else b""
            body = records[1:] if pos > 0 else records
            if at_end:
                body = body[:-1]  # what follows the last newline is not a whole record yet
            offset = pos + (len(records[0]) + 1 if pos > 0 else 0)
            starts = []
            for rec in body:
                starts.append((offset, rec))
                offset += len(rec) + 1
            for start, rec in reversed(starts):
                parsed = parse_cri_line(rec)
                if parsed is not None and not parsed.partial:
                    found += 1
                    if found > lines:
                        return start + len(rec) + 1
        return 0


def _records(data: bytes) -> tuple[list[LogRecord], bytes]:
    """Complete records in `data` and the unterminated rest."""
    *complete, rest = data.split(b"\n")
    out = []
    for raw in complete:
        rec = parse_cri_line(raw)
        if rec is not None:
            out.append(rec)
    return out, rest


def _read(f: BinaryIO, size: int) -> bytes:
    return f.read(size)


def _open_at(path: Path, offset: int) -> BinaryIO | None:
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return None
    f.seek(offset)
    return f


async def follow_log(
    path: Path,
    opts: LogOptions,
    current_path: Callable[[], Path | None] | None = None,
    running: Callable[[], bool] | None = None,
    offset: int | None = None,
) -> AsyncIterator[bytes]:
    """The log output of one CRI file; with follow, new records as they are written.

    Following ends when `current_path()` no longer names this file (the container restarted or
    the pod is gone) or `running()` turns false, after the file's last bytes are sent. `offset` (an
    attach: the file's size when it began) starts there instead of where `opts` says.
    """
    LOG_STREAMS.inc()
    try:
        async for chunk in _follow(path, opts, current_path, running, offset):
            yield chunk
    finally:
        LOG_STREAMS.dec()


async def _follow(
    path: Path,
    opts: LogOptions,
    current_path: Callable[[], Path | None] | None,
    running: Callable[[], bool] | None,
    offset: int | None = None,
) -> AsyncIterator[bytes]:
    writer = LogWriter(opts)
    if offset is not None:
        start = offset
    else:
        start = await asyncio.to_thread(tail_offset, path, opts.tail_lines) if opts.tail_lines is not None else 0
    f: BinaryIO | None = None
    buf = b""
    last_check = 0.0
    loop = asyncio.get_running_loop()
    try:
        while not writer.done:
            if f is None:
                f = await asyncio.to_thread(_open_at, path, start)
            data = await asyncio.to_thread(_read, f, CHUNK) if f is not None else b""
            if data:
                records, buf = _records(buf + data)
                out = b"".join(writer.write(r) for r in records)
                if out:
                    yield out
                continue
            if not opts.follow:
                break
            now = loop.time()
            if now - last_check >= CHECK_INTERVAL:
                last_check = now
                if _ended(path, current_path, running):
                    # one more read: the writer may have added the last lines just before it stopped
                    tail = await asyncio.to_thread(_read, f, CHUNK * 16) if f is not None else b""
                    if tail:
                        records, buf = _records(buf + tail)
                        out = b"".join(writer.write(r) for r in records)
                        if out:
                            yield out
                        continue
                    break
            await asyncio.sleep(POLL_INTERVAL)
    finally:
        if f is not None:
            with contextlib.suppress(OSError):
                f.close()


def running_probe(runtime: object, namespace: str, pod: str, container: str) -> Callable[[], bool] | None:
    """How to tell whether the container still runs, from what the runtime offers (None: cannot tell).

    Prefers `runtime.container_running(ns, pod, container)`; otherwise reads the CRI-like
    `sandboxes()` / `list_containers(uid)` of kubelet.runtime.ContainerRuntime (latest attempt wins).
    """
    explicit = getattr(runtime, "container_running", None)
    if callable(explicit):
        return lambda: bool(explicit(namespace, pod, container))
    sandboxes, list_containers = getattr(runtime, "sandboxes", None), getattr(runtime, "list_containers", None)
    if not (callable(sandboxes) and callable(list_containers)):
        return None

    def probe() -> bool:
        uids = [sb.uid for sb in sandboxes() if sb.namespace == namespace and sb.name == pod]
        found = [c for uid in uids for c in list_containers(uid) if c.name == container]
        if not found:
            return False
        latest = max(found, key=lambda c: (c.attempt, c.created_at))
        return str(latest.state) == "running"

    return probe


def _ended(path: Path, current_path: Callable[[], Path | None] | None, running: Callable[[], bool] | None) -> bool:
    if current_path is not None:
        now = current_path()
        if now is None or Path(now) != path:
            return True
    return running is not None and not running()
