"""CRD conversion: `None` rewrites the apiVersion; `Webhook` sends a ConversionReview (apiextensions.k8s.io/v1)
to the CRD's `spec.conversion.webhook.clientConfig` (upstream's webhookConverter): the objects not yet in
the desired version go in one review, come back converted, and keep their metadata except labels and
annotations, as upstream restores it. Any failure is a 500 naming the webhook, never a half conversion."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from apimachinery import errors
from apiserver.admission.webhook.client import CallError, WebhookClients, resolve_target

if TYPE_CHECKING:
    from apiserver.crd.schema import SchemaValidator
    from apiserver.registry import Registry

__all__ = ["NoneConversion", "WebhookConversion", "WebhookConverter"]

Obj = dict[str, Any]
_TIMEOUT = 30.0  # upstream's conversion webhook timeout
_REVIEW = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"}


def _as_served(objs: list[Obj], schema: SchemaValidator | None) -> list[Obj]:
    """Converted objects as the served version's schema shows them: pruned, then defaulted (upstream's read path)."""
    if schema is None:
        return objs
    out = []
    for obj in objs:
        obj = schema.prune(obj)
        schema.default(obj)
        out.append(obj)
    return out


class NoneConversion:
    """Conversion `None`: the same object under the other apiVersion (read through the served version's schema)."""

    def __init__(self, storage_api: str, served_api: str, served_schema: SchemaValidator | None = None) -> None:
        self.storage_api, self.served_api = storage_api, served_api
        self.served_schema = served_schema

    async def into_storage(self, objs: list[Obj]) -> list[Obj]:
        """The objects under the storage apiVersion."""
        return [{**o, "apiVersion": self.storage_api} for o in objs]

    def converted_by_strategy(self, subresource: str, apply: bool) -> bool:
        """Always: the custom resource's strategy validates a body in its version before converting it."""
        return True

    async def out_of_storage(self, objs: list[Obj]) -> list[Obj]:
        """The objects under the served apiVersion."""
        return _as_served([{**o, "apiVersion": self.served_api} for o in objs], self.served_schema)


class WebhookConverter:
    """Calls conversion webhooks for the CRDs of one apiserver (clients shared, connections kept)."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.clients = WebhookClients()

    async def aclose(self) -> None:
        """Close the webhook connections."""
        await self.clients.aclose()

    async def convert(self, config: Mapping[str, Any], kind: str, objs: list[Obj], desired: str) -> list[Obj]:
        """`objs` in apiVersion `desired`, those not in it already converted by the webhook."""
        todo = [i for i, o in enumerate(objs) if o.get("apiVersion") != desired]
        if not todo:
            return objs
        what = f"conversion webhook for {desired}, Kind={kind}"
        uid = str(uuid.uuid4())
        review = {**_REVIEW, "request": {"uid": uid, "desiredAPIVersion": desired, "objects": [objs[i] for i in todo]}}
        try:
            target = await resolve_target(config, self.reg)
            answer = await self.clients.post(target, review, _TIMEOUT)
        except CallError as e:
            raise errors.internal_error(f"{what} failed: {e}") from e
        response = answer.get("response") if isinstance(answer.get("response"), dict) else {}
        result = response.get("result") or {}
        if result.get("status") != "Success":
            raise errors.internal_error(f"{what} failed: {result.get('message') or 'conversion failed'}")
        if response.get("uid") != uid:
            raise errors.internal_error(f"{what} failed: expected response uid {uid!r}, got {response.get('uid')!r}")
        converted = response.get("convertedObjects")
        if not isinstance(converted, list) or len(converted) != len(todo):
            got = len(converted) if isinstance(converted, list) else 0
            raise errors.internal_error(f"{what} failed: expected {len(todo)} converted objects, got {got}")
        out = list(objs)
        for i, new in zip(todo, converted, strict=True):
            out[i] = _restore_metadata(objs[i], new, desired, what)
        return out


def _restore_metadata(old: Obj, new: Any, desired: str, what: str) -> Obj:
    """The converted object with the original metadata but its labels and annotations (upstream's rule)."""
    if not isinstance(new, dict) or new.get("apiVersion") != desired:
        got = new.get("apiVersion") if isinstance(new, dict) else type(new).__name__
        raise errors.internal_error(
            f"{what} failed: invalid converted object: expected apiVersion {desired}, got {got}"
        )
    m = copy.deepcopy(old.get("metadata") or {})
    nm = new.get("metadata") or {}
    for field in ("labels", "annotations"):
        if nm.get(field):
            m[field] = nm[field]
        else:
            m.pop(field, None)
    return {**new, "metadata": m}


class WebhookConversion:
    """Conversion `Webhook` between one served version and the storage version."""

    def __init__(
        self,
        converter: WebhookConverter,
        config: Mapping[str, Any],
        kind: str,
        storage_api: str,
        served_api: str,
        served_schema: SchemaValidator | None = None,
    ) -> None:
        self.converter, self.config, self.kind = converter, config, kind
        self.storage_api, self.served_api = storage_api, served_api
        self.served_schema = served_schema

    async def into_storage(self, objs: list[Obj]) -> list[Obj]:
        """The objects converted to the storage version by the webhook."""
        return await self.converter.convert(self.config, self.kind, objs, self.storage_api)

    def converted_by_strategy(self, subresource: str, apply: bool) -> bool:
        """For the object and its status (create, update, patches): the strategy validates it in its version,
        then has it converted. A server-side apply's body is converted here, before the handler."""
        return subresource in ("", "status") and not apply

    async def out_of_storage(self, objs: list[Obj]) -> list[Obj]:
        """The stored objects converted to the served version by the webhook."""
        return _as_served(
            await self.converter.convert(self.config, self.kind, objs, self.served_api), self.served_schema
        )
