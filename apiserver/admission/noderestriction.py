"""The NodeRestriction admission plug-in: a kubelet writes only its own things.

As plugin/pkg/admission/noderestriction: for a request from `system:node:<name>` (in system:nodes),
- pods: create only mirror pods bound to itself (owned by its Node, referencing no ServiceAccount,
  secret, configmap or claim), delete only pods bound to itself; pods/status only of pods bound to
  itself, without changing labels; pods/eviction only of pods bound to itself;
- nodes: only its own Node; no changing its taints, no setting labels outside the kubelet's set;
- ServiceAccount tokens only bound to a pod of its own; leases only its own, in kube-node-lease;
- PersistentVolumeClaims only through /status.
The Node authorizer lets these verbs through for any object; this plug-in checks the objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apimachinery import errors
from apimachinery.podrefs import pod_references
from apimachinery.resources import by_plural
from apiserver.admission import AdmissionAttributes
from apiserver.authz.node import NODE_LEASE_NAMESPACE, node_identity

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["NodeRestriction", "forbidden_node_labels"]

MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
_KUBELET_LABELS = frozenset(
    {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
    }
)
_KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
_NODE_RESTRICTION_NAMESPACE = "node-restriction.kubernetes.io"


def _in_namespace(namespace: str, root: str) -> bool:
    return namespace == root or namespace.endswith("." + root)


def _is_kubelet_label(key: str) -> bool:
    """kubeletapis.IsKubeletLabel."""
    if key in _KUBELET_LABELS:
        return True
    namespace = key.split("/", 1)[0] if "/" in key else ""
    return any(_in_namespace(namespace, ns) for ns in _KUBELET_LABEL_NAMESPACES)


def forbidden_node_labels(new: dict[str, str], old: dict[str, str] | None) -> list[str]:
    """getForbiddenLabels of the labels added or changed: node-restriction.kubernetes.io/* and
    kubernetes.io / k8s.io labels the kubelet does not own, sorted."""
    old = old or {}
    modified = {k for k, v in new.items() if old.get(k) != v} | {k for k in old if k not in new}
    out = set()
    for key in modified:
        namespace = key.split("/", 1)[0] if "/" in key else ""
        if _in_namespace(namespace, _NODE_RESTRICTION_NAMESPACE):
            out.add(key)
        kubernetes = _in_namespace(namespace, "kubernetes.io") or _in_namespace(namespace, "k8s.io")
        if kubernetes and not _is_kubelet_label(key):
            out.add(key)
    return sorted(out)


def _meta(obj: dict[str, Any] | None) -> dict[str, Any]:
    m = (obj or {}).get("metadata")
    return m if isinstance(m, dict) else {}


def _spec(obj: dict[str, Any] | None) -> dict[str, Any]:
    s = (obj or {}).get("spec")
    return s if isinstance(s, dict) else {}


class NodeRestriction:
    """Limit what a kubelet may change to what concerns its own node."""

    name = "NodeRestriction"

    def handles(self, attrs: AdmissionAttributes) -> bool:
        """Writes by a node identity to the kinds a node may write."""
        return node_identity(attrs.user)[1] and attrs.resource.group in ("", "coordination.k8s.io")

    async def validate(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Refuse (403) what a node may not do to this object."""
        node, _ = node_identity(attrs.user)
        if not node:
            raise self._forbid(attrs, f'could not determine node from user "{attrs.user.name if attrs.user else ""}"')
        plural = attrs.resource.plural
        if attrs.resource.group == "coordination.k8s.io":
            if plural == "leases":
                self._lease(node, attrs)
            return
        if plural == "pods":
            await self._pod(node, attrs, reg)
        elif plural == "nodes":
            self._node(node, attrs)
        elif plural == "persistentvolumeclaims" and attrs.subresource != "status":
            raise self._forbid(attrs, "may only update PVC status")
        elif plural == "serviceaccounts" and attrs.operation == "CREATE" and attrs.subresource == "token":
            await self._token(node, attrs, reg)

    @staticmethod
    def _forbid(attrs: AdmissionAttributes, why: str) -> errors.StatusError:
        """admission.NewForbidden: `<resource> "<name>" is forbidden: <why>`."""
        name = attrs.name or _meta(attrs.obj).get("name") or ""
        return errors.forbidden(attrs.resource.plural, name, why, attrs.resource.group)

    async def _stored_pod(self, attrs: AdmissionAttributes, reg: Registry, name: str) -> dict[str, Any]:
        res = by_plural("", "pods")
        assert res is not None
        return await reg.get(res, attrs.namespace, name)

    async def _pod(self, node: str, attrs: AdmissionAttributes, reg: Registry) -> None:
        sub, op = attrs.subresource, attrs.operation
        if sub == "status":
            if op != "UPDATE":
                raise self._forbid(attrs, f'unexpected operation "{op}"')
            if _spec(attrs.old).get("nodeName") != node:
                raise self._forbid(
                    attrs, f'node "{node}" can only update pod status for pods with spec.nodeName set to itself'
                )
            if (_meta(attrs.old).get("labels") or {}) != (_meta(attrs.obj).get("labels") or {}):
                raise self._forbid(attrs, f'node "{node}" cannot update labels through pod status')
            return
        if sub == "eviction":
            if op != "CREATE":
                raise self._forbid(attrs, f"unexpected operation {op}")
            name = attrs.name or _meta(attrs.obj).get("name") or ""
            if not name:
                raise self._forbid(attrs, "could not determine pod from request data")
            pod = await self._stored_pod(attrs, reg, name)
            if _spec(pod).get("nodeName") != node:
                raise self._forbid(attrs, f"node {node} can only evict pods with spec.nodeName set to itself")
            return
        if sub:
            raise self._forbid(attrs, f"unexpected pod subresource \"{sub}\", only 'status' and 'eviction' are allowed")
        if op == "CREATE":
            await self._mirror_pod(node, attrs, reg)
        elif op == "DELETE":
            pod = attrs.old if attrs.old is not None else await self._stored_pod(attrs, reg, attrs.name)
            if _spec(pod).get("nodeName") != node:
                raise self._forbid(attrs, f'node "{node}" can only delete pods with spec.nodeName set to itself')
        else:
            raise self._forbid(
                attrs, f'unexpected operation "{op}", node "{node}" can only create and delete mirror pods'
            )

    async def _mirror_pod(self, node: str, attrs: AdmissionAttributes, reg: Registry) -> None:
        pod = attrs.obj or {}
        meta, spec = _meta(pod), _spec(pod)
        if MIRROR_POD_ANNOTATION not in (meta.get("annotations") or {}):
            raise self._forbid(
                attrs,
                f'pod does not have "{MIRROR_POD_ANNOTATION}" annotation, node "{node}" can only create mirror pods',
            )
        if spec.get("nodeName") != node:
            raise self._forbid(attrs, f'node "{node}" can only create pods with spec.nodeName set to itself')
        owners = meta.get("ownerReferences") or []
        if len(owners) > 1:
            raise self._forbid(attrs, f'node "{node}" can only create pods with a single owner reference set to itself')
        if not owners:
            raise self._forbid(attrs, f'node "{node}" can only create pods with an owner reference set to itself')
        owner = owners[0] if isinstance(owners[0], dict) else {}
        if owner.get("apiVersion") != "v1" or owner.get("kind") != "Node" or owner.get("name") != node:
            raise self._forbid(attrs, f'node "{node}" can only create pods with an owner reference set to itself')
        if not owner.get("controller"):
            raise self._forbid(
                attrs, f'node "{node}" can only create pods with a controller owner reference set to itself'
            )
        if owner.get("blockOwnerDeletion"):
            raise self._forbid(attrs, f'node "{node}" must not set blockOwnerDeletion on an owner reference')
        nodes = by_plural("", "nodes")
        assert nodes is not None
        stored = await reg.get(nodes, None, node)
        if owner.get("uid") != _meta(stored).get("uid"):
            raise self._forbid(
                attrs, f"node {node} UID mismatch: expected {_meta(stored).get('uid')} got {owner.get('uid')}"
            )
        refs = pod_references(pod)
        if spec.get("serviceAccountName"):
            raise self._forbid(attrs, f'node "{node}" can not create pods that reference a service account')
        for kind, word in (("secret", "secrets"), ("configmap", "configmaps")):
            if any(r[0] == kind for r in refs):
                raise self._forbid(attrs, f'node "{node}" can not create pods that reference {word}')
        if _has_claim_volume(spec):
            raise self._forbid(attrs, f'node "{node}" can not create pods that reference persistentvolumeclaims')

    def _node(self, node: str, attrs: AdmissionAttributes) -> None:
        requested = attrs.name or _meta(attrs.obj).get("name") or ""
        if requested != node:
            raise self._forbid(attrs, f'node "{node}" is not allowed to modify node "{requested}"')
        if attrs.operation == "CREATE":
            bad = forbidden_node_labels(_meta(attrs.obj).get("labels") or {}, None)
            if bad:
                raise self._forbid(attrs, f'node "{node}" is not allowed to set the following labels: {", ".join(bad)}')
        elif attrs.operation == "UPDATE" and attrs.obj is not None:
            if (_spec(attrs.obj).get("taints") or None) != (_spec(attrs.old).get("taints") or None):
                raise self._forbid(attrs, f'node "{node}" is not allowed to modify taints')
            bad = forbidden_node_labels(_meta(attrs.obj).get("labels") or {}, _meta(attrs.old).get("labels") or {})
            if bad:
                raise self._forbid(attrs, f"is not allowed to modify labels: {', '.join(bad)}")

    async def _token(self, node: str, attrs: AdmissionAttributes, reg: Registry) -> None:
        ref = _spec(attrs.obj).get("boundObjectRef")
        if (
            not isinstance(ref, dict)
            or ref.get("apiVersion") != "v1"
            or ref.get("kind") != "Pod"
            or not ref.get("name")
        ):
            raise self._forbid(attrs, "node requested token not bound to a pod")
        if not ref.get("uid"):
            raise self._forbid(attrs, "node requested token with a pod binding without a uid")
        pod = await self._stored_pod(attrs, reg, str(ref["name"]))
        if ref["uid"] != _meta(pod).get("uid"):
            raise self._forbid(
                attrs,
                f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. "
                "The object might have been deleted and then recreated",
            )
        if _spec(pod).get("nodeName") != node:
            raise self._forbid(attrs, "node requested token bound to a pod scheduled on a different node")

    def _lease(self, node: str, attrs: AdmissionAttributes) -> None:
        if attrs.namespace != NODE_LEASE_NAMESPACE:
            raise self._forbid(attrs, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace')
        name = _meta(attrs.obj).get("name") if attrs.operation == "CREATE" else attrs.name
        if name != node:
            raise self._forbid(attrs, "can only access node lease with the same name as the requesting node")


def _has_claim_volume(spec: dict[str, Any]) -> bool:
    return any(isinstance(v, dict) and v.get("persistentVolumeClaim") for v in spec.get("volumes") or [])
