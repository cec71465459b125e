"""An apiserver set up as the launcher sets it up (TLS on a secure port, client CA, ServiceAccount keys, a
static token file, the ServiceAccount admission plug-in) on its own etcd, and kubectl with the admin
kubeconfig. The PKI also holds what kubelets serving TLS need: a serving certificate per node (for
127.0.0.1) and the apiserver's kubelet client certificate (`kubelet_client_flags` names them)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Kubectl
from tinykube.cluster import write_kubeconfig
from tinykube.pki import APISERVER_KUBELET_CLIENT, ClientIdentity, ClusterPKI, client_identities, kubelet_serving
from tinykube.procs import Process, free_port, secure_port_of, start_apiserver, start_etcd

ISSUER = "https://kubernetes.default.svc.cluster.local"
STATIC_TOKEN = "static-token-for-tests"


@dataclass
class SecureApiserver:
    """The secure apiserver of one test module."""

    url: str  # https
    insecure: str  # http on 127.0.0.1: full access, for setting things up
    pki: ClusterPKI
    kubeconfig: Path  # the admin's
    process: Process

    def tls(self, client: str | None = "admin") -> ssl.SSLContext:
        """An SSL context trusting the cluster CA, presenting `client`'s certificate (None: no certificate)."""
        ctx = ssl.create_default_context(cafile=str(self.pki.ca.cert))
        if client:
            pair = self.pki.client(client)
            ctx.load_cert_chain(pair.cert, pair.key)
        return ctx

    def http(self, client: str | None = "admin", token: str | None = None) -> httpx.AsyncClient:
        """An async client of the secure port as `client` (a certificate) or with a bearer token."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, verify=self.tls(client), headers=headers, timeout=10)


def jwt_claims(token: str) -> dict[str, Any]:
    """The (unverified) claims of a JWT."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def kubelet_client_flags(pki_dir: Path) -> tuple[str, ...]:
    """The apiserver's `--kubelet-*` flags for the PKI under `pki_dir`: HTTPS to kubelets as kubeadm's
    apiserver-kubelet-client, their serving certificates checked against the cluster CA."""
    pki = ClusterPKI(pki_dir)
    client = pki.client(APISERVER_KUBELET_CLIENT.file)
    return (
        "--kubelet-client-certificate",
        str(client.cert),
        "--kubelet-client-key",
        str(client.key),
        "--kubelet-certificate-authority",
        str(pki.ca.cert),
    )


def start_secure_apiserver(root: Path, extra: tuple[str, ...] = ()) -> tuple[SecureApiserver, Process]:
    """etcd and an apiserver with every identity flag, under `root`; returns the apiserver and etcd."""
    pki = ClusterPKI(root / "pki")
    pki.ensure(
        ips=["127.0.0.1"],
        dns_names=["localhost", "kubernetes.default.svc"],
        clients=[
            *client_identities(["node-1", "node-2"]),
            ClientIdentity("stranger", "stranger", ("devs",)),
            APISERVER_KUBELET_CLIENT,
        ],
        servers=[kubelet_serving("node-1", ["127.0.0.1"]), kubelet_serving("node-2", ["127.0.0.1"])],
    )
    tokens = root / "tokens.csv"
    tokens.write_text(f'{STATIC_TOKEN},alice,1001,"devs,ops"\n')
    etcd, etcd_url = start_etcd(root, free_port(), free_port())
    args = [
        "--bind-address",
        "127.0.0.1",
        "--tls-cert-file",
        str(pki.apiserver.cert),
        "--tls-private-key-file",
        str(pki.apiserver.key),
        "--client-ca-file",
        str(pki.ca.cert),
        "--service-account-key-file",
        str(pki.sa_pub),
        "--service-account-signing-key-file",
        str(pki.sa_key),
        "--service-account-issuer",
        ISSUER,
        "--token-auth-file",
        str(tokens),
        *extra,
    ]
    try:
        proc, insecure = start_apiserver(root, etcd_url, extra=args, service_accounts=True, pick_secure_port=True)
    except BaseException:
        etcd.stop()
        raise
    secure_port = secure_port_of(proc)
    url = f"https://127.0.0.1:{secure_port}"
    kubeconfig = root / "kubeconfig"
    write_kubeconfig(kubeconfig, url, ca=pki.ca.cert, client=pki.client("admin"), user="admin")
    return SecureApiserver(url, insecure, pki, kubeconfig, proc), etcd


@contextlib.contextmanager
def secure_apiserver(tmp_path_factory: pytest.TempPathFactory, *extra: str) -> Iterator[SecureApiserver]:
    """A secure apiserver (and its etcd) for as long as the block runs."""
    server, etcd = start_secure_apiserver(tmp_path_factory.mktemp("secure"), extra)
    try:
        yield server
    finally:
        server.process.stop()
        etcd.stop()


def admin_kubectl(kubectl_binary: Path, secure: SecureApiserver, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """The real kubectl with the admin kubeconfig (https, the cluster CA, the admin's certificate)."""
    root = tmp_path_factory.mktemp("kubectl")
    home = root / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "KUBECONFIG": str(secure.kubeconfig),
        "LANG": "C.UTF-8",
    }
    return Kubectl(kubectl_binary, secure.url, root / "cache", home, env)
