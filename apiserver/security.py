"""The ONE place where the security pipeline's plug-ins are chosen from the apiserver's flags:
authenticators, authorizers and admission plug-ins (kube-apiserver's `--authorization-mode`,
`--enable-admission-plugins`, the authentication flags). Each plug-in lives in its own module;
add it here with one line.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from apiserver.admission import MutatingPlugin, ValidatingPlugin
from apiserver.admission.serviceaccount import ServiceAccountAdmission
from apiserver.authn import Authenticator
from apiserver.authn.identity import AuthnOptions, Identity, build_identity
from apiserver.authz import Authorizer
from apiserver.authz.always_allow import AlwaysAllow

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["SecurityConfig", "build_admission", "build_authenticators", "build_authorizers", "identity_of"]


@dataclass(frozen=True)
class SecurityConfig:
    """The security-related apiserver flags."""

    authorization_modes: tuple[str, ...] = ()  # --authorization-mode (empty: AlwaysAllow)
    default_not_ready_toleration_seconds: int = 300
    default_unreachable_toleration_seconds: int = 300
    authentication: AuthnOptions = field(default_factory=AuthnOptions)  # the authentication flags
    disable_admission_plugins: tuple[str, ...] = ()  # --disable-admission-plugins (off-by-default ones stay off)


@functools.lru_cache(maxsize=8)
def identity_of(cfg: SecurityConfig, reg: Registry) -> Identity:
    """The authenticators, token union and token issuer of the authentication flags (built once per app)."""
    return build_identity(cfg.authentication, reg)


def build_authenticators(cfg: SecurityConfig, reg: Registry) -> list[Authenticator]:
    """The authenticators, in the order they are tried (none: everyone is anonymous)."""
    authenticators: list[Authenticator] = []
    authenticators += identity_of(cfg, reg).authenticators  # x509 client certificates, bearer tokens
    return authenticators


def build_authorizers(cfg: SecurityConfig, reg: Registry) -> list[Authorizer]:
    """The authorizers of `--authorization-mode`, in order (none given: AlwaysAllow)."""
    authorizers: list[Authorizer] = []
    for mode in cfg.authorization_modes:
        if mode == "AlwaysAllow":
            authorizers.append(AlwaysAllow())
        else:
            raise ValueError(f"unknown authorization mode: {mode}")
    return authorizers or [AlwaysAllow()]


def build_admission(cfg: SecurityConfig, reg: Registry) -> tuple[list[MutatingPlugin], list[ValidatingPlugin]]:
    """The admission chain: mutating plug-ins then validating plug-ins, each in order."""
    mutating: list[MutatingPlugin] = []
    validating: list[ValidatingPlugin] = []
    if "ServiceAccount" not in cfg.disable_admission_plugins:
        service_account = ServiceAccountAdmission()
        mutating.append(service_account)
        validating.append(service_account)
    return mutating, validating
