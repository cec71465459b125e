"""Exec with a terminal (`kubectl exec -it`): a process on a pseudo-terminal, shaped like
`asyncio.subprocess.Process` for the exec relay (stdin/stdout streams, `wait`, `kill`), plus `resize`.

On a terminal stdout and stderr are one stream, as in Kubernetes; closing stdin sends the
terminal's end-of-file character (^D) instead of closing the device.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import struct
import termios
from collections.abc import Sequence

__all__ = ["TtyProcess", "spawn_tty"]

_EOT = b"\x04"


class _TtyStdin:
    """The terminal's input side, with the small part of StreamWriter's interface the relay uses."""

    def __init__(self, master: int) -> None:
        self._master = master
        self._pending = bytearray()
        self._closed = False
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        """Type `data` into the terminal (buffered while the terminal's input queue is full)."""
        if self._closed:
            return
        self._pending += data
        self._flush()

    def _flush(self) -> None:
        try:
            while self._pending:
                n = os.write(self._master, self._pending)
                del self._pending[:n]
        except BlockingIOError:
            self._loop.add_writer(self._master, self._flush)
            return
        except OSError:
            self._pending.clear()  # the terminal is gone
        self._loop.remove_writer(self._master)

    async def drain(self) -> None:
        """Writes are buffered; nothing to wait for here."""

    def is_closing(self) -> bool:
        """Whether end-of-file was sent."""
        return self._closed

    def close(self) -> None:
        """Send end-of-file (^D) once."""
        if not self._closed:
            self.write(_EOT)
            self._closed = True


def _read_into(master: int, reader: asyncio.StreamReader) -> None:
    """Move what the terminal has into `reader`; EIO (the last holder exited) is end-of-file."""
    loop = asyncio.get_running_loop()
    try:
        data = os.read(master, 65536)
    except BlockingIOError:
        return
    except OSError as e:
        if e.errno != errno.EIO:
            reader.set_exception(e)
        data = b""
    if data:
        reader.feed_data(data)
    else:
        loop.remove_reader(master)
        reader.feed_eof()


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

    def close(self) -> None:
        """Release the terminal (after the relay is done with it)."""
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._master)
        loop.remove_writer(self._master)
        with contextlib.suppress(OSError):
            os.close(self._master)

    def kill(self) -> None:
        """SIGKILL the process."""
        self._proc.kill()

    def resize(self, width: int, height: int) -> None:
        """Set the terminal size (the exec protocol's resize channel)."""
        try:
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        except OSError:
            pass  # the terminal is already gone


async def spawn_tty(
    argv: Sequence[str], env: dict[str, str], cwd: str | None = None, pass_fds: Sequence[int] = ()
) -> TtyProcess:
    """Start `argv` on a new pseudo-terminal that becomes its controlling terminal (in a new session)."""
    master, slave = os.openpty()
    try:
        # `setsid --ctty` (util-linux) makes the terminal on stdin the controlling one; a preexec_fn
        # would do the same but runs before stdio is set up under uvloop
        proc = await asyncio.create_subprocess_exec(
            "setsid",
            "--ctty",
            *argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={"TERM": "xterm", **env},
            cwd=cwd,
            pass_fds=tuple(pass_fds),
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    reader = asyncio.StreamReader()
    asyncio.get_running_loop().add_reader(master, _read_into, master, reader)
    return TtyProcess(proc, master, reader, _TtyStdin(master))
