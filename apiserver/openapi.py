"""OpenAPI documents (`/openapi/v3`, `/openapi/v3/<gv>`, `/openapi/v2`) and server-side field validation.

The schemas come from the `kubernetes-validate` package, which ships the upstream Kubernetes definitions
(with descriptions and the `x-kubernetes-*` extensions) as JSON Schema per Kubernetes version. They are
converted once, lazily, into OpenAPI v3 component schemas; every rendered document is cached as bytes
with its hash. Each PATCH operation carries its `x-kubernetes-group-version-kind` and lists the
`fieldValidation` query parameter, which tells kubectl to leave validation to the server; PATCH request
bodies list no strategic-merge content type, so kubectl builds its patches from its compiled-in types.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import importlib.resources
import json
import re
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from apimachinery import errors
from apimachinery.resources import ResourceInfo, group_versions
from apiserver import openapi_proto

__all__ = [
    "SCHEMA_VERSION",
    "FieldCheck",
    "check_fields",
    "decode_prefix",
    "definition_for",
    "definitions",
    "ensure_loaded",
    "gv_document",
    "index_document",
    "openapi_v2",
    "openapi_v3_gv",
    "openapi_v3_index",
    "resolve_schema",
    "unknown_fields",
    "use_custom_fields",
    "v2_definition",
    "v2_document_with",
    "v2_paths",
    "validate_fields",
]

SCHEMA_VERSION = "v1.35.0"
_SCHEMA_PACKAGE = "kubernetes_validate"
_SCHEMA_DIR = "kubernetes-json-schema"
_V3_REF = "#/components/schemas/"
_V2_REF = "#/definitions/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_SCHEMA_KEYS = ("items", "not")
_SCHEMA_LIST_KEYS = ("allOf", "anyOf", "oneOf")
_lock = threading.Lock()


@dataclass(frozen=True)
class Document:
    """A rendered OpenAPI document: its JSON bytes and content hash."""

    body: bytes
    hash: str


# --- loading and converting the definitions --------------------------------------------------


def _schema_dir() -> Any:
    """The packaged JSON-schema folder for SCHEMA_VERSION, else the newest one shipped."""
    root = importlib.resources.files(_SCHEMA_PACKAGE) / _SCHEMA_DIR
    wanted = root / f"{SCHEMA_VERSION}-local"
    if wanted.is_dir():
        return wanted

    def version_key(name: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", name.split("-", 1)[0]))

    names = sorted((p.name for p in root.iterdir() if p.name.endswith("-local")), key=version_key)
    if not names:
        raise RuntimeError(f"{_SCHEMA_PACKAGE} ships no Kubernetes schemas")
    return root / names[-1]


def _drop_null(t: Any) -> Any:
    if isinstance(t, list):
        kept = [x for x in t if x != "null"]
        return kept[0] if len(kept) == 1 else kept
    return t


def _convert(node: Any, ref_prefix: str) -> Any:
    """One JSON-schema node as an OpenAPI schema: nullable types dropped, refs rewritten."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$schema", "$id"):
            continue
        if key == "$ref":
            out[key] = ref_prefix + str(value).rsplit("/", 1)[-1]
        elif key == "type":
            out[key] = _drop_null(value)
        elif key == "enum" and isinstance(value, list):
            out[key] = [v for v in value if v is not None]
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _convert(sub, ref_prefix) for name, sub in value.items()}
        elif key == "additionalProperties" or key in _SCHEMA_KEYS:
            out[key] = _convert(value, ref_prefix)
        elif key in _SCHEMA_LIST_KEYS and isinstance(value, list):
            out[key] = [_convert(sub, ref_prefix) for sub in value]
        else:
            out[key] = value
    if "$ref" in out and len(out) > 1:
        # A reference with siblings (a field's description): OpenAPI 3.0 wraps it in allOf.
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}], **out}
    return out


