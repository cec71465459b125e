"""A status patch's result is type checked and field validated only in the top-level fields the patch names:
the same errors, warnings and object as checking the whole result, for a stored object that passed the checks."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from apimachinery import errors
from apimachinery.patch import MERGE_PATCH, STRATEGIC_MERGE_PATCH, apply_patch
from apimachinery.resources import by_plural
from apiserver import openapi
from apiserver.writes import _patched_fields

PODS = by_plural("", "pods")
NOW = "2026-12-03T10:00:00Z"


def stored_pod() -> dict[str, Any]:
    """A bound, running pod as the apiserver stores it (checked, so no declared field is null)."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "uid": "u",
            "labels": {"app": "a"},
            "managedFields": [
                {
                    "manager": "m",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": NOW,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:containers": {'k:{"name":"c"}': {".": {}}}}},
                }
            ],
        },
        "spec": {
            "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}], "resources": {}}],
            "nodeName": "n1",
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
        },
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": NOW}],
            "qosClass": "BestEffort",
        },
    }
    openapi.check_fields(PODS, pod, "Strict")  # as a write left it
    return pod


RUNNING = {
    "phase": "Running",
    "conditions": [
        {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": NOW}
        for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
    ],
    "hostIP": "10.0.0.1",
    "podIPs": [{"ip": "10.1.0.5"}],
    "containerStatuses": [
        {"name": "c", "image": "i", "imageID": "", "ready": True, "restartCount": 0, "state": {"running": {}}}
    ],
}

PATCHES: list[Any] = [
    {"status": RUNNING},
    {"status": {"phase": "Running", "bogus": 1}},
    {"status": {"phase": 3}},
    {"status": {"conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None, "extra": {"a": 1}}]}},
    {"status": {"containerStatuses": [{"name": "c", "restartCount": "x"}]}},
    {"status": None},
    {"status": {"phase": "Running"}, "spec": {"containers": "x"}},
    {"status": {"phase": "Running"}, "spec": {"nodeName": 5}},
    {"status": {"phase": "Running"}, "metadata": {"labels": {"k": "v"}, "unknownMeta": 1}},
    {"status": {"phase": "Running"}, "topLevelBogus": {"x": None}},
    {"status": {"phase": "Running"}, "spec": {"terminationGracePeriodSeconds": 1.5}},
    {"status": {"podIPs": [{"ip": "10.1.0.5", "ipFamily": "IPv4"}, {"ip": 7}]}},
    {"status": {"conditions": [{"type": "Ready", "status": "True", "$patch": "delete"}]}},
    {"$patch": "replace", "status": {"phase": "Running"}},
    {"$retainKeys": ["status"], "status": {"phase": "Running"}},
    {"status": {"$setElementOrder/conditions": [{"type": "PodScheduled"}], "phase": "Running"}},
    [{"not": "an object"}],
]


def outcome(
    stored: dict[str, Any], patch: Any, mt: str, directive: str, only: Any, with_unknown: bool
) -> tuple[Any, ...]:
    """Patch a copy of `stored` as a status write does and check it: (answer, warnings, the object)."""
    raw = orjson.dumps(stored)
    try:
        new = apply_patch(orjson.loads(raw), copy.deepcopy(patch), mt, "Pod", copy_doc=False)
    except Exception as e:  # the patch itself does not apply: nothing to check
        return ("patch", type(e).__name__, str(e))
    if with_unknown and isinstance(new.get("spec"), dict):
        new["spec"]["storedUnknown"] = True  # stored already: let pass without a warning

    def known() -> list[str]:
        return openapi.unknown_fields(PODS, orjson.loads(raw)) + (["spec.storedUnknown"] if with_unknown else [])

    try:
        check = openapi.check_fields(PODS, new, directive, ignore=known, depth_known=True, only=only)
    except errors.StatusError as e:
        return ("error", e.code, str(e), orjson.dumps(new))
    return ("ok", check.warnings, orjson.dumps(new))


@pytest.mark.parametrize("with_unknown", [False, True])
@pytest.mark.parametrize("directive", ["Strict", "Warn", "Ignore"])
@pytest.mark.parametrize("mt", [MERGE_PATCH, STRATEGIC_MERGE_PATCH])
@pytest.mark.parametrize("patch", PATCHES, ids=[str(i) for i in range(len(PATCHES))])
def test_checking_the_patched_fields_answers_as_checking_the_whole_object(
    patch: Any, mt: str, directive: str, with_unknown: bool
) -> None:
    stored = stored_pod()
    whole = outcome(stored, patch, mt, directive, None, with_unknown)
    assert outcome(stored, patch, mt, directive, _patched_fields(patch), with_unknown) == whole


def test_directives_at_the_top_check_everything() -> None:
    assert _patched_fields({"status": {}, "spec": {}}) == {"status", "spec"}
    assert _patched_fields({"$patch": "replace", "status": {}}) is None
    assert _patched_fields({"$retainKeys": ["status"]}) is None
    assert _patched_fields([{"op": "add"}]) is None


def test_a_status_write_skips_only_a_model_that_sees_the_stored_fields() -> None:
    """The kind's model is not run again when every field it declares is the stored object's; any change to
    one of them (a spec set by admission, say) runs it, and the answer is the one the whole run gives."""
    from apiserver.kinds.pods import PodStrategy

    strategy = PodStrategy(PODS)
    old = stored_pod()
    new = {**copy.deepcopy(old), "status": RUNNING}
    assert strategy.model_unchanged(new, old)
    assert strategy.validate(new, model_known=True) == strategy.validate(new) == []
    bad = copy.deepcopy(new)
    bad["spec"]["terminationGracePeriodSeconds"] = -1
    assert not strategy.model_unchanged(bad, old)
    assert [c.field for c in strategy.validate(bad)] == ["spec.terminationGracePeriodSeconds"]
    relabelled = copy.deepcopy(new)
    relabelled["metadata"]["labels"] = {"k": "v"}
    assert not strategy.model_unchanged(relabelled, old)
