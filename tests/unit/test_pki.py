"""The cluster PKI: made once, reused on restart, remade only where it no longer fits."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tinykube.pki import APISERVER_KUBELET_CLIENT, ClientIdentity, ClusterPKI, client_identities, kubelet_serving


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _make(tmp_path: Path, nodes: list[str], ips: list[str] | None = None) -> ClusterPKI:
    pki = ClusterPKI(tmp_path / "pki")
    pki.ensure(
        ips=ips or ["127.0.0.1", "127.96.0.1"],
        dns_names=["localhost", "kubernetes", "kubernetes.default.svc.cluster.local"],
        clients=client_identities(nodes),
    )
    return pki


def test_every_certificate_is_signed_by_the_ca_with_its_identity(tmp_path: Path) -> None:
    pki = _make(tmp_path, ["node-1", "node-2"])
    ca = _cert(pki.ca.cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    expected = {
        "admin": ("kubernetes-admin", ["system:masters"]),
        "kube-scheduler": ("system:kube-scheduler", []),
        "kube-controller-manager": ("system:kube-controller-manager", []),
        "kube-proxy": ("system:kube-proxy", []),
        "kubelet-node-1": ("system:node:node-1", ["system:nodes"]),
        "kubelet-node-2": ("system:node:node-2", ["system:nodes"]),
        "coredns": (
            "system:serviceaccount:kube-system:coredns",
            ["system:serviceaccounts", "system:serviceaccounts:kube-system"],
        ),
    }
    for file, (cn, orgs) in expected.items():
        cert = _cert(pki.client(file).cert)
        cert.verify_directly_issued_by(ca)
        assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [cn]
        assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == orgs
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        assert stat.S_IMODE(pki.client(file).key.stat().st_mode) == 0o600
    serving = _cert(pki.apiserver.cert)
    serving.verify_directly_issued_by(ca)
    san = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {
        "localhost",
        "kubernetes",
        "kubernetes.default.svc.cluster.local",
    }
    assert ipaddress.ip_address("127.96.0.1") in san.get_values_for_type(x509.IPAddress)
    assert isinstance(load_pem_private_key(pki.sa_key.read_bytes(), None), rsa.RSAPrivateKey)


def test_a_restart_reuses_everything_and_adds_only_what_is_new(tmp_path: Path) -> None:
    pki = _make(tmp_path, ["node-1"])
    files = {p.name: p.read_bytes() for p in pki.dir.iterdir()}
    _make(tmp_path, ["node-1"])
    assert {p.name: p.read_bytes() for p in pki.dir.iterdir()} == files
    # one more node: its certificate is made, nothing else changes
    _make(tmp_path, ["node-1", "node-2"])
    now = {p.name: p.read_bytes() for p in pki.dir.iterdir()}
    assert set(now) - set(files) == {"kubelet-node-2.crt", "kubelet-node-2.key"}
    assert all(now[name] == data for name, data in files.items())
    # a serving certificate missing an address is made again (same CA)
    _make(tmp_path, ["node-1", "node-2"], ["127.0.0.1", "127.96.0.1", "127.0.100.254"])
    assert pki.apiserver.cert.read_bytes() != files["apiserver.crt"]
    assert pki.ca.cert.read_bytes() == files["ca.crt"]


def test_a_certificate_of_another_ca_is_replaced(tmp_path: Path) -> None:
    pki = _make(tmp_path, ["node-1"])
    admin = pki.client("admin").cert.read_bytes()
    pki.ca.cert.unlink()
    _make(tmp_path, ["node-1"])
    assert pki.client("admin").cert.read_bytes() != admin
    _cert(pki.client("admin").cert).verify_directly_issued_by(_cert(pki.ca.cert))


def test_kubelets_serve_with_certificates_of_the_ca_and_the_apiserver_reaches_them_as_kubeadm_does(
    tmp_path: Path,
) -> None:
    pki = ClusterPKI(tmp_path / "pki")
    servers = [kubelet_serving("node-1", ["127.0.100.1"]), kubelet_serving("sim", ["127.128.0.1", "127.128.1.1"])]
    pki.ensure(ips=["127.0.0.1"], dns_names=[], clients=[APISERVER_KUBELET_CLIENT], servers=servers)
    ca = _cert(pki.ca.cert)
    kubelet = _cert(pki.serving("kubelet-node-1").cert)
    kubelet.verify_directly_issued_by(ca)
    assert kubelet.subject.rfc4514_string() == "CN=system:node:node-1,O=system:nodes"
    san = kubelet.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.100.1")]
    assert san.get_values_for_type(x509.DNSName) == ["node-1"]
    assert list(kubelet.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    sim = _cert(pki.serving("kubelet-sim").cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert len(sim.value.get_values_for_type(x509.IPAddress)) == 2
    client = _cert(pki.client("apiserver-kubelet-client").cert)
    assert client.subject.rfc4514_string() == "CN=kube-apiserver-kubelet-client,O=system:masters"
    # a test's own user, signed by the cluster CA on demand
    pair = pki.ensure_client(ClientIdentity("stranger", "stranger", ("devs",)))
    _cert(pair.cert).verify_directly_issued_by(ca)
