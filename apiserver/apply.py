"""Server-side apply (PATCH application/apply-patch+yaml): create or merge the applied config."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from apimachinery import errors
from apimachinery.patch import PatchError, strategic_merge_patch
from apimachinery.resources import ResourceInfo
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
    """Apply a configuration: create the object when missing (201), else merge it in."""
    if not wo.field_manager:
        raise errors.bad_request("PATCH, application/apply-patch+yaml requires fieldManager parameter")
    if not isinstance(patch, dict):
        raise errors.bad_request("the body of the request was not a valid apply configuration")
    m = patch.setdefault("metadata", {})
    if m.get("name", name) != name:
        raise errors.bad_request(
            f"the name of the object ({m.get('name')}) does not match the name on the URL ({name})"
        )
    m["name"] = name
    try:
        await reg.get(res, ns, name)
    except errors.StatusError as e:
        if e.code != 404 or subresource:
            raise
        return json_response(await reg.create(res, ns, patch, wo), 201)

    def merge(cur: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")}
        body["metadata"] = {k: v for k, v in m.items() if k != "resourceVersion"}
        try:
            return strategic_merge_patch(cur, body, res.kind)
        except PatchError as e:
            raise errors.StatusError(422, "Invalid", str(e)) from e

    result = await reg.update(res, ns, name, merge, wo, subresource)
    return json_response(result.obj)
