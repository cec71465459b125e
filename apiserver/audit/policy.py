"""The audit policy (audit.k8s.io/v1 Policy): which level, if any, each request is recorded at.

Rules are tried in order and the first that matches decides (no match: level None), as upstream's
policy checker (staging/src/k8s.io/apiserver/pkg/audit/policy/checker.go).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from apiserver.authz import Attributes

__all__ = ["LEVELS", "STAGES", "GroupResources", "Policy", "PolicyRule", "RuleResult", "load_policy"]

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")


@dataclass(frozen=True)
class GroupResources:
    """The resources a rule names: one API group, resources (`pods`, `pods/log`, `*/status`, `*`) and names."""

    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()

    def matches(self, attrs: Attributes) -> bool:
        """Whether this names the request's resource (checker.go ruleMatchesResource)."""
        if self.group != attrs.api_group:
            return False
        if not self.resources:
            return True
        if self.resource_names and attrs.name not in self.resource_names:
            return False
        sub = attrs.subresource
        combined = f"{attrs.resource}/{sub}" if sub else attrs.resource
        for res in self.resources:
            if res in (combined, "*"):
                return True
            if sub and res.startswith("*/") and res[2:] == sub:
                return True
            if res.endswith("/*") and res[:-2] == attrs.resource:
                return True
        return False


@dataclass(frozen=True)
class RuleResult:
    """What the policy says about one request."""

    level: str
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool = False

    @property
    def records(self) -> bool:
        """Whether anything is recorded at all."""
        return self.level != "None"

    def at_least(self, level: str) -> bool:
        """Whether the level is `level` or more detailed."""
        return LEVELS.index(self.level) >= LEVELS.index(level)


NOTHING = RuleResult("None")


@dataclass(frozen=True)
class PolicyRule:
    """One rule: a level for the requests matching every criterion it sets."""

    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool | None = None

    def matches(self, attrs: Attributes) -> bool:
        """checker.go ruleMatches."""
        if self.users and attrs.user.name not in self.users:
            return False
        if self.user_groups and not any(g in self.user_groups for g in attrs.user.groups):
            return False
        if self.verbs and attrs.verb not in self.verbs:
            return False
        if self.namespaces or self.resources:
            if not attrs.resource_request:
                return False
            if self.namespaces and attrs.namespace not in self.namespaces:
                return False
            return not self.resources or any(gr.matches(attrs) for gr in self.resources)
        if self.non_resource_urls:
            return not attrs.resource_request and any(_path_matches(attrs.path, s) for s in self.non_resource_urls)
        return True


def _path_matches(path: str, spec: str) -> bool:
    if spec in ("*", path):
        return True
    return spec.endswith("*") and path.startswith(spec.rstrip("*"))


@dataclass(frozen=True)
class Policy:
    """The whole policy: rules in order, stages never recorded, managed fields left out or not."""

    rules: tuple[PolicyRule, ...] = ()
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool = False

    def evaluate(self, attrs: Attributes) -> RuleResult:
        """The level of the first matching rule (None when none matches)."""
        for rule in self.rules:
            if rule.matches(attrs):
                if rule.level == "None":
                    return NOTHING
                omf = self.omit_managed_fields if rule.omit_managed_fields is None else rule.omit_managed_fields
                return RuleResult(rule.level, frozenset(self.omit_stages) | frozenset(rule.omit_stages), omf)
        return NOTHING


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: must be a list of strings")
    return tuple(value)


def _stages(value: Any, where: str) -> tuple[str, ...]:
    stages = _strings(value, where)
    for s in stages:
        if s not in STAGES:
            raise ValueError(f'{where}: Unsupported value: "{s}": supported values: {", ".join(STAGES)}')
    return stages


def _group_resources(value: Any, where: str) -> tuple[GroupResources, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"{where}: must be a list")
    out = []
    for i, gr in enumerate(value):
        if not isinstance(gr, dict):
            raise ValueError(f"{where}[{i}]: must be an object")
        names = _strings(gr.get("resourceNames"), f"{where}[{i}].resourceNames")
        resources = _strings(gr.get("resources"), f"{where}[{i}].resources")
        if names and not resources:
            raise ValueError(f"{where}[{i}].resourceNames: resourceNames require a resource")
        out.append(GroupResources(str(gr.get("group") or ""), resources, names))
    return tuple(out)


def _rule(raw: Any, where: str) -> PolicyRule:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be an object")
    level = raw.get("level")
    if level not in LEVELS:
        raise ValueError(f'{where}.level: Unsupported value: "{level}": supported values: {", ".join(LEVELS)}')
    rule = PolicyRule(
        level=level,
        users=_strings(raw.get("users"), f"{where}.users"),
        user_groups=_strings(raw.get("userGroups"), f"{where}.userGroups"),
        verbs=_strings(raw.get("verbs"), f"{where}.verbs"),
        resources=_group_resources(raw.get("resources"), f"{where}.resources"),
        namespaces=_strings(raw.get("namespaces"), f"{where}.namespaces"),
        non_resource_urls=_strings(raw.get("nonResourceURLs"), f"{where}.nonResourceURLs"),
        omit_stages=_stages(raw.get("omitStages"), f"{where}.omitStages"),
        omit_managed_fields=raw.get("omitManagedFields"),
    )
    if rule.non_resource_urls and (rule.resources or rule.namespaces):
        raise ValueError(f"{where}.nonResourceURLs: rules cannot apply to both regular resources and non-resource URLs")
    for url in rule.non_resource_urls:
        if not url.startswith("/") and url != "*":
            raise ValueError(
                f'{where}.nonResourceURLs: Invalid value: "{url}": non-resource URL rules must begin with "/"'
            )
    return rule


def parse_policy(doc: Any) -> Policy:
    """A Policy from its decoded YAML/JSON; ValueError naming the field when it is not valid."""
    if not isinstance(doc, dict):
        raise ValueError("audit policy: must be an audit.k8s.io/v1 Policy object")
    if doc.get("apiVersion") != "audit.k8s.io/v1" or doc.get("kind") != "Policy":
        raise ValueError(
            f'audit policy: apiVersion "{doc.get("apiVersion")}", kind "{doc.get("kind")}": '
            'want apiVersion "audit.k8s.io/v1", kind "Policy"'
        )
    rules = doc.get("rules") or []
    if not isinstance(rules, list):
        raise ValueError("audit policy: rules: must be a list")
    return Policy(
        rules=tuple(_rule(r, f"rules[{i}]") for i, r in enumerate(rules)),
        omit_stages=_stages(doc.get("omitStages"), "omitStages"),
        omit_managed_fields=bool(doc.get("omitManagedFields", False)),
    )


def load_policy(path: str | Path) -> Policy:
    """Read `--audit-policy-file` (YAML or JSON); ValueError when it cannot be read or is not valid."""
    try:
        text = Path(path).read_text()
        doc = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"audit policy {path}: {e}") from e
    try:
        return parse_policy(doc)
    except ValueError as e:
        raise ValueError(f"audit policy {path}: {e}") from e
