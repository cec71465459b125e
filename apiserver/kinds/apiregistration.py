"""APIService (apiregistration.k8s.io/v1): defaults and validation as kube-aggregator has them."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from apimachinery import validation
from apimachinery.errors import Cause
from apimachinery.meta import format_time
from apimachinery.validation import FieldErrorTuple
from apiserver.strategy import Strategy

__all__ = ["APIServiceStrategy"]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _ca_len(value: Any) -> int:
    if not value:
        return 0
    try:
        return len(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError):
        return len(str(value))


class APIServiceStrategy(Strategy):
    """APIServices: named `<version>.<group>`; a Service reference (port 443 by default) or local."""

    name_validator = staticmethod(validation.is_path_segment_name)

    def initial_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A local APIService is Available from the start (the aggregator would say so at once anyway)."""
        if isinstance(_dict(obj.get("spec")).get("service"), dict):
            return {}
        available = {
            "type": "Available",
            "status": "True",
            "lastTransitionTime": format_time(datetime.now(UTC)),
            "reason": "Local",
            "message": "Local APIServices are always available",
        }
        return {"conditions": [available]}

    def default(self, obj: dict[str, Any]) -> None:
        service = _dict(obj.get("spec")).get("service")
        if isinstance(service, dict) and service.get("port") is None:
            service["port"] = 443

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        spec = _dict(obj.get("spec"))
        group, version = str(spec.get("group") or ""), str(spec.get("version") or "")
        name = str(_dict(obj.get("metadata")).get("name") or "")
        errs: list[FieldErrorTuple] = []
        wanted = f"{version}.{group}"
        if name and name != wanted:
            errs.append(
                validation.invalid(
                    "metadata.name", name, f'must be `spec.version+"."+spec.group`: {validation.go_quote(wanted)}'
                )
            )
        if not group and version != "v1":
            errs.append(
                validation.required("spec.group", "only v1 may have an empty group and it better be legacy kube")
            )
        if group:
            errs += [validation.invalid("spec.group", group, m) for m in validation.is_dns1123_subdomain(group)]
        errs += [validation.invalid("spec.version", version, m) for m in validation.is_dns1035_label(version)]
        gpm, vp = _int(spec.get("groupPriorityMinimum")), _int(spec.get("versionPriority"))
        if gpm <= 0 or gpm > 20000:
            errs.append(validation.invalid("spec.groupPriorityMinimum", gpm, "must be positive and less than 20000"))
        if vp <= 0 or vp > 1000:
            errs.append(validation.invalid("spec.versionPriority", vp, "must be positive and less than 1000"))
        service = spec.get("service")
        skip = spec.get("insecureSkipTLSVerify") is True
        ca = _ca_len(spec.get("caBundle"))
        if not isinstance(service, dict):
            if ca:
                errs.append(
                    validation.invalid("spec.caBundle", f"{ca} bytes", "local APIServices may not have a caBundle")
                )
            if skip:
                errs.append(
                    validation.invalid(
                        "spec.insecureSkipTLSVerify", True, "local APIServices may not have insecureSkipTLSVerify"
                    )
                )
        else:
            for key in ("namespace", "name"):
                if not service.get(key):
                    errs.append(validation.required(f"spec.service.{key}"))
            port = _int(service.get("port"))
            if problems := validation.is_valid_port_num(port):
                errs.append(validation.invalid("spec.service.port", port, "port is not valid: " + ", ".join(problems)))
            if skip and ca:
                errs.append(
                    validation.invalid("spec.insecureSkipTLSVerify", True, "may not be true if caBundle is present")
                )
        return [Cause(path, msg, reason) for path, reason, msg in errs]
