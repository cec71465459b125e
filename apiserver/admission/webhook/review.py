"""AdmissionReview requests and the checks on their answers (k8s.io/apiserver/pkg/admission/plugin/
webhook/request and errors): admission.k8s.io/v1 (or v1beta1, the first the webhook lists), the
answer's uid echoed, patches only from mutating webhooks and with a patchType, and a denial turned
into the error upstream gives (`admission webhook "x" denied the request: <message>`)."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from apimachinery import errors
from apiserver.admission import AdmissionAttributes
from apiserver.admission.webhook.client import CallError
from apiserver.admission.webhook.matching import RequestKind

__all__ = ["Answer", "admission_request", "build_review", "denial", "verify_answer"]

_OPTION_KINDS = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}


def _options(attrs: AdmissionAttributes) -> dict[str, Any] | None:
    kind = _OPTION_KINDS.get(attrs.operation)
    if kind is None:
        return attrs.options
    return {**(attrs.options or {}), "kind": kind, "apiVersion": "meta.k8s.io/v1"}


def admission_request(attrs: AdmissionAttributes, kind: RequestKind) -> dict[str, Any]:
    """The AdmissionRequest of a write, without uid, object and oldObject (CEL's `request` too)."""
    res = attrs.resource
    user = attrs.user.to_api() if attrs.user is not None else {"username": "", "groups": []}
    user.setdefault("groups", [])
    request: dict[str, Any] = {
        "kind": kind.gvk(),
        "resource": {"group": res.group, "version": res.version, "resource": res.plural},
        "requestKind": kind.gvk(),
        "requestResource": {"group": res.group, "version": res.version, "resource": res.plural},
        "operation": attrs.operation,
        "userInfo": user,
        "dryRun": attrs.dry_run,
        "options": _options(attrs),
    }
    if attrs.subresource:
        request["subResource"] = attrs.subresource
        request["requestSubResource"] = attrs.subresource
    if attrs.name:
        request["name"] = attrs.name
    elif attrs.operation == "CREATE" and attrs.obj is not None and (attrs.obj.get("metadata") or {}).get("name"):
        request["name"] = attrs.obj["metadata"]["name"]
    if attrs.namespace:
        request["namespace"] = attrs.namespace
    return request


def build_review(attrs: AdmissionAttributes, kind: RequestKind, versions: list[str]) -> tuple[str, str, dict[str, Any]]:
    """A new request uid, the version used and the AdmissionReview to POST (the first version the
    webhook accepts)."""
    version = next((v for v in versions if v in ("v1", "v1beta1")), None)
    if version is None:
        raise CallError(
            "could not create admission objects: webhook does not accept known AdmissionReview versions (v1, v1beta1)"
        )
    uid = str(uuid.uuid4())
    request = {"uid": uid, **admission_request(attrs, kind), "object": attrs.obj, "oldObject": attrs.old}
    return uid, version, {"kind": "AdmissionReview", "apiVersion": f"admission.k8s.io/{version}", "request": request}


@dataclass
class Answer:
    """What a webhook said: allowed or not, the Status when not, a JSON patch, warnings, annotations."""

    allowed: bool
    result: dict[str, Any] | None = None
    patch: list[Any] | None = None
    warnings: list[str] = field(default_factory=list)
    audit_annotations: dict[str, str] = field(default_factory=dict)


def verify_answer(uid: str, mutating: bool, review: dict[str, Any], version: str) -> Answer:
    """VerifyAdmissionResponse: a well-formed answer to this request, or CallError."""

    def invalid(why: str) -> CallError:
        return CallError(f"received invalid webhook response: {why}")

    response = review.get("response")
    if not isinstance(response, dict):
        raise invalid("webhook response was absent")
    if version == "v1":
        if response.get("uid") != uid:
            raise invalid(f'expected response.uid="{uid}", got "{response.get("uid") or ""}"')
        got = f"{review.get('apiVersion', '')}, Kind={review.get('kind', '')}"
        if review.get("apiVersion") != "admission.k8s.io/v1" or review.get("kind") != "AdmissionReview":
            raise invalid(f"expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {got}")
    patch_b64, patch_type = response.get("patch"), response.get("patchType")
    if mutating and version == "v1":
        if patch_b64 and patch_type is None:
            raise invalid("webhook returned response.patch but not response.patchType")
        if not patch_b64 and patch_type is not None:
            raise invalid("webhook returned response.patchType but not response.patch")
        if patch_type is not None and not patch_type:
            raise invalid(f'webhook returned invalid response.patchType of "{patch_type}"')
    elif mutating:
        patch_type = "JSONPatch" if patch_b64 else None
    else:
        if patch_b64:
            raise invalid("validating webhook may not return response.patch")
        if patch_type is not None:
            raise invalid("validating webhook may not return response.patchType")
    patch = None
    if patch_b64:
        if patch_type != "JSONPatch":
            raise CallError(f'unsupported patch type "{patch_type}"')
        try:
            patch = _decode_patch(patch_b64)
        except (binascii.Error, ValueError, TypeError) as e:
            raise CallError(f"received undecodable patch in webhook response: {e}") from e
    annotations = response.get("auditAnnotations") if isinstance(response.get("auditAnnotations"), dict) else {}
    return Answer(
        allowed=response.get("allowed") is True,
        result=response.get("status") if isinstance(response.get("status"), dict) else None,
        patch=patch,
        warnings=[str(w) for w in response.get("warnings") or []],
        audit_annotations={str(k): str(v) for k, v in annotations.items()},
    )


def _decode_patch(patch_b64: Any) -> list[Any]:
    ops = orjson.loads(base64.b64decode(patch_b64, validate=True))
    if not isinstance(ops, list):
        raise ValueError("a JSON patch must be a JSON array of operations")
    return ops


def denial(webhook: str, result: dict[str, Any] | None) -> errors.StatusError:
    """ToStatusErr: the webhook's Status, at least 400 and Failure, its message prefixed."""
    result = dict(result or {})
    denied_by = f'admission webhook "{webhook}" denied the request'
    code = result.get("code") if isinstance(result.get("code"), int) else 0
    code = code if code >= 400 else 400
    reason = str(result.get("reason") or "")
    if result.get("message"):
        message = f"{denied_by}: {result['message']}"
    elif reason:
        message = f"{denied_by}: {reason}"
    else:
        message = f"{denied_by} without explanation"
    details = result.get("details") if isinstance(result.get("details"), dict) else {}
    return errors.StatusError(code, reason, message, dict(details))
