"""x509 client certificates (`--client-ca-file`): the TLS layer asked for a certificate signed by the
client CA; this checks it again (CA signature, validity, client-auth usage) and reads the user from it,
as upstream's x509 authenticator: CN is the user name, each O a group.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import OrderedDict
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apiserver.authn.bearer import unauthorized, with_authenticated
from apiserver.context import RequestContext, UserInfo

__all__ = ["X509Authenticator", "load_ca_bundle"]

log = logging.getLogger("apiserver.authn")

CACHE_SIZE = 1024


def load_ca_bundle(path: str | Path) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle; ValueError when there is none."""
    try:
        certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except OSError as e:
        raise ValueError(f"reading client CA file {path}: {e.strerror}") from e
    if not certs:
        raise ValueError(f"no certificate in client CA file {path}")
    return certs


class X509Authenticator:
    """Authenticates the TLS client certificate of a request."""

    def __init__(self, cas: list[x509.Certificate]) -> None:
        self.cas = cas
        # DER → (user, not after); a connection's certificate is checked once, not on every request
        self._seen: OrderedDict[bytes, tuple[UserInfo, dt.datetime]] = OrderedDict()

    async def authenticate(self, ctx: RequestContext) -> UserInfo | None:
        """The certificate's user; None without a client certificate; 401 for one that does not verify."""
        der = ctx.peer_cert_der
        if not der:
            return None
        now = dt.datetime.now(dt.UTC)
        hit = self._seen.get(der)
        if hit is not None and hit[1] > now:
            self._seen.move_to_end(der)
            return hit[0]
        try:
            cert = x509.load_der_x509_certificate(der)
            self._verify(cert, now)
        except (ValueError, InvalidSignature) as e:
            log.info("unable to authenticate the request: verifying certificate: %s", e)
            raise unauthorized() from None
        cn = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if not cn or not cn[0]:
            return None  # as upstream: a certificate without a user name is no credential
        groups = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
        user = with_authenticated(UserInfo(name=cn[0], groups=groups))
        self._seen[der] = (user, cert.not_valid_after_utc)
        if len(self._seen) > CACHE_SIZE:
            self._seen.popitem(last=False)
        return user

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
