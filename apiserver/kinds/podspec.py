"""Defaults and checks shared by Pods and every pod template (workloads, jobs)."""

from __future__ import annotations

from typing import Any

from apimachinery.errors import Cause

__all__ = ["default_pod_spec", "image_pull_policy", "validate_pod_spec"]

_PROBE_DEFAULTS = {
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}


def image_pull_policy(image: str) -> str:
    """`Always` for `:latest` or untagged images, else `IfNotPresent` (by tag, as Kubernetes)."""
    name = image.rsplit("/", 1)[-1]
    if "@" in name:
        return "IfNotPresent"
    tag = name.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _default_probe(probe: dict[str, Any] | None) -> None:
    if not isinstance(probe, dict):
        return
    for k, v in _PROBE_DEFAULTS.items():
        probe.setdefault(k, v)
    http = probe.get("httpGet")
    if isinstance(http, dict):
        http.setdefault("path", "/")
        http.setdefault("scheme", "HTTP")


def _default_container(c: dict[str, Any]) -> None:
    if isinstance(c.get("image"), str):
        c.setdefault("imagePullPolicy", image_pull_policy(c["image"]))
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for env in c.get("env") or []:
        field_ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(env, dict) else None
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(name))


def default_pod_spec(spec: dict[str, Any]) -> None:
    """Apply the PodSpec defaults of the v1 API (restartPolicy, dnsPolicy, grace period …)."""
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                _default_container(c)
    for vol in spec.get("volumes") or []:
        if isinstance(vol, dict):
            _default_volume(vol)


def _default_volume(vol: dict[str, Any]) -> None:
    for key in ("configMap", "secret", "downwardAPI", "projected"):
        src = vol.get(key)
        if isinstance(src, dict):
            src.setdefault("defaultMode", 420)
    if not any(k for k in vol if k != "name"):
        vol["emptyDir"] = {}


def validate_pod_spec(spec: dict[str, Any], path: str) -> list[Cause]:
    """Checks beyond types: unique container and volume names, known volume mounts."""
    causes: list[Cause] = []
    seen: set[str] = set()
    for key in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(key) or []):
            name = c.get("name")
            if name in seen:
                causes.append(
                    Cause(
                        f"{path}.{key}[{i}].name",
                        f'Duplicate value: "{name}"',
                        "FieldValueDuplicate",
                    )
                )
            seen.add(name)
    volumes = set()
    for i, v in enumerate(spec.get("volumes") or []):
        if v.get("name") in volumes:
            causes.append(
                Cause(
                    f"{path}.volumes[{i}].name",
                    f'Duplicate value: "{v["name"]}"',
                    "FieldValueDuplicate",
                )
            )
        volumes.add(v.get("name"))
    for key in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(key) or []):
            for j, m in enumerate(c.get("volumeMounts") or []):
                if m.get("name") not in volumes:
                    causes.append(
                        Cause(
                            f"{path}.{key}[{i}].volumeMounts[{j}].name",
                            f'Not found: "{m.get("name")}"',
                            "FieldValueNotFound",
                        )
                    )
    return causes
