"""The OpenAPI documents of CRD group versions (upstream's CRD OpenAPI builder), beside the built-in ones.

Each served version of a CRD whose names are accepted contributes its kind and list kind, named as
upstream names them (`com.example.stable.v1.CronTab`), with the version's openAPIV3Schema plus the
apiVersion, kind and metadata every object has, and the paths of its resource; `/openapi/v3` lists
those group versions after the built-in ones, so `kubectl explain crontab.spec` reads the schema.
`/openapi/v2` (JSON and protobuf) is the built-in Swagger document plus the same definitions and paths,
each schema stripped of what Swagger 2.0 and kubectl's validator cannot take (upstream's
`ToStructuralOpenAPIV2`); it is rebuilt on the first request after a CRD changed.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import threading
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from apimachinery.resources import ResourceInfo
from apiserver import openapi

__all__ = ["CustomResourceOpenAPI"]

Obj = dict[str, Any]
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_REF = "#/components/schemas/"
_API_VERSION = {
    "type": "string",
    "description": "APIVersion defines the versioned schema of this representation of an object. Servers should "
    "convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
}
_KIND = {
    "type": "string",
    "description": "Kind is a string value representing the REST resource this object represents. Servers may infer "
    "this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
}


def schema_name(group: str, version: str, kind: str) -> str:
    """Upstream's definition name: the group reversed, then version and kind (`com.example.stable.v1.CronTab`)."""
    return ".".join([*reversed(group.split(".")), version, kind])


def _object_schema(schema: Mapping[str, Any] | None, gvk: Obj) -> Obj:
    out = copy.deepcopy(dict(schema or {"type": "object"}))
    props = out.setdefault("properties", {})
    props["apiVersion"], props["kind"] = _API_VERSION, _KIND
    props["metadata"] = {"allOf": [{"$ref": f"{_REF}{_META}ObjectMeta"}], "default": {}}
    out.setdefault("type", "object")
    out["x-kubernetes-group-version-kind"] = [gvk]
    return out


def _list_schema(item: str, kind: str, gvk: Obj) -> Obj:
    return {
        "description": f"{gvk['kind']} is a list of {kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": _API_VERSION,
            "items": {"type": "array", "items": {"$ref": _REF + item}},
            "kind": _KIND,
            "metadata": {"allOf": [{"$ref": f"{_REF}{_META}ListMeta"}], "default": {}},
        },
        "x-kubernetes-group-version-kind": [gvk],
    }


def _with_list_schema(paths: Obj, list_name: str) -> Obj:
    """The paths with the generic List schema of the built-in builder replaced by the kind's own list."""
    generic, own = f'"{_REF}{_META}List"'.encode(), f'"{_REF}{list_name}"'.encode()
    return dict(orjson.loads(orjson.dumps(paths).replace(generic, own)))


_V2_DROPPED = ("allOf", "anyOf", "oneOf", "not")


def v2_schema(node: Any) -> Any:
    """A structural schema as upstream's ToStructuralOpenAPIV2 leaves it: no allOf/anyOf/oneOf/not; a nullable
    or unknown-preserving node without type, items and properties (kubectl's validator breaks on them); an
    array without items untyped; nullable properties not required."""
    if not isinstance(node, Mapping):
        return node
    out = {k: v for k, v in node.items() if k not in _V2_DROPPED}
    if out.pop("nullable", False):
        for key in ("type", "items", "properties"):
            out.pop(key, None)
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out.pop("items", None)
        out.pop("properties", None)
    if "items" in out:
        out["items"] = v2_schema(out["items"])
    if out.get("type") == "array" and "items" not in out:
        del out["type"]
    props = out.get("properties")
    if isinstance(props, Mapping):
        nullable = {k for k, v in props.items() if isinstance(v, Mapping) and v.get("nullable")}
        if nullable and isinstance(out.get("required"), list):
            out["required"] = [r for r in out["required"] if r not in nullable]
            if not out["required"]:
                del out["required"]
        out["properties"] = {k: v2_schema(v) for k, v in props.items()}
    extra = out.get("additionalProperties")
    if isinstance(extra, Mapping):
        if extra.get("nullable"):
            out.pop("type", None)
            del out["additionalProperties"]
        else:
            out["additionalProperties"] = v2_schema(extra)
    return out


class _Part:
    """What one CRD version adds: to its group version's v3 document, and to the v2 document."""

    def __init__(self, res: ResourceInfo, version: Mapping[str, Any]) -> None:
        v = str(version.get("name"))
        subresources = tuple(s for s in ("status", "scale") if s in (version.get("subresources") or {}))
        view = ResourceInfo(res.group, v, res.kind, res.plural, res.namespaced, subresources=subresources, custom=True)
        name, list_name = schema_name(res.group, v, res.kind), schema_name(res.group, v, res.list_kind)
        gvk = {"group": res.group, "version": v, "kind": res.kind}
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        components = openapi._closure(
            [f"{_META}{n}" for n in ("ObjectMeta", "ListMeta", "Status", "DeleteOptions", "Patch", "WatchEvent")]
            + (["io.k8s.api.autoscaling.v1.Scale"] if "scale" in subresources else [])
        )
        components[name] = _object_schema(schema, gvk)
        components[list_name] = _list_schema(name, res.kind, {**gvk, "kind": res.list_kind})
        self.v3: tuple[Obj, Obj] = (_with_list_schema(openapi._resource_paths(view, name), list_name), components)
        v2_object = _object_schema(v2_schema(schema) if schema is not None else None, gvk)
        self.v2_definitions = {
            name: openapi.v2_definition(v2_object),
            list_name: openapi.v2_definition(components[list_name]),
        }
        self.v2_paths = openapi.v2_paths(self.v3[0])


