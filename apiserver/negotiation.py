"""Response content negotiation for the resource API, as apimachinery's `negotiation` package does it.

The handlers answer in JSON; this module turns the client's `Accept` header into an ordered list of
`Output`s it can serve (JSON, YAML, Kubernetes protobuf; `as=Table`, `as=PartialObjectMetadata`,
`as=PartialObjectMetadataList` with `g=meta.k8s.io;v=v1|v1beta1`) and renders the handler's JSON
answer in the first one that fits: a kind without a protobuf message skips a protobuf clause, a list
skips nothing but is 406 under `as=PartialObjectMetadata`, as upstream. Nothing servable is a 406 Status
naming the media types the server accepts, answered before the request does anything.
Watches are re-framed event by event: protobuf events are length-prefixed `WatchEvent` messages.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

from apimachinery import errors
from apiserver import protobuf, yamlcodec

__all__ = ["JSON", "PROTOBUF", "YAML", "Output", "not_acceptable", "outputs", "render", "render_watch", "watch_frame"]

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = protobuf.PROTOBUF_CONTENT_TYPE
ACCEPTED = (JSON, YAML, PROTOBUF)
META_VERSIONS = ("v1", "v1beta1")
PARTIAL = "PartialObjectMetadata"
PARTIAL_LIST = "PartialObjectMetadataList"
_TRANSFORMS = ("Table", PARTIAL, PARTIAL_LIST)
OFF_LOOP_BYTES = 64 * 1024  # answers larger than this are re-encoded on a worker thread


@dataclass(frozen=True, slots=True)
class Output:
    """One servable answer form: a media type and an optional `as=` transform."""

    media_type: str
    transform: str = ""  # "", "Table", "PartialObjectMetadata", "PartialObjectMetadataList"
    version: str = "v1"  # meta.k8s.io version of the transform

    @property
    def plain_json(self) -> bool:
        """The handlers' own answer, as it is."""
        return self.media_type == JSON and not self.transform


PLAIN_JSON = Output(JSON)


def _clauses(accept: str) -> list[tuple[str, dict[str, str]]]:
    """The Accept header's media ranges with their parameters, most preferred first (q, then order)."""
    ranked = []
    for i, part in enumerate(accept.split(",")):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        if not media:
            continue
        params = {}
        for piece in pieces[1:]:
            key, _, value = piece.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        if q > 0:
            ranked.append((-q, i, media, params))
    ranked.sort()
    return [(media, params) for _q, _i, media, params in ranked]


def outputs(accept: str | None, *, watch: bool = False) -> list[Output]:
    """The forms the client accepts that this server can produce, most preferred first."""
    if not accept or not accept.strip():
        return [PLAIN_JSON]
    if len(accept) > _CACHED_ACCEPT_MAX:
        return list(_outputs(accept, watch))
    return list(_cached_outputs(accept, watch))


_CACHED_ACCEPT_MAX = 512  # clients send a handful of distinct Accept headers: those are parsed once


def _outputs(accept: str, watch: bool) -> tuple[Output, ...]:
    found: list[Output] = []
    for media, params in _clauses(accept):
        if media in ("*/*", "application/*"):
            media = JSON
        if media not in ACCEPTED or (watch and media == YAML):  # YAML has no stream framing upstream
            continue
        transform = params.get("as", "")
        version = params.get("v", "v1")
        if transform:
            if transform not in _TRANSFORMS or params.get("g") != "meta.k8s.io" or version not in META_VERSIONS:
                continue
            if transform == "Table" and media == PROTOBUF:  # a Table has no protobuf message
                continue
        out = Output(media, transform, version if transform else "v1")
        if out not in found:
            found.append(out)
    return tuple(found)


_cached_outputs = functools.lru_cache(maxsize=256)(_outputs)


def not_acceptable() -> errors.StatusError:
    """Upstream's NewNotAcceptableError for the media types this server answers in."""
    return errors.not_acceptable(f"only the following media types are accepted: {', '.join(ACCEPTED)}")


def _partial(obj: dict[str, Any], version: str) -> dict[str, Any]:
    return {"kind": PARTIAL, "apiVersion": f"meta.k8s.io/{version}", "metadata": obj.get("metadata") or {}}


def _transformed(doc: Any, out: Output) -> Any:
    """The document in the output's `as=` form (Tables are built by the handlers); 406 on a misfit."""
    if not out.transform or out.transform == "Table" or not isinstance(doc, dict) or doc.get("kind") == "Status":
        return doc
    is_list = isinstance(doc.get("items"), list) and str(doc.get("kind", "")).endswith("List")
    if out.transform == PARTIAL_LIST:
        if not is_list:
            raise errors.not_acceptable(f"you requested {PARTIAL_LIST}, but the requested object is not a list")
        return {
            "kind": PARTIAL_LIST,
            "apiVersion": f"meta.k8s.io/{out.version}",
            "metadata": doc.get("metadata") or {},
            "items": [_partial(item, out.version) for item in doc["items"]],
        }
    if is_list:
        raise errors.not_acceptable(f"you requested {PARTIAL}, but the requested object is a list")
    return _partial(doc, out.version)


