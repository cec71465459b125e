"""Serving a resource in a version other than the one it is stored in (autoscaling/v1 HorizontalPodAutoscalers, stored
as autoscaling/v2), by conversion around the generic handler.

A request to `/apis/<group>/<old>/...` is rewritten to the storage version: request bodies are converted in (create,
update, server-side apply), the generic handler serves it, and what comes back is converted out — objects, lists,
Tables with objects, and watch streams event by event. A JSON, merge or strategic merge patch is meant for the old
version's shape, so it is applied to the object as that version shows it: read, convert, patch, convert back, and
update with the resourceVersion read (a conflict is retried unless the patch itself named a resourceVersion), all
through the same generic handler, so whatever guards it guards these too. A built-in kind's created or updated
object has its fields checked (fieldValidation: types, unknown and duplicate fields) in the version written, before
it is converted, as upstream's versioned decoder does: the paths named are the client's. A conversion may leave the
bodies of objects written to it unconverted (`Converts.converted_by_strategy`: a custom resource's, validated in the
version written before it is converted): they reach the handler with `WRITTEN_VERSION` set. A scale's body is a
Scale in every version and passes as it is.

The generic handler is handed what it serves (`Forward`), not a rewritten HTTP request: the storage version's path,
info and query, and a create's body as the object the conversion made (not encoded and decoded again); the object it
creates comes back unencoded (`codec.ObjectResponse`) to be converted out and encoded once.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from apimachinery import errors
from apimachinery.patch import PatchError, UnsupportedPatchType, apply_patch
from apimachinery.resources import ResourceInfo
from apimachinery.selectors import FieldRequirement, FieldSelector, SelectorError, parse_field_selector
from apiserver import openapi
from apiserver.codec import (
    PATCH_TYPES,
    ObjectResponse,
    TooDeep,
    check_depth,
    decode_body,
    json_response,
    media_type,
    nests_within,
)
from apiserver.context import UNDECODED
from apiserver.conversion import hpa_to_v1, hpa_to_v2
from apiserver.options import WriteOptions
from apiserver.request_info import RequestInfo
from apiserver.required import filler_for

if TYPE_CHECKING:
    from apiserver.kindregistry import KindRegistry

__all__ = [
    "CONVERSIONS",
    "SERVED_VERSION",
    "WRITTEN_VERSION",
    "Conversion",
    "Converts",
    "Dispatch",
    "Forward",
    "RenamesFieldLabels",
    "addressed_api_version",
    "addressed_version",
    "serve_converted",
    "written_api_version",
    "written_version",
]

Obj = dict[str, Any]
_APPLY = "application/apply-patch+yaml"
_PATCH_RETRIES = 5
_OWN_KIND = ("", "status")  # where a request's body is an object of the resource's kind

SERVED_VERSION: ContextVar[tuple[str, str, str] | None] = ContextVar("served_version", default=None)
"""(group, resource, version) the client addressed, while its request is served through the storage version
(a custom resource's strategy and printer use that version's schema and columns; an unserved storage version
is reachable only so)."""

WRITTEN_VERSION: ContextVar[tuple[str, str, str] | None] = ContextVar("written_version", default=None)
"""(group, resource, version) a write's body is still in: it reaches the kind's strategy unconverted, which
prunes, defaults and validates it in that version and then converts it to the storage version (a custom
resource, as the apiextensions-apiserver does)."""


def _named(var: ContextVar[tuple[str, str, str] | None], res: ResourceInfo) -> str | None:
    current = var.get()
    return current[2] if current is not None and current[:2] == (res.group, res.plural) else None


def addressed_version(res: ResourceInfo) -> str:
    """The version the current request addressed `res` in (its storage version unless it is served through it)."""
    return _named(SERVED_VERSION, res) or res.version


def addressed_api_version(res: ResourceInfo) -> str:
    """`group/version` the current request addressed `res` in (see `addressed_version`)."""
    return _api_version(res, addressed_version(res))


def written_version(res: ResourceInfo) -> str:
    """The version the object being written is in (the storage version unless its body came unconverted)."""
    return _named(WRITTEN_VERSION, res) or res.version


def written_api_version(res: ResourceInfo) -> str:
    """`group/version` the object being written is in (see `written_version`)."""
    return _api_version(res, written_version(res))


def _api_version(res: ResourceInfo, version: str) -> str:
    return f"{res.group}/{version}" if res.group else version


@dataclass(frozen=True, slots=True)
class Forward:
    """A request to a converted version as the generic handler serves it, on the storage version."""

    info: RequestInfo
    method: str
    path: str
    query: Mapping[str, str] | None = None  # None: the client's
    body: bytes | None = None  # the body the handler reads in place of the client's (None: the client's)
    decoded: Any = UNDECODED  # a create's body, decoded and converted: the handler takes it as it is
    answer_object: bool = False  # answer an object unencoded (codec.ObjectResponse), to be converted out
    fields_checked: bool = False  # the body's fields were checked in the version written (the handler need not)


Dispatch = Callable[[Forward], Awaitable[Response]]


@runtime_checkable
class RenamesFieldLabels(Protocol):
    """A conversion whose served version selects by other field labels than the storage version."""

    def field_label(self, label: str) -> str | None:
        """The storage version's label for a served version's one, or None when it cannot be selected by."""
        ...


class Converts(Protocol):
    """How one served version of a resource maps to and from its storage version, many objects at a time
    (a conversion webhook converts a whole list in one ConversionReview)."""

    async def into_storage(self, objs: list[Obj]) -> list[Obj]:
        """The objects as the storage version writes them."""
        ...

    async def out_of_storage(self, objs: list[Obj]) -> list[Obj]:
        """The stored objects as the served version writes them."""
        ...

    def converted_by_strategy(self, subresource: str, apply: bool) -> bool:
        """Whether a body written to this version (to `subresource`, by server-side apply or not) goes to the
        kind's strategy unconverted, with `WRITTEN_VERSION` set."""
        ...