def _render(parts: list[_Part]) -> openapi.Document:
    paths: Obj = {}
    schemas: Obj = {}
    for p, c in (part.v3 for part in parts):
        paths.update(p)
        schemas.update(c)
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items()))},
    }
    body = orjson.dumps(doc)
    return openapi.Document(body, hashlib.sha512(body).hexdigest().upper())


class CustomResourceOpenAPI:
    """The v3 documents of the served CRDs' group versions (several CRDs may share one), kept current by the
    CRD controller."""

    def __init__(self) -> None:
        self._parts: dict[str, dict[str, _Part]] = {}  # `apis/<g>/<v>` → CRD name → its part
        self._docs: dict[str, openapi.Document] = {}  # `apis/<g>/<v>` → its rendered document
        self._v2: bytes | None = None  # the v2 document, until a CRD changes
        self._changes = 0
        self._lock = threading.Lock()

    def put(self, crd: Mapping[str, Any], res: ResourceInfo) -> None:
        """Publish (or republish) one CRD's served versions."""
        name = str((crd.get("metadata") or {}).get("name"))
        parts = {
            f"apis/{res.group}/{version.get('name')}": _Part(res, version)
            for version in (crd.get("spec") or {}).get("versions") or []
            if version.get("served")
        }
        with self._lock:
            touched = self._drop(name)
            for key, part in parts.items():
                self._parts.setdefault(key, {})[name] = part
            self._rerender(touched | set(parts))

    def remove(self, crd_name: str) -> None:
        """Stop publishing a CRD."""
        with self._lock:
            self._rerender(self._drop(crd_name))

    def _drop(self, name: str) -> set[str]:
        touched = {key for key, by_crd in self._parts.items() if by_crd.pop(name, None) is not None}
        return touched

    def _rerender(self, keys: set[str]) -> None:
        self._v2, self._changes = None, self._changes + 1
        for key in keys:
            by_crd = self._parts.get(key)
            if by_crd:
                self._docs[key] = _render([by_crd[n] for n in sorted(by_crd)])
            else:
                self._parts.pop(key, None)
                self._docs.pop(key, None)

    def document(self, key: str) -> openapi.Document | None:
        """The document of `apis/<g>/<v>`, if a CRD serves it."""
        with self._lock:
            return self._docs.get(key)

    def v2_document(self) -> bytes:
        """The Swagger 2.0 document: the built-in one with the served CRDs' (call off the event loop)."""
        with self._lock:
            if self._v2 is not None:
                return self._v2
            seen = self._changes
            parts = [by_crd[n] for _, by_crd in sorted(self._parts.items()) for n in sorted(by_crd)]
        paths: Obj = {}
        definitions: Obj = {}
        for part in parts:
            paths.update(part.v2_paths)
            definitions.update(part.v2_definitions)
        body = openapi.v2_document_with(paths, definitions)
        with self._lock:
            if self._changes == seen:
                self._v2 = body
        return body

    async def openapi_v2(self, request: Request) -> Response:
        """GET /openapi/v2, JSON or protobuf, the served CRDs' definitions and paths included."""
        return await openapi.openapi_v2(request, self.v2_document)

    async def index(self, request: Request) -> Response:
        """GET /openapi/v3: the built-in group versions, then the CRDs'."""
        builtin = orjson.loads(await asyncio.to_thread(openapi._locked, openapi.index_document))
        with self._lock:
            custom = {k: {"serverRelativeURL": f"/openapi/v3/{k}?hash={d.hash}"} for k, d in sorted(self._docs.items())}
        body = orjson.dumps({"paths": {**builtin["paths"], **custom}})
        return Response(body, media_type="application/json", headers={"Cache-Control": "no-cache, private"})

    async def group_version(self, request: Request) -> Response:
        """GET /openapi/v3/apis/<g>/<v>: a CRD's document, else the built-in one."""
        key = request.path_params["path"].strip("/")
        doc = self.document(key)
        if doc is None:
            return await openapi.openapi_v3_gv(request)
        wanted = request.query_params.get("hash")
        if wanted and wanted != doc.hash:
            return RedirectResponse(f"/openapi/v3/{key}?hash={doc.hash}", status_code=301)
        cache_control = "public, immutable" if wanted else "no-cache, private"
        headers = {"Cache-Control": cache_control, "Etag": f'"{doc.hash}"'}
        return Response(doc.body, media_type="application/json", headers=headers)
