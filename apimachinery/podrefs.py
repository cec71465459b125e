"""What a pod uses by name: its secrets, configmaps, claims and ServiceAccount (upstream's podutil.VisitPod*Names).

The Node authorizer lets a kubelet read exactly these; the kubelet watches exactly these.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["Ref", "pod_references"]

Ref = tuple[str, str, str]  # (kind: secret, configmap, pvc, serviceaccount or pod; namespace; name)


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        yield from (v for v in value if isinstance(v, dict))


def _name(value: Any, key: str = "name") -> str:
    return value.get(key) or "" if isinstance(value, dict) else ""


_SECRET_REF_VOLUMES = ("cephfs", "cinder", "flexVolume", "rbd", "scaleIO", "iscsi", "storageos")


def pod_references(pod: dict[str, Any]) -> set[Ref]:
    """What a pod uses: secrets, configmaps, claims and its ServiceAccount (podutil.VisitPod*Names)."""
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    ns = (pod.get("metadata") or {}).get("namespace") or ""
    pod_name = (pod.get("metadata") or {}).get("name") or ""
    refs: set[Ref] = set()

    def add(kind: str, name: str) -> None:
        if name:
            refs.add((kind, ns, name))

    for s in _dicts(spec.get("imagePullSecrets")):
        add("secret", _name(s))
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in _dicts(spec.get(field)):
            for src in _dicts(c.get("envFrom")):
                add("secret", _name(src.get("secretRef")))
                add("configmap", _name(src.get("configMapRef")))
            for env in _dicts(c.get("env")):
                value_from = env.get("valueFrom") if isinstance(env.get("valueFrom"), dict) else {}
                add("secret", _name(value_from.get("secretKeyRef")))
                add("configmap", _name(value_from.get("configMapKeyRef")))
    for v in _dicts(spec.get("volumes")):
        add("secret", _name(v.get("secret"), "secretName"))
        add("secret", _name(v.get("azureFile"), "secretName"))
        add("configmap", _name(v.get("configMap")))
        for kind in _SECRET_REF_VOLUMES:
            add("secret", _name((v.get(kind) or {}).get("secretRef") if isinstance(v.get(kind), dict) else None))
        if isinstance(v.get("csi"), dict):
            add("secret", _name(v["csi"].get("nodePublishSecretRef")))
        if isinstance(v.get("projected"), dict):
            for src in _dicts(v["projected"].get("sources")):
                add("secret", _name(src.get("secret")))
                add("configmap", _name(src.get("configMap")))
        add("pvc", _name(v.get("persistentVolumeClaim"), "claimName"))
        if isinstance(v.get("ephemeral"), dict):
            add("pvc", f"{pod_name}-{v.get('name') or ''}")
    add("serviceaccount", spec.get("serviceAccountName") or "")
    add("pod", pod_name)
    return refs
