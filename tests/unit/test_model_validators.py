"""`validator_of`: a kind's model checks as plain dicts, with the verdicts and errors of `model_validate`."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from apimachinery.models import KIND_MODELS, validator_of

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "labels": {"a": "b"}, "ownerReferences": [], "extra": {"kept": 1}},
    "spec": {
        "containers": [
            {
                "name": "c",
                "image": "busybox",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "X", "value": "1"}],
                "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
                "livenessProbe": {"periodSeconds": 5},
                "unknownField": True,
            }
        ],
        "restartPolicy": "Always",
        "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}],
    },
}


def _errors(check: Any, obj: Any) -> list[tuple[str, tuple[Any, ...], str]] | None:
    try:
        check(obj)
    except ValidationError as e:
        return [(err["type"], err["loc"], err["msg"]) for err in e.errors()]
    return None


def _broken(change: Any) -> dict[str, Any]:
    pod = copy.deepcopy(POD)
    change(pod)
    return pod


BROKEN_PODS = {
    "valid": lambda p: None,
    "no containers": lambda p: p["spec"].update(containers=[]),
    "containers missing": lambda p: p["spec"].pop("containers"),
    "image missing": lambda p: p["spec"]["containers"][0].pop("image"),
    "empty name": lambda p: p["spec"]["containers"][0].update(name=""),
    "port out of range": lambda p: p["spec"]["containers"][0]["ports"][0].update(containerPort=70000),
    "bad protocol": lambda p: p["spec"]["containers"][0]["ports"][0].update(protocol="HTTP"),
    "bad quantity": lambda p: p["spec"]["containers"][0]["resources"]["limits"].update(cpu="lots"),
    "negative quantity": lambda p: p["spec"]["containers"][0]["resources"]["limits"].update(memory="-1"),
    "probe period 0": lambda p: p["spec"]["containers"][0]["livenessProbe"].update(periodSeconds=0),
    "bad restart policy": lambda p: p["spec"].update(restartPolicy="Sometimes"),
    "bad toleration effect": lambda p: p["spec"]["tolerations"][0].update(effect="Evict"),
    "labels not strings": lambda p: p["metadata"].update(labels={"a": 1}),
    "owner reference without uid": lambda p: p["metadata"].update(
        ownerReferences=[{"apiVersion": "v1", "kind": "X", "name": "n"}]
    ),
    "several at once": lambda p: (p["spec"].update(restartPolicy="x"), p["spec"]["containers"][0].pop("name")),
}


@pytest.mark.parametrize("case", list(BROKEN_PODS))
def test_pod_verdicts_and_errors_match_the_model(case: str) -> None:
    pod = _broken(BROKEN_PODS[case])
    expected = _errors(KIND_MODELS["Pod"].model_validate, pod)
    assert _errors(validator_of(KIND_MODELS["Pod"]).validate_python, pod) == expected
    assert (expected is None) == (case == "valid")


@pytest.mark.parametrize("kind", sorted(KIND_MODELS))
def test_every_kind_refuses_what_its_model_refuses(kind: str) -> None:
    model = KIND_MODELS[kind]
    check = validator_of(model).validate_python
    for obj in ({}, {"metadata": {"name": 3}}, {"metadata": {}, "spec": {}}, {"metadata": {"labels": []}}):
        assert _errors(check, obj) == _errors(model.model_validate, obj), obj


def test_a_field_that_is_not_an_object_is_refused_with_its_path() -> None:
    # the one wording that differs: a model says "or instance of PodSpec"
    errors = _errors(validator_of(KIND_MODELS["Pod"]).validate_python, {"metadata": {}, "spec": 3})
    assert errors == [("dict_type", ("spec",), "Input should be a valid dictionary")]
