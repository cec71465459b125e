"""Strategies of the core kinds that are not pods or workloads."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from apimachinery import validation
from apimachinery.errors import Cause
from apiserver.kinds.podspec import default_claim_spec
from apiserver.strategy import Strategy

__all__ = [
    "ConfigMapStrategy",
    "EndpointsStrategy",
    "NamespaceStrategy",
    "NodeStrategy",
    "PersistentVolumeClaimStrategy",
    "SecretStrategy",
]

_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def _key_causes(data: dict[str, Any] | None, field: str) -> list[Cause]:
    causes = []
    for key in data or {}:
        if not _CONFIG_KEY.match(key) or len(key) > 253:
            causes.append(
                Cause(
                    f"{field}[{key}]",
                    f'Invalid value: "{key}": a valid config key '
                    "must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
                    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                    "validation is '[-._a-zA-Z0-9]+')",
                )
            )
    return causes


class CreateOnUpdateStrategy(Strategy):
    """Kinds whose PUT creates a missing object (Endpoints, Leases, Events)."""

    allow_create_on_update = True


class NamespaceStrategy(Strategy):
    """Namespaces: the `kubernetes` finalizer, Active phase, the metadata.name label."""

    name_validator = staticmethod(validation.is_dns1123_label)

    def default(self, obj: dict[str, Any]) -> None:
        meta = obj.setdefault("metadata", {})
        if isinstance(meta.get("name"), str):
            labels = meta.get("labels") or {}
            labels["kubernetes.io/metadata.name"] = meta["name"]
            meta["labels"] = labels

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        super().prepare_for_create(obj)
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])

    def initial_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"phase": "Active"}

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        super().prepare_for_update(new, old)
        new["spec"] = old.get("spec", {})  # spec.finalizers change only through /finalize

    def deletion_pending(self, obj: dict[str, Any]) -> bool:
        """The namespace controller must empty the namespace and clear spec.finalizers."""
        return bool((obj.get("spec") or {}).get("finalizers"))

    def mark_deleting(self, obj: dict[str, Any]) -> None:
        obj.setdefault("status", {})["phase"] = "Terminating"


class NodeStrategy(Strategy):
    """Nodes: cluster-scoped; status written by the kubelet through /status."""

    def initial_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        return dict(obj.get("status") or {})  # a registering kubelet sends its status

    def default(self, obj: dict[str, Any]) -> None:
        """SetDefaults_NodeStatus: allocatable is the capacity when the kubelet did not say."""
        status = obj.get("status")
        if isinstance(status, dict) and status.get("allocatable") is None and isinstance(status.get("capacity"), dict):
            status["allocatable"] = dict(status["capacity"])


class EndpointsStrategy(CreateOnUpdateStrategy):
    """Endpoints: a port's protocol is TCP unless given (SetDefaults_Endpoints)."""

    def default(self, obj: dict[str, Any]) -> None:
        for subset in obj.get("subsets") or []:
            for port in (subset.get("ports") or []) if isinstance(subset, dict) else []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


class PersistentVolumeClaimStrategy(Strategy):
    """PersistentVolumeClaims: Filesystem volume mode, Pending until bound."""

    def default(self, obj: dict[str, Any]) -> None:
        """SetDefaults_PersistentVolumeClaim(Spec)."""
        default_claim(obj)

    def initial_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"phase": "Pending"}


def default_claim(claim: Any) -> None:
    """SetDefaults_PersistentVolumeClaim and its spec's defaults, on a claim or a claim template."""
    if not isinstance(claim, dict):
        return
    default_claim_spec(claim.get("spec"))
    status = claim.get("status")
    if status is None:
        status = claim["status"] = {}
    if isinstance(status, dict) and not status.get("phase"):
        status["phase"] = "Pending"


class ConfigMapStrategy(Strategy):
    """ConfigMaps: key syntax and immutability."""

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        causes = _key_causes(obj.get("data"), "data") + _key_causes(obj.get("binaryData"), "binaryData")
        sizes = validation.configmap_size_errors(obj.get("data"), obj.get("binaryData"))
        return causes + [Cause(path, msg, reason) for path, reason, msg in sizes]

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        if old.get("immutable") and (
            new.get("data") != old.get("data") or new.get("binaryData") != old.get("binaryData")
        ):
            return [
                Cause(
                    "data",
                    "Forbidden: field is immutable when `immutable` is set",
                    "FieldValueForbidden",
                )
            ]
        return []


class SecretStrategy(Strategy):
    """Secrets: stringData folded into data, base64 checked, type Opaque by default."""

    def default(self, obj: dict[str, Any]) -> None:
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.get("data") or {}
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            obj["data"] = data

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        causes = _key_causes(obj.get("data"), "data")
        for k, v in (obj.get("data") or {}).items():
            try:
                base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError):
                causes.append(Cause(f"data[{k}]", "Invalid value: illegal base64 data"))
        sizes = validation.secret_size_errors(obj.get("data"))
        return causes + [Cause(path, msg, reason) for path, reason, msg in sizes]

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        if new.get("type") != old.get("type"):
            return [Cause("type", f'Invalid value: "{new.get("type")}": field is immutable')]
        if old.get("immutable") and new.get("data") != old.get("data"):
            return [
                Cause(
                    "data",
                    "Forbidden: field is immutable when `immutable` is set",
                    "FieldValueForbidden",
                )
            ]
        return []
