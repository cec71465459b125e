"""The etcd a cluster starts (`tinykube.procs.start_etcd`) runs its Go scheduler on half the CPUs, unless the
environment says how many."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tinykube.procs import start_etcd


def _gomaxprocs_of(pid: int) -> str | None:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = [e.split(b"=", 1)[1].decode() for e in environ if e.startswith(b"GOMAXPROCS=")]
    return found[0] if found else None


@pytest.mark.parametrize("given", [None, "3"], ids=["unset", "set"])
def test_etcd_runs_on_half_the_cpus_unless_told(
    given: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if given is None:
        monkeypatch.delenv("GOMAXPROCS", raising=False)
    else:
        monkeypatch.setenv("GOMAXPROCS", given)
    proc, _ = start_etcd(tmp_path)
    try:
        expected = given or str(max(1, len(os.sched_getaffinity(0)) // 2))
        assert _gomaxprocs_of(proc.pid) == expected
    finally:
        proc.stop()
