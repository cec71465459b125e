"""`kubectl exec` on the kubelet: the Kubernetes WebSocket channel protocols over a local process.

Every binary frame starts with its channel: 0 stdin, 1 stdout, 2 stderr, 3 error (a JSON
metav1.Status at the end, v4 and v5), 4 resize. v5.channel.k8s.io adds frame `[255, n]`: the
peer closed its side of channel n (stdin EOF). The server says hello with an empty frame on the
lowest output channel, as the kubelet's wsstream does, and closes the socket normally after the
status, which is how client-go learns every stream has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CLOSE_CHANNEL",
    "PROTOCOLS",
    "ExecOptions",
    "error_status",
    "exit_status",
    "hello_frame",
    "negotiate",
    "run_exec",
    "status_frame",
    "success_status",
]

log = logging.getLogger("kubelet.exec")

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE_CHANNEL = 255
V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V1 = "channel.k8s.io"
# Preference when the client offers several; "" (no subprotocol) speaks the v1 framing.
PROTOCOLS = (V5, V4, V1)
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}


@dataclass(frozen=True)
class ExecOptions:
    """The exec query: command and which streams the client wants."""

    command: list[str]
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    tty: bool = False

    @classmethod
    def parse(cls, multi: Callable[[str], list[str]]) -> ExecOptions:
        """From query parameters (`multi(name)` gives every value of one name)."""

        def flag(name: str) -> bool:
            values = multi(name)
            return bool(values) and values[-1] in _TRUE

        return cls(list(multi("command")), flag("stdin"), flag("stdout"), flag("stderr"), flag("tty"))

    def problem(self) -> str | None:
        """Why the kubelet would refuse this request, or None."""
        if not (self.stdin or self.stdout or self.stderr):
            return "you must specify at least 1 of stdin, stdout, stderr"
        if not self.command:
            return "you must specify at least one command for the container"
        return None


def negotiate(offered: list[str]) -> str | None:
    """The subprotocol to answer: the client's first one we speak ("" when it offered none)."""
    if not offered:
        return ""
    for proto in offered:
        if proto in PROTOCOLS:
            return proto
    return None


def hello_frame(opts: ExecOptions) -> bytes:
    """An empty frame on the lowest channel the server writes to: the streams are up (as wsstream does)."""
    return bytes([STDOUT if opts.stdout else STDERR if opts.stderr else ERROR])


def success_status() -> dict[str, Any]:
    """The v4 error-channel Status of a command that exited 0."""
    return {"metadata": {}, "status": "Success"}


def exit_status(command: list[str], code: int) -> dict[str, Any]:
    """The v4 error-channel Status of a command that exited non-zero (as containerd's streaming server words it)."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            f"command terminated with non-zero exit code: error executing command [{' '.join(command)}], "
            f"exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def error_status(message: str) -> dict[str, Any]:
    """An InternalError Status for the error channel."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {message}",
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


def status_frame(protocol: str, status: dict[str, Any]) -> bytes | None:
    """The error-channel frame for a Status: JSON for v4/v5, the bare message for v1 (none on success)."""
    if protocol in (V5, V4):
        return bytes([ERROR]) + json.dumps(status, separators=(",", ":")).encode()
    if status.get("status") == "Success":
        return None
    return bytes([ERROR]) + str(status.get("message", "")).encode()


Send = Callable[[bytes], Awaitable[None]]
Receive = Callable[[], Awaitable[bytes | None]]  # None: the client went away


async def run_exec(
    proc: asyncio.subprocess.Process,
    opts: ExecOptions,
    protocol: str,
    send: Send,
    receive: Receive,
) -> None:
    """Relay one exec between the socket and the process, then send its exit status.

    Returns when the status is sent, or early (killing the process) when the client goes away.
    """
    send_lock = asyncio.Lock()

    async def emit(frame: bytes) -> None:
        async with send_lock:
            await send(frame)

    await emit(hello_frame(opts))
    if not opts.stdin and proc.stdin is not None:
        proc.stdin.close()

    async def pump(stream: asyncio.StreamReader | None, channel: int, wanted: bool) -> None:
        if stream is None:
            return
        while chunk := await stream.read(32 * 1024):
            if wanted:
                await emit(bytes([channel]) + chunk)

    gone = asyncio.Event()

    async def from_client() -> None:
        while True:
            frame = await receive()
            if frame is None:
                gone.set()
                return
            if not frame:
                continue
            channel, data = frame[0], frame[1:]
            if channel == STDIN and opts.stdin and proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.write(data)
                with contextlib.suppress(ConnectionError):
                    await proc.stdin.drain()
            elif channel == CLOSE_CHANNEL and protocol == V5 and data[:1] == bytes([STDIN]):
                if proc.stdin is not None:
                    proc.stdin.close()
            elif channel == RESIZE and hasattr(proc, "resize"):  # only a terminal has a size
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    size = json.loads(data)
                    proc.resize(int(size["Width"]), int(size["Height"]))

    reader = asyncio.create_task(from_client())
    outputs = asyncio.gather(pump(proc.stdout, STDOUT, opts.stdout), pump(proc.stderr, STDERR, opts.stderr))
    gone_wait = asyncio.create_task(gone.wait())
    try:
        done, _ = await asyncio.wait({outputs, gone_wait}, return_when=asyncio.FIRST_COMPLETED)
        if gone_wait in done:
            log.info("exec client went away; killing %s", opts.command)
            return
        await outputs
        code = await proc.wait()
        if code < 0:  # killed by a signal: report it as a shell would
            code = 128 - code
        status = success_status() if code == 0 else exit_status(opts.command, code)
        frame = status_frame(protocol, status)
        if frame is not None:
            await emit(frame)
    finally:
        reader.cancel()
        gone_wait.cancel()
        outputs.cancel()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await outputs
        release = getattr(proc, "close", None)  # a terminal's master side (kubelet.tty)
        if release is not None:
            release()
