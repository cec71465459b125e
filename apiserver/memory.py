"""Giving memory back to the system after large requests (glibc's malloc).

A burst of multi-megabyte bodies leaves glibc holding the freed memory: its mmap threshold grows to
the largest block freed (so later large buffers come from the heap, not from mmap), and free heap
pages are only returned from the top of the heap. `configure` pins the threshold (large buffers are
always mmapped and unmapped when freed) and `Trimmer` runs `malloc_trim(0)` once after a spell of
large requests, which returns every free page. Elsewhere than glibc both do nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import sys

__all__ = ["LARGE_REQUEST_BYTES", "Trimmer", "configure"]

log = logging.getLogger("apiserver.memory")

M_MMAP_THRESHOLD = -3  # mallopt parameter (glibc malloc.h)
LARGE_REQUEST_BYTES = 256 * 1024  # a body this large is followed by a trim
_MMAP_THRESHOLD = 256 * 1024


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only (musl has no malloc_trim)
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def configure() -> None:
    """Pin glibc's mmap threshold so large buffers go back to the system as soon as they are freed."""
    if _LIBC is not None and not _LIBC.mallopt(M_MMAP_THRESHOLD, _MMAP_THRESHOLD):
        log.warning("mallopt(M_MMAP_THRESHOLD) failed; freed memory may be kept longer")


class Trimmer:
    """Runs malloc_trim(0) once, shortly after the last of a spell of large requests."""

    def __init__(self, delay: float = 0.5) -> None:
        self._delay = delay
        self._pending: asyncio.TimerHandle | None = None

    def soon(self) -> None:
        """Ask for a trim once the current work is done (several asks make one trim)."""
        if _LIBC is None or self._pending is not None:
            return
        self._pending = asyncio.get_running_loop().call_later(self._delay, self._trim)

    def _trim(self) -> None:
        self._pending = None
        if _LIBC is not None:
            _LIBC.malloc_trim(0)
