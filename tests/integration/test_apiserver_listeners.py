"""The apiserver's listeners: a port another process listens on first ends the apiserver instead of leaving it
serving without that port, and `/readyz` waits for every listener (`app.state.all_listening`).

Each listener's socket is bound early (SO_REUSEADDR) and listens once the app has started. Linux lets another
SO_REUSEADDR socket bind the same port while neither listens; whichever listens first has the port, and uvloop
reports the loser's failed listen() by closing its socket, without an error. Seen in CI: a secure port taken that
way left an apiserver serving only its insecure port, and every TLS client met another server's plain HTTP."""

from __future__ import annotations

import asyncio
import socket

from fastapi import FastAPI

from apimachinery.eventloop import uvloop_factory
from apiserver.__main__ import _listener, _serve
from apiserver.chain.listener import INSECURE
from apiserver.httpserver import bind_socket
from apiserver.limits import ServingLimits


def _taken_after_bind() -> tuple[socket.socket, socket.socket]:
    """A socket bound as the apiserver binds its own, and another process's socket on the same port that
    listens before it does: (the apiserver's, the other's)."""
    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    other.bind(("127.0.0.1", 0))
    ours = bind_socket("127.0.0.1", other.getsockname()[1], reuse_port=False)
    other.listen(8)
    return ours, other


def test_a_port_taken_before_it_listens_stops_every_listener() -> None:
    app = FastAPI()
    first = bind_socket("127.0.0.1", 0, reuse_port=False)
    taken, other = _taken_after_bind()
    servers = [_listener(app, INSECURE, first, ServingLimits()), _listener(app, INSECURE, taken, ServingLimits())]
    try:
        with asyncio.Runner(loop_factory=uvloop_factory()) as runner:
            runner.run(asyncio.wait_for(_serve(servers), 30))  # returns: the listener that did listen stopped too
        assert servers[1].failed and not servers[0].failed
        assert app.state.all_listening is False
    finally:
        other.close()


def test_every_listener_listening_is_said_once_all_listen() -> None:
    app = FastAPI()
    servers = [_listener(app, INSECURE, bind_socket("127.0.0.1", 0, reuse_port=False), ServingLimits()) for _ in "ab"]

    async def scenario() -> None:
        serving = asyncio.create_task(_serve(servers))
        async with asyncio.timeout(30):
            while not getattr(app.state, "all_listening", False):  # noqa: ASYNC110 (a plain flag, as readyz reads it)
                await asyncio.sleep(0.01)
        for server in servers:
            assert server.listening.is_set()
            server.should_exit = True
        await asyncio.wait_for(serving, 30)

    with asyncio.Runner(loop_factory=uvloop_factory()) as runner:
        runner.run(scenario())
    assert not any(server.failed for server in servers)
