"""The kubelet's side of the container fork server (the server itself is in kubelet/preamble.py).

`Zygote.spawn` sends one start request over a SOCK_SEQPACKET socket pair with the child's stdio
(and ready) fds as SCM_RIGHTS and returns a `ZygoteProcess` once the server answers (by then the
container has exec'd in its root, or failed to). It offers what the process runtime
uses of asyncio's `Process`: pid, returncode, wait(), stdin/stdout/stderr streams, send_signal.
The server is started on the first spawn. When it cannot start, or dies, `spawn` raises
`ZygoteUnavailable` (the caller starts the container the old way) and the next spawn starts a
new server. Containers it had started keep running; since only it could reap them, their exit is
then noticed through a pidfd and reported as a SIGKILL (the status itself is lost).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import itertools
import logging
import marshal
import os
import signal
import socket
import sys
import time
from typing import Any

from kubelet.preamble import ZYGOTE

__all__ = ["Zygote", "ZygoteProcess", "ZygoteUnavailable"]

log = logging.getLogger("kubelet.runtime")

START_TIMEOUT = 10.0  # for the server to come up, and for it to answer a request
RETRY_AFTER = 30.0  # after the server could not start, start containers the old way this long


class ZygoteUnavailable(Exception):
    """The fork server could not take the request (not started, gone, or the request too large)."""


class ZygoteProcess:
    """A container process the fork server started (its parent is the server, not the kubelet)."""

    def __init__(
        self,
        pid: int,
        stdin: asyncio.StreamWriter | None,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
        transports: list[asyncio.BaseTransport],
    ) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._transports = transports
        self._exited = asyncio.get_running_loop().create_future()

    def _set_exit(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
            self._exited.set_result(code)

    async def wait(self) -> int:
        """Wait for the process to exit; its exit code (negative: the signal that killed it)."""
        return await asyncio.shield(self._exited)

    def send_signal(self, sig: int) -> None:
        """Send `sig` to the process (not once it has exited)."""
        if self.returncode is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        """SIGTERM."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)

    def close(self) -> None:
        """Close the kubelet's ends of the process's pipes."""
        for t in self._transports:
            t.close()


