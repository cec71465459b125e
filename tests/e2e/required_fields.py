"""Checks objects against the required fields of the OpenAPI schemas the server itself serves.

Independent of the apiserver's code: the schemas come from `/openapi/v3/<group version>` over HTTP and the
walk is written here. Every object a test receives (and every item of a list) must carry each field that
its schema lists as `required`, at every level where the enclosing object is present.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx

__all__ = ["RequiredFieldChecker"]

_REF = "#/components/schemas/"


class RequiredFieldChecker:
    """Finds missing required fields in API objects, with the schemas read once from a live apiserver."""

    def __init__(self, server: str) -> None:
        self.server = server
        self._schemas: dict[str, Any] = {}
        self._roots: dict[tuple[str, str], str] = {}  # (apiVersion, kind) → schema name
        self._loaded = False
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            with httpx.Client(base_url=self.server, timeout=30) as http:
                index = http.get("/openapi/v3").json()["paths"]
                for entry in index.values():
                    r = http.get(entry["serverRelativeURL"])
                    if r.status_code == 404:
                        continue  # a CRD's group removed since the index was read (another test's cleanup)
                    r.raise_for_status()
                    doc = r.json()
                    schemas = doc["components"]["schemas"]
                    self._schemas.update(schemas)
                    for name, schema in schemas.items():
                        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
                            api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
                            self._roots.setdefault((api_version, gvk["kind"]), name)
            self._loaded = True

    def _resolve(self, schema: Any) -> dict[str, Any]:
        for _ in range(20):
            if not isinstance(schema, dict):
                return {}
            if "$ref" in schema:
                schema = self._schemas.get(schema["$ref"].removeprefix(_REF), {})
            elif isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
                schema = schema["allOf"][0]
            else:
                return schema
        return {}

    def knows(self, api_version: str, kind: str) -> bool:
        """Whether the server publishes a schema for this kind."""
        self._load()
        return (api_version, kind) in self._roots

    def missing(self, obj: Any) -> list[str]:
        """Paths of required fields absent from `obj` (a typed object or a `<Kind>List`); [] when complete."""
        self._load()
        if not isinstance(obj, dict):
            return []
        name = self._roots.get((obj.get("apiVersion", ""), obj.get("kind", "")))
        if name is None:
            return []
        out: list[str] = []
        self._walk({"$ref": _REF + name}, obj, obj.get("kind", ""), out)
        return out

    def _walk(self, schema: Any, value: Any, path: str, out: list[str]) -> None:
        s = self._resolve(schema)
        if isinstance(value, dict):
            props = s.get("properties")
            if not isinstance(props, dict):
                extra = s.get("additionalProperties")
                if isinstance(extra, dict):
                    for key, item in value.items():
                        self._walk(extra, item, f"{path}[{key}]", out)
                return
            for key in s.get("required") or ():
                if key not in value:
                    out.append(f"{path}.{key}")
            for key, item in value.items():
                if key in props:
                    self._walk(props[key], item, f"{path}.{key}", out)
        elif isinstance(value, list) and isinstance(s.get("items"), dict):
            for i, item in enumerate(value):
                self._walk(s["items"], item, f"{path}[{i}]", out)
