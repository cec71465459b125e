"""etcd over TLS with client certificates, and Secrets encrypted at rest (EncryptionConfiguration)."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.harden_kit import etcdctl_get, make_pki
from tinykube.procs import Process, free_port, start_apiserver, start_etcd

PLAINTEXT = "correct-horse-battery-staple"


def _secret(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"password": PLAINTEXT}}


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _config(path: Path, providers: str) -> Path:
    path.write_text(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
        f"  - resources: [secrets]\n    providers:\n{providers}"
    )
    return path


@pytest.fixture
def own_etcd(tmp_path: Path) -> Iterator[str]:
    """An etcd of this test's own (encrypted values must not reach the session's apiserver)."""
    proc, url = start_etcd(tmp_path / "etcd")
    yield url
    proc.stop()


async def _start(tmp: Path, etcd: str, *extra: str) -> tuple[Process, str]:
    return await asyncio.to_thread(start_apiserver, tmp, etcd, None, list(extra))


async def test_secrets_are_encrypted_at_rest_and_survive_a_restart(own_etcd: str, tmp_path: Path) -> None:
    aescbc = f"      - aescbc:\n          keys:\n            - name: key1\n              secret: {_key()}\n"
    identity = "      - identity: {}\n"
    # a Secret written before encryption was turned on
    proc, url = await _start(tmp_path / "a0", own_etcd)
    async with httpx.AsyncClient(base_url=url, timeout=10) as api:
        await api.post("/api/v1/namespaces/default/secrets", json=_secret("before"))
    proc.stop()

    config = _config(tmp_path / "enc.yaml", aescbc + identity)
    proc, url = await _start(tmp_path / "a1", own_etcd, "--encryption-provider-config", str(config))
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as api:
            r = await api.post("/api/v1/namespaces/default/secrets", json=_secret("s1"))
            assert r.status_code == 201, r.text
            cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": PLAINTEXT}}
            assert (await api.post("/api/v1/namespaces/default/configmaps", json=cm)).status_code == 201
            # the old plaintext Secret is still readable (identity listed last)
            r = await api.get("/api/v1/namespaces/default/secrets/before")
            assert r.status_code == 200 and _password(r.json()) == PLAINTEXT
    finally:
        proc.stop()

    stored = await asyncio.to_thread(etcdctl_get, own_etcd, "/registry/secrets/default/s1")
    assert stored.startswith(b"k8s:enc:aescbc:v1:key1:"), stored[:60]
    assert PLAINTEXT.encode() not in stored and base64.b64encode(PLAINTEXT.encode()) not in stored
    # not every resource: ConfigMaps were not listed
    assert PLAINTEXT.encode() in await asyncio.to_thread(etcdctl_get, own_etcd, "/registry/configmaps/default/c")

    # a restart reads it back (from etcd and through the watch cache's list)
    proc, url = await _start(tmp_path / "a2", own_etcd, "--encryption-provider-config", str(config))
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as api:
            r = await api.get("/api/v1/namespaces/default/secrets/s1")
            assert r.status_code == 200 and _password(r.json()) == PLAINTEXT
            items = (await api.get("/api/v1/namespaces/default/secrets")).json()["items"]
            assert {i["metadata"]["name"]: _password(i) for i in items} == {"before": PLAINTEXT, "s1": PLAINTEXT}
    finally:
        proc.stop()

    # key rotation: secretbox first (new writes), aescbc kept to read the old values
    secretbox = f"      - secretbox:\n          keys:\n            - name: key2\n              secret: {_key()}\n"
    rotated = _config(tmp_path / "rotated.yaml", secretbox + aescbc + identity)
    proc, url = await _start(tmp_path / "a3", own_etcd, "--encryption-provider-config", str(rotated))
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as api:
            r = await api.get("/api/v1/namespaces/default/secrets/s1")
            assert r.status_code == 200 and _password(r.json()) == PLAINTEXT
            assert (await api.post("/api/v1/namespaces/default/secrets", json=_secret("s2"))).status_code == 201
    finally:
        proc.stop()
    stored = await asyncio.to_thread(etcdctl_get, own_etcd, "/registry/secrets/default/s2")
    assert stored.startswith(b"k8s:enc:secretbox:v1:key2:") and PLAINTEXT.encode() not in stored


def _password(secret: dict) -> str:
    return base64.b64decode(secret["data"]["password"]).decode()


def test_a_bad_encryption_config_is_refused_at_start(tmp_path: Path, own_etcd: str) -> None:
    bad = _config(
        tmp_path / "bad.yaml",
        "      - aescbc:\n          keys:\n            - name: k\n              secret: c2hvcnQ=\n",
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "apiserver",
            "--etcd-servers",
            own_etcd,
            "--port",
            str(free_port()),
            "--encryption-provider-config",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "500"},
    )
    assert out.returncode != 0
    assert "must be 16 or 24 or 32 bytes" in out.stderr


async def test_etcd_over_tls_with_client_certificates(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    client_port, peer_port = free_port(), free_port()
    url = f"https://127.0.0.1:{client_port}"
    argv = [
        "etcd",
        "--name", "tls",
        "--data-dir", str(tmp_path / "etcd"),
        "--listen-client-urls", url,
        "--advertise-client-urls", url,
        "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-cluster", f"tls=http://127.0.0.1:{peer_port}",
        "--cert-file", str(pki["server_cert"]),
        "--key-file", str(pki["server_key"]),
        "--trusted-ca-file", str(pki["ca"]),
        "--client-cert-auth",
        "--log-level", "warn",
        "--logger", "zap",
    ]  # fmt: skip
    etcd = Process("etcd-tls", argv, tmp_path / "logs" / "etcd.log")
    tls = ["--cacert", str(pki["ca"]), "--cert", str(pki["client_cert"]), "--key", str(pki["client_key"])]
    try:
        await asyncio.to_thread(_wait_tls_etcd, url, etcd, tls)
        proc, api_url = await _start(
            tmp_path / "apiserver",
            url,
            "--etcd-cafile",
            str(pki["ca"]),
            "--etcd-certfile",
            str(pki["client_cert"]),
            "--etcd-keyfile",
            str(pki["client_key"]),
        )
        try:
            async with httpx.AsyncClient(base_url=api_url, timeout=10) as api:
                cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "over-tls"}}
                assert (await api.post("/api/v1/namespaces/default/configmaps", json=cm)).status_code == 201
            stored = await asyncio.to_thread(etcdctl_get, url, "/registry/configmaps/default/over-tls", *tls)
            assert b'"over-tls"' in stored
        finally:
            proc.stop()
    finally:
        etcd.stop()


def _wait_tls_etcd(url: str, etcd: Process, tls: list[str]) -> None:
    """Poll etcdctl over TLS until the member is healthy."""
    for _ in range(200):
        if not etcd.alive():
            raise RuntimeError(etcd.tail())
        ok = subprocess.run(
            ["etcdctl", "--endpoints", url, *tls, "endpoint", "health"], capture_output=True, timeout=10
        )
        if ok.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"etcd over TLS not healthy: {etcd.tail()}")
