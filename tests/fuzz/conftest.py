"""The fuzz suite's own etcd and apiserver (its objects must not reach other tests), and its tally."""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tinykube.procs import Process, start_apiserver, start_etcd


class Tally:
    """What the fuzz cases sent and what came back."""

    def __init__(self) -> None:
        self.cases: collections.Counter[str] = collections.Counter()
        self.codes: collections.Counter[str] = collections.Counter()

    def case(self, suite: str) -> None:
        """Count one generated case of a suite."""
        self.cases[suite] += 1

    def answer(self, code: int) -> None:
        """Count one HTTP answer by class (2xx, 4xx, 5xx…)."""
        self.codes[f"{code // 100}xx"] += 1

    def summary(self) -> dict[str, object]:
        """Counts as a dict."""
        return {"cases": dict(self.cases), "total_cases": sum(self.cases.values()), "answers": dict(self.codes)}


@pytest.fixture(scope="session")
def tally() -> Iterator[Tally]:
    """Counts of the whole fuzz run, printed (and written to $TINYKUBE_FUZZ_STATS) at the end."""
    t = Tally()
    yield t
    summary = t.summary()
    print(f"\nfuzz: {json.dumps(summary)}")
    if os.environ.get("TINYKUBE_FUZZ_STATS"):
        Path(os.environ["TINYKUBE_FUZZ_STATS"]).write_text(json.dumps(summary, indent=2))


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Process, str]]:
    """A fresh etcd and apiserver for the fuzzers."""
    etcd, etcd_url = start_etcd(tmp_path_factory.mktemp("fuzz-etcd"))
    try:
        proc, url = start_apiserver(tmp_path_factory.mktemp("fuzz-apiserver"), etcd_url)
        try:
            yield proc, url
        finally:
            proc.stop()
    finally:
        etcd.stop()


@pytest.fixture(scope="session")
def fuzz_client(fuzz_server: tuple[Process, str]) -> Iterator[httpx.Client]:
    """A client of the fuzz apiserver, with the `fuzz` namespace made; one connection (it must stay usable)."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=fuzz_server[1], timeout=15, limits=limits) as client:
        r = client.post(
            "/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fuzz"}}
        )
        assert r.status_code == 201, r.text
        yield client
