"""The ONE place where the security pipeline's plug-ins are chosen from the apiserver's flags:
authenticators, authorizers and admission plug-ins (kube-apiserver's `--authorization-mode`,
`--enable-admission-plugins`, the authentication flags). Each plug-in lives in its own module;
add it here with one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from apiserver.admission import MutatingPlugin, ValidatingPlugin
from apiserver.admission.limitranger import LimitRanger
from apiserver.admission.podsecurity import PodSecurity
from apiserver.admission.resourcequota import ResourceQuotaAdmission
from apiserver.admission.webhook.client import WebhookClients
from apiserver.admission.webhook.mutating import MutatingAdmissionWebhook
from apiserver.admission.webhook.validating import ValidatingAdmissionWebhook
from apiserver.authn import Authenticator
from apiserver.authz import Authorizer
from apiserver.authz.always_allow import AlwaysAllow

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["SecurityConfig", "build_admission", "build_authenticators", "build_authorizers"]


@dataclass(frozen=True)
class SecurityConfig:
    """The security-related apiserver flags."""

    authorization_modes: tuple[str, ...] = ()  # --authorization-mode (empty: AlwaysAllow)
    default_not_ready_toleration_seconds: int = 300
    default_unreachable_toleration_seconds: int = 300


def build_authenticators(cfg: SecurityConfig, reg: Registry) -> list[Authenticator]:
    """The authenticators, in the order they are tried (none: everyone is anonymous)."""
    authenticators: list[Authenticator] = []
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
    limit_ranger, webhook_clients = LimitRanger(), WebhookClients()
    # upstream's order: ..., LimitRanger, ServiceAccount, NodeRestriction, PodSecurity,
    # DefaultTolerationSeconds, MutatingAdmissionWebhook, ValidatingAdmissionWebhook, ResourceQuota (last)
    mutating.append(limit_ranger)
    validating.append(limit_ranger)
    validating.append(PodSecurity())
    mutating.append(MutatingAdmissionWebhook(webhook_clients))
    validating.append(ValidatingAdmissionWebhook(webhook_clients))
    validating.append(ResourceQuotaAdmission())
    return mutating, validating
