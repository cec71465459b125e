"""managedFields on an update: a PUT that leaves out what defaulting and filling put back changes no
manager's entry, not even its time; a real change moves it."""

from __future__ import annotations

import copy
from typing import Any

from apimachinery.resources import by_plural
from apiserver.kinds.pods import PodStrategy
from apiserver.managedfields import set_on_create, track_update

PODS = by_plural("", "pods")
assert PODS is not None
EARLIER = "2001-01-01T00:00:00Z"  # any re-stamp of an entry's time differs from this
TERM = {"preference": {"matchExpressions": [{"key": "k", "operator": "Exists"}]}}


def _stored() -> tuple[dict[str, Any], dict[str, Any]]:
    """A pod as sent (an affinity term without its required weight) and as stored (completed, with the
    sending manager's entry dated EARLIER)."""
    sent: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "containers": [{"name": "c", "image": "busybox"}],
            "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [TERM]}},
        },
    }
    stored = copy.deepcopy(sent)
    set_on_create(PODS, stored, "client")
    stored["metadata"]["managedFields"][0]["time"] = EARLIER
    PodStrategy(PODS).complete(stored)
    return sent, stored


def test_a_put_without_a_filled_field_inside_an_atomic_list_changes_no_entry() -> None:
    sent, stored = _stored()
    terms = stored["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert terms[0]["weight"] == 0  # filled in: the list as sent differs from the list stored
    again = stored | {"spec": {**stored["spec"], "affinity": copy.deepcopy(sent["spec"]["affinity"])}}
    out = track_update(PODS, stored, copy.deepcopy(again), "client", complete=PodStrategy(PODS).complete)
    assert out["metadata"]["managedFields"] == stored["metadata"]["managedFields"]


def test_a_real_change_of_the_list_moves_the_entry() -> None:
    _, stored = _stored()
    changed_term = {**TERM, "weight": 5}
    affinity = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [changed_term]}}
    again = stored | {"spec": {**stored["spec"], "affinity": affinity}}
    out = track_update(PODS, stored, copy.deepcopy(again), "client", complete=PodStrategy(PODS).complete)
    [entry] = out["metadata"]["managedFields"]
    assert entry["time"] != EARLIER
    assert entry["fieldsV1"] == stored["metadata"]["managedFields"][0]["fieldsV1"]  # the same fields, still its own
