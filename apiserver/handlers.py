"""One generic handler per verb, for every resource the table serves.

The chain has parsed the path and the verb into the request's `RequestContext`; the handler
resolves the resource, and the resource's strategy supplies what differs per kind. Subresources
(status, scale, binding, finalize, log, exec) are served by `apiserver.subresources`.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from starlette.responses import Response

from apimachinery import errors
from apimachinery.hotmetrics import HotCounter, HotHistogram
from apimachinery.resources import CREATE_ONLY, ResourceInfo
from apiserver import managedfields, openapi
from apiserver.codec import JSON, ObjectResponse, decode_body, encoded_response, json_response, wants_table
from apiserver.context import UNDECODED, RequestContext
from apiserver.kindregistry import KindRegistry
from apiserver.options import ListOptions, WriteOptions
from apiserver.registry import Registry, encode_list
from apiserver.request_info import RequestInfo
from apiserver.reviews import serve_review
from apiserver.storage import StoredObject
from apiserver.watch import watch_response
from apiserver.writes import delete_options, dry_run_of, patch_object, update_object

__all__ = ["REQUESTS", "handle", "object_response", "registry_of", "stored_response"]

REQUESTS = HotCounter("apiserver_request_total", "API requests", ["verb", "resource", "code"])
LATENCY = HotHistogram(
    "apiserver_request_duration_seconds",
    "API request latency",
    ["verb", "resource"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def resolve(kinds: KindRegistry, info: RequestInfo) -> ResourceInfo:
    """The resource a request addresses, or 404."""
    res = kinds.resolve(info.group, info.version, info.resource)
    if res is None:
        raise errors.path_not_found()
    if info.subresource and info.subresource not in res.subresources:
        raise errors.path_not_found()
    return res


def registry_of(ctx: RequestContext) -> Registry:
    """The registry the request is served from."""
    assert ctx.registry is not None
    return ctx.registry


async def handle(ctx: RequestContext) -> Response:
    """Serve one API request, recording metrics."""
    assert ctx.info is not None
    start = time.perf_counter()
    code = 500
    try:
        ctx.resource = resolve(registry_of(ctx).kinds, ctx.info)
        response = await _dispatch(ctx)
        code = response.status_code
        return response
    except errors.StatusError as e:
        code = e.code
        raise
    finally:
        _requests(ctx.verb, ctx.info.resource, code).inc()
        if ctx.verb != "watch":
            _latency(ctx.verb, ctx.info.resource).observe(time.perf_counter() - start)


@functools.cache
def _requests(verb: str, resource: str, code: int) -> Any:
    # the labelled child, looked up once per label set (with the code's text)
    return REQUESTS.labels(verb, resource, str(code))


@functools.cache
def _latency(verb: str, resource: str) -> Any:
    return LATENCY.labels(verb, resource)


async def _dispatch(ctx: RequestContext) -> Response:
    assert ctx.info is not None and ctx.resource is not None
    verb, res = ctx.verb, ctx.resource
    if res.namespaced and ctx.name and not ctx.namespace and verb not in ("list", "watch"):
        raise errors.path_not_found()
    if ctx.subresource:
        return await registry_of(ctx).kinds.of(res).subresources[ctx.subresource].serve(ctx)
    if res.verbs == CREATE_ONLY:  # the reviews: answered, never stored
        return await serve_review(ctx)
    handler = _VERBS.get(verb)
    if handler is None:
        raise errors.method_not_allowed()
    return await handler(ctx)


async def _get(ctx: RequestContext) -> Response:
    assert ctx.resource is not None
    rv = ctx.query.get("resourceVersion", "")
    stored = await registry_of(ctx).get_stored(ctx.resource, ctx.namespace, ctx.name, rv)
    return stored_response(ctx, stored)


async def _create(ctx: RequestContext) -> Response:
    res = ctx.resource
    assert res is not None and ctx.info is not None
    if ctx.name:
        raise errors.method_not_allowed()
    raw: bytes | None = None
    if ctx.decoded_body is UNDECODED:
        raw = await ctx.body()
        body = decode_body(raw, ctx.header("content-type"))
    else:  # converted from what the client sent: an object, whose keys cannot repeat (no duplicates to look for)
        body = ctx.decoded_body
    wo = WriteOptions.parse(ctx.query)
    if ctx.fields_checked:  # in the version the client wrote, before it was converted (apiserver/versions.py)
        check = openapi.FieldCheck([])
    else:
        check = await openapi.validate_fields(res, body, wo.field_validation, raw)
    if isinstance(body, dict):
        manager = managedfields.manager_name(wo.field_manager, ctx.header("user-agent"))
        managedfields.set_on_create(res, body, manager)
    created = await registry_of(ctx).create(res, ctx.namespace or ctx.info.namespace or None, body, wo, user=ctx.user)
    return check.apply(stored_response(ctx, created, 201, owned=True))


async def _delete(ctx: RequestContext) -> Response:
    assert ctx.resource is not None
    options = await delete_options(ctx)
    obj = await registry_of(ctx).delete(
        ctx.resource, ctx.namespace, ctx.name, options, dry_run_of(ctx, options), user=ctx.user
    )
    return json_response(obj)


def stored_response(ctx: RequestContext, stored: StoredObject, code: int = 200, *, owned: bool = False) -> Response:
    """`object_response` of a stored object: in plain JSON, the JSON it keeps (made once, or as etcd holds it)."""
    if (ctx.answer_object and owned) or wants_table(ctx.header("accept")):
        return object_response(ctx, stored.obj, code, owned=owned)
    return encoded_response(stored.json(), code)


def object_response(ctx: RequestContext, obj: dict[str, Any], code: int = 200, *, owned: bool = False) -> Response:
    """One object as JSON, or as a one-row Table when the client asked for one; unencoded when the context asks and
    the object is the request's own (`owned`: a create's, not the watch cache's, which no one may change)."""
    doc: Any = obj
    if wants_table(ctx.header("accept")):
        from apiserver.tables import build_table

        assert ctx.resource is not None
        rv = obj.get("metadata", {}).get("resourceVersion", "")
        doc = build_table(
            registry_of(ctx).kinds.of(ctx.resource).printer,
            [obj],
            resource_version=rv,
            include_object=_include_object(ctx),
        )
    return ObjectResponse(doc, code) if ctx.answer_object and owned else json_response(doc, code)


