"""Which webhooks a write goes to (k8s.io/apiserver/pkg/admission/plugin/webhook: the configuration
source, predicates/rules, predicates/namespace and predicates/object): every webhook of every
configuration, configurations by name, and for each its rules (operations, API groups, versions,
resources with subresources, scope), namespaceSelector and objectSelector."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apimachinery import errors
from apimachinery.resources import ResourceInfo, by_plural
from apimachinery.selectors import LabelSelector, SelectorError, selector_from_label_selector
from apiserver.admission import AdmissionAttributes

if TYPE_CHECKING:
    from apiserver.registry import Registry
    from apiserver.storage import StoredObject

__all__ = [
    "EXEMPT_KINDS",
    "RequestKind",
    "Webhook",
    "load_webhooks",
    "matches_namespace",
    "matches_object",
    "matches_rules",
    "request_kind",
]

_NAMESPACES: ResourceInfo = by_plural("", "namespaces")  # type: ignore[assignment]

# configuration kinds never sent to webhooks, so a broken webhook cannot lock itself in
EXEMPT_KINDS = frozenset(
    {
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
    }
)

# the kinds of subresources whose body is not the resource's own kind
_SUBRESOURCE_KINDS: dict[str, tuple[str, str, str]] = {
    "scale": ("autoscaling", "v1", "Scale"),
    "binding": ("", "v1", "Binding"),
    "eviction": ("policy", "v1", "Eviction"),
    "exec": ("", "v1", "PodExecOptions"),
    "attach": ("", "v1", "PodAttachOptions"),
    "portforward": ("", "v1", "PodPortForwardOptions"),
    "proxy": ("", "v1", "PodProxyOptions"),
}


@dataclass(frozen=True)
class RequestKind:
    """The group/version/kind and group/version/resource an AdmissionReview names."""

    group: str
    version: str
    kind: str
    resource: str

    def gvk(self) -> dict[str, str]:
        """metav1.GroupVersionKind."""
        return {"group": self.group, "version": self.version, "kind": self.kind}


def request_kind(attrs: AdmissionAttributes) -> RequestKind:
    """What the written object is: the resource's kind, or the subresource's (Scale, Binding, ...)."""
    res = attrs.resource
    group, version, kind = _SUBRESOURCE_KINDS.get(attrs.subresource, (res.group, res.version, res.kind))
    return RequestKind(group, version, kind, res.plural)


@dataclass
class Webhook:
    """One webhook of a configuration, defaulted, with its selectors parsed once."""

    spec: dict[str, Any]
    configuration: str
    index: int
    mutating: bool
    _selectors: dict[str, LabelSelector | SelectorError] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The webhook's name (`deny.example.com`)."""
        return str(self.spec.get("name", ""))

    @property
    def failure_policy(self) -> str:
        """Fail (the default) or Ignore."""
        return str(self.spec.get("failurePolicy") or "Fail")

    @property
    def timeout(self) -> float:
        """timeoutSeconds (default 10)."""
        value = self.spec.get("timeoutSeconds")
        return float(value) if isinstance(value, int) and value > 0 else 10.0

    @property
    def reinvoke_if_needed(self) -> bool:
        """reinvocationPolicy: IfNeeded."""
        return self.mutating and self.spec.get("reinvocationPolicy") == "IfNeeded"

    def selector(self, which: str) -> LabelSelector:
        """The parsed namespaceSelector or objectSelector (an unparsable one is a 500, as upstream)."""
        if which not in self._selectors:
            raw = self.spec.get(which)
            try:
                self._selectors[which] = selector_from_label_selector(raw if isinstance(raw, Mapping) else {})
            except SelectorError as e:
                self._selectors[which] = e
        found = self._selectors[which]
        if isinstance(found, SelectorError):
            raise errors.internal_error(str(found))
        return found


