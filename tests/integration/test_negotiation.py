"""Content negotiation as upstream: protobuf, YAML, PartialObjectMetadata(List), 406 and 415 Statuses."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import yaml

from apiserver.protobuf import MAGIC, decode_protobuf, encode_protobuf

PROTOBUF = "application/vnd.kubernetes.protobuf"
PARTIAL = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
PARTIAL_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
ACCEPTED = "only the following media types are accepted: application/json, application/yaml, " + PROTOBUF


def _cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"a": "b"}}, "data": data}


async def test_protobuf_when_the_client_prefers_it(api: httpx.AsyncClient, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    r = await api.post(
        path, content=encode_protobuf(_cm("p", k="v")), headers={"Content-Type": PROTOBUF, "Accept": PROTOBUF}
    )
    assert r.status_code == 201, r.content
    assert r.headers["content-type"] == PROTOBUF and r.content.startswith(MAGIC)
    created = decode_protobuf(r.content)
    as_json = (await api.get(f"{path}/p")).json()
    assert created == {k: v for k, v in as_json.items() if k != "metadata"} | {"metadata": created["metadata"]}
    assert created["metadata"]["uid"] == as_json["metadata"]["uid"]

    r = await api.get(path, headers={"Accept": f"{PROTOBUF}, application/json"})
    listing = decode_protobuf(r.content)
    assert listing["kind"] == "ConfigMapList" and [i["metadata"]["name"] for i in listing["items"]] == ["p"]

    # JSON first in the client's order (or by q) wins
    r = await api.get(f"{path}/p", headers={"Accept": f"application/json, {PROTOBUF}"})
    assert r.headers["content-type"] == "application/json" and r.json()["data"] == {"k": "v"}
    r = await api.get(f"{path}/p", headers={"Accept": f"{PROTOBUF};q=0.5, application/json"})
    assert r.headers["content-type"] == "application/json"


async def test_errors_in_protobuf_and_yaml(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.get(f"/api/v1/namespaces/{ns}/configmaps/nope", headers={"Accept": PROTOBUF})
    assert r.status_code == 404 and r.headers["content-type"] == PROTOBUF
    status = decode_protobuf(r.content)
    assert status["reason"] == "NotFound" and status["details"] == {"name": "nope", "kind": "configmaps"}
    r = await api.get(f"/api/v1/namespaces/{ns}/configmaps/nope", headers={"Accept": "application/yaml"})
    assert r.status_code == 404 and yaml.safe_load(r.text)["message"] == 'configmaps "nope" not found'


async def test_yaml_answers(api: httpx.AsyncClient, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    assert (await api.post(path, json=_cm("y", greeting="hi"))).status_code == 201
    r = await api.get(f"{path}/y", headers={"Accept": "application/yaml"})
    assert r.headers["content-type"] == "application/yaml"
    assert yaml.safe_load(r.text) == (await api.get(f"{path}/y")).json()
    r = await api.get(path, headers={"Accept": "application/yaml"})
    assert yaml.safe_load(r.text)["items"][0]["data"] == {"greeting": "hi"}


async def test_partial_object_metadata(api: httpx.AsyncClient, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    assert (await api.post(path, json=_cm("m", big="x" * 1000))).status_code == 201
    full = (await api.get(f"{path}/m")).json()

    r = await api.get(f"{path}/m", headers={"Accept": PARTIAL})
    assert r.json() == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": full["metadata"]}
    r = await api.get(path, headers={"Accept": PARTIAL_LIST})
    doc = r.json()
    assert doc["kind"] == "PartialObjectMetadataList" and doc["apiVersion"] == "meta.k8s.io/v1"
    assert doc["metadata"]["resourceVersion"]
    assert doc["items"] == [
        {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": full["metadata"]}
    ]
    # the metadata client's own header: protobuf first, then JSON
    r = await api.get(
        path, headers={"Accept": f"{PROTOBUF};as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,{PARTIAL_LIST}"}
    )
    assert decode_protobuf(r.content)["items"][0]["metadata"]["name"] == "m"

    # a list asked for as one object (and the reverse) is upstream's 406
    r = await api.get(path, headers={"Accept": PARTIAL})
    assert r.status_code == 406 and r.json()["reason"] == "NotAcceptable"
    r = await api.get(f"{path}/m", headers={"Accept": PARTIAL_LIST})
    assert r.status_code == 406


async def test_nothing_servable_is_406_before_anything_runs(api: httpx.AsyncClient, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    for accept in (
        "text/html",
        "application/json;as=Widget;g=example.com;v=v1",
        f"{PROTOBUF};as=Table;g=meta.k8s.io;v=v1",
    ):
        r = await api.post(path, json=_cm("never"), headers={"Accept": accept})
        assert r.status_code == 406, (accept, r.text)
        assert r.json()["message"] == ACCEPTED
    assert (await api.get(f"{path}/never")).status_code == 404  # nothing half-written


async def test_a_kind_without_a_protobuf_message_is_415(api: httpx.AsyncClient, ns: str) -> None:
    # a well-formed envelope naming a kind no table lists (as a custom resource would be)
    body = MAGIC + _ld(1, _ld(1, b"v1") + _ld(2, b"Widget")) + _ld(2, b"")
    r = await api.post(f"/api/v1/namespaces/{ns}/configmaps", content=body, headers={"Content-Type": PROTOBUF})
    assert r.status_code == 415, r.text
    assert r.json()["reason"] == "UnsupportedMediaType"
    assert r.json()["message"].startswith("the body of the request was in an unknown format - accepted media types")


def _ld(num: int, payload: bytes) -> bytes:
    return bytes([num << 3 | 2, len(payload)]) + payload


def _frames(data: bytes) -> tuple[list[bytes], bytes]:
    out = []
    while len(data) >= 4 and len(data) - 4 >= int.from_bytes(data[:4], "big"):
        size = int.from_bytes(data[:4], "big")
        out.append(data[4 : 4 + size])
        data = data[4 + size :]
    return out, data


async def _watch_events(
    api: httpx.AsyncClient, path: str, accept: str, create: Any, want: int, selector: str = ""
) -> tuple[list[bytes], str]:
    events: list[bytes] = []
    params = {"watch": "1", "fieldSelector": selector}
    async with asyncio.timeout(20), api.stream("GET", path, params=params, headers={"Accept": accept}) as r:
        assert r.status_code == 200
        await create()
        buf = b""
        async for chunk in r.aiter_raw():
            buf += chunk
            if accept.startswith(PROTOBUF):
                frames, buf = _frames(buf)
                events.extend(frames)
            else:
                *lines, buf = buf.split(b"\n")
                events.extend(line for line in lines if line.strip())
            if len(events) >= want:
                return events, r.headers["content-type"]
    raise AssertionError(f"the watch ended after {events}")


async def test_watch_in_protobuf_frames(api: httpx.AsyncClient, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"

    async def create() -> None:
        assert (await api.post(path, json=_cm("w1", k="v"))).status_code == 201

    frames, content_type = await _watch_events(api, path, PROTOBUF, create, 1)
    assert content_type == PROTOBUF
    event = decode_protobuf(frames[0])
    assert event["kind"] == "WatchEvent" and event["type"] == "ADDED"
    assert event["object"]["kind"] == "ConfigMap" and event["object"]["data"] == {"k": "v"}


async def test_watch_as_partial_object_metadata(api: httpx.AsyncClient, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"

    async def create() -> None:
        assert (await api.post(path, json=_cm("w2", k="v"))).status_code == 201

    lines, _ = await _watch_events(api, path, PARTIAL, create, 1)
    event = orjson.loads(lines[0])
    assert event["type"] == "ADDED"
    assert event["object"]["kind"] == "PartialObjectMetadata" and event["object"]["metadata"]["name"] == "w2"
    assert "data" not in event["object"]
    # the metadata client's list header on a watch: one PartialObjectMetadata per event
    list_accept = f"{PROTOBUF};as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,{PARTIAL_LIST}"

    async def create_again() -> None:
        assert (await api.post(path, json=_cm("w3", k="v"))).status_code == 201

    frames, _ = await _watch_events(api, path, list_accept, create_again, 1, "metadata.name=w3")
    obj = decode_protobuf(frames[0])["object"]
    assert obj == {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": obj["metadata"]}
    assert obj["metadata"]["name"] == "w3"
    # YAML has no watch framing upstream
    r = await api.get(path, params={"watch": "1"}, headers={"Accept": "application/yaml"})
    assert r.status_code == 406


async def test_error_statuses_carry_details_in_json_and_protobuf(api: httpx.AsyncClient, ns: str) -> None:
    deployments = f"/apis/apps/v1/namespaces/{ns}/deployments"
    configmaps = f"/api/v1/namespaces/{ns}/configmaps"
    assert (await api.post(configmaps, json=_cm("dup"))).status_code == 201
    bad_name = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "Bad_Name"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
        },
    }
    stale = {**_cm("dup"), "metadata": {"name": "dup", "resourceVersion": "1"}}
    cases = [
        ("GET", f"{deployments}/nope", None, 404, {"name": "nope", "group": "apps", "kind": "deployments"}),
        ("POST", configmaps, _cm("dup"), 409, {"name": "dup", "kind": "configmaps"}),
        ("PUT", f"{configmaps}/dup", stale, 409, {"name": "dup", "kind": "configmaps"}),
        ("POST", deployments, bad_name, 422, {"name": "Bad_Name", "group": "apps", "kind": "Deployment"}),
    ]
    for method, path, body, code, details in cases:
        r = await api.request(method, path, json=body)
        assert r.status_code == code, r.text
        got = r.json()["details"]
        assert {k: got.get(k) for k in details} == details, got
        # the same Status in protobuf, for clients that prefer it (kubectl, helm)
        r = await api.request(method, path, json=body, headers={"Accept": f"{PROTOBUF}, application/json"})
        assert r.status_code == code and r.headers["content-type"] == PROTOBUF
        status = decode_protobuf(r.content)
        assert {k: status["details"].get(k) for k in details} == details
        assert status["code"] == code


async def test_a_large_answer_in_protobuf(api: httpx.AsyncClient, ns: str) -> None:
    """Answers over negotiation.OFF_LOOP_BYTES are re-encoded on a worker thread: same bytes' meaning."""
    path = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(3):
        assert (await api.post(path, json=_cm(f"big{i}", blob="x" * 40_000))).status_code == 201
    as_json = (await api.get(path)).json()
    r = await api.get(path, headers={"Accept": PROTOBUF})
    assert r.headers["content-type"] == PROTOBUF
    listing = decode_protobuf(r.content)
    assert [i["data"] for i in listing["items"]] == [i["data"] for i in as_json["items"]]
    assert listing["metadata"]["resourceVersion"].isdigit()


