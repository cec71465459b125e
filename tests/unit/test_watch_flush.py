"""Live watches' direct writes: a lone event goes out at once, a burst in one chunk per flush interval, and
watches are written in the order their events were dispatched."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from apiserver.watch import _DirectSender, _FlushRounds

INTERVAL = 0.2  # wide, so each burst below lands well inside one interval on a loaded machine


class _Transport:
    def __init__(self, name: str, log: list[tuple[str, bytes]]) -> None:
        self.name, self.log = name, log

    def write(self, data: bytes) -> None:
        self.log.append((self.name, data))

    def is_closing(self) -> bool:
        return False


class _Frames:
    def event(self, ev_type: str, obj: dict[str, Any], shared: Any = None) -> bytes:
        return f"{ev_type} {obj['n']}\n".encode()


def _senders(*names: str) -> tuple[list[_DirectSender], list[tuple[str, bytes]]]:
    """Direct senders of one loop's flush rounds, each writing to a transport that logs into one list."""
    log: list[tuple[str, bytes]] = []
    rounds = _FlushRounds(asyncio.get_running_loop(), INTERVAL)
    senders = []
    for name in names:
        cycle = SimpleNamespace(
            flow=SimpleNamespace(write_paused=False),
            disconnected=False,
            response_complete=False,
            transport=_Transport(name, log),
        )
        senders.append(_DirectSender(cycle, _Frames(), rounds))  # type: ignore[arg-type]
    return senders, log


def _chunk(*frames: bytes) -> bytes:
    data = b"".join(frames)
    return b"%x\r\n%b\r\n" % (len(data), data)


async def test_a_lone_event_goes_out_in_the_same_loop_turn() -> None:
    (sender,), log = _senders("a")
    assert sender.offer(("ADDED", {"n": 1}, None))
    await asyncio.sleep(0)
    assert log == [("a", _chunk(b"ADDED 1\n"))]


async def test_a_burst_goes_out_as_one_chunk_once_the_interval_has_passed() -> None:
    (sender,), log = _senders("a")
    sender.offer(("ADDED", {"n": 1}, None))
    await asyncio.sleep(0)
    for n in (2, 3, 4):
        assert sender.offer(("MODIFIED", {"n": n}, None))
    await asyncio.sleep(0)
    assert len(log) == 1  # held: the last round was less than an interval ago
    await asyncio.sleep(INTERVAL * 1.5)
    assert log[1:] == [("a", _chunk(b"MODIFIED 2\n", b"MODIFIED 3\n", b"MODIFIED 4\n"))]


async def test_after_a_quiet_spell_the_next_event_goes_out_at_once() -> None:
    (sender,), log = _senders("a")
    sender.offer(("ADDED", {"n": 1}, None))
    await asyncio.sleep(INTERVAL * 1.5)
    sender.offer(("MODIFIED", {"n": 2}, None))
    await asyncio.sleep(0)
    assert log == [("a", _chunk(b"ADDED 1\n")), ("a", _chunk(b"MODIFIED 2\n"))]


async def test_what_the_stream_takes_before_the_round_is_not_written_twice() -> None:
    (sender,), log = _senders("a")
    sender.offer(("ADDED", {"n": 1}, None))
    await asyncio.sleep(0)
    sender.offer(("MODIFIED", {"n": 2}, None))
    assert sender.take() == [b"MODIFIED 2\n"]  # the watch's stream woke first and sends it itself
    await asyncio.sleep(INTERVAL * 1.5)
    assert log == [("a", _chunk(b"ADDED 1\n"))]


async def test_an_event_is_not_written_after_one_dispatched_later_on_another_watch() -> None:
    """A dependent created before its owner is deleted reaches a garbage collector's watch first."""
    (pods, owners), log = _senders("pods", "replicasets")
    pods.offer(("ADDED", {"n": 1}, None))
    await asyncio.sleep(0)  # the pods watch was just written: its next event waits for the interval
    pods.offer(("ADDED", {"n": 2}, None))
    owners.offer(("MODIFIED", {"n": 3}, None))  # quiet until now, but it waits for the same round
    await asyncio.sleep(0)
    assert log == [("pods", _chunk(b"ADDED 1\n"))]
    await asyncio.sleep(INTERVAL * 1.5)
    assert log[1:] == [("pods", _chunk(b"ADDED 2\n")), ("replicasets", _chunk(b"MODIFIED 3\n"))]
