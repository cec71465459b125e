"""`kubectl attach` (and `kubectl run -i`) on the kubelet: the running container's output as it is
written, and the client's stdin into the container.

Over the same WebSocket channel protocols as exec (kubelet/streaming_exec.py): a hello frame, the
output on stdout/stderr (one stdout channel with a terminal), a Success status on the error channel
once the container exits. The output is the container's CRI log followed from its end at the moment of
the attach; stdin needs the runtime's `attach_stdin` (`StdinRuntime`): a runtime without it, or a
container without `stdin: true`, serves output-only attaches and drops what the client types (as
containerd does). As containerd's attach: when the client's stdin ends, a `stdinOnce` container's stdin
closes and the attach follows the output until the container exits; any other container's stdin stays
open for the next attach, and this attach ends there. A resize message sizes a `tty: true` container's
terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from kubelet.streaming_exec import (
    CLOSE_CHANNEL,
    RESIZE,
    STDERR,
    STDIN,
    STDOUT,
    V5,
    ExecOptions,
    Receive,
    Send,
    hello_frame,
    status_frame,
    success_status,
)

__all__ = ["AttachedStdin", "PipeStdin", "StdinRuntime", "attach_problem", "output_channels", "run_attach"]

log = logging.getLogger("kubelet.attach")


class AttachedStdin(Protocol):
    """One attach's handle on a container's stdin (the part of StreamWriter's interface the relay uses)."""

    once: bool
    """The container is `stdinOnce`: closing this handle closes the container's stdin."""

    def write(self, data: bytes) -> None:
        """Write to the container's stdin."""
        ...

    async def drain(self) -> None:
        """Wait until the pipe takes more."""
        ...

    def close(self) -> None:
        """End this attach's stdin (the container's too when `once`)."""
        ...

    def is_closing(self) -> bool:
        """Whether this handle (or the container's stdin) is closed."""
        ...

    def resize(self, width: int, height: int) -> None:
        """Set the container's terminal size (nothing without a terminal)."""
        ...


class _Writer(Protocol):
    """The writing side of a pipe or terminal (StreamWriter, or kubelet.tty's terminal input)."""

    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    def close(self) -> None: ...
    def is_closing(self) -> bool: ...


class StdinRuntime(Protocol):
    """What stdin to an attach needs from the runtime."""

    async def attach_stdin(self, namespace: str, pod: str, container: str) -> AttachedStdin | None:
        """A handle on the running container's stdin when its spec has `stdin: true` (None when not).

        Closing it closes the container's stdin only for a `stdinOnce` container; otherwise the runtime
        keeps the pipe for the next attach. LookupError when the container is not running."""
        ...


class PipeStdin:
    """One attach's handle on a container's stdin pipe: closing it closes the pipe only for stdinOnce."""

    def __init__(self, pipe: _Writer, once: bool, resize: Callable[[int, int], None] | None = None) -> None:
        self._pipe = pipe
        self.once = once
        self._closed = False
        self._resize = resize

    def write(self, data: bytes) -> None:
        """Write to the container's stdin (dropped once closed)."""
        if not self.is_closing():
            self._pipe.write(data)

    async def drain(self) -> None:
        """Wait for the pipe to take more."""
        if not self.is_closing():
            await self._pipe.drain()

    def is_closing(self) -> bool:
        """Whether this attach's stdin or the container's is closed."""
        return self._closed or self._pipe.is_closing()

    def close(self) -> None:
        """End this attach's stdin; the container's too with stdinOnce."""
        self._closed = True
        if self.once:
            self._pipe.close()

    def resize(self, width: int, height: int) -> None:
        """Set the container's terminal size, when it has one."""
        if self._resize is not None:
            self._resize(width, height)


def attach_problem(opts: ExecOptions) -> str | None:
    """Why the kubelet would refuse this attach, or None."""
    if not (opts.stdin or opts.stdout or opts.stderr):
        return "you must specify at least 1 of stdin, stdout, stderr"
    return None


async def run_attach(
    opts: ExecOptions,
    protocol: str,
    send: Send,
    receive: Receive,
    outputs: dict[int, AsyncIterator[bytes]],
    stdin: AttachedStdin | None,
) -> None:
    """Relay one attach: `outputs` (channel → the container's output as it comes; they end when the
    container exits) to the client, the client's stdin to `stdin`; then the Success status.

    Returns early when the client goes away (the container keeps running). When the client's stdin
    ends on a container that is not `stdinOnce`, the attach ends with Success (containerd's rule)."""
    lock = asyncio.Lock()

    async def emit(frame: bytes) -> None:
        async with lock:
            await send(frame)

    await emit(hello_frame(opts))

    async def pump(channel: int, stream: AsyncIterator[bytes]) -> None:
        async for chunk in stream:
            await emit(bytes([channel]) + chunk)

    gone = asyncio.Event()
    stdin_ended = asyncio.Event()

    async def from_client() -> None:
        while (frame := await receive()) is not None:
            if not frame or stdin is None or stdin.is_closing():
                continue
            channel, data = frame[0], frame[1:]
            if channel == STDIN and opts.stdin:
                stdin.write(data)
                with contextlib.suppress(ConnectionError):
                    await stdin.drain()
            elif channel == RESIZE and opts.tty:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    size = json.loads(data)
                    stdin.resize(int(size["Width"]), int(size["Height"]))
            elif channel == CLOSE_CHANNEL and protocol == V5 and data[:1] == bytes([STDIN]):
                stdin.close()
                if not stdin.once:
                    stdin_ended.set()
        gone.set()

    reader = asyncio.create_task(from_client())
    copying = asyncio.gather(*(pump(channel, stream) for channel, stream in outputs.items()))
    gone_wait = asyncio.create_task(gone.wait())
    ended_wait = asyncio.create_task(stdin_ended.wait())
    try:
        done, _ = await asyncio.wait({copying, gone_wait, ended_wait}, return_when=asyncio.FIRST_COMPLETED)
        if gone_wait in done:
            log.info("attach client went away")
            return
        if copying in done:
            await copying
        frame = status_frame(protocol, success_status())
        if frame is not None:
            await emit(frame)
    finally:
        for task in (reader, gone_wait, ended_wait, copying):
            task.cancel()
        for task in (reader, copying):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if stdin is not None and not stdin.is_closing():
            stdin.close()  # the session's end: the runtime decides whether the container's stdin closes


def output_channels(opts: ExecOptions) -> dict[int, str]:
    """Which log stream goes to which channel: both to stdout with a terminal, else each to its own."""
    if opts.tty:
        return {STDOUT: "All"} if (opts.stdout or opts.stderr) else {}
    wanted = {STDOUT: "Stdout", STDERR: "Stderr"}
    return {channel: stream for channel, stream in wanted.items() if (opts.stdout, opts.stderr)[channel - 1]}
