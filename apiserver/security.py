"""The ONE place where the security pipeline's plug-ins are chosen from the apiserver's flags:
authenticators, authorizers, the impersonation check and admission plug-ins (kube-apiserver's
authentication flags, `--authorization-mode`, `--enable-admission-plugins`). Each plug-in lives in
its own module; add it here with one line.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from apiserver.admission import MutatingPlugin, ValidatingPlugin
from apiserver.admission.default_ingress_class import DefaultIngressClass
from apiserver.admission.default_tolerations import DefaultTolerationSeconds
from apiserver.admission.limitranger import LimitRanger
from apiserver.admission.namespace_lifecycle import NamespaceLifecycle
from apiserver.admission.noderestriction import NodeRestriction
from apiserver.admission.podsecurity import PodSecurity
from apiserver.admission.priority import Priority
from apiserver.admission.resourcequota import ResourceQuotaAdmission
from apiserver.admission.serviceaccount import ServiceAccountAdmission
from apiserver.admission.webhook.client import WebhookClients
from apiserver.admission.webhook.mutating import MutatingAdmissionWebhook
from apiserver.admission.webhook.validating import ValidatingAdmissionWebhook
from apiserver.authn import Authenticator
from apiserver.authn.identity import AuthnOptions, Identity, build_identity
from apiserver.authn.impersonation import ImpersonationCheck
from apiserver.authz import Authorizer
from apiserver.authz.always_allow import AlwaysAllow
from apiserver.authz.escalation import EscalationCheck
from apiserver.authz.node import NodeAuthorizer, NodeGraph
from apiserver.authz.privileged import PrivilegedGroups
from apiserver.authz.rbac import PolicyIndex, RBACAuthorizer

if TYPE_CHECKING:
    from apiserver.chain.impersonation import Impersonator
    from apiserver.registry import Registry

__all__ = [
    "SecurityConfig",
    "authorizers_of",
    "build_admission",
    "build_authenticators",
    "build_authorizers",
    "build_impersonator",
    "identity_of",
]

AUTHORIZATION_MODES = ("AlwaysAllow", "Node", "RBAC")
# one set of authorizers per registry: the chain, the access reviews and the escalation check share them
_AUTHORIZERS: WeakKeyDictionary[Registry, list[Authorizer]] = WeakKeyDictionary()


@dataclass(frozen=True)
class SecurityConfig:
    """The security-related apiserver flags."""

    authorization_modes: tuple[str, ...] = ()  # --authorization-mode (empty: AlwaysAllow)
    anonymous_auth: bool = True  # --anonymous-auth: requests without credentials run as system:anonymous
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
    """The authorizers of `--authorization-mode`, in order (none given: AlwaysAllow).

    As upstream, members of `system:masters` are allowed everything ahead of the configured modes.
    """
    built = _AUTHORIZERS.get(reg)
    if built is not None:
        return built
    authorizers: list[Authorizer] = []
    for mode in cfg.authorization_modes:
        if mode == "AlwaysAllow":
            authorizers.append(AlwaysAllow())
        elif mode == "Node":
            authorizers.append(NodeAuthorizer(NodeGraph(reg.cache)))
        elif mode == "RBAC":
            authorizers.append(RBACAuthorizer(PolicyIndex(reg.cache)))
        else:
            raise ValueError(f"unknown authorization mode: {mode}; known: {', '.join(AUTHORIZATION_MODES)}")
    built = [PrivilegedGroups(("system:masters",)), *authorizers] if authorizers else [AlwaysAllow()]
    _AUTHORIZERS[reg] = built
    return built


def authorizers_of(reg: Registry) -> list[Authorizer]:
    """The authorizers built for this registry (the access reviews answer with them)."""
    return _AUTHORIZERS.get(reg) or [AlwaysAllow()]


def build_impersonator(cfg: SecurityConfig, reg: Registry, authorizers: list[Authorizer]) -> Impersonator | None:
    """What checks and performs impersonation: the `impersonate` verb, asked of the authorizers."""
    return ImpersonationCheck(authorizers)


def build_admission(cfg: SecurityConfig, reg: Registry) -> tuple[list[MutatingPlugin], list[ValidatingPlugin]]:
    """The admission chain: mutating plug-ins then validating plug-ins, each in order."""
    # upstream's order: NamespaceLifecycle, LimitRanger, ServiceAccount, NodeRestriction, PodSecurity,
    # Priority, DefaultTolerationSeconds, DefaultIngressClass, MutatingAdmissionWebhook, ValidatingAdmissionWebhook,
    # ResourceQuota (last)
    lifecycle = NamespaceLifecycle()
    limit_ranger, webhook_clients = LimitRanger(), WebhookClients()
    mutating: list[MutatingPlugin] = [lifecycle, limit_ranger]
    validating: list[ValidatingPlugin] = [limit_ranger]
    if "ServiceAccount" not in cfg.disable_admission_plugins:
        service_account = ServiceAccountAdmission()
        mutating.append(service_account)
        validating.append(service_account)
    if "NodeRestriction" not in cfg.disable_admission_plugins:
        validating.append(NodeRestriction())
    mutating += [
        Priority(),
        DefaultTolerationSeconds(cfg.default_not_ready_toleration_seconds, cfg.default_unreachable_toleration_seconds),
        DefaultIngressClass(),
        MutatingAdmissionWebhook(webhook_clients),
    ]
    validating += [PodSecurity(), ValidatingAdmissionWebhook(webhook_clients)]
    rbac = next((a for a in build_authorizers(cfg, reg) if isinstance(a, RBACAuthorizer)), None)
    if rbac is not None:  # the RBAC storages' escalation prevention (upstream: part of the rbac API itself)
        validating.append(EscalationCheck(rbac, build_authorizers(cfg, reg)))
    validating.append(ResourceQuotaAdmission())
    return mutating, validating
