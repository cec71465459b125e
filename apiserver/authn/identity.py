"""The apiserver's identity services, built once from its authentication flags: the request
authenticators (x509 client certificates, then bearer tokens), the token union TokenReview asks, and
the issuer TokenRequest uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apiserver.authn import Authenticator
from apiserver.authn.bearer import BearerTokenAuthenticator, TokenAuthenticator, TokenUnion
from apiserver.authn.serviceaccount import RegistryGetter, ServiceAccountAuthenticator, TokenSigner, load_public_keys
from apiserver.authn.tokenfile import TokenFile
from apiserver.authn.tokenrequest import TokenIssuer
from apiserver.authn.x509 import X509Authenticator, load_ca_bundle

__all__ = ["DEFAULT_ISSUER", "AuthnOptions", "Identity", "build_identity", "parse_duration"]

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class AuthnOptions:
    """kube-apiserver's authentication flags."""

    client_ca_file: str = ""  # --client-ca-file
    token_auth_file: str = ""  # --token-auth-file
    service_account_key_files: tuple[str, ...] = ()  # --service-account-key-file (verification keys)
    service_account_signing_key_file: str = ""  # --service-account-signing-key-file
    service_account_issuers: tuple[str, ...] = ()  # --service-account-issuer (the first one signs)
    api_audiences: tuple[str, ...] = ()  # --api-audiences (default: the issuers)
    service_account_extend_token_expiration: bool = True
    service_account_max_token_expiration: int = 0  # seconds; 0: no cap

    @property
    def issuers(self) -> tuple[str, ...]:
        """The issuers tokens are accepted from (the default when none is given)."""
        return self.service_account_issuers or (DEFAULT_ISSUER,)

    @property
    def audiences(self) -> tuple[str, ...]:
        """The API's own audiences: `--api-audiences`, else the issuers (as upstream)."""
        return self.api_audiences or self.issuers


@dataclass
class Identity:
    """What the flags turned into."""

    x509: X509Authenticator | None = None
    tokens: TokenUnion = field(default_factory=lambda: TokenUnion([]))
    issuer: TokenIssuer | None = None

    @property
    def authenticators(self) -> list[Authenticator]:
        """The request authenticators, in upstream's order: client certificate, then bearer token."""
        out: list[Authenticator] = []
        if self.x509 is not None:
            out.append(self.x509)
        if self.tokens.authenticators:
            out.append(BearerTokenAuthenticator(self.tokens))
        return out


def build_identity(opts: AuthnOptions, reg: Any) -> Identity:
    """Read the files the flags name; ValueError (the apiserver does not start) when one is unusable."""
    identity = Identity()
    if opts.client_ca_file:
        identity.x509 = X509Authenticator(load_ca_bundle(opts.client_ca_file))
    tokens: list[TokenAuthenticator] = []
    if opts.token_auth_file:
        tokens.append(TokenFile.load(opts.token_auth_file, opts.audiences))
    key_files = opts.service_account_key_files or (
        (opts.service_account_signing_key_file,) if opts.service_account_signing_key_file else ()
    )
    if key_files:
        keys = load_public_keys(key_files)
        tokens.append(ServiceAccountAuthenticator(keys, opts.issuers, opts.audiences, RegistryGetter(reg)))
    identity.tokens = TokenUnion(tokens)
    if opts.service_account_signing_key_file:
        signer = TokenSigner.load(opts.service_account_signing_key_file, opts.issuers[0])
        identity.issuer = TokenIssuer(
            signer,
            opts.audiences,
            extend_expiration=opts.service_account_extend_token_expiration,
            max_expiration=opts.service_account_max_token_expiration,
        )
    return identity


_UNITS = {"h": 3600, "m": 60, "s": 1}


def parse_duration(value: str) -> int:
    """Seconds of a Go duration such as `1h`, `90m`, `3600s`, `1h30m` (or a bare number of seconds)."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    total, number = 0, ""
    for ch in text:
        if ch.isdigit():
            number += ch
        elif ch in _UNITS and number:
            total += int(number) * _UNITS[ch]
            number = ""
        else:
            raise ValueError(f'invalid duration "{value}"')
    if number or not text:
        raise ValueError(f'invalid duration "{value}"')
    return total
