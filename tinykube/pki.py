"""The cluster's public-key infrastructure, made once under the data dir and reused on restart, as
kubeadm's `certs` phase lays it out (`DIR/pki`):

| file                         | what                                                              |
|------------------------------|-------------------------------------------------------------------|
| ca.crt / ca.key              | the cluster CA: signs every certificate below, the client CA too |
| apiserver.crt / .key         | the apiserver's serving certificate (SANs below)                  |
| sa.key / sa.pub              | the ServiceAccount token signing key pair (RSA, RS256)            |
| <name>.crt / .key            | client certificates: CN = user name, O = groups                   |
| <name>-serving.crt / .key    | other serving certificates: each kubelet's (its node IP and name)  |

Client certificates (`client_identities`): the admin (`kubernetes-admin` in `system:masters`), the
scheduler, the controller-manager, kube-proxy, each node's kubelet (`system:node:<name>` in
`system:nodes`) and the add-ons that talk to the API (cluster DNS and the ingress controller, as the
ServiceAccounts upstream runs them as); and the one the apiserver presents to kubelets
(`APISERVER_KUBELET_CLIENT`, kubeadm's apiserver-kubelet-client). Kubelets serve with a certificate of
the cluster CA (`kubelet_serving`, as kubelet-serving CSRs are issued: CN `system:node:<name>`, O
`system:nodes`). TLS keys are ECDSA P-256 (fast to make, as kubeadm's `--encryption-algorithm
ECDSA-P256`); the signing key is RSA 2048 for RS256 tokens.

An existing file is kept as long as it is valid for what it is asked to be: a serving certificate
missing a SAN (more nodes, another slot) or any certificate close to expiry is made again.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "APISERVER_KUBELET_CLIENT",
    "CA_DAYS",
    "LEAF_DAYS",
    "CertPair",
    "ClientIdentity",
    "ClusterPKI",
    "ServingIdentity",
    "addon_identities",
    "client_identities",
    "kubelet_serving",
]

CA_DAYS = 3650
LEAF_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)
BACKDATE = dt.timedelta(minutes=5)  # clocks of other machines may be a little behind

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class CertPair:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path

    def cert_pem(self) -> bytes:
        """The certificate's PEM."""
        return self.cert.read_bytes()

    def key_pem(self) -> bytes:
        """The private key's PEM."""
        return self.key.read_bytes()


@dataclass(frozen=True)
class ClientIdentity:
    """Who a client certificate says its holder is: CN = user, O = groups; `file` names its files."""

    file: str
    user: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServingIdentity:
    """A serving certificate besides the apiserver's: its subject and the addresses and names it serves."""

    file: str
    cn: str
    ips: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


# kubeadm's apiserver-kubelet-client: how the apiserver authenticates to kubelets (pods/log, exec)
APISERVER_KUBELET_CLIENT = ClientIdentity(
    "apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",)
)


def kubelet_serving(name: str, ips: Sequence[str], file: str = "") -> ServingIdentity:
    """The serving certificate of kubelet `name` listening on `ips` (file `kubelet-<name>-serving`)."""
    return ServingIdentity(file or f"kubelet-{name}", f"system:node:{name}", tuple(ips), (name,), ("system:nodes",))


def client_identities(nodes: Sequence[str]) -> list[ClientIdentity]:
    """The control plane's client identities, upstream's names (kubeadm's admin in system:masters)."""
    return [
        ClientIdentity("admin", "kubernetes-admin", ("system:masters",)),
        ClientIdentity("kube-scheduler", "system:kube-scheduler"),
        ClientIdentity("kube-controller-manager", "system:kube-controller-manager"),
        ClientIdentity("kube-proxy", "system:kube-proxy"),
        *(ClientIdentity(f"kubelet-{n}", f"system:node:{n}", ("system:nodes",)) for n in nodes),
        *addon_identities().values(),
    ]


def addon_identities() -> dict[str, ClientIdentity]:
    """The add-ons' identities: the ServiceAccounts they run as upstream (CoreDNS is `kube-system/coredns`,
    ingress-nginx's controller `ingress-nginx`, metrics-server `metrics-server`), with the groups a token of
    that account would carry."""

    def sa(ns: str, name: str) -> ClientIdentity:
        groups = ("system:serviceaccounts", f"system:serviceaccounts:{ns}")
        return ClientIdentity(name, f"system:serviceaccount:{ns}:{name}", groups)

    return {
        "cluster-dns": sa("kube-system", "coredns"),
        "ingress-controller": sa("kube-system", "ingress-nginx"),
        "metrics-server": sa("kube-system", "metrics-server"),
    }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by its owner only (created 0600, never world-readable for a moment)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _key_pem(key: PrivateKey) -> bytes:
    pkcs8 = serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())


