"""A fixed-length response leaves in one write (on TLS: one record), chunked and HEAD ones as uvicorn sends them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from apimachinery.tlsserving import _OneWriteResponses


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def cycle(method: str = "GET", chunked: bool | None = False, length: int = 4) -> Any:
    return SimpleNamespace(
        response_started=False, chunked_encoding=chunked, expected_content_length=length, scope={"method": method}
    )


def test_head_and_body_of_a_fixed_length_response_go_out_together() -> None:
    real, c = Recorder(), cycle()
    t = _OneWriteResponses(real, c)  # type: ignore[arg-type]
    t.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # before the response starts: at once
    c.response_started = True
    t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n")
    assert real.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    t.write(b"body")
    assert real.writes[1:] == [b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbody"]
    assert not t.is_closing()  # everything else is the real transport's


def test_chunked_and_head_responses_are_not_held() -> None:
    for c in (cycle(chunked=True, length=0), cycle(method="HEAD"), cycle(length=0)):
        real = Recorder()
        t = _OneWriteResponses(real, c)  # type: ignore[arg-type]
        c.response_started = True
        t.write(b"head")
        assert real.writes == [b"head"]


def test_close_sends_a_held_head_first() -> None:
    real, c = Recorder(), cycle()
    t = _OneWriteResponses(real, c)  # type: ignore[arg-type]
    c.response_started = True
    t.write(b"head")
    t.close()
    assert real.writes == [b"head"] and real.closed


class PlainTransport(Recorder):
    """A plain TCP connection's transport as uvicorn's protocol asks it; `body_written` once the body is out."""

    def __init__(self) -> None:
        super().__init__()
        import asyncio

        self.body_written = asyncio.Event()

    def write(self, data: bytes) -> None:
        super().write(data)
        if data.endswith(b"body"):
            self.body_written.set()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def test_a_plain_connection_writes_a_fixed_length_response_at_once() -> None:
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    from apimachinery.tlsserving import TLSHttpProtocol

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
        await send({"type": "http.response.body", "body": b"body"})

    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    config.load()
    protocol = TLSHttpProtocol(config, ServerState(), {})
    transport = PlainTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    async with asyncio.timeout(5):
        await transport.body_written.wait()
    assert len(transport.writes) == 1
    head, body = transport.writes[0].split(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and body == b"body"
    protocol.connection_lost(None)
