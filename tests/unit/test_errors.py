"""Status objects as k8s.io/apimachinery's errors package builds them: messages, details, field order."""

from __future__ import annotations

import orjson

from apimachinery import errors
from apimachinery.errors import Cause

ORDER = ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]


def _json(err: errors.StatusError) -> bytes:
    return orjson.dumps(err.to_status())


def test_not_found_and_already_exists_match_upstream_bytes() -> None:
    assert _json(errors.not_found("pods", "p")) == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \\"p\\" not found",'
        b'"reason":"NotFound","details":{"name":"p","kind":"pods"},"code":404}'
    )
    status = errors.already_exists("deployments", "d", "apps").to_status()
    assert list(status) == ORDER
    assert status["details"] == {"name": "d", "group": "apps", "kind": "deployments"}


def test_invalid_aggregates_causes_like_go() -> None:
    one = errors.invalid("Pod", "p", [Cause("spec.x", "Required value", "FieldValueRequired")])
    assert one.message == 'Pod "p" is invalid: spec.x: Required value'
    same = Cause("a", "Required value", "FieldValueRequired")
    assert errors.invalid("Pod", "p", [same, same]).message == 'Pod "p" is invalid: a: Required value'
    two = errors.invalid("Deployment", "d", [same, Cause("b", "Invalid value: 1: bad")], "apps")
    assert two.message == 'Deployment.apps "d" is invalid: [a: Required value, b: Invalid value: 1: bad]'
    assert errors.invalid("Scale", "s", [], "autoscaling").message == 'Scale.autoscaling "s" is invalid'
    # a cause without a field leaves `field` out, as Go's omitempty does, but keeps `<field>: ` in the message
    no_field = errors.invalid("PodLogOptions", "p", [Cause("", "Forbidden: at most one", "FieldValueForbidden")])
    assert no_field.message == 'PodLogOptions "p" is invalid: : Forbidden: at most one'
    assert no_field.to_status()["details"]["causes"] == [
        {"reason": "FieldValueForbidden", "message": "Forbidden: at most one"}
    ]


def test_forbidden_messages_by_what_is_known() -> None:
    assert errors.forbidden("", "", "no").message == "forbidden: no"
    assert errors.forbidden("pods", "", "no").message == "pods is forbidden: no"
    err = errors.forbidden("deployments", "d", "no", "apps")
    assert err.message == 'deployments.apps "d" is forbidden: no'
    assert err.to_status()["details"] == {"name": "d", "group": "apps", "kind": "deployments"}


def test_method_not_supported_and_generic_answers() -> None:
    err = errors.method_not_supported("pods/log", "create")
    assert err.message == 'create is not supported on resources of kind "pods/log"'
    assert err.to_status()["details"] == {"kind": "pods/log"}
    assert errors.method_not_allowed().to_status()["details"] == {}
    assert errors.path_not_found().to_status()["details"] == {}
    log = errors.generic_server_response(404, "pods/log", "web", "no such file")
    assert log.message == "the server could not find the requested resource ( pods/log web)"
    assert log.to_status()["details"] == {"name": "web", "kind": "pods/log"}
    boom = errors.generic_server_response(502, "pods/log", "web", "bad gateway")
    assert (boom.reason, boom.message) == (
        "InternalError",
        'an error on the server ("bad gateway") has prevented the request from succeeding ( pods/log web)',
    )


def test_retry_hints_and_internal_errors() -> None:
    status = errors.too_many_requests("slow down", 3).to_status()
    assert list(status) == ORDER and status["details"] == {"retryAfterSeconds": 3}
    timeout = errors.too_large_resource_version(9, 5).to_status()
    assert timeout["message"] == "Timeout: Too large resource version: 9, current: 5"
    assert list(timeout["details"]) == ["causes", "retryAfterSeconds"]
    internal = errors.internal_error("boom").to_status()
    assert internal["message"] == "Internal error occurred: boom"
    assert internal["details"] == {"causes": [{"message": "boom"}]}
    assert "details" not in errors.bad_request("no").to_status()
    assert "details" not in errors.expired("too old").to_status()
    assert errors.gone("gone").to_status()["reason"] == "Gone"
