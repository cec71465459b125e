"""Writes to a version served by conversion (events.k8s.io/v1 Events, autoscaling/v1 HPAs): the body is decoded and
its fields checked in the version the client wrote, as upstream's versioned decoder does, and the answer is the
object in that version, as JSON or as a Table, dry run or not."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tests.integration.controller_kit import eventually
from tests.integration.test_events_v1 import NOW, v1_event

JSON = {"content-type": "application/json"}


def events(ns: str) -> str:
    return f"/apis/events.k8s.io/v1/namespaces/{ns}/events"


def hpa_v1(ns: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 3,
            **spec,
        },
    }


def warnings(r: httpx.Response) -> list[str]:
    return r.headers.get_list("warning")


async def test_unknown_fields_are_named_as_the_client_wrote_them(api: httpx.AsyncClient, ns: str) -> None:
    regarding = {"kind": "Pod", "namespace": ns, "name": "web-1", "shade": "red"}
    strict = {"fieldValidation": "Strict"}
    r = await api.post(events(ns), params=strict, json=v1_event(ns, "a", regarding=regarding))
    assert r.status_code == 400, r.text
    assert r.json()["message"] == (
        'Event in version "v1" cannot be handled as a Event: strict decoding error: unknown field "regarding.shade"'
    )
    r = await api.post(events(ns), params={"fieldValidation": "Warn"}, json=v1_event(ns, "b", regarding=regarding))
    assert r.status_code == 201 and warnings(r) == ['299 - "unknown field \\"regarding.shade\\""'], r.headers
    assert "shade" not in r.json()["regarding"]
    core = (await api.get(f"/api/v1/namespaces/{ns}/events/b")).json()
    assert "shade" not in core["involvedObject"]
    # autoscaling/v1's unknown fields are found before the conversion could drop them
    r = await api.post(
        f"/apis/autoscaling/v1/namespaces/{ns}/horizontalpodautoscalers", params=strict, json=hpa_v1(ns, "h", bogus=1)
    )
    assert r.status_code == 400, r.text
    assert r.json()["message"] == (
        'HorizontalPodAutoscaler in version "v1" cannot be handled as a HorizontalPodAutoscaler: '
        'strict decoding error: unknown field "spec.bogus"'
    )


async def test_every_warning_reaches_the_client(api: httpx.AsyncClient, ns: str) -> None:
    warn = {"fieldValidation": "Warn"}
    r = await api.post(events(ns), params=warn, json=v1_event(ns, "c", colour="blue", flavour="mint"))
    assert r.status_code == 201, r.text
    assert warnings(r) == ['299 - "unknown field \\"colour\\""', '299 - "unknown field \\"flavour\\""']
    merge = {"content-type": "application/merge-patch+json"}
    r = await api.patch(f"{events(ns)}/c", params=warn, json={"colour": "red", "flavour": "lime"}, headers=merge)
    assert r.status_code == 200, r.text
    assert warnings(r) == ['299 - "unknown field \\"colour\\""', '299 - "unknown field \\"flavour\\""']


async def test_a_duplicate_field_is_found_in_what_the_client_sent(api: httpx.AsyncClient, ns: str) -> None:
    raw = orjson.dumps(v1_event(ns, "d", note="first"))
    raw = raw.replace(b'"note":"first"', b'"note":"first","note":"second"')
    r = await api.post(events(ns), params={"fieldValidation": "Warn"}, content=raw, headers=JSON)
    assert r.status_code == 201 and warnings(r) == ['299 - "duplicate field \\"note\\""'], r.headers
    assert r.json()["note"] == "second"
    r = await api.post(
        events(ns), params={"fieldValidation": "Strict"}, content=raw.replace(b'"d"', b'"e"'), headers=JSON
    )
    assert r.status_code == 400 and r.json()["message"].endswith('strict decoding error: duplicate field "note"'), (
        r.text
    )
    r = await api.post(
        events(ns), params={"fieldValidation": "Ignore"}, content=raw.replace(b'"d"', b'"f"'), headers=JSON
    )
    assert r.status_code == 201 and warnings(r) == [], r.headers


async def test_a_wrong_type_is_named_in_the_version_written(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.post(events(ns), json=v1_event(ns, "g", note=5))
    assert r.status_code == 400, r.text
    assert r.json()["message"] == (
        'Event in version "v1" cannot be handled as a Event: '
        "json: cannot unmarshal number into Go struct field Event.note of type string"
    )


async def test_an_update_checks_its_fields_in_the_version_written(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.post(events(ns), json=v1_event(ns, "u"))
    assert r.status_code == 201, r.text
    body = r.json()
    body["regarding"]["shade"] = "red"
    r = await api.put(f"{events(ns)}/u", params={"fieldValidation": "Warn"}, json=body)
    assert r.status_code == 200 and warnings(r) == ['299 - "unknown field \\"regarding.shade\\""'], r.headers
    r = await api.put(f"{events(ns)}/u", params={"fieldValidation": "Strict"}, json=body)
    assert r.status_code == 400 and r.json()["message"].endswith('unknown field "regarding.shade"'), r.text


async def test_a_create_answers_in_the_version_written(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.post(events(ns), params={"dryRun": "All"}, json=v1_event(ns, "dry"))
    assert r.status_code == 201, r.text
    assert r.json()["apiVersion"] == "events.k8s.io/v1" and r.json()["note"] == "0/3 nodes are available"
    assert (await api.get(f"{events(ns)}/dry")).status_code == 404
    table = {"accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    r = await api.post(events(ns), params={"includeObject": "Object"}, json=v1_event(ns, "t"), headers=table)
    assert r.status_code == 201 and r.json()["kind"] == "Table", r.text
    row = r.json()["rows"][0]["object"]
    assert row["apiVersion"] == "events.k8s.io/v1" and row["regarding"]["name"] == "web-1"
    assert "involvedObject" not in row
    yaml_body = f"""
