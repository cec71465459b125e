"""Server-side apply (PATCH application/apply-patch+yaml): create, or merge with field ownership and conflicts."""

from __future__ import annotations

import copy
from typing import Any

from starlette.responses import Response

from apimachinery import errors
from apimachinery.resources import ResourceInfo
from apiserver import managedfields, openapi
from apiserver.codec import json_response
from apiserver.options import WriteOptions
from apiserver.registry import Registry

__all__ = ["server_side_apply"]


async def server_side_apply(
    reg: Registry,
    res: ResourceInfo,
    ns: str | None,
    name: str,
    patch: Any,
    wo: WriteOptions,
    subresource: str = "",
) -> Response:
    """Apply a configuration: create it when missing (201), else merge it as `fieldManager` (409 on conflicts)."""
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
    try:
        await reg.get(res, ns, name)
    except errors.StatusError as e:
        if e.code != 404 or subresource:
            raise
        body = copy.deepcopy(patch)
        managedfields.set_on_create(res, body, wo.field_manager, "Apply")
        return json_response(await reg.create(res, ns, body, wo), 201)

    def merge(cur: dict[str, Any]) -> dict[str, Any]:
        return managedfields.apply_config(res, cur, patch, wo.field_manager, wo.force)

    result = await reg.update(res, ns, name, merge, wo, subresource)
    return json_response(result.obj)


def _check_applied_fields(res: ResourceInfo, ns: str | None, name: str, patch: dict[str, Any], directive: str) -> None:
    """Unknown fields in an apply configuration: 400 under Strict, dropped otherwise."""
    try:
        openapi.check_fields(res, patch, directive)
    except errors.StatusError as e:
        fields = e.message.removeprefix("strict decoding error: ")
        paths = ", ".join("." + f.removeprefix('unknown field "').removesuffix('"') for f in fields.split(", "))
        raise errors.bad_request(
            f"failed to create typed patch object ({ns + '/' if ns else ''}{name}; {res.api_version}, "
            f"Kind={res.kind}): {paths}: field not declared in schema"
        ) from e
