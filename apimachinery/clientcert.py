"""x509 client certificates as upstream's x509 authenticator reads them: checked again after the TLS
layer (CA signature, validity, client-auth usage), CN the user name, each O a group. The apiserver's
`--client-ca-file` and the kubelet's use the same checks.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateUser", "ClientCertificates", "load_ca_bundle"]

CACHE_SIZE = 1024

CertificateUser = tuple[str, tuple[str, ...]]  # (CN, the Os)


def load_ca_bundle(path: str | Path) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle; ValueError when there is none."""
    try:
        certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except OSError as e:
        raise ValueError(f"reading client CA file {path}: {e.strerror}") from e
    if not certs:
        raise ValueError(f"no certificate in client CA file {path}")
    return certs


class ClientCertificates:
    """Verifies client certificates against a CA bundle and reads who they name."""

    def __init__(self, cas: list[x509.Certificate]) -> None:
        self.cas = cas
        # DER → (user, not after); a connection's certificate is checked once, not on every request
        self._seen: OrderedDict[bytes, tuple[CertificateUser | None, dt.datetime]] = OrderedDict()

    def user(self, der: bytes) -> CertificateUser | None:
        """(user, groups) of a certificate; None when it names no user; ValueError (upstream's words) when
        it does not verify."""
        now = dt.datetime.now(dt.UTC)
        hit = self._seen.get(der)
        if hit is not None and hit[1] > now:
            self._seen.move_to_end(der)
            return hit[0]
        try:
            cert = x509.load_der_x509_certificate(der)
            self._verify(cert, now)
        except InvalidSignature as e:
            raise ValueError(str(e) or "x509: invalid signature") from None
        cn = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        found: CertificateUser | None = None
        if cn and cn[0]:  # as upstream: a certificate without a user name is no credential
            orgs = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
            found = (cn[0], orgs)
        self._seen[der] = (found, cert.not_valid_after_utc)
        if len(self._seen) > CACHE_SIZE:
            self._seen.popitem(last=False)
        return found

    def _verify(self, cert: x509.Certificate, now: dt.datetime) -> None:
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            when = now.strftime("%Y-%m-%dT%H:%M:%SZ")
            raise ValueError(f"x509: certificate has expired or is not yet valid: current time {when}")
        try:
            usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        client_ok = (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE)
        if usage is not None and not any(u in usage for u in client_ok):
            raise ValueError("x509: certificate specifies an incompatible key usage")
        for ca in self.cas:
            if ca.subject != cert.issuer:
                continue
            try:
                cert.verify_directly_issued_by(ca)
                return
            except (ValueError, TypeError, InvalidSignature):
                continue
        raise ValueError("x509: certificate signed by unknown authority")
