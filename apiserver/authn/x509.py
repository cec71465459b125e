"""x509 client certificates (`--client-ca-file`): the TLS layer asked for a certificate signed by the
client CA; this checks it again and reads the user from it (`apimachinery/clientcert.py`, upstream's
x509 authenticator: CN is the user name, each O a group).
"""

from __future__ import annotations

import logging

from cryptography import x509

from apimachinery.clientcert import ClientCertificates, load_ca_bundle
from apiserver.authn.bearer import unauthorized, with_authenticated
from apiserver.context import RequestContext, UserInfo

__all__ = ["X509Authenticator", "load_ca_bundle"]

log = logging.getLogger("apiserver.authn")

_USERS_KEPT = 1024  # distinct certificate users remembered (forgotten all at once past it)


class X509Authenticator:
    """Authenticates the TLS client certificate of a request."""

    def __init__(self, cas: list[x509.Certificate]) -> None:
        self.certificates = ClientCertificates(cas)
        # (CN, Os) → its UserInfo: a client's every request names the same user, built once
        self._users: dict[tuple[str, tuple[str, ...]], UserInfo] = {}

    async def authenticate(self, ctx: RequestContext) -> UserInfo | None:
        """The certificate's user; None without a client certificate; 401 for one that does not verify."""
        der = ctx.peer_cert_der
        if not der:
            return None
        try:
            found = self.certificates.user(der)
        except ValueError as e:
            log.info("unable to authenticate the request: verifying certificate: %s", e)
            raise unauthorized() from None
        if found is None:
            return None
        user = self._users.get(found)
        if user is None:
            if len(self._users) >= _USERS_KEPT:
                self._users.clear()
            name, groups = found
            user = self._users[found] = with_authenticated(UserInfo(name=name, groups=groups))
        return user
