"""DefaultTolerationSeconds: every new pod tolerates the not-ready and unreachable NoExecute taints
for a while (kube-apiserver's `--default-not-ready-toleration-seconds` and
`--default-unreachable-toleration-seconds`, plugin/pkg/admission/defaulttolerationseconds)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apiserver.admission import AdmissionAttributes

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["DefaultTolerationSeconds"]

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"


def _tolerates(tolerations: list[Any], key: str) -> bool:
    """Whether the pod already has a toleration for `key` (of any effect, as tinykube always did;
    upstream also requires the effect to be NoExecute or empty, and counts an empty key)."""
    return any(isinstance(t, dict) and t.get("key") == key for t in tolerations)


class DefaultTolerationSeconds:
    """Adds the two NoExecute tolerations with their default seconds to pods that lack them."""

    name = "DefaultTolerationSeconds"

    def __init__(self, not_ready_seconds: int = 300, unreachable_seconds: int = 300) -> None:
        self.seconds = {NOT_READY: not_ready_seconds, UNREACHABLE: unreachable_seconds}

    def handles(self, attrs: AdmissionAttributes) -> bool:
        """Creates of pods (not of their subresources)."""
        res = attrs.resource
        return attrs.operation == "CREATE" and res.group == "" and res.plural == "pods" and not attrs.subresource

    async def admit(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Append the missing tolerations."""
        spec = (attrs.obj or {}).get("spec")
        if not isinstance(spec, dict):
            return
        tolerations = spec.get("tolerations")
        if tolerations is None:
            tolerations = spec["tolerations"] = []
        if not isinstance(tolerations, list):
            return  # validation names the field
        for key, seconds in self.seconds.items():
            if not _tolerates(tolerations, key):
                tolerations.append(
                    {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
                )