@dataclass(frozen=True)
class Conversion:
    """A conversion by two functions, one object at a time."""

    to_storage: Callable[[Obj], Obj]
    from_storage: Callable[[Obj], Obj]

    async def into_storage(self, objs: list[Obj]) -> list[Obj]:
        """Each object converted to the storage version."""
        return [self.to_storage(o) for o in objs]

    async def out_of_storage(self, objs: list[Obj]) -> list[Obj]:
        """Each object converted from the storage version."""
        return [self.from_storage(o) for o in objs]

    def converted_by_strategy(self, subresource: str, apply: bool) -> bool:
        """Never: bodies are converted here, before the handler."""
        return False


# (group, served version, plural) → its conversion
CONVERSIONS: dict[tuple[str, str, str], Conversion] = {
    ("autoscaling", "v1", "horizontalpodautoscalers"): Conversion(hpa_to_v2, hpa_to_v1),
}


async def _served_objects(objs: list[Obj], served: ResourceInfo, conv: Converts) -> list[Obj]:
    """Stored objects as the served version writes them (their required fields included)."""
    out = await conv.out_of_storage(objs) if objs else []
    filler = filler_for(served)
    for obj in out:
        filler.fill(obj)
    return out


async def _convert_out(doc: Any, res: ResourceInfo, served: ResourceInfo, conv: Converts) -> Any:
    """An object, a list, a Table or a watch event of the storage version, as the served version."""
    if not isinstance(doc, dict):
        return doc
    kind, storage_api, served_api = doc.get("kind"), res.api_version, served.api_version
    if kind == res.kind and doc.get("apiVersion") == storage_api:
        if (
            "spec" not in doc
            and "status" not in doc
            and set(doc.get("metadata") or {})
            <= {
                "resourceVersion",
                "annotations",
            }
        ):  # a bookmark
            return {**doc, "apiVersion": served_api}
        return (await _served_objects([doc], served, conv))[0]
    if kind == res.list_kind:
        items = doc.get("items") or []
        objs = [i for i in items if isinstance(i, dict)]
        return {**doc, "apiVersion": served_api, "items": await _served_objects(objs, served, conv)}
    if kind == "Table":
        rows = [row for row in doc.get("rows") or [] if isinstance(row, dict)]
        at = [
            i
            for i, row in enumerate(rows)
            if isinstance(row.get("object"), dict) and row["object"].get("kind") == res.kind
        ]
        converted = await _served_objects([rows[i]["object"] for i in at], served, conv)
        for i, obj in zip(at, converted, strict=True):
            rows[i] = {**rows[i], "object": obj}
        return {**doc, "rows": rows}
    if "type" in doc and "object" in doc and set(doc) <= {"type", "object"}:
        return {**doc, "object": await _convert_out(doc["object"], res, served, conv)}
    return doc


