"""ValidatingAdmissionWebhook: the matching validating webhooks are called at the same time, on the
object as the mutating phase and the kind's validation left it; any refusal refuses the write
(the first matching webhook's, in configuration order, when several refuse)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from apiserver.admission import AdmissionAttributes
from apiserver.admission.webhook.client import WebhookClients
from apiserver.admission.webhook.dispatcher import Dispatcher, exempt
from apiserver.admission.webhook.matching import RequestKind, Webhook, load_webhooks, request_kind

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["ValidatingAdmissionWebhook"]

FAILED_OPEN_PREFIX = "failed-open.validating.webhook.admission.k8s.io/"


class ValidatingAdmissionWebhook:
    """The validating webhook plug-in."""

    name = "ValidatingAdmissionWebhook"

    def __init__(self, clients: WebhookClients | None = None) -> None:
        self.dispatcher = Dispatcher(clients or WebhookClients())

    def handles(self, attrs: AdmissionAttributes) -> bool:
        """Every write except to admission configuration."""
        return not exempt(attrs)

    async def validate(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Call every matching webhook concurrently; raise the first refusal."""
        hooks = load_webhooks(reg, "validatingwebhookconfigurations")
        if not hooks:
            return
        kind = request_kind(attrs)
        relevant = [(i, h) for i, h in enumerate(hooks) if await self.dispatcher.should_call(h, attrs, kind, reg)]
        if not relevant:
            return
        results = await asyncio.gather(
            *(self._call(i, h, attrs, kind, reg) for i, h in relevant), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _call(
        self, index: int, hook: Webhook, attrs: AdmissionAttributes, kind: RequestKind, reg: Registry
    ) -> None:
        if await self.dispatcher.call(hook, attrs, kind, reg) is None:
            attrs.add_annotation(f"{FAILED_OPEN_PREFIX}round_0_index_{index}", hook.name)