def load_webhooks(reg: Registry, plural: str) -> list[Webhook]:
    """Every webhook of every configuration of `plural`, configurations sorted by name, as the
    watch cache holds them (upstream reads an informer: eventually consistent); built again only when the
    configurations change, so each webhook's selectors are parsed once. The list is shared: not to be changed."""
    build = _mutating_webhooks if plural == "mutatingwebhookconfigurations" else _validating_webhooks
    return reg.cache.cache(plural).derived(build)


def _webhooks(stored: list[StoredObject], mutating: bool) -> list[Webhook]:
    configs = sorted((s.obj for s in stored), key=lambda c: str((c.get("metadata") or {}).get("name", "")))
    out: list[Webhook] = []
    for config in configs:
        name = str((config.get("metadata") or {}).get("name", ""))
        for i, hook in enumerate(config.get("webhooks") or []):
            if isinstance(hook, dict):
                out.append(Webhook(hook, name, i, mutating))
    return out


def _mutating_webhooks(stored: list[StoredObject]) -> list[Webhook]:
    return _webhooks(stored, True)


def _validating_webhooks(stored: list[StoredObject]) -> list[Webhook]:
    return _webhooks(stored, False)


def _exact_or_wildcard(items: Any, requested: str) -> bool:
    return isinstance(items, list) and any(item in ("*", requested) for item in items)


def _rule_matches(rule: Mapping[str, Any], attrs: AdmissionAttributes, kind: RequestKind) -> bool:
    scope = rule.get("scope") or "*"
    is_namespace = (kind.group, kind.resource) == ("", "namespaces")
    if scope == "Namespaced" and (is_namespace or not attrs.namespace):
        return False
    if scope == "Cluster" and not (is_namespace or not attrs.namespace):
        return False
    if scope not in ("*", "Namespaced", "Cluster"):
        return False
    if not any(op in ("*", attrs.operation) for op in rule.get("operations") or []):
        return False
    res = attrs.resource
    if not _exact_or_wildcard(rule.get("apiGroups"), res.group):
        return False
    if not _exact_or_wildcard(rule.get("apiVersions"), res.version):
        return False
    for item in rule.get("resources") or []:
        name, _, sub = str(item).partition("/")
        if name in ("*", res.plural) and sub in ("*", attrs.subresource):
            return True
    return False


def matches_rules(hook: Webhook, attrs: AdmissionAttributes, kind: RequestKind) -> bool:
    """Whether any rule of the webhook covers this write (rules.Matcher)."""
    return any(isinstance(r, Mapping) and _rule_matches(r, attrs, kind) for r in hook.spec.get("rules") or [])


def matches_object(hook: Webhook, attrs: AdmissionAttributes) -> bool:
    """objectSelector against the new object's labels or the old one's."""
    selector = hook.selector("objectSelector")
    if selector.empty:
        return True
    for obj in (attrs.obj, attrs.old):
        if isinstance(obj, Mapping) and selector.matches((obj.get("metadata") or {}).get("labels") or {}):
            return True
    return False


async def matches_namespace(hook: Webhook, attrs: AdmissionAttributes, reg: Registry) -> bool:
    """namespaceSelector against the labels of the write's namespace (a Namespace's own on its writes)."""
    is_namespace = (attrs.resource.group, attrs.resource.plural) == ("", "namespaces")
    if not attrs.namespace and not is_namespace:
        return True
    selector = hook.selector("namespaceSelector")
    if selector.empty:
        return True
    if is_namespace and not attrs.subresource and attrs.operation in ("CREATE", "UPDATE") and attrs.obj is not None:
        labels = (attrs.obj.get("metadata") or {}).get("labels") or {}
    else:
        namespace = await _namespace(reg, attrs.namespace or attrs.name)
        labels = (namespace.get("metadata") or {}).get("labels") or {}
    return selector.matches(labels)


async def _namespace(reg: Registry, name: str) -> dict[str, Any]:
    """The namespace from the watch cache, from etcd when the cache has not seen it (404 if none)."""
    try:
        return await reg.get(_NAMESPACES, None, name, rv="0")
    except errors.StatusError as e:
        if e.code != 404:
            raise
    return await reg.get(_NAMESPACES, None, name)