async def test_custom_resources_are_negotiated_too(api: httpx.AsyncClient, ns: str) -> None:
    """YAML, PartialObjectMetadata(List) and a 406 for protobuf-only clients, on a CRD's kind."""
    import uuid

    from tests.integration.test_crd import CRDS, crontab_crd, established

    group = f"n{uuid.uuid4().hex[:8]}.example.com"
    assert (await api.post(CRDS, json=crontab_crd(group))).status_code == 201
    try:
        await established(api, f"crontabs.{group}")
        path = f"/apis/{group}/v1/namespaces/{ns}/crontabs"
        body = {"apiVersion": f"{group}/v1", "kind": "CronTab", "metadata": {"name": "c"}, "spec": {"replicas": 1}}
        assert (await api.post(path, json=body)).status_code == 201
        r = await api.get(f"{path}/c", headers={"Accept": "application/yaml"})
        assert r.headers["content-type"] == "application/yaml" and yaml.safe_load(r.text)["kind"] == "CronTab"
        r = await api.get(f"{path}/c", headers={"Accept": PARTIAL})
        assert r.json()["kind"] == "PartialObjectMetadata" and "spec" not in r.json()
        r = await api.get(path, headers={"Accept": PARTIAL_LIST})
        assert r.json()["kind"] == "PartialObjectMetadataList" and r.json()["items"][0]["metadata"]["name"] == "c"
        r = await api.get(path, headers={"Accept": PROTOBUF})
        assert r.status_code == 406 and r.json()["message"] == ACCEPTED
    finally:
        await api.delete(f"{CRDS}/crontabs.{group}")
