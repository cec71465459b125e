"""The write paths shared by resources and their subresources: update, patch, delete options."""

from __future__ import annotations

import copy
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from apimachinery import errors
from apimachinery.patch import PatchError, UnsupportedPatchType, apply_patch
from apimachinery.resources import ResourceInfo
from apiserver import managedfields, openapi
from apiserver.codec import PATCH_TYPES, decode_body, json_response, media_type
from apiserver.options import WriteOptions
from apiserver.registry import Registry

__all__ = ["delete_options", "patch_function", "patch_object", "update_object"]


async def update_object(
    reg: Registry,
    request: Request,
    res: ResourceInfo,
    ns: str | None,
    name: str,
    params: dict[str, str],
    subresource: str = "",
) -> Response:
    body = decode_body(await request.body(), request.headers.get("content-type"))
    if not isinstance(body, dict):
        raise errors.bad_request(f"the body of the request was not a {res.kind} object")
    wo = WriteOptions.parse(params)
    check = await openapi.validate_fields(res, body, wo.field_validation, await request.body())
    manager = managedfields.manager_name(wo.field_manager, request.headers.get("user-agent"))

    def mutate(cur: dict[str, Any]) -> dict[str, Any]:
        if subresource:
            return body
        return managedfields.track_update(res, cur, copy.deepcopy(body), manager)

    try:
        result = await reg.update(res, ns, name, mutate, wo, subresource)
    except errors.StatusError as e:
        if e.code != 404 or subresource or not reg.strategy(res).allow_create_on_update:
            raise
        body_name = (body.get("metadata") or {}).get("name")
        if body_name != name:
            why = f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            raise errors.bad_request(why) from None
        managedfields.set_on_create(res, body, manager)
        return check.apply(json_response(await reg.create(res, ns, body, wo), 201))
    return check.apply(json_response(result.obj, 201 if result.created else 200))


async def patch_object(
    reg: Registry,
    request: Request,
    res: ResourceInfo,
    ns: str | None,
    name: str,
    params: dict[str, str],
    subresource: str = "",
) -> Response:
    content_type = request.headers.get("content-type")
    patch = decode_body(await request.body(), content_type, PATCH_TYPES)
    wo = WriteOptions.parse(params)
    mt = media_type(content_type)
    if mt == "application/apply-patch+yaml":
        from apiserver.apply import server_side_apply

        return await server_side_apply(reg, res, ns, name, patch, wo, subresource)

    await openapi.ensure_loaded()
    manager = managedfields.manager_name(wo.field_manager, request.headers.get("user-agent"))
    check = openapi.FieldCheck([])
    apply_patch_to = patch_function(patch, mt, res.kind)

    pins_rv = _patch_sets_resource_version(patch, mt)

    def mutate(cur: dict[str, Any]) -> dict[str, Any]:
        known = openapi.unknown_fields(res, cur)
        new = apply_patch_to(cur)
        if not pins_rv and isinstance(new.get("metadata"), dict):
            # the resourceVersion came from the object read, not the client: no precondition, so a
            # concurrent write makes the registry re-read and re-apply the patch instead of 409
            new["metadata"].pop("resourceVersion", None)
        check.warnings = openapi.check_fields(res, new, wo.field_validation, ignore=known).warnings
        if subresource:
            return new
        return managedfields.track_update(res, cur, new, manager)

    result = await reg.update(res, ns, name, mutate, wo, subresource)
    return check.apply(json_response(result.obj))


async def delete_options(request: Request, params: dict[str, str]) -> dict[str, Any]:
    raw = await request.body()
    options: dict[str, Any] = {}
    if raw.strip():
        options = decode_body(raw, request.headers.get("content-type"))
        if not isinstance(options, dict):
            raise errors.bad_request("the body of the request was not a DeleteOptions object")
    if "gracePeriodSeconds" in params:
        try:
            options["gracePeriodSeconds"] = int(params["gracePeriodSeconds"])
        except ValueError as e:
            raise errors.bad_request("gracePeriodSeconds must be an integer") from e
    if "propagationPolicy" in params:
        options["propagationPolicy"] = params["propagationPolicy"]
    policy = options.get("propagationPolicy")
    if policy not in (None, "Orphan", "Background", "Foreground"):
        raise errors.invalid(
            "DeleteOptions",
            "",
            [
                errors.Cause(
                    "propagationPolicy",
                    f'Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan", "nil"',
                    "FieldValueNotSupported",
                )
            ],
            "meta.k8s.io",
        )
    return options


def patch_function(patch: Any, mt: str, kind: str) -> Any:
    """A mutate function for `Registry.update` that applies a patch of media type `mt`."""

    def mutate(cur: dict[str, Any]) -> dict[str, Any]:
        try:
            return apply_patch(cur, patch, mt, kind)
        except UnsupportedPatchType as e:
            raise errors.unsupported_media_type(mt) from e
        except PatchError as e:
            if mt == "application/json-patch+json":
                # kube-apiserver answers a JSON patch that does not apply with NewGenericServerResponse(422),
                # whose message leaves the patch library's reason out
                raise errors.generic_server_response(422, "", "", str(e)) from e
            raise errors.StatusError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {e}",
            ) from e

    return mutate


def _patch_sets_resource_version(patch: Any, media_type: str) -> bool:
    """Whether the client's patch itself names a resourceVersion (an optimistic-lock precondition)."""
    if media_type == "application/json-patch+json":
        return isinstance(patch, list) and any(
            isinstance(op, dict) and op.get("path") == "/metadata/resourceVersion" for op in patch
        )
    meta = patch.get("metadata") if isinstance(patch, dict) else None
    return isinstance(meta, dict) and "resourceVersion" in meta
