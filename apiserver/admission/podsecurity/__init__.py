"""PodSecurity admission (k8s.io/pod-security-admission as kube-apiserver builds it in): the
namespace's `pod-security.kubernetes.io/enforce|audit|warn` labels pick a Pod Security Standards
level (privileged, baseline, restricted) and version per mode. Pods breaking the enforce level are
refused (403 `violates PodSecurity "restricted:latest": ...`); breaking the warn level earns a
`Warning` header, the audit level an audit annotation. Workload templates (Deployments, Jobs, ...)
are checked for warn and audit only. Namespace labels are validated, and raising a namespace's
enforce level warns about the pods already there that would break it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apimachinery import errors
from apimachinery.errors import Cause
from apiserver.admission import AdmissionAttributes
from apiserver.admission.lookups import list_in_namespace, namespace_of
from apiserver.admission.podsecurity.checks import (
    MAX_VERSION,
    CheckResult,
    evaluate,
    forbidden_detail,
    forbidden_reasons,
)
from apiserver.admission.podsecurity.policy import (
    LABEL_PREFIX,
    LevelVersion,
    Policy,
    compare_levels,
    policy_to_evaluate,
)

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["PodSecurity", "pod_spec_of"]

# pod subresources that cannot change the pod's spec
_IGNORED_POD_SUBRESOURCES = frozenset(
    {"exec", "attach", "binding", "eviction", "log", "portforward", "proxy", "status"}
)
# resources whose objects embed a pod template (DefaultPodSpecExtractor)
_TEMPLATE_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "replicationcontrollers"): ("spec", "template"),
    ("", "podtemplates"): ("template",),
    ("apps", "replicasets"): ("spec", "template"),
    ("apps", "deployments"): ("spec", "template"),
    ("apps", "statefulsets"): ("spec", "template"),
    ("apps", "daemonsets"): ("spec", "template"),
    ("batch", "jobs"): ("spec", "template"),
    ("batch", "cronjobs"): ("spec", "jobTemplate", "spec", "template"),
}
_MAX_PODS_TO_CHECK = 3000
_MAX_POLICIES_KEPT = 4096


def pod_spec_of(group: str, plural: str, obj: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The pod metadata and spec to evaluate in a pod or a workload's template (None: no template)."""
    if (group, plural) == ("", "pods"):
        return _d(obj.get("metadata")), _d(obj.get("spec"))
    node: Any = obj
    for step in _TEMPLATE_PATHS.get((group, plural), ("-",)):
        node = node.get(step) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return None
    return _d(node.get("metadata")), _d(node.get("spec"))


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _version(lv: LevelVersion) -> tuple[int, int]:
    return MAX_VERSION if lv.version is None else min(lv.version, MAX_VERSION)


def _run(lv: LevelVersion, meta: dict[str, Any], spec: dict[str, Any]) -> list[CheckResult]:
    return evaluate(lv.level, _version(lv), meta, spec)


