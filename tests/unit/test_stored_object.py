"""StoredObject: etcd's bytes served with the revision spliced in, and the same object moved to a deletion's
revision (`at_revision`, what a DELETED event carries) without decoding it."""

from __future__ import annotations

import orjson
import pytest

from apiserver import storage
from apiserver.storage import StoredObject, _laid_out, splice_point

KEY = "/registry/pods/ns/p"
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"app": "web"}},
    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
}


def _kept(revision: int) -> StoredObject:
    """The pod as the watch cache holds it when read from etcd: its bytes, not decoded."""
    value = orjson.dumps(_laid_out(POD))
    at = splice_point(value)
    assert at
    return StoredObject.of_value(KEY, value, revision, at)


def _expected(revision: int) -> bytes:
    meta = {"name": "p", "namespace": "ns", "uid": "u-1", "resourceVersion": str(revision), "labels": {"app": "web"}}
    return orjson.dumps({"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": POD["spec"]})


@pytest.fixture
def no_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any JSON decode in the storage module fails the test."""

    def refuse(_: object) -> object:
        raise AssertionError("decoded")

    monkeypatch.setattr(storage.orjson, "loads", refuse)


@pytest.mark.parametrize("served", [False, True], ids=["not-yet-read", "json-made"])
def test_a_kept_object_moves_to_another_revision_without_a_decode(served: bool, no_decode: None) -> None:
    prev = _kept(10)
    if served:
        assert prev.json() == _expected(10)  # its bytes are now dropped, the JSON kept
    gone = prev.at_revision(12)
    assert (gone.key, gone.revision) == (KEY, 12)
    assert gone.json() == _expected(12)
    assert prev.json() == _expected(10)  # the previous object is unchanged


def test_the_moved_object_decodes_with_the_new_revision() -> None:
    gone = _kept(10).at_revision(12)
    assert gone.obj == orjson.loads(_expected(12))


def test_an_object_not_in_the_layout_is_moved_by_its_decoded_copy() -> None:
    # another resourceVersion inside (an Event's involvedObject) keeps the value from being spliced
    event = {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {"name": "e", "uid": "u2"},
        "involvedObject": {"kind": "Pod", "resourceVersion": "7"},
    }
    value = orjson.dumps(_laid_out(event))
    assert splice_point(value) == 0
    prev = StoredObject(KEY, {**event, "metadata": {**event["metadata"], "resourceVersion": "10"}}, 10)
    gone = prev.at_revision(12)
    assert gone.obj["metadata"]["resourceVersion"] == "12"
    assert gone.obj["involvedObject"]["resourceVersion"] == "7"
    assert orjson.loads(gone.json()) == gone.obj
    assert prev.obj["metadata"]["resourceVersion"] == "10"
