"""Defaults and checks shared by Pods and every pod template (workloads, jobs)."""

from __future__ import annotations

from typing import Any

from apimachinery.errors import Cause

__all__ = ["default_claim_spec", "default_pod_spec", "image_pull_policy", "validate_pod_spec"]

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


def _default_http_get(handler: Any) -> None:
    """SetDefaults_HTTPGetAction on a probe's or lifecycle hook's httpGet."""
    http = handler.get("httpGet") if isinstance(handler, dict) else None
    if isinstance(http, dict):
        http.setdefault("path", "/")
        http.setdefault("scheme", "HTTP")


def _default_probe(probe: dict[str, Any] | None) -> None:
    if not isinstance(probe, dict):
        return
    for k, v in _PROBE_DEFAULTS.items():
        probe.setdefault(k, v)
    _default_http_get(probe)


def _default_field_ref(holder: Any) -> None:
    """SetDefaults_ObjectFieldSelector: a fieldRef's apiVersion is v1."""
    field_ref = holder.get("fieldRef") if isinstance(holder, dict) else None
    if isinstance(field_ref, dict):
        field_ref.setdefault("apiVersion", "v1")


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
        _default_field_ref(env.get("valueFrom") if isinstance(env, dict) else None)
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(name))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            _default_http_get(lifecycle.get(hook))


def default_pod_spec(spec: dict[str, Any]) -> None:
    """Apply the PodSpec defaults of the v1 API (restartPolicy, dnsPolicy, grace period …)."""
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                _default_container(c)
    for vol in spec.get("volumes") or []:
        if isinstance(vol, dict):
            _default_volume(vol)


def default_claim_spec(spec: Any) -> None:
    """SetDefaults_PersistentVolumeClaimSpec: volumeMode Filesystem."""
    if isinstance(spec, dict):
        spec.setdefault("volumeMode", "Filesystem")


def _default_volume(vol: dict[str, Any]) -> None:
    for key in ("configMap", "secret", "downwardAPI", "projected"):
        src = vol.get(key)
        if isinstance(src, dict):
            src.setdefault("defaultMode", 420)
    if not any(k for k in vol if k != "name"):
        vol["emptyDir"] = {}
    if isinstance(vol.get("hostPath"), dict):
        vol["hostPath"].setdefault("type", "")  # HostPathUnset
    for item in (vol.get("downwardAPI") or {}).get("items") or []:
        _default_field_ref(item)
    for source in (vol.get("projected") or {}).get("sources") or []:
        if not isinstance(source, dict):
            continue
        for item in (source.get("downwardAPI") or {}).get("items") or []:
            _default_field_ref(item)
        if isinstance(source.get("serviceAccountToken"), dict):
            source["serviceAccountToken"].setdefault("expirationSeconds", 3600)
    claim = (vol.get("ephemeral") or {}).get("volumeClaimTemplate")
    if isinstance(claim, dict):
        default_claim_spec(claim.get("spec"))


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
