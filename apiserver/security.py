"""The ONE place where the security pipeline's plug-ins are chosen from the apiserver's flags:
authenticators, authorizers, the impersonation check and admission plug-ins (kube-apiserver's
authentication flags, `--authorization-mode`, `--enable-admission-plugins`). Each plug-in lives in
its own module; add it here with one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from apiserver.admission import MutatingPlugin, ValidatingPlugin
from apiserver.admission.default_ingress_class import DefaultIngressClass
from apiserver.admission.default_tolerations import DefaultTolerationSeconds
from apiserver.admission.limitranger import LimitRanger
from apiserver.admission.namespace_lifecycle import NamespaceLifecycle
from apiserver.admission.podsecurity import PodSecurity
from apiserver.admission.resourcequota import ResourceQuotaAdmission
from apiserver.admission.webhook.client import WebhookClients
from apiserver.admission.webhook.mutating import MutatingAdmissionWebhook
from apiserver.admission.webhook.validating import ValidatingAdmissionWebhook
from apiserver.authn import Authenticator
from apiserver.authz import Authorizer
from apiserver.authz.always_allow import AlwaysAllow
from apiserver.authz.privileged import PrivilegedGroups

if TYPE_CHECKING:
    from apiserver.chain.impersonation import Impersonator
    from apiserver.registry import Registry

__all__ = [
    "SecurityConfig",
    "build_admission",
    "build_authenticators",
    "build_authorizers",
    "build_impersonator",
]


@dataclass(frozen=True)
class SecurityConfig:
    """The security-related apiserver flags."""

    authorization_modes: tuple[str, ...] = ()  # --authorization-mode (empty: AlwaysAllow)
    anonymous_auth: bool = True  # --anonymous-auth: requests without credentials run as system:anonymous
    default_not_ready_toleration_seconds: int = 300
    default_unreachable_toleration_seconds: int = 300


def build_authenticators(cfg: SecurityConfig, reg: Registry) -> list[Authenticator]:
    """The authenticators, in the order they are tried (none: everyone is anonymous)."""
    authenticators: list[Authenticator] = []
    return authenticators


def build_authorizers(cfg: SecurityConfig, reg: Registry) -> list[Authorizer]:
    """The authorizers of `--authorization-mode`, in order (none given: AlwaysAllow).

    As upstream, members of `system:masters` are allowed everything ahead of the configured modes.
    """
    authorizers: list[Authorizer] = []
    for mode in cfg.authorization_modes:
        if mode == "AlwaysAllow":
            authorizers.append(AlwaysAllow())
        else:
            raise ValueError(f"unknown authorization mode: {mode}")
    if not authorizers:
        return [AlwaysAllow()]
    return [PrivilegedGroups(("system:masters",)), *authorizers]


def build_impersonator(cfg: SecurityConfig, reg: Registry, authorizers: list[Authorizer]) -> Impersonator | None:
    """What checks and performs impersonation (None: impersonation headers are ignored)."""
    return None


def build_admission(cfg: SecurityConfig, reg: Registry) -> tuple[list[MutatingPlugin], list[ValidatingPlugin]]:
    """The admission chain: mutating plug-ins then validating plug-ins, each in order."""
    # upstream's order: NamespaceLifecycle, LimitRanger, ServiceAccount, NodeRestriction, PodSecurity,
    # DefaultTolerationSeconds, DefaultIngressClass, MutatingAdmissionWebhook, ValidatingAdmissionWebhook,
    # ResourceQuota (last)
    lifecycle = NamespaceLifecycle()
    limit_ranger, webhook_clients = LimitRanger(), WebhookClients()
    mutating: list[MutatingPlugin] = [
        lifecycle,
        limit_ranger,
        DefaultTolerationSeconds(cfg.default_not_ready_toleration_seconds, cfg.default_unreachable_toleration_seconds),
        DefaultIngressClass(),
        MutatingAdmissionWebhook(webhook_clients),
    ]
    validating: list[ValidatingPlugin] = [
        limit_ranger,
        PodSecurity(),
        ValidatingAdmissionWebhook(webhook_clients),
        ResourceQuotaAdmission(),
    ]
    return mutating, validating