apiVersion: events.k8s.io/v1
kind: Event
metadata: {{name: y, namespace: {ns}}}
eventTime: "{NOW}"
regarding: {{kind: Pod, namespace: {ns}, name: web-1}}
reason: Scheduled
action: Binding
note: from YAML
type: Normal
reportingController: default-scheduler
reportingInstance: default-scheduler-host
"""
    r = await api.post(events(ns), content=yaml_body, headers={"content-type": "application/yaml"})
    assert r.status_code == 201 and r.json()["note"] == "from YAML", r.text
    assert (await api.get(f"/api/v1/namespaces/{ns}/events/y")).json()["message"] == "from YAML"


async def test_reading_through_a_converted_version_leaves_the_stored_object_as_it_is(
    api: httpx.AsyncClient, ns: str
) -> None:
    legacy = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "s", "namespace": ns},
        "involvedObject": {"kind": "Pod", "namespace": ns, "name": "web-1"},
        "reason": "Pulled",
        "message": "image pulled",
        "type": "Normal",
        "series": {"lastObservedTime": NOW},  # core/v1's series may lack its count; events.k8s.io/v1's may not
        "source": {"component": "kubelet"},
    }
    r = await api.post(f"/api/v1/namespaces/{ns}/events", json=legacy)
    assert r.status_code == 201, r.text
    cached = {"resourceVersion": "0"}  # the watch cache's object, once it has it

    async def in_cache() -> bool:
        return (await api.get(f"{events(ns)}/s", params=cached)).status_code == 200

    await eventually(in_cache, what="the watch cache to hold the Event")
    for _ in range(2):
        r = await api.get(f"{events(ns)}/s", params=cached)
        assert r.json()["series"] == {"count": 0, "lastObservedTime": NOW}, r.text
        r = await api.get(events(ns), params=cached)
        assert [e["series"] for e in r.json()["items"]] == [{"count": 0, "lastObservedTime": NOW}], r.text
    r = await api.get(f"/api/v1/namespaces/{ns}/events/s", params=cached)
    assert r.json()["series"] == {"lastObservedTime": NOW}, r.text


async def test_a_converted_body_nests_no_deeper_than_a_body_may(api: httpx.AsyncClient, ns: str) -> None:
    # autoscaling/v1 keeps v2's conditions in an annotation: a string, which the conversion makes JSON again
    def conditions(depth: int) -> str:
        return '[{"type": "AbleToScale", "status": "True", "x": ' + "[" * depth + "]" * depth + "}]"

    hpa = hpa_v1(ns, "deep")
    hpa["metadata"]["annotations"] = {"autoscaling.alpha.kubernetes.io/conditions": conditions(140)}
    hpa["status"] = {"currentReplicas": 1, "desiredReplicas": 1}
    r = await api.post(f"/apis/autoscaling/v1/namespaces/{ns}/horizontalpodautoscalers", json=hpa)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == (
        "couldn't decode the request body: exceeded max depth of 128 nested objects and arrays"
    )
    hpa["metadata"]["annotations"] = {"autoscaling.alpha.kubernetes.io/conditions": conditions(100)}
    r = await api.post(f"/apis/autoscaling/v1/namespaces/{ns}/horizontalpodautoscalers", json=hpa)
    assert r.status_code == 201, r.text