def _fix_special(defs: dict[str, Any]) -> None:
    """Match what the apiserver publishes: one-of types for IntOrString/Quantity, no apiVersion/kind enums."""
    ios = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
    if ios in defs:
        defs[ios] = {
            "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML "
            "marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to have, "
            "for example, a JSON field that can accept a name or number.",
            "format": "int-or-string",
            "oneOf": [{"type": "integer"}, {"type": "string"}],
        }
    qty = "io.k8s.apimachinery.pkg.api.resource.Quantity"
    if qty in defs:
        defs[qty] = {
            "description": "Quantity is a fixed-point representation of a number. It provides convenient "
            "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors.",
            "oneOf": [{"type": "string"}, {"type": "number"}],
        }
    for schema in defs.values():
        for field in ("apiVersion", "kind"):
            prop = (schema.get("properties") or {}).get(field)
            if isinstance(prop, dict):
                prop.pop("enum", None)


@cache
def _raw_definitions() -> dict[str, Any]:
    data = orjson.loads((_schema_dir() / "_definitions.json").read_bytes())
    return data["$defs"]


@cache
def definitions() -> dict[str, dict[str, Any]]:
    """Every Kubernetes definition as an OpenAPI v3 component schema (cached; call off the event loop)."""
    defs = {name: _convert(schema, _V3_REF) for name, schema in _raw_definitions().items()}
    _fix_special(defs)
    return defs


@cache
def _gvk_index() -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            key = (gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))
            # Kinds shared by every group (DeleteOptions, WatchEvent) come from meta; keep the first owner.
            if key not in out or out[key].startswith(_META):
                out[key] = name
    return out


def definition_for(group: str, version: str, kind: str) -> str | None:
    """The definition name of a kind (`io.k8s.api.apps.v1.Deployment`), or None."""
    return _gvk_index().get((group, version, kind))


async def ensure_loaded() -> None:
    """Load and convert the schemas in a worker thread (once), so requests never block on it."""
    if _gvk_index.cache_info().currsize:
        return

    def load() -> None:
        with _lock:
            definitions()
            _gvk_index()

    await asyncio.to_thread(load)


# --- documents ---------------------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _V3_REF + name}


def _closure(roots: list[str]) -> dict[str, Any]:
    """The named schemas and everything they reference, in sorted order."""
    defs = definitions()
    seen: set[str] = set()
    todo = [r for r in roots if r in defs]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for ref in re.findall(r'"\$ref":"#/components/schemas/([^"]+)"', orjson.dumps(defs[name]).decode()):
            if ref not in seen:
                todo.append(ref)
    return {name: defs[name] for name in sorted(seen)}


