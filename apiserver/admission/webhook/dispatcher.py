"""Calling one webhook for one write, as both webhook plug-ins do (generic.ShouldCallHook and the
dispatchers' callHook): whether it applies, the dry-run rule, the call, and what its failure means
under its failurePolicy. A webhook that cannot be reached or answers nonsense refuses the write
with a 500 under `Fail`, and is skipped (noted in the audit annotations) under `Ignore`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from apimachinery import errors
from apiserver.admission import AdmissionAttributes
from apiserver.admission.webhook.client import CallError, WebhookClients, resolve_target
from apiserver.admission.webhook.conditions import evaluate_conditions
from apiserver.admission.webhook.matching import (
    EXEMPT_KINDS,
    RequestKind,
    Webhook,
    matches_namespace,
    matches_object,
    matches_rules,
)
from apiserver.admission.webhook.review import Answer, admission_request, build_review, denial, verify_answer

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["Dispatcher", "exempt"]

log = logging.getLogger("apiserver.admission.webhook")


def exempt(attrs: AdmissionAttributes) -> bool:
    """Writes to admission configuration itself never go to webhooks."""
    return attrs.resource.group == "admissionregistration.k8s.io" and attrs.resource.kind in EXEMPT_KINDS


class Dispatcher:
    """Shared by the two plug-ins: matching and calling one webhook."""

    def __init__(self, clients: WebhookClients) -> None:
        self.clients = clients

    async def should_call(self, hook: Webhook, attrs: AdmissionAttributes, kind: RequestKind, reg: Registry) -> bool:
        """Rules first (cheap), then the object and namespace selectors, then matchConditions."""
        if not matches_rules(hook, attrs, kind):
            return False
        if not matches_object(hook, attrs):
            return False
        if not await matches_namespace(hook, attrs, reg):
            return False
        conditions = [c for c in hook.spec.get("matchConditions") or [] if isinstance(c, dict)]
        if not conditions:
            return True
        matched, why = evaluate_conditions(conditions, attrs.obj, attrs.old, admission_request(attrs, kind))
        if why and hook.failure_policy != "Ignore":
            raise errors.forbidden(attrs.resource.plural, attrs.name, why, attrs.resource.group)
        return matched

    async def call(self, hook: Webhook, attrs: AdmissionAttributes, kind: RequestKind, reg: Registry) -> Answer | None:
        """The webhook's answer; None when it failed and its failurePolicy is Ignore. A denial, a
        failure under Fail, or a dry run it cannot take raise the StatusError to answer with."""
        if attrs.dry_run and hook.spec.get("sideEffects") not in ("None", "NoneOnDryRun"):
            raise errors.bad_request(f'admission webhook "{hook.name}" does not support dry run')
        try:
            versions = [str(v) for v in hook.spec.get("admissionReviewVersions") or []]
            uid, version, review = build_review(attrs, kind, versions)
            target = await resolve_target(hook.spec.get("clientConfig") or {}, reg)
            answer = verify_answer(uid, hook.mutating, await self.clients.post(target, review, hook.timeout), version)
        except CallError as e:
            message = f'failed calling webhook "{hook.name}": {e}'
            if hook.failure_policy == "Ignore":
                log.warning("Failed calling webhook, failing open %s: %s", hook.name, message)
                return None
            log.warning("Failed calling webhook, failing closed %s: %s", hook.name, message)
            raise errors.internal_error(message) from e
        for key, value in answer.audit_annotations.items():
            attrs.add_annotation(f"{hook.name}/{key}", value)
        for warning in answer.warnings:
            attrs.add_warning(warning)
        if not answer.allowed:
            raise denial(hook.name, answer.result)
        return answer
