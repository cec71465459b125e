"""rbac.authorization.k8s.io/v1 strategies: Role, ClusterRole, RoleBinding, ClusterRoleBinding.

Validation follows pkg/apis/rbac/validation (names are path segments, rules need verbs, resource
rules need groups and resources, bindings reference a Role or ClusterRole that cannot change);
defaults follow pkg/apis/rbac/v1/defaults.go (roleRef and User/Group subjects get the RBAC group).
Escalation prevention needs the requesting user and lives in apiserver/authz/escalation.py.
"""

from __future__ import annotations

from typing import Any

from apimachinery import validation
from apimachinery.errors import Cause
from apimachinery.selectors import SelectorError, selector_from_label_selector
from apimachinery.validation import FieldErrorTuple
from apiserver.strategy import Strategy

__all__ = [
    "GROUP",
    "ClusterRoleBindingStrategy",
    "ClusterRoleStrategy",
    "RoleBindingStrategy",
    "RoleStrategy",
    "validate_policy_rule",
]

GROUP = "rbac.authorization.k8s.io"
_SUBJECT_KINDS = ("ServiceAccount", "User", "Group")
_NEED_SELECTOR = "at least one clusterRoleSelector required if aggregationRule is non-nil"


def _causes(found: list[FieldErrorTuple]) -> list[Cause]:
    return [Cause(path, msg, reason) for path, reason, msg in found]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def validate_policy_rule(rule: dict[str, Any], namespaced: bool, path: str) -> list[FieldErrorTuple]:
    """ValidatePolicyRule: verbs always; either non-resource URLs (cluster roles only) or groups and resources."""
    errs: list[FieldErrorTuple] = []
    if not _list(rule.get("verbs")):
        errs.append(validation.required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = _list(rule.get("nonResourceURLs"))
    if urls:
        field = f"{path}.nonResourceURLs"
        if namespaced:
            errs.append(validation.invalid(field, urls, "namespaced rules cannot apply to non-resource URLs"))
        if _list(rule.get("apiGroups")) or _list(rule.get("resources")) or _list(rule.get("resourceNames")):
            errs.append(
                validation.invalid(field, urls, "rules cannot apply to both regular resources and non-resource URLs")
            )
        return errs
    if not _list(rule.get("apiGroups")):
        errs.append(validation.required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not _list(rule.get("resources")):
        errs.append(validation.required(f"{path}.resources", "resource rules must supply at least one resource"))
    return errs


def _role_ref_go(ref: dict[str, Any]) -> str:
    """A RoleRef as Go's %#v prints it in field errors."""
    parts = ", ".join(f"{go}:{validation.go_quote(str(ref.get(k) or ''))}" for k, go in _REF_KEYS.items())
    return f"rbac.RoleRef{{{parts}}}"


_REF_KEYS = {"apiGroup": "APIGroup", "kind": "Kind", "name": "Name"}


class _RoleStrategy(Strategy):
    """Roles and ClusterRoles: rules checked one by one."""

    name_validator = staticmethod(validation.is_path_segment_name)

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        errs: list[FieldErrorTuple] = []
        for i, rule in enumerate(_list(obj.get("rules"))):
            errs += validate_policy_rule(rule, self.resource.namespaced, f"rules[{i}]")
        return _causes(errs)


class RoleStrategy(_RoleStrategy):
    """Roles: namespaced rules (no non-resource URLs)."""


class ClusterRoleStrategy(_RoleStrategy):
    """ClusterRoles: rules, and an aggregationRule whose selectors must parse."""

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        causes = super().validate_semantics(obj)
        rule = obj.get("aggregationRule")
        if not isinstance(rule, dict):
            return causes
        path = "aggregationRule.clusterRoleSelectors"
        selectors = _list(rule.get("clusterRoleSelectors"))
        errs: list[FieldErrorTuple] = []
        if not selectors:
            errs.append(validation.required(path, _NEED_SELECTOR))
        for i, selector in enumerate(selectors):
            errs += validation.validate_labels(selector.get("matchLabels"), f"{path}[{i}].matchLabels")
            try:
                selector_from_label_selector(selector)
            except SelectorError as e:
                errs.append((f"{path}[{i}]", "FieldValueInvalid", f"Invalid value: {e}: invalid label selector."))
        return causes + _causes(errs)


class _BindingStrategy(Strategy):
    """RoleBindings and ClusterRoleBindings: a fixed roleRef and well-formed subjects."""

    name_validator = staticmethod(validation.is_path_segment_name)
    ref_kinds: tuple[str, ...] = ("Role", "ClusterRole")

    def default(self, obj: dict[str, Any]) -> None:
        """SetDefaults_(Cluster)RoleBinding and SetDefaults_Subject."""
        ref = obj.get("roleRef")
        if isinstance(ref, dict) and not ref.get("apiGroup"):
            ref["apiGroup"] = GROUP
        for subject in _list(obj.get("subjects")):
            if isinstance(subject, dict) and not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
                subject["apiGroup"] = GROUP

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        ref = obj.get("roleRef") if isinstance(obj.get("roleRef"), dict) else {}
        errs: list[FieldErrorTuple] = []
        if ref.get("apiGroup") != GROUP:
            errs.append(validation.not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [GROUP]))
        if ref.get("kind") not in self.ref_kinds:
            errs.append(validation.not_supported("roleRef.kind", ref.get("kind") or "", list(self.ref_kinds)))
        name = ref.get("name") or ""
        if not name:
            errs.append(validation.required("roleRef.name"))
        else:
            errs += [validation.invalid("roleRef.name", name, msg) for msg in validation.is_path_segment_name(name)]
        for i, subject in enumerate(_list(obj.get("subjects"))):
            errs += self._subject_errors(subject, f"subjects[{i}]")
        return _causes(errs)

    def _subject_errors(self, subject: dict[str, Any], path: str) -> list[FieldErrorTuple]:
        """validateRoleBindingSubject."""
        errs: list[FieldErrorTuple] = []
        name, kind, group = subject.get("name") or "", subject.get("kind") or "", subject.get("apiGroup") or ""
        if not name:
            errs.append(validation.required(f"{path}.name"))
        if kind == "ServiceAccount":
            if name:
                errs += [validation.invalid(f"{path}.name", name, m) for m in validation.is_dns1123_subdomain(name)]
            if group:
                errs.append(validation.not_supported(f"{path}.apiGroup", group, [""]))
            if not self.resource.namespaced and not subject.get("namespace"):
                errs.append(validation.required(f"{path}.namespace"))
        elif kind in ("User", "Group"):
            if not name:
                errs.append(validation.invalid(f"{path}.name", name, f"{kind.lower()} name cannot be empty"))
            if group != GROUP:
                errs.append(validation.not_supported(f"{path}.apiGroup", group, [GROUP]))
        else:
            errs.append(validation.not_supported(f"{path}.kind", kind, list(_SUBJECT_KINDS)))
        return errs

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        a, b = new.get("roleRef") or {}, old.get("roleRef") or {}
        if isinstance(a, dict) and isinstance(b, dict) and any(a.get(k) != b.get(k) for k in _REF_KEYS):
            return [Cause("roleRef", f"Invalid value: {_role_ref_go(a)}: cannot change roleRef")]
        return []


class RoleBindingStrategy(_BindingStrategy):
    """RoleBindings: a Role of the namespace or a ClusterRole, granted in the namespace."""


class ClusterRoleBindingStrategy(_BindingStrategy):
    """ClusterRoleBindings: ClusterRoles only; ServiceAccount subjects need a namespace."""

    ref_kinds = ("ClusterRole",)