def _significant_pod_update(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """isSignificantPodUpdate: containers added or removed, or an image changed."""
    ns, os_ = _d(new.get("spec")), _d(old.get("spec"))
    for key in ("containers", "initContainers"):
        a, b = ns.get(key) or [], os_.get(key) or []
        if len(a) != len(b) or any(_d(x).get("image") != _d(y).get("image") for x, y in zip(a, b, strict=True)):
            return True
    old_ephemeral = {_d(c).get("name"): _d(c) for c in os_.get("ephemeralContainers") or []}
    for c in ns.get("ephemeralContainers") or []:
        before = old_ephemeral.get(_d(c).get("name"))
        if before is None or before.get("image") != _d(c).get("image"):
            return True
    return False


class PodSecurity:
    """The validating PodSecurity plug-in with upstream's default configuration (privileged:latest for
    every mode unless labelled, no exemptions)."""

    name = "PodSecurity"

    def __init__(self, defaults: Policy | None = None) -> None:
        self.defaults = defaults or Policy()
        # namespace name → (its labels as last read, their policy): the cache's objects are replaced, never
        # changed, on a write, so the same labels object means the same policy (it is held, so not reused)
        self._policies: dict[str, tuple[Any, Policy, list[Any]]] = {}
        self._privileged = str(LevelVersion("privileged"))

    def handles(self, attrs: AdmissionAttributes) -> bool:
        """Creates and updates of namespaces, pods and workloads with pod templates."""
        if attrs.operation not in ("CREATE", "UPDATE") or attrs.obj is None:
            return False
        key = (attrs.resource.group, attrs.resource.plural)
        if key == ("", "namespaces"):
            return not attrs.subresource
        if key == ("", "pods"):
            return attrs.subresource not in _IGNORED_POD_SUBRESOURCES
        return key in _TEMPLATE_PATHS and not attrs.subresource

    async def validate(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Check the write against its namespace's policy."""
        assert attrs.obj is not None
        plural = attrs.resource.plural if not attrs.resource.group else ""
        if plural == "namespaces":
            await self._validate_namespace(attrs, reg)
            return
        namespace = await namespace_of(reg, attrs.namespace)
        if namespace is None:
            raise errors.internal_error(f'failed to lookup namespace "{attrs.namespace}"')
        policy, policy_errs = self._policy_of(attrs.namespace, _d(namespace.get("metadata")).get("labels"))
        if plural == "pods":
            if not policy_errs and policy.fully_privileged():
                attrs.add_annotation(LABEL_PREFIX + "enforce-policy", self._privileged)
                return
            old = attrs.old
            if attrs.operation == "UPDATE" and old is not None and not _significant_pod_update(attrs.obj, old):
                return
            self._evaluate(attrs, policy, policy_errs, _d(attrs.obj.get("metadata")), _d(attrs.obj.get("spec")), True)
            return
        if not policy_errs and policy.warn.level == policy.audit.level == "privileged":
            return
        found = pod_spec_of(attrs.resource.group, attrs.resource.plural, attrs.obj)
        if found is not None:
            self._evaluate(attrs, policy, policy_errs, found[0], found[1], False)

    def _policy_of(self, namespace: str, labels: Any) -> tuple[Policy, list[Any]]:
        """`policy_to_evaluate` of a namespace's labels, worked out again only when they are a new object."""
        known = self._policies.get(namespace)
        if known is not None and known[0] is labels:
            return known[1], known[2]
        policy, errs = policy_to_evaluate(labels, self.defaults)
        if len(self._policies) >= _MAX_POLICIES_KEPT:
            self._policies.clear()
        self._policies[namespace] = (labels, policy, errs)
        return policy, errs

    def _evaluate(
        self,
        attrs: AdmissionAttributes,
        policy: Policy,
        policy_errs: list[Any],
        meta: dict[str, Any],
        spec: dict[str, Any],
        enforce: bool,
    ) -> None:
        """EvaluatePod: enforce (refuse), audit (annotation), warn (warning, only when admitted)."""
        if policy_errs:
            why = "; ".join(f"{path}: {msg}" for path, _reason, msg in policy_errs)
            attrs.add_annotation(LABEL_PREFIX + "error", f"Failed to parse policy: {why}")
        cache: dict[LevelVersion, list[CheckResult]] = {}

        def results(lv: LevelVersion) -> list[CheckResult]:
            if lv not in cache:
                cache[lv] = _run(lv, meta, spec)
            return cache[lv]

        refusal = None
        if enforce:
            attrs.add_annotation(LABEL_PREFIX + "enforce-policy", str(policy.enforce))
            if failed := results(policy.enforce):
                name = attrs.name or str(_d(attrs.obj or {}).get("metadata", {}).get("name") or "")
                refusal = errors.forbidden(
                    attrs.resource.plural,
                    name,
                    f'violates PodSecurity "{policy.enforce}": {forbidden_detail(failed)}',
                    attrs.resource.group,
                )
        if failed := results(policy.audit):
            attrs.add_annotation(
                LABEL_PREFIX + "audit-violations",
                f'would violate PodSecurity "{policy.audit}": {forbidden_detail(failed)}',
            )
        if refusal is not None:
            raise refusal
        if failed := results(policy.warn):
            attrs.add_warning(f'would violate PodSecurity "{policy.warn}": {forbidden_detail(failed)}')

    async def _validate_namespace(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Valid labels; on a stricter enforce level, warnings naming the pods that break it."""
        assert attrs.obj is not None
        meta = _d(attrs.obj.get("metadata"))
        policy, errs = policy_to_evaluate(meta.get("labels"), self.defaults)
        old_policy, old_errs = Policy(), []
        if attrs.operation == "UPDATE" and attrs.old is not None:
            old_policy, old_errs = policy_to_evaluate(_d(attrs.old.get("metadata")).get("labels"), self.defaults)
        if errs and (attrs.operation == "CREATE" or not old_errs or errs != old_errs):
            name = attrs.name or str(meta.get("name") or "")
            raise errors.invalid("Namespace", name, [Cause(path, msg, reason) for path, reason, msg in errs])
        if attrs.operation != "UPDATE" or policy.enforce == old_policy.enforce:
            return
        if policy.enforce.level == "privileged":
            return
        if (
            policy.enforce.version == old_policy.enforce.version
            and compare_levels(policy.enforce.level, old_policy.enforce.level) < 1
        ):
            return
        for warning in await self._check_existing_pods(reg, str(meta.get("name") or attrs.name), policy.enforce):
            attrs.add_warning(warning)

    async def _check_existing_pods(self, reg: Registry, namespace: str, enforce: LevelVersion) -> list[str]:
        """EvaluatePodsInNamespace: one warning per distinct violation, naming a pod and how many share it."""
        pods = await list_in_namespace(reg, "pods", namespace)
        counts: dict[str, tuple[str, int]] = {}
        order: list[str] = []
        for pod in _prioritized(pods)[:_MAX_PODS_TO_CHECK]:
            failed = _run(enforce, _d(pod.get("metadata")), _d(pod.get("spec")))
            if not failed:
                continue
            reason = forbidden_reasons(failed)
            name = str(_d(pod.get("metadata")).get("name", ""))
            if reason not in counts:
                order.append(reason)
                counts[reason] = (name, 1)
            else:
                first, n = counts[reason]
                counts[reason] = (min(first, name), n + 1)
        warnings = []
        if len(pods) > _MAX_PODS_TO_CHECK:
            warnings.append(
                f"new PodSecurity enforce level only checked against the first {_MAX_PODS_TO_CHECK} of "
                f"{len(pods)} existing pods"
            )
        if order:
            warnings.append(
                f'existing pods in namespace "{namespace}" violate the new PodSecurity enforce level "{enforce}"'
            )
        decorated = []
        for reason in order:
            first, n = counts[reason]
            others = "" if n == 1 else " (and 1 other pod)" if n == 2 else f" (and {n - 1} other pods)"
            decorated.append(f"{first}{others}: {reason}")
        return warnings + sorted(decorated)


def _prioritized(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """prioritizePods: one pod per controller first, the other replicas after."""
    first: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    seen: set[str] = set()
    for pod in pods:
        owner = next((r for r in _d(pod.get("metadata")).get("ownerReferences") or [] if _d(r).get("controller")), None)
        if owner is None:
            first.append(pod)
        elif owner.get("uid") in seen:
            rest.append(pod)
        else:
            seen.add(str(owner.get("uid")))
            first.append(pod)
    return first + rest
