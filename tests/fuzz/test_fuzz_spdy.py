"""Hypothesis on the SPDY/3.1 framer (apimachinery/spdy.py), in process: whatever bytes a client sends,
in whatever pieces, the framer gives frames or refuses with SpdyError — never another exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apimachinery import spdy

FUZZ = settings(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))

_VALID = [
    spdy.SynStream(1, {"streamtype": "error", "port": "80", "requestid": "0"}),
    spdy.SynStream(3, {"streamtype": "data", "port": "80", "requestid": "0"}),
    spdy.Data(1, b"", fin=True),
    spdy.Data(3, b"GET / HTTP/1.1\r\n\r\n"),
    spdy.Ping(1),
    spdy.RstStream(3, spdy.CANCEL),
    spdy.Settings(((0, 7, 65536),)),
    spdy.WindowUpdate(3, 1024),
    spdy.Headers(3, {"a": "b"}),
    spdy.GoAway(3),
]


def _wire() -> bytes:
    framer = spdy.Framer()
    return b"".join(framer.encode(f) for f in _VALID)


WIRE = _wire()


def _feed(pieces: list[bytes]) -> None:
    framer = spdy.Framer(max_buffer=64 * 1024)
    try:
        for piece in pieces:
            framer.feed(piece)
    except spdy.SpdyError:
        pass


@settings(FUZZ, max_examples=200)
@given(pieces=st.lists(st.binary(max_size=200), max_size=8))
def test_random_bytes(pieces: list[bytes]) -> None:
    _feed(pieces)


@settings(FUZZ, max_examples=200)
@given(
    flips=st.lists(st.tuples(st.integers(0, len(WIRE) - 1), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.integers(0, len(WIRE)),
    step=st.integers(1, 64),
)
def test_corrupted_kubectl_like_sessions(flips: list[tuple[int, int]], cut: int, step: int) -> None:
    wire = bytearray(WIRE)
    for at, value in flips:
        wire[at] = value
    data = bytes(wire[:cut])
    _feed([data[i : i + step] for i in range(0, len(data), step)])
