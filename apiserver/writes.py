"""The write requests shared by resources and their subresources: update, patch, delete options."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from starlette.responses import Response

from apimachinery import errors
from apimachinery.patch import MERGE_PATCH, STRATEGIC_MERGE_PATCH, PatchError, UnsupportedPatchType, apply_patch
from apiserver import fastcheck, managedfields, openapi
from apiserver.codec import PATCH_TYPES, decode_body, encoded_response, media_type, nests_within
from apiserver.context import RequestContext
from apiserver.options import WriteOptions

__all__ = ["delete_options", "dry_run_of", "patch_function", "patch_object", "update_object"]


async def update_object(ctx: RequestContext) -> Response:
    """PUT of an object or of its status: replace it (or create it, for kinds that allow that)."""
    res, reg, name, subresource = ctx.resource, ctx.registry, ctx.name, ctx.subresource
    assert res is not None and reg is not None
    raw = await ctx.body()
    body = decode_body(raw, ctx.header("content-type"))
    if not isinstance(body, dict):
        raise errors.bad_request(f"the body of the request was not a {res.kind} object")
    wo = WriteOptions.parse(ctx.query)
    check = await openapi.validate_fields(res, body, wo.field_validation, raw)
    manager = managedfields.manager_name(wo.field_manager, ctx.header("user-agent"))
    complete = reg.strategy(res).complete

    def mutate(cur: dict[str, Any]) -> dict[str, Any]:
        if subresource:
            return copy.deepcopy(body)
        return managedfields.track_update(res, cur, copy.deepcopy(body), manager, complete=complete)

    try:
        result = await reg.update(res, ctx.namespace, name, mutate, wo, subresource, user=ctx.user)
    except errors.StatusError as e:
        if e.code != 404 or subresource or not reg.strategy(res).allow_create_on_update:
            raise
        body_name = (body.get("metadata") or {}).get("name")
        if body_name != name:
            why = f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            raise errors.bad_request(why) from None
        managedfields.set_on_create(res, body, manager)
        created = await reg.create(res, ctx.namespace, body, wo, user=ctx.user)
        return check.apply(encoded_response(created.json(), 201))
    return check.apply(encoded_response(result.stored.json(), 201 if result.created else 200))


async def patch_object(ctx: RequestContext) -> Response:
    """PATCH of an object or of its status: JSON, merge, strategic-merge patches and server-side apply.

    The patch is applied to the object as read on every try of the write, so a concurrent write
    makes the server re-read and re-apply it (upstream's GuaranteedUpdate); only a patch that names a
    resourceVersion itself can end in 409 Conflict.
    """
    res, reg, subresource = ctx.resource, ctx.registry, ctx.subresource
    assert res is not None and reg is not None
    content_type = ctx.header("content-type")
    mt = media_type(content_type)
    if res.custom and mt == STRATEGIC_MERGE_PATCH:  # custom resources have no Go struct to merge by (upstream's 415)
        raise errors.StatusError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        )
    patch = decode_body(await ctx.body(), content_type, PATCH_TYPES)
    wo = WriteOptions.parse(ctx.query)
    if mt == "application/apply-patch+yaml":
        from apiserver.apply import server_side_apply

        return await server_side_apply(ctx, patch, wo)

    await openapi.ensure_loaded()
    await fastcheck.prepare(res)
    manager = managedfields.manager_name(wo.field_manager, ctx.header("user-agent"))
    check = openapi.FieldCheck([])
    apply_patch_to = patch_function(patch, mt, res.kind, copy_doc=False)
    # a merge patch's result nests no deeper than the stored object or the patch (checked when decoded);
    # a JSON patch's copy and move can nest it deeper
    bounded = mt in (MERGE_PATCH, STRATEGIC_MERGE_PATCH)
    only = _patched_fields(patch) if bounded and subresource == "status" and not res.custom else None
    complete = reg.strategy(res).complete

    def mutate(cur: dict[str, Any]) -> dict[str, Any]:
        # `cur` is the registry's private copy, decoded from the stored JSON (so orjson encodes it again)
        raw = orjson.dumps(cur)
        # status: `cur` is not read again, so it is patched in place; else track_update compares with it
        new = apply_patch_to(cur if subresource else orjson.loads(raw))

        def known() -> list[str]:
            """The unknown fields already stored, asked for only when the patched object has some."""
            return openapi.unknown_fields(res, orjson.loads(raw) if subresource else cur)

        depth_known = bounded and nests_within(raw)
        check.warnings = openapi.check_fields(
            res, new, wo.field_validation, ignore=known, depth_known=depth_known, only=only
        ).warnings
        if subresource:
            return new
        return managedfields.track_update(res, cur, new, manager, complete=complete)

    result = await reg.update(res, ctx.namespace, ctx.name, mutate, wo, subresource, user=ctx.user)
    return check.apply(encoded_response(result.stored.json()))


def _patched_fields(patch: Any) -> frozenset[str] | None:
    """The top-level fields a merge or strategic merge patch can change: the others stay the stored object's.

    A status write checks only these (the stored object passed the checks when it was written, and keeps
    everything but status anyway). None (check everything) when the patch has a top-level directive
    (`$patch: replace`, `$retainKeys`, …), which can reach beyond the fields it names.
    """
    if not isinstance(patch, dict) or any(k.startswith("$") for k in patch):
        return None
    return frozenset(patch)


def dry_run_of(ctx: RequestContext, options: dict[str, Any]) -> bool:
    """Whether a delete is a dry run (the dryRun query parameter or DeleteOptions.dryRun)."""
    return options.get("dryRun") == ["All"] or ctx.query.get("dryRun") == "All"


async def delete_options(ctx: RequestContext) -> dict[str, Any]:
    """The DeleteOptions of a delete: the body's, with gracePeriodSeconds and propagationPolicy from the query."""
    raw = await ctx.body()
    params = ctx.query
    options: dict[str, Any] = {}
    if raw.strip():
        options = decode_body(raw, ctx.header("content-type"))
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


def patch_function(patch: Any, mt: str, kind: str, *, copy_doc: bool = True) -> Any:
    """A mutate function for `Registry.update` that applies a patch of media type `mt`; with `copy_doc=False`
    it patches the object it is given in place."""

    def mutate(cur: dict[str, Any]) -> dict[str, Any]:
        try:
            return apply_patch(cur, patch, mt, kind, copy_doc=copy_doc)
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
