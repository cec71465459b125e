"""events.k8s.io/v1 ↔ core/v1 Event conversion (upstream's pkg/apis/events/v1 conversion) and field labels."""

from __future__ import annotations

from apiserver.kinds.events import EVENTS_V1_FIELD_LABELS, event_from_v1, event_to_v1

V1 = {
    "apiVersion": "events.k8s.io/v1",
    "kind": "Event",
    "metadata": {"name": "e", "namespace": "ns", "resourceVersion": "7"},
    "eventTime": "2026-01-01T00:00:00.000000Z",
    "series": {"count": 3, "lastObservedTime": "2026-01-01T00:01:00.000000Z"},
    "reportingController": "default-scheduler",
    "reportingInstance": "default-scheduler-h",
    "action": "Scheduling",
    "reason": "FailedScheduling",
    "regarding": {"kind": "Pod", "namespace": "ns", "name": "p", "uid": "u"},
    "related": {"kind": "Node", "name": "n"},
    "note": "no fit",
    "type": "Warning",
    "deprecatedSource": {"component": "c", "host": "h"},
    "deprecatedFirstTimestamp": "2026-01-01T00:00:00Z",
    "deprecatedLastTimestamp": "2026-01-01T00:02:00Z",
    "deprecatedCount": 2,
}


def test_every_field_maps_to_its_core_name_and_back() -> None:
    core = event_from_v1(V1)
    assert core["apiVersion"] == "v1"
    assert core["message"] == "no fit"
    assert core["involvedObject"] == V1["regarding"]
    assert core["reportingComponent"] == "default-scheduler"
    assert core["source"] == {"component": "c", "host": "h"}
    assert (core["firstTimestamp"], core["lastTimestamp"], core["count"]) == (
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:02:00Z",
        2,
    )
    assert core["series"] == V1["series"] and core["related"] == V1["related"]
    assert not {"note", "regarding", "reportingController", "deprecatedSource", "deprecatedCount"} & set(core)
    assert event_to_v1(core) == V1


def test_unset_core_fields_are_left_out_of_v1() -> None:
    core = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Pod", "name": "p"},
        "message": "m",
        "count": 0,
        "source": {},
        "firstTimestamp": None,
    }
    v1 = event_to_v1(core)
    assert v1 == {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "e"},
        "regarding": {"kind": "Pod", "name": "p"},
        "note": "m",
    }


def test_field_labels_are_upstreams() -> None:
    assert EVENTS_V1_FIELD_LABELS["regarding.name"] == "involvedObject.name"
    assert EVENTS_V1_FIELD_LABELS["reportingController"] == "reportingComponent"
    assert EVENTS_V1_FIELD_LABELS["source"] == "source"
    assert "note" not in EVENTS_V1_FIELD_LABELS and "involvedObject.name" not in EVENTS_V1_FIELD_LABELS