def _query(name: str, description: str, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": type_, "uniqueItems": True}}


_PRETTY = _query("pretty", "If 'true', then the output is pretty printed.")
_DRY_RUN = _query(
    "dryRun",
    "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run "
    "stages will be processed",
)
_FIELD_MANAGER = _query(
    "fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."
)
_FIELD_VALIDATION = _query(
    "fieldValidation",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing "
    "unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are "
    "silently dropped from the object. - Warn: This will send a warning via the standard warning response "
    "header for each unknown field that is dropped from the object. This is the default. - Strict: This will "
    "fail the request with a BadRequest error if any unknown fields would be dropped from the object.",
)
_FORCE = _query(
    "force",
    'Force is going to "force" Apply requests. It means user will re-acquire conflicting fields owned by other '
    "people. Force flag must be unset for non-apply patch requests.",
    "boolean",
)
_LIST_PARAMS = [
    _query("allowWatchBookmarks", 'allowWatchBookmarks requests watch events with type "BOOKMARK".', "boolean"),
    _query("continue", "The continue option should be set when retrieving more results from the server."),
    _query("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
    _query("labelSelector", "A selector to restrict the list of returned objects by their labels."),
    _query("limit", "limit is a maximum number of responses to return for a list call.", "integer"),
    _query(
        "resourceVersion", "resourceVersion sets a constraint on what resource versions a request may be served from."
    ),
    _query("resourceVersionMatch", "resourceVersionMatch determines how resourceVersion is applied to list calls."),
    _query("sendInitialEvents", "`sendInitialEvents=true` may be set together with `watch=true`.", "boolean"),
    _query("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
    _query("watch", "Watch for changes to the described resources and return them as a stream.", "boolean"),
]
_DELETE_PARAMS = [
    _DRY_RUN,
    _query("gracePeriodSeconds", "The duration in seconds before the object should be deleted.", "integer"),
    _query("propagationPolicy", "Whether and how garbage collection will be performed."),
]
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def _op(
    action: str,
    op_id: str,
    gvk: dict[str, str],
    response: str | None,
    params: list[dict[str, Any]],
    body: str | None = None,
    body_types: tuple[str, ...] = ("*/*",),
    codes: tuple[str, ...] = ("200",),
) -> dict[str, Any]:
    content = {"application/json": {"schema": _ref(response)}} if response else {}
    op: dict[str, Any] = {
        "description": f"{action} the specified {gvk['kind']}",
        "operationId": op_id,
        "parameters": params,
        "responses": {
            code: {"description": {"200": "OK", "201": "Created", "202": "Accepted"}[code], "content": content}
            for code in codes
        }
        | {"401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    if body:
        op["requestBody"] = {"content": {t: {"schema": _ref(body)} for t in body_types}, "required": True}
    return op


def _op_name(res: ResourceInfo) -> str:
    group = "".join(p.capitalize() for p in res.group.split(".")[:1]) if res.group else "Core"
    return f"{group}{res.version.capitalize()}"


def _resource_paths(res: ResourceInfo, schema: str) -> dict[str, Any]:
    """Collection, item and subresource paths of one resource, as kube-openapi lays them out."""
    gvk = {"group": res.group, "version": res.version, "kind": res.kind}
    list_schema = definition_for(res.group, res.version, res.list_kind) or f"{_META}List"
    root = f"/apis/{res.group}/{res.version}" if res.group else f"/api/{res.version}"
    ns_part = "/namespaces/{namespace}" if res.namespaced else ""
    collection = f"{root}{ns_part}/{res.plural}"
    item = f"{collection}/{{name}}"
    suffix = f"{_op_name(res)}{'Namespaced' if res.namespaced else ''}{res.kind}"
    common = [_path_param("name", f"name of the {res.kind}")]
    if res.namespaced:
        ns_param = [_path_param("namespace", "object name and auth scope, such as for teams and projects")]
    else:
        ns_param = []
    write = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
    patch_params = [*write, _FORCE]
    status = f"{_META}Status"
    if "list" not in res.verbs:  # create-only kinds (access reviews): one POST on the collection
        post = _op("post", f"create{suffix}", gvk, schema, write, schema, codes=("200", "201", "202"))
        return {collection: {"post": post, "parameters": [*ns_param, _PRETTY]}}
    paths: dict[str, Any] = {
        collection: {
            "get": _op("list", f"list{suffix}", gvk, list_schema, _LIST_PARAMS),
            "post": _op("post", f"create{suffix}", gvk, schema, write, schema, codes=("200", "201", "202")),
            "delete": _op(
                "deletecollection",
                f"deletecollection{suffix}",
                gvk,
                status,
                [*_DELETE_PARAMS, *_LIST_PARAMS],
                f"{_META}DeleteOptions",
            ),
            "parameters": [*ns_param, _PRETTY],
        },
        item: {
            "get": _op("get", f"read{suffix}", gvk, schema, []),
            "put": _op("put", f"replace{suffix}", gvk, schema, write, schema, codes=("200", "201")),
            "patch": _op(
                "patch", f"patch{suffix}", gvk, schema, patch_params, f"{_META}Patch", _PATCH_TYPES, ("200", "201")
            ),
            "delete": _op(
                "delete", f"delete{suffix}", gvk, status, _DELETE_PARAMS, f"{_META}DeleteOptions", codes=("200", "202")
            ),
            "parameters": [*common, *ns_param, _PRETTY],
        },
    }
    if res.namespaced:
        paths[f"{root}/{res.plural}"] = {
            "get": _op("list", f"list{_op_name(res)}{res.kind}ForAllNamespaces", gvk, list_schema, _LIST_PARAMS),
            "parameters": [_PRETTY],
        }
    for sub in res.subresources:
        if sub == "status":
            sub_gvk, sub_schema = gvk, schema
        elif sub == "scale":
            sub_gvk = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
            sub_schema = "io.k8s.api.autoscaling.v1.Scale"
        else:
            continue
        name = f"{suffix}{sub.capitalize()}"
        paths[f"{item}/{sub}"] = {
            "get": _op("get", f"read{name}", sub_gvk, sub_schema, []),
            "put": _op("put", f"replace{name}", sub_gvk, sub_schema, write, sub_schema, codes=("200", "201")),
            "patch": _op(
                "patch",
                f"patch{name}",
                sub_gvk,
                sub_schema,
                patch_params,
                f"{_META}Patch",
                _PATCH_TYPES,
                ("200", "201"),
            ),
            "parameters": [*common, *ns_param, _PRETTY],
        }
    return paths


def _gv_key(group_version: str) -> str:
    """`v1` → `api/v1`; `apps/v1` → `apis/apps/v1` (the keys of the /openapi/v3 index)."""
    return f"apis/{group_version}" if "/" in group_version else f"api/{group_version}"


def _hash(body: bytes) -> str:
    return hashlib.sha512(body).hexdigest().upper()


@cache
def _gv_documents() -> dict[str, Document]:
    docs: dict[str, Document] = {}
    for group_version, resources in group_versions().items():
        paths: dict[str, Any] = {}
        roots = [f"{_META}Status", f"{_META}DeleteOptions", f"{_META}Patch", f"{_META}WatchEvent"]
        for res in resources:
            schema = definition_for(res.group, res.version, res.kind)
            if schema is None:
                continue
            roots.append(schema)
            list_schema = definition_for(res.group, res.version, res.list_kind)
            if list_schema:
                roots.append(list_schema)
            if "scale" in res.subresources:
                roots.append("io.k8s.api.autoscaling.v1.Scale")
            paths.update(_resource_paths(res, schema))
        doc = {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": f"{SCHEMA_VERSION}"},
            "paths": paths,
            "components": {
                "schemas": _closure(roots),
                "securitySchemes": {
                    "BearerToken": {
                        "type": "apiKey",
                        "description": "Bearer Token authentication",
                        "name": "authorization",
                        "in": "header",
                    }
                },
            },
        }
        body = orjson.dumps(doc)
        docs[_gv_key(group_version)] = Document(body, _hash(body))
    return docs


def gv_document(key: str) -> Document | None:
    """The cached v3 document of `api/v1` or `apis/<g>/<v>` (call off the event loop)."""
    return _gv_documents().get(key)


@cache
def index_document() -> bytes:
    """`/openapi/v3`: each group version with its hashed serverRelativeURL (call off the event loop)."""
    paths = {
        key: {"serverRelativeURL": f"/openapi/v3/{key}?hash={doc.hash}"} for key, doc in sorted(_gv_documents().items())
    }
    return orjson.dumps({"paths": paths})


def _v2_schema(node: Any) -> Any:
    """A v3 component schema rewritten for Swagger 2.0 (plain `$ref`s into #/definitions/)."""
    if isinstance(node, list):
        return [_v2_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0]:
        return {"$ref": _V2_REF + all_of[0]["$ref"].rsplit("/", 1)[-1]}
    out = {}
    for k, v in node.items():
        if k == "$ref":
            out[k] = _V2_REF + str(v).rsplit("/", 1)[-1]
        elif k == "properties" and isinstance(v, dict):
            out[k] = {name: _v2_schema(sub) for name, sub in v.items()}
        else:
            out[k] = _v2_schema(v) if isinstance(v, dict | list) and k not in ("enum", "required") else v
    return out


def v2_paths(v3_paths: dict[str, Any]) -> dict[str, Any]:
    """v3 path items rewritten as Swagger 2.0 ones (body parameters, consumes and produces)."""
    paths: dict[str, Any] = {}
    for path, item in v3_paths.items():
        out: dict[str, Any] = {}
        for method, op in item.items():
            if method == "parameters":
                out[method] = [{**{k: v for k, v in p.items() if k != "schema"}, "type": "string"} for p in op]
                continue
            v2op = {
                "operationId": op["operationId"],
                "consumes": list((op.get("requestBody") or {}).get("content") or {"*/*": None}),
                "produces": ["application/json", "application/yaml"],
                "parameters": [
                    {**{k: v for k, v in p.items() if k != "schema"}, "type": p["schema"]["type"]}
                    for p in op["parameters"]
                ],
                "responses": {code: {"description": r["description"]} for code, r in op["responses"].items()},
                "x-kubernetes-action": op["x-kubernetes-action"],
                "x-kubernetes-group-version-kind": op["x-kubernetes-group-version-kind"],
            }
            if "requestBody" in op:
                schema = next(iter(op["requestBody"]["content"].values()))["schema"]
                v2op["parameters"].append(
                    {"name": "body", "in": "body", "required": True, "schema": _v2_schema(schema)}
                )
            out[method] = v2op
        paths[path] = out
    return paths


def v2_definition(schema: dict[str, Any]) -> dict[str, Any]:
    """A v3 component schema as a Swagger 2.0 definition."""
    return dict(_v2_schema(schema))


@cache
def _v2_base() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for body in _gv_documents().values():
        paths.update(v2_paths(orjson.loads(body.body)["paths"]))
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": SCHEMA_VERSION},
        "paths": paths,
        "definitions": {name: _v2_schema(s) for name, s in definitions().items()},
    }


def v2_document_with(paths: dict[str, Any], defs: dict[str, Any]) -> bytes:
    """The built-in Swagger 2.0 document plus more paths and definitions (the CRDs'; call off the event loop)."""
    base = _v2_base()
    if not paths and not defs:
        return _v2_document()
    return orjson.dumps({**base, "paths": {**base["paths"], **paths}, "definitions": {**base["definitions"], **defs}})


@cache
def _v2_document() -> bytes:
    return orjson.dumps(_v2_base())


# --- HTTP handlers -----------------------------------------------------------------------------


async def openapi_v3_index(request: Request) -> Response:
    """GET /openapi/v3."""
    body = await asyncio.to_thread(_locked, index_document)
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-cache, private"})


async def openapi_v3_gv(request: Request) -> Response:
    """GET /openapi/v3/<api/v1 | apis/g/v>; a stale `hash` redirects to the current one."""
    key = request.path_params["path"].strip("/")
    doc = await asyncio.to_thread(_locked, gv_document, key)
    if doc is None:
        raise errors.path_not_found()
    wanted = request.query_params.get("hash")
    if wanted and wanted != doc.hash:
        return RedirectResponse(f"/openapi/v3/{key}?hash={doc.hash}", status_code=301)
    cache_control = "public, immutable" if wanted else "no-cache, private"
    return Response(
        doc.body, media_type="application/json", headers={"Cache-Control": cache_control, "Etag": f'"{doc.hash}"'}
    )


async def openapi_v2(request: Request, build: Callable[[], bytes] | None = None) -> Response:
    """GET /openapi/v2 as JSON, or as gnostic's protobuf Document when the client prefers it (kubectl);
    `build` gives the JSON document (the built-in one by default)."""
    build = build or _v2_document
    accept = request.headers.get("accept") or "*/*"
    if openapi_proto.wants_protobuf(accept):
        body = await asyncio.to_thread(_locked, openapi_proto.document_bytes, build)
        return Response(body, media_type=openapi_proto.MEDIA_TYPE)
    types = {part.split(";", 1)[0].strip() for part in accept.split(",")}
    if not types & {"application/json", "*/*", "application/*"}:
        raise errors.not_acceptable(
            "only application/json is served for /openapi/v2; the full schemas are served at /openapi/v3"
        )
    body = await asyncio.to_thread(_locked, build)
    return Response(body, media_type="application/json")


def _locked(fn: Any, *args: Any) -> Any:
    with _lock:
        return fn(*args)


# --- server-side field validation --------------------------------------------------------------


def resolve_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref` and single-element `allOf` wrappers to the schema they name."""
    defs = definitions()
    for _ in range(20):
        if "$ref" in schema:
            schema = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
        elif isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1 and "properties" not in schema:
            schema = schema["allOf"][0]
        else:
            break
    return schema


Path = tuple[str | int, ...]


class _Fields:
    """What the unknown-field walk reads of one schema, resolved once: its fields, its map values, its items.

    The nodes of the schemas it contains are linked on its first walk (not at once: schemas are recursive)."""

    __slots__ = ("extra", "free", "items", "linked", "props", "resolved", "schema")

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema  # also keeps its id, the cache's key, from being reused
        resolved = self.resolved = resolve_schema(schema)
        self.free = bool(resolved.get("x-kubernetes-preserve-unknown-fields"))
        self.linked = False
        self.props: dict[str, _Fields] | None = None
        self.extra: _Fields | None = None
        self.items: _Fields | None = None

    def link(self) -> None:
        """Find the nodes of the schemas this one contains."""
        resolved = self.resolved
        props, extra, items = resolved.get("properties"), resolved.get("additionalProperties"), resolved.get("items")
        self.props = {key: _fields(sub) for key, sub in props.items()} if isinstance(props, dict) else None
        self.extra = _fields(extra) if isinstance(extra, dict) else None
        self.items = _fields(items) if isinstance(items, dict) else None
        self.linked = True


_FIELDS: dict[int, _Fields] = {}
_WALK_ROOTS: dict[str, dict[str, Any]] = {}
_NOTHING: list[Path] = []  # what a walk finding nothing returns (never appended to)


def _fields(schema: dict[str, Any]) -> _Fields:
    found = _FIELDS.get(id(schema))
    if found is None or found.schema is not schema:
        found = _FIELDS[id(schema)] = _Fields(schema)
    return found


def _walk(node: _Fields, value: dict[str, Any] | list[Any]) -> list[Path]:
    """The unknown fields under `value` (an object or a list), as paths relative to it, in document order.

    Paths are built on the way out, only for what is found; scalars, which hold no fields, are not visited."""
    if not node.linked:
        node.link()
    found = _NOTHING
    if isinstance(value, dict):
        if node.free:
            return found
        props = node.props
        if props is not None:
            for key, sub in value.items():
                child = props.get(key)
                if child is None:
                    found = _under(found, key, [()])
                elif isinstance(sub, dict | list) and (inner := _walk(child, sub)):
                    found = _under(found, key, inner)
        elif node.extra is not None:
            extra = node.extra
            for key, sub in value.items():
                if isinstance(sub, dict | list) and (inner := _walk(extra, sub)):
                    found = _under(found, key, inner)
    elif node.items is not None:
        items = node.items
        for i, sub in enumerate(value):
            if isinstance(sub, dict | list) and (inner := _walk(items, sub)):
                found = _under(found, i, inner)
    return found


def _under(found: list[Path], step: str | int, inner: list[Path]) -> list[Path]:
    # only called for what is found (rare), so the walk's loops stay free of it
    out = [] if found is _NOTHING else found
    out.extend((step, *p) for p in inner)
    return out


def _display(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


UnknownFields = Callable[[Any], list[str]]
_custom_fields: dict[tuple[str, str], UnknownFields] = {}


def use_custom_fields(res: ResourceInfo, finder: UnknownFields | None) -> None:
    """Let a custom resource's schema name its unknown fields: `finder` prunes an object in place and returns
    the paths it dropped (upstream's pruning with unknown field paths); None stops it."""
    if finder is None:
        _custom_fields.pop((res.group, res.plural), None)
    else:
        _custom_fields[(res.group, res.plural)] = finder


def _unknown_paths(res: ResourceInfo, obj: Any, only: Collection[str] | None = None) -> list[Path]:
    """The unknown fields of `obj`; with `only`, of those of its top-level fields (the paths are still `obj`'s)."""
    name = definition_for(res.group, res.version, res.kind)
    if name is None or not isinstance(obj, dict):
        return []
    root = _WALK_ROOTS.get(name)
    if root is None:  # one schema object per kind, so its compiled node is found again
        root = _WALK_ROOTS[name] = _ref(name)
    if only is not None:
        obj = {k: v for k, v in obj.items() if k in only}
    return list(_walk(_fields(root), obj))


def unknown_fields(res: ResourceInfo, obj: Any) -> list[str]:
    """Paths (`spec.bogus`, `spec.containers[0].x`) of fields the kind's schema does not declare."""
    custom = _custom_fields.get((res.group, res.plural)) if res.custom else None
    if custom is not None:
        return custom(copy.deepcopy(obj)) if isinstance(obj, dict) else []
    return [_display(p) for p in _unknown_paths(res, obj)]


def _prune(obj: Any, path: Path) -> None:
    for part in path[:-1]:
        obj = obj[part]
    obj.pop(path[-1], None)


@dataclass
class FieldCheck:
    """The outcome of a fieldValidation check: warnings to send (Warn) or nothing."""

    warnings: list[str]

    def apply(self, response: Response) -> Response:
        """Add one `Warning: 299 - "..."` header per warning to a response."""
        for w in self.warnings:
            response.headers.append("Warning", f'299 - "{_escape(w)}"')
        return response


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def check_fields(
    res: ResourceInfo,
    obj: Any,
    directive: str,
    *,
    ignore: list[str] | Callable[[], list[str]] | None = None,
    prefix: str = "",
    raw: bytes | None = None,
    depth_known: bool = False,
    only: Collection[str] | None = None,
) -> FieldCheck:
    """Apply a fieldValidation directive: Strict → 400 on unknown fields, Warn → warnings, Ignore → nothing.

    With the `raw` JSON body, fields given twice in one object count too (`duplicate field "spec.replicas"`).

    Under Warn and Ignore the unknown fields are dropped from `obj` in place, as the typed decoder does.
    `ignore` lists unknown fields that were already stored (so a patch is judged on what it adds), or is a
    function giving them, called only when `obj` has unknown fields; `prefix` starts the 400 message, as
    create and update name the kind there; `depth_known`: `obj` surely nests at most MAX_DEPTH levels.
    `only` (a patched `obj` of a built-in kind): the top-level fields the patch could change; the others are
    the stored object's as it is, which passed these checks when it was written, so they are not walked again.
    """
    from apiserver import fastcheck, typecheck  # the decode step: wrong JSON types are refused before anything else

    # before anything can change `obj`, which is then exactly what decoding `raw` gave
    dups = duplicate_fields(raw, obj) if raw is not None and directive != "Ignore" else []
    if depth_known and not dups and isinstance(obj, dict):
        part = obj if only is None else {k: v for k, v in obj.items() if k in only}
        if _null_free(part, raw) and fastcheck.surely_clean(res, part):  # neither walk would find anything
            return FieldCheck([])
    if prefix:
        typecheck.check_body(res, obj, depth_known=depth_known)
    else:
        typecheck.check_patched(res, obj, depth_known=depth_known, only=only)
    custom = _custom_fields.get((res.group, res.plural)) if res.custom else None
    if custom is not None:  # pruned here already, by the custom resource's schema
        wanted = isinstance(obj, dict) and directive != "Ignore"  # Ignore: the strategy prunes them silently
        dropped = custom(obj) if wanted else []
        skip = _ignored(ignore) if dropped else set()
        unknown = [f for f in dropped if f not in skip]
        found: list[Path] = []
    else:
        found = _unknown_paths(res, obj, only)
        if found:
            skip = _ignored(ignore)
            found = [p for p in found if _display(p) not in skip]
        unknown = [_display(p) for p in found]
    if not unknown and not dups:
        return FieldCheck([])
    messages = [f'unknown field "{f}"' for f in unknown] + [f'duplicate field "{d}"' for d in dups]
    if directive == "Strict":
        raise errors.bad_request(f"{prefix}strict decoding error: {', '.join(messages)}")
    for p in found:
        _prune(obj, p)
    return FieldCheck(messages if directive == "Warn" else [])


def _null_free(obj: dict[str, Any], raw: bytes | None) -> bool:
    """Whether `obj` (or the body `raw` it was decoded from) surely holds no null: only then is `fastcheck` worth
    asking, as it refuses a declared field given as null (the type check removes those), and a refusal costs
    more than a pass. A "null" inside a string only sends the object to the walks."""
    if raw is None:
        try:
            raw = orjson.dumps(obj)
        except orjson.JSONEncodeError:
            return False
    return b"null" not in raw


def _ignored(ignore: list[str] | Callable[[], list[str]] | None) -> set[str]:
    """The unknown fields `check_fields` lets pass: `ignore`, called first when it is a function."""
    return set((ignore() if callable(ignore) else ignore) or ())


async def validate_fields(res: ResourceInfo, obj: Any, directive: str, raw: bytes | None = None) -> FieldCheck:
    """`check_fields` for a create or update body as `codec.decode_body` gave it (so its depth is checked),
    loading the schemas off the event loop first."""
    from apiserver import fastcheck

    await ensure_loaded()
    await fastcheck.prepare(res)
    return check_fields(res, obj, directive, prefix=decode_prefix(res), raw=raw, depth_known=True)


class _Pairs(dict):
    """A JSON object that remembers which keys it was given more than once."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        seen: set[str] = set()
        self.dups = [k for k, _ in pairs if k in seen or seen.add(k)]


_UNDECODED: Any = object()

# every JSON string of a document, and whether a colon follows it (a key); outside strings JSON has no quotes,
# so matching from the start finds exactly the string tokens
_STRING_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"(\s*:)?')  # (unrolled: no alternation per character)


def _decoded_keys(doc: Any) -> int:
    """The keys of every object in a decoded document."""
    count, stack = 0, [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            count += len(node)
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))
    return count


def _no_duplicates(raw: bytes, decoded: Any = _UNDECODED) -> bool:
    """True when no object of `raw` repeats a key: the keys written equal the keys a decode keeps (a repeated
    key is kept once). False when that cannot be told cheaply (then the full search decides). `decoded` is
    the request's own decode of `raw`, when it has one (saving a second decode)."""
    doc = decoded
    if doc is _UNDECODED:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return False
    try:  # orjson writes each kept key once, in the decode's order: equal bytes repeat no key
        if orjson.dumps(doc) == raw:
            return True
    except (TypeError, orjson.JSONEncodeError):
        pass
    tokens = _STRING_TOKEN.findall(raw)
    return len(tokens) - tokens.count(b"") == _decoded_keys(doc)


def duplicate_fields(raw: bytes, decoded: Any = _UNDECODED) -> list[str]:
    """Paths of keys that appear twice in one JSON object of `raw` (empty for non-JSON or clean bodies);
    `decoded` is what decoding `raw` gave, if the caller has it."""
    if b'"' not in raw or not raw.lstrip().startswith(b"{") or _no_duplicates(raw, decoded):
        return []
    try:
        doc = json.loads(raw, object_pairs_hook=_Pairs)
    except ValueError:
        return []
    out: list[str] = []

    def walk(node: Any, path: Path) -> None:
        if isinstance(node, _Pairs):
            out.extend(_display((*path, k)) for k in node.dups)
            for k, v in node.items():
                walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*path, i))

    walk(doc, ())
    return out


def decode_prefix(res: ResourceInfo) -> str:
    """`Deployment in version "v1" cannot be handled as a Deployment: ` (create and update errors), naming the
    version the request addressed."""
    from apiserver.versions import addressed_version  # versions imports this module (through required)

    return f'{res.kind} in version "{addressed_version(res)}" cannot be handled as a {res.kind}: '
