"""Helpers of the hardening tests: apiservers with extra flags on a busy machine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tinykube.procs import Process, start_apiserver


def start_apiserver_retrying(data_dir: Path, etcd_url: str, extra: Sequence[str] = ()) -> tuple[Process, str]:
    """start_apiserver, again on another free port when another process took the first between pick and bind."""
    for attempt in range(3):
        try:
            return start_apiserver(data_dir / f"try{attempt}", etcd_url, extra=extra)
        except RuntimeError as e:
            if "address already in use" not in str(e) or attempt == 2:
                raise
    raise AssertionError("not reached")