async def _as_served(lines: AsyncIterator[Any], served: ResourceInfo) -> AsyncIterator[Any]:
    """A stream whose every step runs with SERVED_VERSION set (a watch's events are encoded as it is read)."""
    key = (served.group, served.plural, served.version)
    while True:
        token = SERVED_VERSION.set(key)
        try:
            chunk = await anext(lines)
        except StopAsyncIteration:
            return
        finally:
            SERVED_VERSION.reset(token)
        yield chunk


async def _convert_stream(lines: AsyncIterator[Any], res: ResourceInfo, served: ResourceInfo, conv: Converts) -> Any:
    pending = b""
    async for chunk in _as_served(lines, served):
        pending += chunk if isinstance(chunk, bytes) else str(chunk).encode()
        *complete, pending = pending.split(b"\n")
        out = b""
        for line in complete:
            if line.strip():
                out += orjson.dumps(await _convert_out(orjson.loads(line), res, served, conv)) + b"\n"
        if out:
            yield out
    if pending.strip():
        yield orjson.dumps(await _convert_out(orjson.loads(pending), res, served, conv)) + b"\n"


async def _response_out(resp: Response, res: ResourceInfo, served: ResourceInfo, conv: Converts) -> Response:
    if isinstance(resp, StreamingResponse):
        headers = {k: v for k, v in resp.headers.items() if k.lower() != "content-length"}
        return StreamingResponse(
            _convert_stream(resp.body_iterator, res, served, conv),
            status_code=resp.status_code,
            media_type=resp.media_type,
            headers=headers,
        )
    if isinstance(resp, ObjectResponse):
        doc = resp.doc
    else:
        try:
            doc = orjson.loads(resp.body)
        except (orjson.JSONDecodeError, AttributeError):
            return resp
    out = json_response(await _convert_out(doc, res, served, conv), resp.status_code)
    # every header the handler added (several Warnings among them), as it added them
    out.raw_headers.extend(h for h in resp.raw_headers if h[0].lower() not in (b"content-length", b"content-type"))
    return out


def _patch(doc: Obj, patch: Any, mt: str, kind: str) -> Obj:
    try:
        return apply_patch(doc, patch, mt, kind)
    except UnsupportedPatchType as e:
        raise errors.unsupported_media_type(mt) from e
    except PatchError as e:
        if mt == "application/json-patch+json":
            raise errors.generic_server_response(422, "", "", str(e)) from e
        raise errors.StatusError(
            422, "Invalid", f"the server rejected our request due to an error in our request: {e}"
        ) from e


def _pins_resource_version(patch: Any, mt: str) -> bool:
    if mt == "application/json-patch+json":
        return isinstance(patch, list) and any(
            isinstance(op, dict) and op.get("path") == "/metadata/resourceVersion" for op in patch
        )
    return isinstance(patch, dict) and "resourceVersion" in (
        (patch.get("metadata") or {}) if isinstance(patch.get("metadata"), dict) else {}
    )


