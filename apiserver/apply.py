"""Server-side apply (PATCH application/apply-patch+yaml): create, or merge with field ownership and conflicts."""

from __future__ import annotations

import copy
from typing import Any

from starlette.responses import Response

from apimachinery import errors
from apimachinery.meta import meta
from apimachinery.resources import ResourceInfo
from apiserver import managedfields, openapi
from apiserver.codec import encoded_response
from apiserver.context import RequestContext
from apiserver.options import WriteOptions
from apiserver.versions import addressed_api_version

__all__ = ["server_side_apply"]


async def server_side_apply(ctx: RequestContext, patch: Any, wo: WriteOptions) -> Response:
    """Apply a configuration: create it when missing (201), else merge it as `fieldManager` (409 on conflicts).

    The merge is redone on the object as read on every try of the write, so concurrent appliers do
    not conflict on the object's resourceVersion; only a configuration naming a resourceVersion
    makes it a precondition (409 when stale).
    """
    res, reg, ns, name, subresource = ctx.resource, ctx.registry, ctx.namespace, ctx.name, ctx.subresource
    assert res is not None and reg is not None
    if not wo.field_manager:
        raise errors.bad_request("PATCH, application/apply-patch+yaml requires fieldManager parameter")
    if not isinstance(patch, dict):
        raise errors.bad_request("the body of the request was not a valid apply configuration")
    m = patch.setdefault("metadata", {})
    if not isinstance(m, dict):
        raise errors.bad_request("the body of the request was not a valid apply configuration")
    if m.get("name", name) != name:
        raise errors.bad_request(
            f"the name of the object ({m.get('name')}) does not match the name on the URL ({name})"
        )
    m["name"] = name
    await openapi.ensure_loaded()
    _check_applied_fields(res, ns, name, patch, wo.field_validation)
    precondition = m.get("resourceVersion")

    def merge(cur: dict[str, Any]) -> dict[str, Any]:
        merged = managedfields.apply_config(res, cur, patch, wo.field_manager, wo.force)
        if precondition:
            meta(merged)["resourceVersion"] = precondition
        return merged

    try:
        result = await reg.update(res, ns, name, merge, wo, subresource, user=ctx.user)
    except errors.StatusError as e:
        if e.code != 404 or e.details.get("kind") != res.plural or subresource:
            raise
        body = copy.deepcopy(patch)
        managedfields.set_on_create(res, body, wo.field_manager, "Apply")
        try:
            return encoded_response((await reg.create(res, ns, body, wo, user=ctx.user)).json(), 201)
        except errors.StatusError as exists:
            if exists.reason != "AlreadyExists":
                raise
        # created meanwhile by someone else: apply onto theirs
        result = await reg.update(res, ns, name, merge, wo, subresource, user=ctx.user)
    return encoded_response(result.stored.json())


def _check_applied_fields(res: ResourceInfo, ns: str | None, name: str, patch: dict[str, Any], directive: str) -> None:
    """Unknown fields in an apply configuration: 400 under Strict, dropped otherwise."""
    try:
        openapi.check_fields(res, patch, directive)
    except errors.StatusError as e:
        fields = e.message.removeprefix("strict decoding error: ")
        paths = ", ".join("." + f.removeprefix('unknown field "').removesuffix('"') for f in fields.split(", "))
        raise errors.bad_request(
            f"failed to create typed patch object ({ns + '/' if ns else ''}{name}; {addressed_api_version(res)}, "
            f"Kind={res.kind}): {paths}: field not declared in schema"
        ) from e
