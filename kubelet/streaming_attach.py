"""`kubectl attach` (and `kubectl run -i`) on the kubelet: the running container's output as it is
written, and the client's stdin into the container.

Over the same WebSocket channel protocols as exec (kubelet/streaming_exec.py): a hello frame, the
output on stdout/stderr (one stdout channel with a terminal), a Success status on the error channel
once the container exits. The output is the container's CRI log followed from its end at the moment of
the attach; stdin needs the runtime's `attach_stdin` (`StdinRuntime`): a runtime without it serves
output-only attaches and drops what the client types.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Protocol

from kubelet.streaming_exec import (
    CLOSE_CHANNEL,
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

__all__ = ["StdinRuntime", "attach_problem", "output_channels", "run_attach"]

log = logging.getLogger("kubelet.attach")


class StdinRuntime(Protocol):
    """What stdin to an attach needs from the runtime (the process runtime does not offer it yet)."""

    async def attach_stdin(self, namespace: str, pod: str, container: str) -> asyncio.StreamWriter | None:
        """The write end of the running container's stdin when its spec has `stdin: true` (None when not).

        Closing it closes the container's stdin only for a `stdinOnce` container; otherwise the runtime
        keeps the pipe for the next attach. LookupError when the container is not running."""
        ...


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
    stdin: asyncio.StreamWriter | None,
) -> None:
    """Relay one attach: `outputs` (channel → the container's output as it comes; they end when the
    container exits) to the client, the client's stdin to `stdin`; then the Success status.

    Returns early when the client goes away (the container keeps running)."""
    lock = asyncio.Lock()

    async def emit(frame: bytes) -> None:
        async with lock:
            await send(frame)

    await emit(hello_frame(opts))

    async def pump(channel: int, stream: AsyncIterator[bytes]) -> None:
        async for chunk in stream:
            await emit(bytes([channel]) + chunk)

    gone = asyncio.Event()

    async def from_client() -> None:
        while (frame := await receive()) is not None:
            if not frame or stdin is None or stdin.is_closing():
                continue
            channel, data = frame[0], frame[1:]
            if channel == STDIN and opts.stdin:
                stdin.write(data)
                with contextlib.suppress(ConnectionError):
                    await stdin.drain()
            elif channel == CLOSE_CHANNEL and protocol == V5 and data[:1] == bytes([STDIN]):
                stdin.close()
        gone.set()

    reader = asyncio.create_task(from_client())
    copying = asyncio.gather(*(pump(channel, stream) for channel, stream in outputs.items()))
    gone_wait = asyncio.create_task(gone.wait())
    try:
        done, _ = await asyncio.wait({copying, gone_wait}, return_when=asyncio.FIRST_COMPLETED)
        if gone_wait in done:
            log.info("attach client went away")
            return
        await copying
        frame = status_frame(protocol, success_status())
        if frame is not None:
            await emit(frame)
    finally:
        for task in (reader, gone_wait, copying):
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
