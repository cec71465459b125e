"""Fixtures for the client tests: an ApiClient on the session apiserver, and a leaked-task check."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from client.backoff import Backoff
from client.rest import ApiClient, RetryPolicy

FAST_RETRY = RetryPolicy(max_attempts=3, backoff=Backoff(initial=0.01, cap=0.05))


@pytest.fixture
async def kube(apiserver: str) -> AsyncIterator[ApiClient]:
    """An ApiClient on the session's apiserver."""
    async with ApiClient(apiserver, retry=FAST_RETRY) as api:
        yield api


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running (informers, electors, queues not stopped)."""
    before = asyncio.all_tasks()
    yield
    new = asyncio.all_tasks() - before - {asyncio.current_task()}
    if new:  # e.g. the loop finalizing an abandoned async generator: let those finish
        _, leaked = await asyncio.wait(new, timeout=1.0)
        for t in leaked:
            t.cancel()
        assert not leaked, f"leaked tasks: {leaked}"
