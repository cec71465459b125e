"""A live watch's direct writes: a lone event goes out at once, a burst in one chunk per flush interval."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from apiserver.watch import _DirectSender

INTERVAL = 0.2  # wide, so the burst below lands well inside one interval on a loaded machine


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return False


class _Frames:
    def event(self, ev_type: str, obj: dict[str, Any], shared: Any = None) -> bytes:
        return f"{ev_type} {obj['n']}\n".encode()


def _sender() -> tuple[_DirectSender, _Transport]:
    transport = _Transport()
    cycle = SimpleNamespace(
        flow=SimpleNamespace(write_paused=False), disconnected=False, response_complete=False, transport=transport
    )
    return _DirectSender(cycle, _Frames(), INTERVAL), transport  # type: ignore[arg-type]


def _chunk(*frames: bytes) -> bytes:
    data = b"".join(frames)
    return b"%x\r\n%b\r\n" % (len(data), data)


async def test_a_lone_event_goes_out_in_the_same_loop_turn() -> None:
    sender, transport = _sender()
    assert sender.offer(("ADDED", {"n": 1}, None))
    await asyncio.sleep(0)
    assert transport.writes == [_chunk(b"ADDED 1\n")]


async def test_a_burst_goes_out_as_one_chunk_once_the_interval_has_passed() -> None:
    sender, transport = _sender()
    sender.offer(("ADDED", {"n": 1}, None))
    await asyncio.sleep(0)
    for n in (2, 3, 4):
        assert sender.offer(("MODIFIED", {"n": n}, None))
    await asyncio.sleep(0)
    assert len(transport.writes) == 1  # held: the last chunk went out less than an interval ago
    await asyncio.sleep(INTERVAL * 1.5)
    assert transport.writes[1:] == [_chunk(b"MODIFIED 2\n", b"MODIFIED 3\n", b"MODIFIED 4\n")]


async def test_after_a_quiet_spell_the_next_event_goes_out_at_once() -> None:
    sender, transport = _sender()
    sender.offer(("ADDED", {"n": 1}, None))
    await asyncio.sleep(INTERVAL * 1.5)
    sender.offer(("MODIFIED", {"n": 2}, None))
    await asyncio.sleep(0)
    assert transport.writes == [_chunk(b"ADDED 1\n"), _chunk(b"MODIFIED 2\n")]


async def test_what_the_stream_takes_before_the_flush_is_not_written_twice() -> None:
    sender, transport = _sender()
    sender.offer(("ADDED", {"n": 1}, None))
    await asyncio.sleep(0)
    sender.offer(("MODIFIED", {"n": 2}, None))
    assert sender.take() == [b"MODIFIED 2\n"]  # the watch's stream woke first and sends it itself
    await asyncio.sleep(INTERVAL * 1.5)
    assert transport.writes == [_chunk(b"ADDED 1\n")]
