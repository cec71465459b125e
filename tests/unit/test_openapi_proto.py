"""The gnostic OpenAPIv2 Document encoder: field numbers of openapiv2/OpenAPIv2.proto, extensions as YAML."""

from __future__ import annotations

from typing import Any

import yaml

from apiserver.openapi_proto import encode_document, wants_protobuf
from apiserver.protobuf import _iter_fields


def _fields(data: bytes | memoryview) -> list[tuple[int, Any]]:
    return [(num, value) for num, _wire, value in _iter_fields(memoryview(data), "t")]


def _named(data: memoryview) -> tuple[str, memoryview]:
    parts = dict(_fields(data))
    return bytes(parts[1]).decode(), parts[2]


DOC = {
    "swagger": "2.0",
    "info": {"title": "Kubernetes", "version": "v1.35.0"},
    "paths": {
        "/api/v1/pods": {
            "get": {
                "operationId": "listCoreV1PodForAllNamespaces",
                "parameters": [{"name": "limit", "in": "query", "type": "integer"}],
                "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/PodList"}}},
                "x-kubernetes-action": "list",
            }
        }
    },
    "definitions": {
        "io.k8s.api.apps.v1.Deployment": {
            "description": "Deployment enables declarative updates",
            "type": "object",
            "required": ["spec"],
            "properties": {
                "spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "items": {"type": "array", "items": {"type": "string"}},
            },
            "x-kubernetes-group-version-kind": [{"group": "apps", "kind": "Deployment", "version": "v1"}],
        }
    },
}


def test_document_fields() -> None:
    top = _fields(encode_document(DOC))
    assert top[0][0] == 1 and bytes(top[0][1]) == b"2.0"
    by_num = dict(top)
    info = dict(_fields(by_num[2]))
    assert bytes(info[1]) == b"Kubernetes" and bytes(info[2]) == b"v1.35.0"

    # Paths.path (2) -> NamedPathItem -> PathItem.get (2) -> Operation
    path_name, item = _named(dict(_fields(by_num[8]))[2])
    assert path_name == "/api/v1/pods"
    op = _fields(dict(_fields(item))[2])
    assert bytes(dict(op)[5]) == b"listCoreV1PodForAllNamespaces"
    param = dict(_fields(dict(_fields(dict(op)[8]))[1]))  # ParametersItem.parameter -> Parameter
    query = dict(_fields(dict(_fields(param[2]))[3]))  # NonBodyParameter.query_parameter_sub_schema
    assert bytes(query[2]) == b"query" and bytes(query[4]) == b"limit" and bytes(query[6]) == b"integer"
    ext_name, ext_any = _named(dict(op)[13])
    assert ext_name == "x-kubernetes-action" and yaml.safe_load(bytes(dict(_fields(ext_any))[2])) == "list"

    # Definitions.additional_properties (1) -> NamedSchema -> Schema
    def_name, schema = _named(dict(_fields(by_num[9]))[1])
    assert def_name == "io.k8s.api.apps.v1.Deployment"
    fields = _fields(schema)
    assert bytes(dict(fields)[4]).startswith(b"Deployment enables")
    assert [bytes(v) for n, v in fields if n == 19] == [b"spec"]
    assert bytes(dict(_fields(dict(fields)[22]))[1]) == b"object"  # TypeItem.value
    gvk_name, gvk_any = _named(dict(fields)[31])
    assert gvk_name == "x-kubernetes-group-version-kind"
    assert yaml.safe_load(bytes(dict(_fields(gvk_any))[2])) == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]
    props = [_named(v) for n, v in _fields(dict(fields)[25]) if n == 1]
    assert [name for name, _ in props] == ["spec", "labels", "items"]
    assert bytes(dict(_fields(props[0][1]))[1]) == b"#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    extra = dict(_fields(dict(_fields(props[1][1]))[21]))  # AdditionalPropertiesItem.schema
    assert bytes(dict(_fields(dict(_fields(extra[1]))[22]))[1]) == b"string"


def test_accept() -> None:
    assert wants_protobuf("application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
    assert wants_protobuf("application/com.github.proto-openapi.spec.v2.v1.0+protobuf, application/json")
    assert not wants_protobuf("application/json, application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
    assert not wants_protobuf(None)
