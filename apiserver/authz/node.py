"""The Node authorizer (`--authorization-mode Node`): what a kubelet may do, by the pods bound to it.

As upstream's plugin/pkg/auth/authorizer/node: a request from `system:node:<name>` in group
`system:nodes` for a secret, configmap or PersistentVolumeClaim is allowed only when a pod bound to
that node uses the object (`node ← pod ← secret`); a ServiceAccount token only for a ServiceAccount
one of its pods runs as; a Lease only in kube-node-lease and named after the node. Everything else a
kubelet asks is checked against the static node rules (system:node's), and the NodeRestriction
admission plug-in narrows the writes those allow (own Node, own pods' status, mirror pods).

The graph is the pods of the watch cache (`CacheFeed`), each pod's references indexed by node.
Nodes' list/watch of pods and nodes is not narrowed by field selector (upstream's
AuthorizeNodeWithSelectors): node rules allow reading them, as upstream did before 1.32.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from apimachinery.podrefs import Ref, pod_references
from apiserver.authz import Attributes, Decision, Verdict
from apiserver.authz.bootstrap_policy import NODE_RULES
from apiserver.authz.cachefeed import CacheFeed
from apiserver.authz.rules import Rule, rules_allow
from apiserver.authz.union import RulesAnswer
from apiserver.context import UserInfo
from apiserver.watch_cache import WatchCache

__all__ = ["NODES_GROUP", "NODE_USER_PREFIX", "NodeAuthorizer", "NodeGraph", "node_identity"]

NODE_USER_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
NODE_LEASE_NAMESPACE = "kube-node-lease"


def node_identity(user: UserInfo | None) -> tuple[str, bool]:
    """NodeIdentity: (node name, is a node) for `system:node:<name>` in `system:nodes`."""
    if user is None or not user.name.startswith(NODE_USER_PREFIX) or NODES_GROUP not in user.groups:
        return "", False
    return user.name[len(NODE_USER_PREFIX) :], True


class NodeGraph:
    """The objects each node's pods use, from the watch cache's pods."""

    def __init__(self, cache: WatchCache | None = None) -> None:
        self._pods: dict[tuple[str, str], tuple[str, frozenset[Ref]]] = {}
        self._by_node: dict[str, Counter[Ref]] = {}
        self._feed = CacheFeed(cache, "pods", self.apply, self._reset) if cache is not None else None

    def catch_up(self) -> None:
        """Fold in the pod changes the watch cache has seen."""
        if self._feed is not None:
            self._feed.catch_up()

    def _reset(self) -> None:
        self._pods.clear()
        self._by_node.clear()

    def apply(self, event: str, pod: dict[str, Any]) -> None:
        """One pod ADDED, MODIFIED or DELETED."""
        m = pod.get("metadata") or {}
        key = (str(m.get("namespace") or ""), str(m.get("name") or ""))
        old = self._pods.pop(key, None)
        if old is not None:
            counts = self._by_node[old[0]]
            counts.subtract(old[1])
            for ref in old[1]:
                if counts[ref] <= 0:
                    del counts[ref]
            if not counts:
                del self._by_node[old[0]]
        node = ((pod.get("spec") or {}) if isinstance(pod.get("spec"), dict) else {}).get("nodeName")
        if event == "DELETED" or not node:
            return
        refs = frozenset(pod_references(pod))
        self._pods[key] = (node, refs)
        self._by_node.setdefault(node, Counter()).update(refs)

    def related(self, node: str, kind: str, namespace: str, name: str) -> bool:
        """Whether a pod bound to `node` uses the object (hasPathFrom)."""
        counts = self._by_node.get(node)
        return counts is not None and counts[(kind, namespace, name)] > 0

    def close(self) -> None:
        """Stop following the cache."""
        if self._feed is not None:
            self._feed.close()


_NODE_RULES = tuple(Rule.of(r) for r in NODE_RULES)
_NO_OPINION = Decision(Verdict.NO_OPINION)
_ALLOW = Decision(Verdict.ALLOW)
_READ_GRAPH = {"secrets": "secret", "configmaps": "configmap"}


class NodeAuthorizer:
    """`--authorization-mode Node`: kubelets reach what their pods need, and nothing of other nodes'."""

    name = "Node"

    def __init__(self, graph: NodeGraph) -> None:
        self.graph = graph

    def rules_review(self, user: UserInfo, namespace: str) -> RulesAnswer:
        """RulesFor: a node's permissions cannot be enumerated (they depend on its pods)."""
        if node_identity(user)[1]:
            return RulesAnswer([], True, ["node authorizer does not support user rule resolution"])
        return RulesAnswer()

    def decision_stamp(self, user: UserInfo) -> int | None:
        """None for a node (what it may read follows its pods); its decisions about anyone else never change."""
        return None if node_identity(user)[1] else 0

    async def authorize(self, attrs: Attributes) -> Decision:
        """Decide a kubelet's request; no opinion on anyone else's."""
        node, is_node = node_identity(attrs.user)
        if not is_node:
            return _NO_OPINION
        if not node:
            return Decision(Verdict.NO_OPINION, f'unknown node for user "{attrs.user.name}"')
        if attrs.resource_request and attrs.api_group == "":
            if attrs.resource in _READ_GRAPH:
                return self._read_namespaced(node, _READ_GRAPH[attrs.resource], attrs)
            if attrs.resource == "persistentvolumeclaims":
                if attrs.subresource == "status":
                    return self._status_update(node, attrs)
                return self._get(node, "pvc", attrs)
            if attrs.resource == "persistentvolumes":
                return self._get(node, "pv", attrs)
            if attrs.resource == "serviceaccounts":
                return self._create_token(node, attrs)
        if attrs.resource_request and attrs.api_group == "coordination.k8s.io" and attrs.resource == "leases":
            return self._lease(node, attrs)
        return _ALLOW if rules_allow(attrs, _NODE_RULES) else _NO_OPINION

    def _related(self, node: str, kind: str, attrs: Attributes) -> Decision:
        """authorize: allowed when the named object is related to the node through one of its pods."""
        if not attrs.name:
            return Decision(Verdict.NO_OPINION, "No Object name found")
        self.graph.catch_up()
        if self.graph.related(node, kind, attrs.namespace, attrs.name):
            return Decision(Verdict.ALLOW)
        return Decision(Verdict.NO_OPINION, f"no relationship found between node '{node}' and this object")

    def _read_namespaced(self, node: str, kind: str, attrs: Attributes) -> Decision:
        if attrs.verb not in ("get", "list", "watch"):
            return Decision(Verdict.NO_OPINION, "can only read resources of this type")
        if attrs.subresource:
            return Decision(Verdict.NO_OPINION, "cannot read subresource")
        if not attrs.namespace:
            return Decision(Verdict.NO_OPINION, "can only read namespaced object of this type")
        return self._related(node, kind, attrs)

    def _get(self, node: str, kind: str, attrs: Attributes) -> Decision:
        if attrs.verb != "get":
            return Decision(Verdict.NO_OPINION, "can only get individual resources of this type")
        if attrs.subresource:
            return Decision(Verdict.NO_OPINION, "cannot get subresource")
        return self._related(node, kind, attrs)

    def _status_update(self, node: str, attrs: Attributes) -> Decision:
        if attrs.verb not in ("update", "patch"):
            return Decision(Verdict.NO_OPINION, "can only get/update/patch this type")
        return self._related(node, "pvc", attrs)

    def _create_token(self, node: str, attrs: Attributes) -> Decision:
        if attrs.verb != "create" or not attrs.name:
            return Decision(Verdict.NO_OPINION, "can only create tokens for individual service accounts")
        if attrs.subresource != "token":
            return Decision(Verdict.NO_OPINION, "can only create token subresource of serviceaccount")
        return self._related(node, "serviceaccount", attrs)

    def _lease(self, node: str, attrs: Attributes) -> Decision:
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return Decision(Verdict.NO_OPINION, "can only get, create, update, patch, or delete a node lease")
        if attrs.namespace != NODE_LEASE_NAMESPACE:
            return Decision(
                Verdict.NO_OPINION, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace'
            )
        if attrs.verb != "create" and attrs.name != node:
            return Decision(Verdict.NO_OPINION, "can only access node lease with the same name as the requesting node")
        return Decision(Verdict.ALLOW)