def _list_options(ctx: RequestContext) -> ListOptions:
    assert ctx.info is not None and ctx.resource is not None
    params = ctx.query
    if ctx.info.legacy_watch:
        params = {**params, "watch": "true"}
        if ctx.name:
            selector = f"metadata.name={ctx.name}"
            params["fieldSelector"] = ",".join(filter(None, [params.get("fieldSelector"), selector]))
    return ListOptions.parse(params, registry_of(ctx).kinds.of(ctx.resource).fields)


def _include_object(ctx: RequestContext) -> str:
    """The includeObject policy of a Table request; anything else is upstream's ValidateTableOptions 400."""
    from apiserver.tables import INCLUDE_OBJECT_POLICIES

    value = ctx.query.get("includeObject", "Metadata") or "Metadata"
    if value not in INCLUDE_OBJECT_POLICIES:
        supported = ", ".join(f'"{p}"' for p in sorted(INCLUDE_OBJECT_POLICIES))
        raise errors.bad_request(f'includeObject: Unsupported value: "{value}": supported values: {supported}')
    return value


async def _list_or_watch(ctx: RequestContext) -> Response:
    res = ctx.resource
    assert res is not None
    opts = _list_options(ctx)
    table = wants_table(ctx.header("accept"))
    include = _include_object(ctx) if table else "Metadata"
    reg = registry_of(ctx)
    if opts.watch:
        return await watch_response(reg, res, ctx.namespace, opts, table=table, include_object=include)
    listing = await reg.list(res, ctx.namespace, opts)
    if table:
        from apiserver.tables import build_table

        m = listing["metadata"]
        return json_response(
            build_table(
                reg.kinds.of(res).printer,
                listing["items"],
                resource_version=m["resourceVersion"],
                continue_token=m.get("continue", ""),
                include_object=include,
            )
        )
    return Response(encode_list(listing), media_type=JSON)


async def _delete_collection(ctx: RequestContext) -> Response:
    res = ctx.resource
    assert res is not None
    reg = registry_of(ctx)
    options = await delete_options(ctx)
    dry = dry_run_of(ctx, options)
    list_params = {k: v for k, v in ctx.query.items() if k in ("labelSelector", "fieldSelector")}
    listing = await reg.list(res, ctx.namespace, ListOptions.parse(list_params, reg.kinds.of(res).fields))
    deleted = []
    for obj in listing["items"]:
        m = obj["metadata"]
        try:
            deleted.append(await reg.delete(res, m.get("namespace"), m["name"], options, dry, user=ctx.user))
        except errors.StatusError as e:
            if e.code != 404:
                raise
    return json_response({**listing, "items": deleted})


_VERBS = {
    "get": _get,
    "list": _list_or_watch,
    "watch": _list_or_watch,
    "create": _create,
    "update": update_object,
    "patch": patch_object,
    "delete": _delete,
    "deletecollection": _delete_collection,
}
