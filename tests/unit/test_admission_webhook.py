"""Webhook admission's pure parts: rule matching, selectors, AdmissionReview requests, answer checks
and denials (cases after k8s.io/apiserver's rules_test.go, admissionreview_test.go, statuserror_test.go)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from admission_kit import attrs, pod

from apimachinery.errors import StatusError
from apiserver.admission.webhook.client import CallError
from apiserver.admission.webhook.dispatcher import exempt
from apiserver.admission.webhook.matching import Webhook, matches_object, matches_rules, request_kind
from apiserver.admission.webhook.review import build_review, denial, verify_answer
from apiserver.kinds.admissionregistration import default_webhook


def hook(rules: list[dict[str, Any]], **spec: Any) -> Webhook:
    body = {"name": "w.example.com", "rules": rules, "sideEffects": "None", "admissionReviewVersions": ["v1"], **spec}
    default_webhook(body, mutating=True)
    return Webhook(body, "config", 0, True)


def rule(
    ops: list[str], groups: list[str], versions: list[str], resources: list[str], scope: str = "*"
) -> dict[str, Any]:
    return {"operations": ops, "apiGroups": groups, "apiVersions": versions, "resources": resources, "scope": scope}


DEPLOY = {"metadata": {"name": "d"}, "spec": {}}
NS = {"metadata": {"name": "n"}}


@pytest.mark.parametrize(
    ("r", "a", "expected"),
    [
        (rule(["CREATE"], [""], ["v1"], ["pods"]), attrs("pods", pod()), True),
        (rule(["UPDATE"], [""], ["v1"], ["pods"]), attrs("pods", pod()), False),
        (rule(["*"], ["*"], ["*"], ["*"]), attrs("deployments", DEPLOY, group="apps"), True),
        (rule(["CREATE"], ["apps"], ["v1"], ["pods"]), attrs("pods", pod()), False),
        (rule(["CREATE"], [""], ["v2"], ["pods"]), attrs("pods", pod()), False),
        (
            rule(["UPDATE"], [""], ["v1"], ["pods"]),
            attrs("pods", pod(), "UPDATE", old=pod(), subresource="status"),
            False,
        ),
        (
            rule(["UPDATE"], [""], ["v1"], ["pods/status"]),
            attrs("pods", pod(), "UPDATE", old=pod(), subresource="status"),
            True,
        ),
        (
            rule(["UPDATE"], [""], ["v1"], ["pods/*"]),
            attrs("pods", pod(), "UPDATE", old=pod(), subresource="status"),
            True,
        ),
        (
            rule(["UPDATE"], [""], ["v1"], ["*/status"]),
            attrs("pods", pod(), "UPDATE", old=pod(), subresource="status"),
            True,
        ),
        (rule(["UPDATE"], [""], ["v1"], ["*"]), attrs("pods", pod(), "UPDATE", old=pod(), subresource="status"), False),
        (rule(["CREATE"], ["*"], ["*"], ["*"], "Namespaced"), attrs("pods", pod()), True),
        (rule(["CREATE"], ["*"], ["*"], ["*"], "Cluster"), attrs("pods", pod()), False),
        (rule(["CREATE"], ["*"], ["*"], ["*"], "Cluster"), attrs("namespaces", NS), True),
        (rule(["CREATE"], ["*"], ["*"], ["*"], "Namespaced"), attrs("namespaces", NS), False),
        (rule(["DELETE"], [""], ["v1"], ["pods"]), attrs("pods", None, "DELETE", old=pod()), True),
    ],
)
def test_rules(r: dict[str, Any], a: Any, expected: bool) -> None:
    assert matches_rules(hook([r]), a, request_kind(a)) is expected


def test_object_selector_matches_new_or_old_labels() -> None:
    h = hook([rule(["*"], ["*"], ["*"], ["*"])], objectSelector={"matchLabels": {"team": "a"}})
    labelled = pod()
    labelled["metadata"]["labels"] = {"team": "a"}
    assert matches_object(h, attrs("pods", labelled))
    assert not matches_object(h, attrs("pods", pod()))
    assert matches_object(h, attrs("pods", None, "DELETE", old=labelled))
    assert matches_object(hook([]), attrs("pods", pod()))  # the default {} selects everything


def test_webhook_defaults() -> None:
    h = hook([rule(["CREATE"], [""], ["v1"], ["pods"])], clientConfig={"service": {"name": "s", "namespace": "n"}})
    assert h.spec["failurePolicy"] == "Fail" and h.failure_policy == "Fail"
    assert h.spec["matchPolicy"] == "Equivalent"
    assert h.spec["timeoutSeconds"] == 10 and h.timeout == 10.0
    assert h.spec["namespaceSelector"] == {} and h.spec["objectSelector"] == {}
    assert h.spec["reinvocationPolicy"] == "Never"
    assert h.spec["rules"][0]["scope"] == "*"
    assert h.spec["clientConfig"]["service"]["port"] == 443


def test_configuration_kinds_are_exempt() -> None:
    config = {"metadata": {"name": "c"}, "webhooks": []}
    assert exempt(attrs("validatingwebhookconfigurations", config, group="admissionregistration.k8s.io"))
    assert exempt(attrs("mutatingwebhookconfigurations", config, group="admissionregistration.k8s.io"))
    assert not exempt(attrs("pods", pod()))


def test_review_request_shape() -> None:
    a = attrs("pods", pod("p"), dry_run=True)
    uid, version, review = build_review(a, request_kind(a), ["v1beta1", "v1"])
    assert version == "v1beta1"  # the first version the webhook lists
    uid, version, review = build_review(a, request_kind(a), ["v1"])
    assert review["apiVersion"] == "admission.k8s.io/v1" and review["kind"] == "AdmissionReview"
    req = review["request"]
    assert req["uid"] == uid
    assert req["kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert req["resource"] == {"group": "", "version": "v1", "resource": "pods"}
    assert req["requestKind"] == req["kind"] and req["requestResource"] == req["resource"]
    assert req["name"] == "p" and req["namespace"] == "ns" and req["operation"] == "CREATE"
    assert req["userInfo"] == {"username": "tester", "groups": ["system:authenticated"]}
    assert req["object"]["metadata"]["name"] == "p" and req["oldObject"] is None
    assert req["dryRun"] is True
    assert req["options"]["kind"] == "CreateOptions" and req["options"]["apiVersion"] == "meta.k8s.io/v1"
    assert "subResource" not in req
    scale = attrs("deployments", {"spec": {"replicas": 2}}, "UPDATE", old={}, subresource="scale", group="apps")
    _uid, _v, review = build_review(scale, request_kind(scale), ["v1"])
    assert review["request"]["kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert review["request"]["subResource"] == "scale"
    with pytest.raises(CallError, match="does not accept known AdmissionReview versions"):
        build_review(a, request_kind(a), ["v2"])


def _answer(uid: str, **response: Any) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": uid, **response}}


def test_verify_answers() -> None:
    patch = base64.b64encode(orjson.dumps([{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}])).decode()
    got = verify_answer("u", True, _answer("u", allowed=True, patch=patch, patchType="JSONPatch", warnings=["w"]), "v1")
    assert got.allowed and got.patch == [{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}]
    assert got.warnings == ["w"]
    cases = [
        ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, True, "webhook response was absent"),
        (_answer("other", allowed=True), True, 'expected response.uid="u", got "other"'),
        ({**_answer("u", allowed=True), "apiVersion": "v1"}, True, "expected webhook response of admission.k8s.io/v1"),
        (_answer("u", allowed=True, patch=patch), True, "webhook returned response.patch but not response.patchType"),
        (_answer("u", allowed=True, patchType="JSONPatch"), True, "response.patchType but not response.patch"),
        (
            _answer("u", allowed=True, patch=patch, patchType="JSONPatch"),
            False,
            "validating webhook may not return response.patch",
        ),
        (_answer("u", allowed=True, patch="!!", patchType="JSONPatch"), True, "received undecodable patch"),
    ]
    for review, mutating, why in cases:
        with pytest.raises(CallError, match=why.replace("(", r"\(").replace(")", r"\)")):
            verify_answer("u", mutating, review, "v1")


@pytest.mark.parametrize(
    ("result", "code", "message"),
    [
        (
            {"message": "no latest tags", "code": 403},
            403,
            'admission webhook "w.example.com" denied the request: no latest tags',
        ),
        ({"reason": "Forbidden"}, 400, 'admission webhook "w.example.com" denied the request: Forbidden'),
        (None, 400, 'admission webhook "w.example.com" denied the request without explanation'),
        ({"message": "too small", "code": 200}, 400, 'admission webhook "w.example.com" denied the request: too small'),
    ],
)
def test_denials(result: dict[str, Any] | None, code: int, message: str) -> None:
    err = denial("w.example.com", result)
    assert isinstance(err, StatusError)
    assert (err.code, err.message) == (code, message)
    assert err.to_status()["status"] == "Failure"


def test_match_conditions() -> None:
    from apiserver.admission.webhook.conditions import compile_error, evaluate_conditions

    obj = {"metadata": {"name": "p", "labels": {"skip": "true"}}}
    request = {"operation": "CREATE", "userInfo": {"username": "alice", "groups": []}}

    def conds(*expressions: str) -> list[dict[str, str]]:
        return [{"name": f"c{i}", "expression": e} for i, e in enumerate(expressions)]

    assert evaluate_conditions(conds("request.operation == 'CREATE'"), obj, None, request) == (True, "")
    assert evaluate_conditions(conds("!('skip' in object.metadata.labels)"), obj, None, request) == (False, "")
    assert evaluate_conditions(
        conds("oldObject == null", "request.userInfo.username == 'bob'"), obj, None, request
    ) == (
        False,
        "",
    )
    # an error and no false condition: not matched, with the reason (failurePolicy decides)
    matched, why = evaluate_conditions(conds("object.spec.replicas > 1"), obj, None, request)
    assert not matched and why.startswith("expression 'object.spec.replicas > 1' resulted in error")
    # a false condition wins over an error
    assert evaluate_conditions(conds("object.nope == 1", "false"), obj, None, request) == (False, "")
    assert compile_error("object.metadata.name ==") != ""
    assert compile_error("object.metadata.name == 'x'") == ""