async def _patch_converted(
    request: Request,
    info: RequestInfo,
    storage: Forward,
    res: ResourceInfo,
    served: ResourceInfo,
    conv: Converts,
    dispatch: Dispatch,
) -> Response:
    """A JSON/merge/strategic patch written against the served version: read, convert, patch, write back."""
    mt = media_type(request.headers.get("content-type"))
    patch = decode_body(await request.body(), request.headers.get("content-type"), PATCH_TYPES)
    object_path = storage.path.removesuffix("/" + info.subresource) if info.subresource else storage.path
    read = replace(
        storage,
        info=replace(storage.info, subresource=""),
        method="GET",
        path=object_path,
        body=b"",
        answer_object=False,
    )
    pinned = _pins_resource_version(patch, mt)
    for attempt in range(_PATCH_RETRIES):
        got = await dispatch(read)
        current = orjson.loads(got.body)
        served_view = (await conv.out_of_storage([current]))[0]
        patched = _patch(copy.deepcopy(served_view), patch, mt, res.kind)
        unconverted = conv.converted_by_strategy(info.subresource, apply=False)
        new = patched if unconverted else (await conv.into_storage([patched]))[0]
        if not pinned:
            new.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        try:
            put = await _dispatch_written(
                replace(storage, method="PUT", body=orjson.dumps(new), answer_object=True), dispatch, unconverted
            )
        except errors.StatusError as e:
            if e.code != 409 or pinned or attempt == _PATCH_RETRIES - 1:
                raise
            continue
        return await _response_out(put, res, served, conv)
    raise errors.conflict(served.plural, info.name, served.group)


async def serve_converted(
    request: Request, info: RequestInfo, query: Mapping[str, str], dispatch: Dispatch, kinds: KindRegistry
) -> Response | None:
    """Serve `request` (its parsed `query`) if it addresses a converted version (else None): through `dispatch` on
    the storage version."""
    definition = kinds.get(info.group, info.resource)
    conv = definition.conversions.get(info.version) if definition is not None else None
    if definition is None or conv is None:
        return None
    served = next((v for v in definition.views() if v.version == info.version), None)
    if served is None:
        served = replace(definition.resource, version=info.version, also_served=())
    token = SERVED_VERSION.set((info.group, info.resource, info.version))
    try:
        return await _serve_through_storage(request, info, query, dispatch, definition.storage_resource, served, conv)
    except errors.StatusError as e:
        raise _renamed(e, definition.storage_resource, served) from None
    finally:
        SERVED_VERSION.reset(token)


def _renamed(e: errors.StatusError, res: ResourceInfo, served: ResourceInfo) -> errors.StatusError:
    """An error about the storage resource of another group as one about the served resource."""
    if res.group == served.group or e.details.get("group") != res.group:
        return e
    message = e.message
    for stored_name, served_name in (
        (res.group_resource, served.group_resource),
        (res.kind, f"{served.kind}.{served.group}"),
    ):
        if message.startswith(f'{stored_name} "'):
            message = served_name + message[len(stored_name) :]
            break
    details = {**e.details, "group": served.group}
    return replace(e, message=message, details=details)


def _root(group: str, version: str) -> str:
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def _url_path(request: Request) -> str:
    """`request.url.path` without building the URL: the scope's path, unless it holds a character the URL escapes."""
    path: str = request.scope["path"]
    return request.url.path if "?" in path or "#" in path or "\\" in path else path


def _storage_query(query: Mapping[str, str], conv: Converts) -> Mapping[str, str] | None:
    """The query with its field selector's labels as the storage resource names them (None: the query as it is)."""
    # the cheap test first: a runtime-checkable Protocol's isinstance walks its members (~10 µs)
    if "fieldSelector" not in query or not isinstance(conv, RenamesFieldLabels):
        return None
    try:
        selector = parse_field_selector(query["fieldSelector"])
    except SelectorError as e:
        raise errors.bad_request(str(e)) from e
    renamed = []
    for r in selector.requirements:
        label = conv.field_label(r.field)
        if label is None:
            raise errors.bad_request(f"field label not supported: {r.field}")
        renamed.append(FieldRequirement(label, r.op, r.value))
    return {**query, "fieldSelector": str(FieldSelector(tuple(renamed)))}