def _encode(doc: Any, media_type: str) -> bytes:
    if media_type == PROTOBUF:
        return protobuf.encode_protobuf(doc)
    if media_type == YAML:
        return yamlcodec.dump(doc)
    return orjson.dumps(doc)


async def render(response: Response, wanted: list[Output]) -> Response:
    """The handler's JSON answer in the first wanted form it fits; 406 when none.

    Re-encoding is Python work proportional to the answer: a large list is re-encoded on a worker
    thread so the event loop keeps serving other clients meanwhile.
    """
    first = wanted[0]
    if response.media_type != JSON or (first.media_type == JSON and first.transform in ("", "Table")):
        return response  # the handlers' own answer (they build Tables themselves)
    if len(response.body) > OFF_LOOP_BYTES:
        return await asyncio.to_thread(_render, response, wanted)
    return _render(response, wanted)


def _render(response: Response, wanted: list[Output]) -> Response:
    doc = orjson.loads(bytes(response.body))
    for out in wanted:
        try:
            body = _encode(_transformed(doc, out), out.media_type)
        except protobuf.ProtobufError:
            continue  # no protobuf form for this answer (a kind without a message): the client's next choice
        headers = {k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")}
        return Response(body, response.status_code, headers=headers, media_type=out.media_type)
    raise not_acceptable()


def render_status(err: errors.StatusError, wanted: list[Output]) -> Response | None:
    """A Status error in the client's first non-JSON choice (None: plain JSON will do)."""
    media_type = wanted[0].media_type if wanted else JSON
    if media_type == JSON:
        return None
    return Response(_encode(err.to_status(), media_type), err.code, media_type=media_type)


def watch_frame(event: dict[str, Any], out: Output) -> bytes:
    """One watch event in the output's framing: a JSON line, or a length-prefixed protobuf WatchEvent."""
    obj = event.get("object")
    if event.get("type") != "ERROR" and isinstance(obj, dict):
        # each event carries one object: a metadata-only watch gets PartialObjectMetadata either way
        one = Output(out.media_type, PARTIAL, out.version) if out.transform == PARTIAL_LIST else out
        obj = _transformed(obj, one)
    if out.media_type != PROTOBUF:
        return orjson.dumps({"type": event.get("type"), "object": obj}) + b"\n"
    raw = protobuf.encode_protobuf(obj) if isinstance(obj, dict) else b""
    api_version = obj.get("apiVersion", "v1") if isinstance(obj, dict) else "v1"
    body = protobuf.encode_watch_event(str(event.get("type", "")), raw, api_version)
    return len(body).to_bytes(4, "big") + body


def render_watch(response: StreamingResponse, wanted: list[Output]) -> StreamingResponse:
    """A JSON-lines watch stream re-framed in the client's first choice (that must be a streamable one)."""
    out = wanted[0]
    if out.plain_json or out.transform == "Table":
        return response
    headers = {k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")}
    enc = getattr(response, "watch_encoder", None)
    if enc is not None and enc.stream is response.body_iterator:  # the watch's own stream: frame there, once
        enc.reframe(out)
        own = type(response)(  # the watch's own response class: it may write frames to the connection
            response.body_iterator, response.status_code, headers=headers, media_type=out.media_type
        )
        own.watch_encoder = enc  # type: ignore[attr-defined]
        return own
    lines = response.body_iterator

    def frames(chunk: bytes) -> bytes:
        return b"".join(watch_frame(orjson.loads(line), out) for line in chunk.split(b"\n") if line.strip())

    async def framed() -> AsyncIterator[bytes]:
        pending = b""
        try:
            async for chunk in lines:
                pending += chunk if isinstance(chunk, bytes) else str(chunk).encode()
                complete, _, pending = pending.rpartition(b"\n")
                if data := frames(complete):
                    yield data
            if data := frames(pending):
                yield data
        except protobuf.ProtobufError as e:  # an object the client's format cannot carry: end as upstream does
            status = errors.internal_error(str(e)).to_status()
            yield watch_frame({"type": "ERROR", "object": status}, out)
        finally:
            if hasattr(lines, "aclose"):
                await lines.aclose()

    return StreamingResponse(framed(), response.status_code, headers=headers, media_type=out.media_type)