class Zygote:
    """One fork server for one runtime; `mode` is "root" or "user" (the child's namespaces)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._proc: asyncio.subprocess.Process | None = None
        self._sock: socket.socket | None = None
        self._starting: asyncio.Lock | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._children: dict[int, ZygoteProcess] = {}
        # pids answered whose spawn has not made its ZygoteProcess yet, with their exit code if it came first
        self._unclaimed: dict[int, int | None] = {}
        self._ready: asyncio.Future[int] | None = None
        self._failed_at = -RETRY_AFTER
        self.starts = 0  # how many servers were started
        self.timeout = START_TIMEOUT

    @property
    def server_pid(self) -> int | None:
        """The running server's pid (None: not running)."""
        return self._proc.pid if self._proc is not None and self._sock is not None else None

    async def _ensure(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        if time.monotonic() - self._failed_at < RETRY_AFTER:
            raise ZygoteUnavailable("the fork server failed to start recently")
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._sock is None:
                try:
                    await self._start()
                except (OSError, TimeoutError, ValueError, ZygoteUnavailable) as e:
                    self._failed_at = time.monotonic()
                    log.warning("container fork server did not start (%s): starting containers one by one", e)
                    raise ZygoteUnavailable(str(e)) from e
        assert self._sock is not None
        return self._sock

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with contextlib.suppress(OSError):
                ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-S",
                "-c",
                ZYGOTE,
                str(theirs.fileno()),
                self.mode,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # a ^C at the kubelet's terminal is not for it
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._ready = loop.create_future()
        self._sock = ours
        loop.add_reader(ours.fileno(), self._on_readable, ours)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), self.timeout)
        except BaseException:
            self._lost(ours, "did not start")
            raise
        if self.starts:
            log.info("container fork server started again (pid %d)", self._proc.pid)
        self.starts += 1

    def _on_readable(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._lost(sock, "exited")
                return
            msg = marshal.loads(data)
            if "exit" in msg:
                child = self._children.pop(msg["exit"], None)
                if child is not None:
                    child._set_exit(msg["code"])
                elif msg["exit"] in self._unclaimed:
                    self._unclaimed[msg["exit"]] = msg["code"]
            elif "id" in msg:
                fut = self._pending.pop(msg["id"], None)
                if fut is not None and not fut.done():
                    if msg["pid"] > 0:
                        self._unclaimed[msg["pid"]] = None
                    fut.set_result(msg["pid"])
            elif "ready" in msg and self._ready is not None and not self._ready.done():
                self._ready.set_result(msg["ready"])

    def _lost(self, sock: socket.socket, why: str) -> None:
        """The server is gone: fail what waits on it, watch its orphans by pidfd, drop it."""
        if sock is not self._sock:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(sock.fileno())
        sock.close()
        self._sock = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        gone = ZygoteUnavailable(f"the container fork server {why}")
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(gone)
        self._pending.clear()
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(gone)
            self._ready.exception()  # retrieved: _start raises its own error
        orphans, self._children = self._children, {}
        self._unclaimed = {pid: code for pid, code in self._unclaimed.items() if code is not None}
        if orphans:
            log.warning("container fork server %s; watching its %d containers by pid", why, len(orphans))
        for child in orphans.values():
            _watch_orphan(loop, child)

    async def spawn(
        self, spec: dict[str, Any], argv: list[str], env: dict[str, str], stdin: bool, ready_fd: int | None
    ) -> ZygoteProcess:
        """Start a container process; ZygoteUnavailable when the server cannot (then nothing was started)."""
        sock = await self._ensure()
        loop = asyncio.get_running_loop()
        req_id = next(self._ids)
        try:
            data = marshal.dumps({"id": req_id, "spec": spec, "argv": argv, "env": env, "stdin": stdin})
        except ValueError as e:  # marshal takes no subclass of str: the old way (JSON) does
            raise ZygoteUnavailable(f"the request cannot be sent: {e}") from e
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, in_w = os.pipe() if stdin else (-1, -1)
        ours = [out_r, err_r, *([in_w] if stdin else [])]
        theirs = [*([in_r] if stdin else []), out_w, err_w, *([ready_fd] if ready_fd is not None else [])]
        fut: asyncio.Future[int] = loop.create_future()
        self._pending[req_id] = fut
        try:
            await _send(loop, sock, data, theirs)
            pid = await asyncio.wait_for(asyncio.shield(fut), self.timeout)
        except BaseException as e:
            self._pending.pop(req_id, None)
            for fd in ours:
                os.close(fd)
            if isinstance(e, OSError | TimeoutError):
                if isinstance(e, TimeoutError):
                    self._lost(sock, "did not answer")
                raise ZygoteUnavailable(str(e)) from e
            raise
        finally:
            for fd in theirs[:-1] if ready_fd is not None else theirs:
                os.close(fd)
        if pid < 0:
            for fd in ours:
                os.close(fd)
            raise ZygoteUnavailable("the fork server could not read the request (too large)")
        transports: list[asyncio.BaseTransport] = []
        stdout = asyncio.StreamReader(limit=1 << 20)
        stderr = asyncio.StreamReader(limit=1 << 20)
        for reader, fd in ((stdout, out_r), (stderr, err_r)):
            t, _ = await loop.connect_read_pipe(
                lambda r=reader: asyncio.StreamReaderProtocol(r),  # type: ignore[misc]
                os.fdopen(fd, "rb", buffering=0),
            )
            transports.append(t)
        writer = None
        if stdin:
            wt, wp = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, os.fdopen(in_w, "wb", buffering=0))
            writer = asyncio.StreamWriter(wt, wp, None, loop)
            transports.append(wt)
        child = ZygoteProcess(pid, writer, stdout, stderr, transports)
        code = self._unclaimed.pop(pid, None)
        if code is not None:
            child._set_exit(code)
        elif sock is self._sock:
            self._children[pid] = child
        else:  # the server died while the pipes were being connected
            _watch_orphan(loop, child)
        return child

    async def close(self) -> None:
        """Stop the server (its containers keep running; they were stopped before, or are leftovers)."""
        sock, proc = self._sock, self._proc
        if sock is None:
            return
        self._lost(sock, "was closed")
        if proc is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5)


async def _send(loop: asyncio.AbstractEventLoop, sock: socket.socket, data: bytes, fds: list[int]) -> None:
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
    while True:
        try:
            sock.sendmsg([data], anc)
            return
        except BlockingIOError:
            writable: asyncio.Future[None] = loop.create_future()
            loop.add_writer(sock.fileno(), lambda w=writable: w.done() or w.set_result(None))
            try:
                await writable
            finally:
                loop.remove_writer(sock.fileno())


def _watch_orphan(loop: asyncio.AbstractEventLoop, child: ZygoteProcess) -> None:
    """Report `child`'s exit (as a SIGKILL: its status went with its parent) once its pidfd says so."""
    try:
        pidfd = os.pidfd_open(child.pid)
    except ProcessLookupError:
        child._set_exit(-signal.SIGKILL)
        return

    def done() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        child._set_exit(-signal.SIGKILL)

    loop.add_reader(pidfd, done)
