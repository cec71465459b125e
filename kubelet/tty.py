"""Exec with a terminal (`kubectl exec -it`): a process on a pseudo-terminal, shaped like
`asyncio.subprocess.Process` for the exec relay (stdin/stdout streams, `wait`, `kill`), plus `resize`.

On a terminal stdout and stderr are one stream, as in Kubernetes; closing stdin sends the
terminal's end-of-file character (^D) instead of closing the device.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import struct
import termios
from collections.abc import Sequence

__all__ = ["TtyProcess", "spawn_tty"]

_EOT = b"\x04"


class _PtyReaderProtocol(asyncio.StreamReaderProtocol):
    """Reading a pty master ends with EIO once the last process holding the terminal exits: that is EOF."""

    def connection_lost(self, exc: Exception | None) -> None:
        if isinstance(exc, OSError) and exc.errno == errno.EIO:
            exc = None
        super().connection_lost(exc)


class _TtyStdin:
    """The terminal's input side, with the small part of StreamWriter's interface the relay uses."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self._transport = transport
        self._closed = False

    def write(self, data: bytes) -> None:
        """Type `data` into the terminal."""
        if not self._closed:
            self._transport.write(data)

    async def drain(self) -> None:
        """Writes are buffered by the transport; nothing to wait for here."""

    def is_closing(self) -> bool:
        """Whether end-of-file was sent."""
        return self._closed

    def close(self) -> None:
        """Send end-of-file (^D) once."""
        if not self._closed:
            self._transport.write(_EOT)
            self._closed = True


class TtyProcess:
    """A process whose stdin, stdout and stderr are one pseudo-terminal."""

    stderr = None

    def __init__(self, proc: asyncio.subprocess.Process, master: int, stdout: asyncio.StreamReader, stdin: _TtyStdin):
        self._proc = proc
        self._master = master
        self.stdout = stdout
        self.stdin = stdin

    @property
    def pid(self) -> int:
        """The process id."""
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once the process has ended."""
        return self._proc.returncode

    async def wait(self) -> int:
        """Wait for the process to end."""
        return await self._proc.wait()

    def kill(self) -> None:
        """SIGKILL the process."""
        self._proc.kill()

    def resize(self, width: int, height: int) -> None:
        """Set the terminal size (the exec protocol's resize channel)."""
        try:
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        except OSError:
            pass  # the terminal is already gone


def _take_terminal() -> None:  # runs in the child between fork and exec
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def spawn_tty(argv: Sequence[str], env: dict[str, str], cwd: str | None = None) -> TtyProcess:
    """Start `argv` on a new pseudo-terminal that becomes its controlling terminal."""
    master, slave = os.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={"TERM": "xterm", **env},
            cwd=cwd,
            preexec_fn=_take_terminal,
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: _PtyReaderProtocol(reader), os.fdopen(master, "rb", buffering=0))
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(os.dup(master), "wb", buffering=0))
    return TtyProcess(proc, master, reader, _TtyStdin(transport))
