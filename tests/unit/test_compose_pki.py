"""The compose PKI step: what each service gets, and that a node gets no key of the cluster's."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from cryptography import x509

from tinykube.compose import make_pki


def server_of(kubeconfig: Path) -> str:
    """The kubeconfig's server URL."""
    return json.loads(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]


def test_pki_step_writes_each_consumer_what_it_needs_and_is_idempotent(tmp_path: Path) -> None:
    pki, out, nodes = tmp_path / "pki", tmp_path / "output", tmp_path / "nodes"
    out.mkdir()
    admin = make_pki(pki, out, ["node-1", "node-2"], nodes_dir=nodes, published_port=16443)

    assert admin == out / "kubeconfig"
    assert server_of(admin) == "https://127.0.0.1:16443"
    assert stat.S_IMODE(admin.stat().st_mode) == 0o600
    for name in ("kube-scheduler", "kube-controller-manager", "coredns"):
        assert server_of(pki / "kubeconfigs" / f"{name}.kubeconfig") == "https://apiserver:6443"
    served = x509.load_pem_x509_certificate((pki / "apiserver.crt").read_bytes())
    san = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"apiserver", "kubernetes.default.svc.cluster.local"} <= set(san.get_values_for_type(x509.DNSName))
    assert {"127.0.0.1", "10.96.0.1"} <= {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}

    for node in ("node-1", "node-2"):
        bundle = nodes / node
        assert sorted(p.name for p in bundle.iterdir()) == [
            "ca.crt",
            "kube-proxy.kubeconfig",
            "kubelet.crt",
            "kubelet.key",
            "kubelet.kubeconfig",
        ]
        user = json.loads((bundle / "kubelet.kubeconfig").read_text())["users"][0]["name"]
        assert user == f"system:node:{node}"
        assert server_of(bundle / "kubelet.kubeconfig") == "https://apiserver:6443"
        assert stat.S_IMODE((bundle / "kubelet.key").stat().st_mode) == 0o600

    ca_before = (pki / "ca.crt").read_bytes()
    make_pki(pki, out, ["node-1", "node-2"], nodes_dir=nodes, published_port=16443)
    assert (pki / "ca.crt").read_bytes() == ca_before, "a second run keeps the cluster's CA"
