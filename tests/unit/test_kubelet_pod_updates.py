"""Which pod updates start a sync on the kubelet: upstream's podsDifferSemantically (pkg/kubelet/config)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubelet.worker import pods_differ_semantically


def pod() -> dict[str, Any]:
    return {
        "metadata": {
            "name": "p",
            "namespace": "default",
            "uid": "u1",
            "resourceVersion": "10",
            "labels": {"app": "a"},
            "annotations": {"note": "x"},
        },
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": "Pending"},
    }


def test_a_status_write_alone_is_no_change_to_act_on() -> None:
    old, new = pod(), pod()
    new["metadata"]["resourceVersion"] = "11"
    new["metadata"]["managedFields"] = [{"manager": "kubelet", "subresource": "status"}]
    new["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    assert not pods_differ_semantically(old, new)


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["spec"].update(activeDeadlineSeconds=5),
        lambda p: p["spec"].setdefault("ephemeralContainers", []).append({"name": "debug", "image": "busybox"}),
        lambda p: p["metadata"]["labels"].update(app="b"),
        lambda p: p["metadata"]["annotations"].pop("note"),
        lambda p: p["metadata"].update(deletionTimestamp="2026-12-03T00:00:00Z", deletionGracePeriodSeconds=30),
    ],
    ids=["spec", "ephemeral container", "label", "annotation", "deletion"],
)
def test_spec_labels_annotations_and_deletion_are_changes(change: Any) -> None:
    old = pod()
    new = copy.deepcopy(old)
    change(new)
    assert pods_differ_semantically(old, new)
