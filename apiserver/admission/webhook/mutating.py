"""MutatingAdmissionWebhook: the matching mutating webhooks are called one after another, each
seeing the object as the ones before it left it; a JSON patch in an answer is applied (and the
kind's defaults applied again, as upstream does). Webhooks with `reinvocationPolicy: IfNeeded` are
called once more when a later webhook changed the object after them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from apimachinery import errors
from apimachinery.patch import PatchError, json_patch
from apiserver.admission import AdmissionAttributes
from apiserver.admission.webhook.client import WebhookClients
from apiserver.admission.webhook.dispatcher import Dispatcher, exempt
from apiserver.admission.webhook.matching import RequestKind, Webhook, load_webhooks, request_kind

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["MutatingAdmissionWebhook"]

log = logging.getLogger("apiserver.admission.webhook")

MUTATION_ANNOTATION_PREFIX = "mutation.webhook.admission.k8s.io/"
FAILED_OPEN_PREFIX = "failed-open." + MUTATION_ANNOTATION_PREFIX


class MutatingAdmissionWebhook:
    """The mutating webhook plug-in."""

    name = "MutatingAdmissionWebhook"

    def __init__(self, clients: WebhookClients | None = None) -> None:
        self.dispatcher = Dispatcher(clients or WebhookClients())

    def handles(self, attrs: AdmissionAttributes) -> bool:
        """Every write except to admission configuration."""
        return not exempt(attrs)

    async def admit(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Call the matching webhooks in order (configurations by name), then reinvoke as needed."""
        hooks = load_webhooks(reg, "mutatingwebhookconfigurations")
        if not hooks:
            return
        kind = request_kind(attrs)
        reinvocable: list[tuple[int, Webhook]] = []
        changed_after_reinvocable = False
        for index, hook in enumerate(hooks):
            if not await self.dispatcher.should_call(hook, attrs, kind, reg):
                continue
            changed = await self._call(hook, index, 0, attrs, kind, reg)
            changed_after_reinvocable |= changed and bool(reinvocable)
            if hook.reinvoke_if_needed:
                reinvocable.append((index, hook))
        if not changed_after_reinvocable:
            return
        for index, hook in reinvocable:
            if await self.dispatcher.should_call(hook, attrs, kind, reg):
                await self._call(hook, index, 1, attrs, kind, reg)

    async def _call(
        self, hook: Webhook, index: int, round_: int, attrs: AdmissionAttributes, kind: RequestKind, reg: Registry
    ) -> bool:
        """One webhook; whether it changed the object."""
        answer = await self.dispatcher.call(hook, attrs, kind, reg)
        key = f"round_{round_}_index_{index}"
        if answer is None:
            attrs.add_annotation(FAILED_OPEN_PREFIX + key, hook.name)
            return False
        changed = bool(answer.patch) and self._apply(hook, answer.patch or [], attrs, kind, reg)
        value = {"configuration": hook.configuration, "webhook": hook.name, "mutated": changed}
        attrs.add_annotation(MUTATION_ANNOTATION_PREFIX + key, orjson.dumps(value).decode())
        return changed

    @staticmethod
    def _apply(hook: Webhook, patch: list[Any], attrs: AdmissionAttributes, kind: RequestKind, reg: Registry) -> bool:
        if attrs.obj is None:
            raise errors.internal_error(
                f'admission webhook "{hook.name}" attempted to modify the object, which is not supported for this '
                "operation"
            )
        try:
            patched = json_patch(attrs.obj, patch)
        except PatchError as e:
            raise errors.internal_error(str(e)) from e
        if not isinstance(patched, dict):
            raise errors.internal_error(f'admission webhook "{hook.name}" patched the object into a non-object')
        if kind.kind == attrs.resource.kind:
            reg.strategy(attrs.resource).default(patched)
        changed = patched != attrs.obj
        if changed:
            attrs.obj.clear()
            attrs.obj.update(patched)
            log.debug("webhook %s mutated a %s", hook.name, attrs.resource.kind)
        return changed
