"""Helpers of the hardening tests: etcd clusters, PKI for etcd, and freezing a process on a busy machine."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.controller_kit import eventually
from tinykube.procs import Process, free_port, wait_ready


async def freeze(pid: int, timeout: float = 10.0) -> None:
    """SIGSTOP a process and return once every one of its threads is stopped.

    The kernel hands SIGSTOP to one thread, and the others stop only once that thread takes it: on a busy
    machine, or while it sleeps uninterruptibly (an fsync), a multi-threaded etcd answers calls meanwhile."""
    os.kill(pid, signal.SIGSTOP)
    what = f"every thread of process {pid} stopped"
    await eventually(lambda: asyncio.to_thread(_all_threads_stopped, pid), timeout, what)


def _all_threads_stopped(pid: int) -> bool:
    tasks = Path(f"/proc/{pid}/task")
    for stat in tasks.glob("*/stat"):
        try:
            state = stat.read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):  # the thread ended
            continue
        if state not in ("T", "t"):
            return False
    return True


@dataclass
class EtcdMember:
    """One member of a test etcd cluster."""

    name: str
    client_url: str
    peer_url: str
    proc: Process | None = None


@dataclass
class EtcdCluster:
    """A 3-member etcd cluster on loopback (free ports, its own data dirs)."""

    members: list[EtcdMember] = field(default_factory=list)

    @property
    def servers(self) -> str:
        """`--etcd-servers` for every member."""
        return ",".join(m.client_url for m in self.members)

    def alive(self) -> list[EtcdMember]:
        """Members whose process runs."""
        return [m for m in self.members if m.proc is not None and m.proc.alive()]

    def leader(self) -> EtcdMember:
        """The member that leads now (asked with etcdctl)."""
        endpoints = ",".join(m.client_url for m in self.alive())
        out = subprocess.run(
            ["etcdctl", "--endpoints", endpoints, "endpoint", "status", "-w", "json"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        for status in json.loads(out):
            if status["Status"]["leader"] == status["Status"]["header"]["member_id"]:
                return next(m for m in self.members if m.client_url == status["Endpoint"])
        raise AssertionError(f"no leader among {endpoints}: {out}")

    def stop(self) -> None:
        """Stop every member."""
        for m in self.members:
            if m.proc is not None:
                m.proc.stop()


def start_etcd_cluster(data_dir: Path, size: int = 3) -> EtcdCluster:
    """Start `size` etcd members as one cluster and wait until it answers."""
    token = f"tinykube-{uuid.uuid4().hex[:8]}"
    cluster = EtcdCluster(
        [EtcdMember(f"m{i}", f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}") for i in range(size)]
    )
    initial = ",".join(f"{m.name}={m.peer_url}" for m in cluster.members)
    binary = shutil.which("etcd") or "/usr/bin/etcd"
    for m in cluster.members:
        argv = [
            binary,
            "--name", m.name,
            "--data-dir", str(data_dir / m.name),
            "--listen-client-urls", m.client_url,
            "--advertise-client-urls", m.client_url,
            "--listen-peer-urls", m.peer_url,
            "--initial-advertise-peer-urls", m.peer_url,
            "--initial-cluster", initial,
            "--initial-cluster-token", token,
            "--initial-cluster-state", "new",
            "--heartbeat-interval", "50",
            "--election-timeout", "500",
            "--log-level", "warn",
            "--logger", "zap",
        ]  # fmt: skip
        m.proc = Process(f"etcd-{m.name}", argv, data_dir / "logs" / f"{m.name}.log")
    for m in cluster.members:
        assert m.proc is not None
        wait_ready(f"{m.client_url}/health", m.proc)
    return cluster


def make_pki(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (PEM files), made with `cryptography`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("tinykube-test-ca"))
        .issuer_name(name("tinykube-test-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    out = {"ca": directory / "ca.crt"}
    out["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for role, usage in (("server", ExtendedKeyUsageOID.SERVER_AUTH), ("client", ExtendedKeyUsageOID.CLIENT_AUTH)):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(f"tinykube-test-{role}"))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if role == "server":
            sans = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        out[f"{role}_cert"] = directory / f"{role}.crt"
        out[f"{role}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out[f"{role}_key"] = write_key(key, directory / f"{role}.key")
    return out


def etcdctl_get(endpoint: str, key: str, *tls: str) -> bytes:
    """The raw value etcd holds at `key` (etcdctl, bypassing the apiserver)."""
    return subprocess.run(
        ["etcdctl", "--endpoints", endpoint, *tls, "get", key, "--print-value-only"],
        capture_output=True,
        timeout=10,
        check=True,
    ).stdout
