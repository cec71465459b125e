"""The apiserver's listeners: a port another process listens on first ends the apiserver instead of leaving it
serving without that port, and `/readyz` waits for every listener (`app.state.all_listening`).

Each listener's socket is bound early (SO_REUSEADDR) and listens once the app has started. Linux lets another
SO_REUSEADDR socket bind the same port while neither listens; whichever listens first has the port, and uvloop
reports the loser's failed listen() by closing its socket, without an error. Seen in CI: a secure port taken that
way left an apiserver serving only its insecure port, and every TLS client met another server's plain HTTP.

Each scenario runs `_serve` on uvloop in a child process of its own, with a deadline: uvicorn takes the signals
of the process it serves in, and a listener that never stops would otherwise hold the test run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRELUDE = """
import asyncio, socket
from fastapi import FastAPI
from apimachinery.eventloop import uvloop_factory
from apiserver.__main__ import _listener, _serve
from apiserver.chain.listener import INSECURE
from apimachinery.httpserver import ServingLimits, bind_socket

app = FastAPI()

def listener(sock):
    return _listener(app, INSECURE, sock, ServingLimits())

def run(coro):
    with asyncio.Runner(loop_factory=uvloop_factory()) as runner:
        return runner.run(coro)
"""

TAKEN = """
other = socket.socket()
other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
other.bind(("127.0.0.1", 0))
taken = bind_socket("127.0.0.1", other.getsockname()[1], reuse_port=False)  # as the apiserver binds its ports
other.listen(8)  # another process listens first
servers = [listener(bind_socket("127.0.0.1", 0, reuse_port=False)), listener(taken)]
run(_serve(servers))  # returns: the listener that did listen was stopped too
print([server.failed for server in servers], app.state.all_listening)
"""

TAKEN_FIRST = """
other = socket.socket()
other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
other.bind(("127.0.0.1", 0))
taken = bind_socket("127.0.0.1", other.getsockname()[1], reuse_port=False)
other.listen(8)
servers = [listener(taken), listener(bind_socket("127.0.0.1", 0, reuse_port=False))]
run(_serve(servers))  # returns: the first could not listen, the second never started
print([server.failed for server in servers], [server.listening.is_set() for server in servers])
"""

FREE = """
servers = [listener(bind_socket("127.0.0.1", 0, reuse_port=False)) for _ in "ab"]

async def scenario():
    serving = asyncio.create_task(_serve(servers))
    while not getattr(app.state, "all_listening", False):  # noqa: ASYNC110 (a plain flag, as readyz reads it)
        await asyncio.sleep(0.01)
    listening = [server.listening.is_set() for server in servers]
    for server in servers:
        server.should_exit = True
    await serving
    return listening

print(run(scenario()), [server.failed for server in servers])
"""


def _child(code: str) -> str:
    """What the scenario printed, run in a child process that must end within a minute."""
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE + code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_a_port_taken_before_it_listens_stops_every_listener() -> None:
    assert _child(TAKEN) == "[False, True] False"


def test_a_first_port_taken_starts_no_other_listener() -> None:
    assert _child(TAKEN_FIRST) == "[True, False] [False, False]"


def test_every_listener_listening_is_said_once_all_listen() -> None:
    assert _child(FREE) == "[True, True] [False, False]"
