"""RBAC policy rules: matching one request against a rule, and whether one set of rules covers another.

Matching follows k8s.io/kubernetes pkg/apis/rbac/v1/evaluation_helpers.go (`*` for verbs, groups and
resources, `*/subresource`, resourceNames, non-resource URLs with a trailing `*`); covering, its
breakdown into one-verb-one-resource rules, the compaction of missing rules and their compact
string form follow component-helpers/auth/rbac/validation and pkg/registry/rbac/validation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from apimachinery.validation import go_quote
from apiserver.authz import Attributes

__all__ = [
    "Rule",
    "compact_rules",
    "compact_string",
    "covers",
    "go_strings",
    "rule_allows",
    "rules_allow",
]

ALL = "*"


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list | tuple) else ()


@dataclass(frozen=True)
class Rule:
    """One rbac/v1 PolicyRule, with sets for fast matching."""

    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def of(cls, rule: Mapping[str, Any]) -> Rule:
        """From a PolicyRule dict (`verbs`, `apiGroups`, `resources`, `resourceNames`, `nonResourceURLs`)."""
        return cls(
            _strings(rule.get("verbs")),
            _strings(rule.get("apiGroups")),
            _strings(rule.get("resources")),
            _strings(rule.get("resourceNames")),
            _strings(rule.get("nonResourceURLs")),
        )

    def to_api(self) -> dict[str, list[str]]:
        """As a PolicyRule dict, empty lists left out (Go's omitempty; verbs always written)."""
        out: dict[str, list[str]] = {"verbs": list(self.verbs)}
        for key, value in (
            ("apiGroups", self.api_groups),
            ("resources", self.resources),
            ("resourceNames", self.resource_names),
            ("nonResourceURLs", self.non_resource_urls),
        ):
            if value:
                out[key] = list(value)
        return out


def verb_matches(rule: Rule, verb: str) -> bool:
    """VerbMatches."""
    return ALL in rule.verbs or verb in rule.verbs


def api_group_matches(rule: Rule, group: str) -> bool:
    """APIGroupMatches."""
    return ALL in rule.api_groups or group in rule.api_groups


def resource_matches(rule: Rule, combined: str, subresource: str) -> bool:
    """ResourceMatches: `*`, the exact `resource[/subresource]`, or `*/subresource`."""
    for r in rule.resources:
        if r == ALL or r == combined:
            return True
        if subresource and len(r) == len(subresource) + 2 and r.startswith("*/") and r.endswith(subresource):
            return True
    return False


def resource_name_matches(rule: Rule, name: str) -> bool:
    """ResourceNameMatches: no names means every name."""
    return not rule.resource_names or name in rule.resource_names


def non_resource_url_matches(rule: Rule, path: str) -> bool:
    """NonResourceURLMatches: `*`, the exact path, or a prefix ending in `*`."""
    for url in rule.non_resource_urls:
        if url == ALL or url == path:
            return True
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


def rule_allows(attrs: Attributes, rule: Rule) -> bool:
    """RuleAllows: whether this one rule grants the request."""
    if attrs.resource_request:
        combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        return (
            verb_matches(rule, attrs.verb)
            and api_group_matches(rule, attrs.api_group)
            and resource_matches(rule, combined, attrs.subresource)
            and resource_name_matches(rule, attrs.name)
        )
    return verb_matches(rule, attrs.verb) and non_resource_url_matches(rule, attrs.path)


def rules_allow(attrs: Attributes, rules: Iterable[Rule]) -> bool:
    """RulesAllow: whether any of the rules grants the request."""
    return any(rule_allows(attrs, r) for r in rules)


# --- covering (escalation checks, reconciliation) -------------------------------------------------


def breakdown(rule: Rule) -> list[Rule]:
    """BreakdownRule: equivalent rules with one group, one resource, one verb and at most one name each."""
    out: list[Rule] = []
    for group in rule.api_groups:
        for resource in rule.resources:
            for verb in rule.verbs:
                if rule.resource_names:
                    out += [Rule((verb,), (group,), (resource,), (name,)) for name in rule.resource_names]
                else:
                    out.append(Rule((verb,), (group,), (resource,)))
    for url in rule.non_resource_urls:
        out += [Rule((verb,), non_resource_urls=(url,)) for verb in rule.verbs]
    return out


def _has_all(owned: Sequence[str], wanted: Sequence[str]) -> bool:
    return set(wanted) <= set(owned)


def _resources_cover(owned: Sequence[str], wanted: Sequence[str]) -> bool:
    if ALL in owned or _has_all(owned, wanted):
        return True
    for path in wanted:
        if path in owned:
            continue
        if "/" not in path:
            return False
        if "*/" + path.split("/", 1)[1] not in owned:
            return False
    return True


def _url_covers(owner: str, sub: str) -> bool:
    return owner == sub or (owner.endswith("*") and sub.startswith(owner.rstrip("*")))


def _rule_covers(owner: Rule, sub: Rule) -> bool:
    """ruleCovers: an owner rule covers a broken-down rule."""
    if not (ALL in owner.verbs or _has_all(owner.verbs, sub.verbs)):
        return False
    if not (ALL in owner.api_groups or _has_all(owner.api_groups, sub.api_groups)):
        return False
    if not _resources_cover(owner.resources, sub.resources):
        return False
    if not all(any(_url_covers(o, s) for o in owner.non_resource_urls) for s in sub.non_resource_urls):
        return False
    if not sub.resource_names:
        return not owner.resource_names
    return not owner.resource_names or _has_all(owner.resource_names, sub.resource_names)


def covers(owner_rules: Sequence[Rule], servant_rules: Iterable[Rule]) -> tuple[bool, list[Rule]]:
    """Covers: whether the owner's rules grant everything the servant's do, and the broken-down rules they miss."""
    missing = [
        sub for rule in servant_rules for sub in breakdown(rule) if not any(_rule_covers(o, sub) for o in owner_rules)
    ]
    return not missing, missing


def compact_rules(rules: Iterable[Rule]) -> list[Rule]:
    """CompactRules: one-group one-resource rules (at most one name) that differ only by verb are merged."""
    compacted: list[Rule] = []
    simple: dict[tuple[str, str, str | None], list[str]] = {}
    for rule in rules:
        if (
            len(rule.resource_names) <= 1
            and not rule.non_resource_urls
            and len(rule.api_groups) == 1
            and len(rule.resources) == 1
        ):
            key = (rule.api_groups[0], rule.resources[0], rule.resource_names[0] if rule.resource_names else None)
            verbs = simple.setdefault(key, [])
            verbs += [v for v in rule.verbs if v not in verbs]
        else:
            compacted.append(rule)
    for (group, resource, name), verbs in simple.items():
        compacted.append(Rule(tuple(verbs), (group,), (resource,), (name,) if name is not None else ()))
    return compacted


def go_strings(values: Sequence[str]) -> str:
    """A []string as Go's %q prints it: `["a" "b"]`."""
    return "[" + " ".join(go_quote(v) for v in values) + "]"


def compact_string(rule: Rule) -> str:
    """CompactString: `{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}`."""
    parts = [
        f"{label}:{go_strings(values)}"
        for label, values in (
            ("APIGroups", rule.api_groups),
            ("Resources", rule.resources),
            ("NonResourceURLs", rule.non_resource_urls),
            ("ResourceNames", rule.resource_names),
            ("Verbs", rule.verbs),
        )
        if values
    ]
    return "{" + ", ".join(parts) + "}"
