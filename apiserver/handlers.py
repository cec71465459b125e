"""One generic handler per verb, for every resource the table serves.

A request path resolves to a `RequestInfo`; the verb comes from the method and
whether a name was given; the resource's strategy supplies what differs per kind.
Subresources (status, scale, binding, finalize) reuse the same update path.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.requests import Request
from starlette.responses import Response

from apimachinery import errors
from apimachinery.resources import ResourceInfo, by_plural
from apiserver import managedfields, openapi
from apiserver.codec import decode_body, json_response, wants_table
from apiserver.options import ListOptions, WriteOptions, parse_bool
from apiserver.registry import Registry
from apiserver.request_info import RequestInfo
from apiserver.subresources import SUBRESOURCES
from apiserver.watch import watch_response
from apiserver.writes import delete_options, patch_object, update_object

__all__ = ["REQUESTS", "handle"]

REQUESTS = Counter("apiserver_request_total", "API requests", ["verb", "resource", "code"])
LATENCY = Histogram(
    "apiserver_request_duration_seconds",
    "API request latency",
    ["verb", "resource"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def _verb(method: str, info: RequestInfo, params: dict[str, str]) -> str:
    if method == "GET":
        if info.legacy_watch or (not info.name and parse_bool(params.get("watch"))):
            return "watch"
        return "get" if info.name else "list"
    if method == "DELETE":
        return "delete" if info.name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def resolve(info: RequestInfo) -> ResourceInfo:
    """The resource a request addresses, or 404."""
    res = by_plural(info.group, info.resource)
    if res is None or res.version != info.version:
        raise errors.path_not_found()
    if info.subresource and info.subresource not in res.subresources:
        raise errors.path_not_found()
    return res


async def handle(reg: Registry, request: Request, info: RequestInfo) -> Response:
    """Serve one API request, recording metrics."""
    params = dict(request.query_params)
    verb = _verb(request.method, info, params)
    start = time.perf_counter()
    code = 500
    try:
        res = resolve(info)
        response = await _dispatch(reg, request, info, res, verb, params)
        code = response.status_code
        return response
    except errors.StatusError as e:
        code = e.code
        raise
    finally:
        REQUESTS.labels(verb, info.resource, str(code)).inc()
        if verb != "watch":
            LATENCY.labels(verb, info.resource).observe(time.perf_counter() - start)


def _namespace(info: RequestInfo, res: ResourceInfo) -> str | None:
    return info.namespace if res.namespaced and info.namespace else None


async def _dispatch(
    reg: Registry,
    request: Request,
    info: RequestInfo,
    res: ResourceInfo,
    verb: str,
    params: dict[str, str],
) -> Response:
    ns = _namespace(info, res)
    if res.namespaced and info.name and not ns and verb not in ("list", "watch"):
        raise errors.path_not_found()
    if info.subresource:
        sub = SUBRESOURCES.get(info.subresource)
        if sub is None:
            raise errors.StatusError(
                404,
                "NotFound",
                f"the {info.subresource} subresource is not served yet",
                {"name": info.name, "group": res.group, "kind": f"{res.plural}/{info.subresource}"},
            )
        return await sub.serve(reg, request, res, ns, info.name, verb, params)
    if verb in ("list", "watch"):
        return await _list_or_watch(reg, request, info, res, ns, params)
    if verb == "get":
        obj = await reg.get(res, ns, info.name, params.get("resourceVersion", ""))
        return _object_response(request, res, obj, params)
    if verb == "create":
        if info.name:
            raise errors.method_not_allowed()
        body = decode_body(await request.body(), request.headers.get("content-type"))
        wo = WriteOptions.parse(params)
        check = await openapi.validate_fields(res, body, wo.field_validation, await request.body())
        if isinstance(body, dict):
            manager = managedfields.manager_name(wo.field_manager, request.headers.get("user-agent"))
            managedfields.set_on_create(res, body, manager)
        obj = await reg.create(res, ns or info.namespace or None, body, wo)
        return check.apply(_object_response(request, res, obj, params, 201))
    if verb == "update":
        return await update_object(reg, request, res, ns, info.name, params)
    if verb == "patch":
        return await patch_object(reg, request, res, ns, info.name, params)
    if verb == "delete":
        options = await delete_options(request, params)
        dry = options.get("dryRun") == ["All"] or params.get("dryRun") == "All"
        obj = await reg.delete(res, ns, info.name, options, dry)
        return json_response(obj)
    if verb == "deletecollection":
        return await _delete_collection(reg, request, res, ns, params)
    raise errors.method_not_allowed()


def _object_response(
    request: Request,
    res: ResourceInfo,
    obj: dict[str, Any],
    params: dict[str, str],
    code: int = 200,
) -> Response:
    if wants_table(request.headers.get("accept")):
        from apiserver.tables import build_table

        rv = obj.get("metadata", {}).get("resourceVersion", "")
        table = build_table(
            res.kind,
            [obj],
            resource_version=rv,
            include_object=params.get("includeObject", "Metadata"),
        )
        return json_response(table, code)
    return json_response(obj, code)


async def _list_or_watch(
    reg: Registry,
    request: Request,
    info: RequestInfo,
    res: ResourceInfo,
    ns: str | None,
    params: dict[str, str],
) -> Response:
    if info.legacy_watch:
        params = {**params, "watch": "true"}
        if info.name:
            selector = f"metadata.name={info.name}"
            params["fieldSelector"] = ",".join(filter(None, [params.get("fieldSelector"), selector]))
    opts = ListOptions.parse(params, res.kind)
    table = wants_table(request.headers.get("accept"))
    include = params.get("includeObject", "Metadata")
    if opts.watch:
        return await watch_response(reg, res, ns, opts, table=table, include_object=include)
    listing = await reg.list(res, ns, opts)
    if table:
        from apiserver.tables import build_table

        m = listing["metadata"]
        return json_response(
            build_table(
                res.kind,
                listing["items"],
                resource_version=m["resourceVersion"],
                continue_token=m.get("continue", ""),
                include_object=include,
            )
        )
    return json_response(listing)


async def _delete_collection(
    reg: Registry, request: Request, res: ResourceInfo, ns: str | None, params: dict[str, str]
) -> Response:
    options = await delete_options(request, params)
    dry = options.get("dryRun") == ["All"] or params.get("dryRun") == "All"
    list_params = {k: v for k, v in params.items() if k in ("labelSelector", "fieldSelector")}
    listing = await reg.list(res, ns, ListOptions.parse(list_params, res.kind))
    deleted = []
    for obj in listing["items"]:
        m = obj["metadata"]
        try:
            deleted.append(await reg.delete(res, m.get("namespace"), m["name"], options, dry))
        except errors.StatusError as e:
            if e.code != 404:
                raise
    return json_response({**listing, "items": deleted})