def _name(cn: str, orgs: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _fresh(cert: x509.Certificate) -> bool:
    now = _now()
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc - RENEW_BEFORE > now


class ClusterPKI:
    """The certificates and keys of one cluster, under `directory` (created on first use)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    # --- paths ----------------------------------------------------------------------------

    @property
    def ca(self) -> CertPair:
        """The cluster CA."""
        return CertPair(self.dir / "ca.crt", self.dir / "ca.key")

    @property
    def apiserver(self) -> CertPair:
        """The apiserver's serving certificate."""
        return CertPair(self.dir / "apiserver.crt", self.dir / "apiserver.key")

    @property
    def sa_key(self) -> Path:
        """The ServiceAccount token signing key (private, PEM)."""
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        """The ServiceAccount token verification key (public, PEM)."""
        return self.dir / "sa.pub"

    def client(self, file: str) -> CertPair:
        """A client certificate by file name (`admin`, `kubelet-node-1` …)."""
        return CertPair(self.dir / f"{file}.crt", self.dir / f"{file}.key")

    def serving(self, file: str) -> CertPair:
        """A serving certificate by file name (`kubelet-node-1` → kubelet-node-1-serving.crt)."""
        return CertPair(self.dir / f"{file}-serving.crt", self.dir / f"{file}-serving.key")

    # --- making them ----------------------------------------------------------------------

    def ensure(
        self,
        *,
        ips: Sequence[str],
        dns_names: Sequence[str],
        clients: Sequence[ClientIdentity],
        servers: Sequence[ServingIdentity] = (),
    ) -> None:
        """Make whatever is missing or no longer right: CA, the apiserver's serving cert, signing key, client
        certs, the other serving certs."""
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        ca_cert, ca_key = self._ensure_ca()
        self._ensure_serving(ca_cert, ca_key, self.apiserver, _name("kube-apiserver"), ips, dns_names)
        self._ensure_sa_key()
        for ident in clients:
            self._ensure_client(ca_cert, ca_key, ident)
        for server in servers:
            subject = _name(server.cn, server.groups)
            self._ensure_serving(ca_cert, ca_key, self.serving(server.file), subject, server.ips, server.dns_names)

    def ensure_client(self, ident: ClientIdentity) -> CertPair:
        """A client certificate of the (existing) CA for `ident`, made if missing or no longer right."""
        loaded = self._load(self.ca)
        if loaded is None:
            raise FileNotFoundError(f"no cluster CA under {self.dir}")
        self._ensure_client(*loaded, ident)
        return self.client(ident.file)

    def _load(self, pair: CertPair) -> tuple[x509.Certificate, PrivateKey] | None:
        try:
            cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
            key = serialization.load_pem_private_key(pair.key.read_bytes(), None)
        except (OSError, ValueError):
            return None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            return None
        if cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
            return None
        return cert, key

    def _ensure_ca(self) -> tuple[x509.Certificate, PrivateKey]:
        loaded = self._load(self.ca)
        if loaded is not None and _fresh(loaded[0]):
            return loaded
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name("kubernetes")
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(self.ca.key, _key_pem(key))
        _write_public(self.ca.cert, cert.public_bytes(serialization.Encoding.PEM))
        return cert, key  # every certificate of an older CA fails `_signed_by` and is made again

    def _leaf(
        self,
        ca_cert: x509.Certificate,
        ca_key: PrivateKey,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        sans: x509.SubjectAlternativeName | None,
    ) -> tuple[x509.Certificate, PrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(min(now + dt.timedelta(days=LEAF_DAYS), ca_cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
        )
        if sans is not None:
            builder = builder.add_extension(sans, critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    @staticmethod
    def _signed_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
        try:
            cert.verify_directly_issued_by(ca_cert)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True

    def _ensure_serving(
        self,
        ca_cert: x509.Certificate,
        ca_key: PrivateKey,
        pair: CertPair,
        subject: x509.Name,
        ips: Sequence[str],
        dns_names: Sequence[str],
    ) -> None:
        wanted_ips = {ipaddress.ip_address(i) for i in ips}
        wanted_dns = set(dns_names)
        loaded = self._load(pair)
        if (
            loaded is not None
            and _fresh(loaded[0])
            and loaded[0].subject == subject
            and self._signed_by(loaded[0], ca_cert)
        ):
            try:
                san = loaded[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                have_ips = set(san.get_values_for_type(x509.IPAddress))
                have_dns = set(san.get_values_for_type(x509.DNSName))
            except x509.ExtensionNotFound:
                have_ips, have_dns = set(), set()
            if wanted_ips <= have_ips and wanted_dns <= have_dns:
                return
        sans = x509.SubjectAlternativeName(
            [*(x509.DNSName(d) for d in dns_names), *(x509.IPAddress(i) for i in sorted(wanted_ips, key=int))]
        )
        cert, key = self._leaf(ca_cert, ca_key, subject, ExtendedKeyUsageOID.SERVER_AUTH, sans)
        _write_private(pair.key, _key_pem(key))
        _write_public(pair.cert, cert.public_bytes(serialization.Encoding.PEM))

    def _ensure_client(self, ca_cert: x509.Certificate, ca_key: PrivateKey, ident: ClientIdentity) -> None:
        pair = self.client(ident.file)
        subject = _name(ident.user, ident.groups)
        loaded = self._load(pair)
        if (
            loaded is not None
            and _fresh(loaded[0])
            and loaded[0].subject == subject
            and self._signed_by(loaded[0], ca_cert)
        ):
            return
        cert, key = self._leaf(ca_cert, ca_key, subject, ExtendedKeyUsageOID.CLIENT_AUTH, None)
        _write_private(pair.key, _key_pem(key))
        _write_public(pair.cert, cert.public_bytes(serialization.Encoding.PEM))

    def _ensure_sa_key(self) -> None:
        try:
            key = serialization.load_pem_private_key(self.sa_key.read_bytes(), None)
            if isinstance(key, rsa.RSAPrivateKey) and self.sa_pub.exists():
                return
        except (OSError, ValueError):
            pass
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_private(self.sa_key, _key_pem(key))
        pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        _write_public(self.sa_pub, pub)