@functools.lru_cache(maxsize=2048)
def _on_storage(info: RequestInfo, group: str, version: str) -> RequestInfo:
    """The (frozen, remembered) request info of a path as the storage version names it."""
    return replace(info, group=group, version=version)


def _as_decoded(obj: Any) -> Any:
    """A converted body as decoding its JSON would have given it: no deeper than a body may nest."""
    # encoding it is the cheap test (a few µs, where walking it is ~20); orjson refuses what nests too deep to write
    if nests_within(orjson.dumps(obj)):
        return obj
    try:
        return check_depth(obj)
    except TooDeep as e:  # a conversion can nest deeper than the body it was given (autoscaling/v1's metrics)
        raise errors.bad_request(f"couldn't decode the request body: {e}") from e


async def _serve_through_storage(
    request: Request,
    info: RequestInfo,
    query: Mapping[str, str],
    dispatch: Dispatch,
    res: ResourceInfo,
    served: ResourceInfo,
    conv: Converts,
) -> Response:
    root = _root(info.group, info.version)
    path = _url_path(request)
    storage_info = _on_storage(info, res.group, res.version)
    storage_path = _root(res.group, res.version) + path[len(root) :]
    storage_query = _storage_query(query, conv)
    method = request.method
    own_kind = info.subresource in _OWN_KIND  # a scale's body is a Scale, the same in every version
    if method == "PATCH" and own_kind and media_type(request.headers.get("content-type")) != _APPLY:
        storage = Forward(storage_info, method, storage_path, storage_query)
        return await _patch_converted(request, info, storage, res, served, conv, dispatch)
    unconverted = False
    check: openapi.FieldCheck | None = None
    body: bytes | None = None
    decoded: Any = UNDECODED
    if method in ("POST", "PUT", "PATCH") and own_kind:
        raw = await request.body()
        decoded = decode_body(raw, request.headers.get("content-type") or "application/json")
        if isinstance(decoded, dict) and (method == "PATCH" or decoded.get("kind") in (None, res.kind)):
            api_version = decoded.get("apiVersion")
            served_api = f"{info.group}/{info.version}"
            if api_version not in (None, served_api):
                why = f"the API version in the data ({api_version}) does not match the expected API version"
                raise errors.bad_request(f"{why} ({served_api})")
            unconverted = conv.converted_by_strategy(info.subresource, apply=method == "PATCH")
            if not unconverted and method != "PATCH" and not info.subresource and not served.custom:
                directive = WriteOptions.parse(query).field_validation
                check = await openapi.validate_fields(served, decoded, directive, raw)
            if not unconverted:
                decoded = (await conv.into_storage([decoded]))[0]
        if method == "POST":
            decoded = _as_decoded(decoded)
        else:  # update and apply read their bodies themselves (apiserver/writes.py)
            body, decoded = orjson.dumps(decoded), UNDECODED
    elif method not in ("POST", "PUT", "PATCH", "DELETE"):
        body = b""  # a read's body, if it had one, is not passed on
    storage = Forward(
        storage_info,
        method,
        storage_path,
        storage_query,
        body,
        decoded,
        answer_object=True,
        fields_checked=check is not None,
    )
    resp = await _dispatch_written(storage, dispatch, unconverted)
    out = await _response_out(resp, res, served, conv)
    return check.apply(out) if check is not None else out


async def _dispatch_written(forward: Forward, dispatch: Dispatch, unconverted: bool) -> Response:
    """Dispatch a write whose body is still in the served version (`unconverted`): WRITTEN_VERSION names it."""
    if not unconverted:
        return await dispatch(forward)
    token = WRITTEN_VERSION.set(SERVED_VERSION.get())
    try:
        return await dispatch(forward)
    finally:
        WRITTEN_VERSION.reset(token)
