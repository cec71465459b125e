"""The RBAC authorizer (`--authorization-mode RBAC`), served from the watch cache.

As upstream's plugin/pkg/auth/authorizer/rbac with pkg/registry/rbac/validation's DefaultRuleResolver:
a user's rules in a namespace are those of every ClusterRoleBinding naming them (by User, Group or
ServiceAccount) plus every RoleBinding of that namespace naming them; a binding grants the rules of
the Role (of its namespace) or ClusterRole it references. A request is allowed when one rule allows
it; otherwise RBAC has no opinion (the reason then lists the roles it could not find).

Speed: `PolicyIndex` follows the four collections through `CacheFeed`s and indexes bindings by
subject (user name, group, ServiceAccount user name), so finding a user's bindings never scans them
all; the resolved rules of a (user, groups, namespace) are remembered until any RBAC object changes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from apimachinery.validation import go_quote
from apiserver.authz import Attributes, Decision, Verdict
from apiserver.authz.cachefeed import CacheFeed
from apiserver.authz.rules import Rule, rule_allows
from apiserver.authz.union import RulesAnswer
from apiserver.context import UserInfo
from apiserver.watch_cache import WatchCache

__all__ = ["PolicyIndex", "RBACAuthorizer", "ResolvedRules", "SourcedRule", "aggregate_errors", "sa_username"]

log = logging.getLogger("apiserver.authz.rbac")

SA_PREFIX = "system:serviceaccount:"
_CACHE_LIMIT = 4096
_RESOURCES = ("roles", "clusterroles", "rolebindings", "clusterrolebindings")
_NO_OPINION = Decision(Verdict.NO_OPINION)


def sa_username(namespace: str, name: str) -> str:
    """serviceaccount.MakeUsername: `system:serviceaccount:<ns>:<name>`."""
    return f"{SA_PREFIX}{namespace}:{name}"


def aggregate_errors(messages: Sequence[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one as is, several (deduplicated) in brackets."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def _rules(obj: dict[str, Any]) -> tuple[Rule, ...]:
    return tuple(Rule.of(r) for r in obj.get("rules") or [] if isinstance(r, dict))


@dataclass(frozen=True)
class _Subject:
    kind: str
    name: str
    namespace: str = ""

    def username(self, binding_namespace: str) -> str | None:
        """The user name this subject names (a ServiceAccount's, or a User's); None for groups."""
        if self.kind == "User":
            return self.name
        if self.kind == "ServiceAccount":
            ns = self.namespace or binding_namespace
            return sa_username(ns, self.name) if ns else None
        return None

    def describe(self, binding_namespace: str) -> str:
        """describeSubject: `User "alice"`, `ServiceAccount "name/namespace"`."""
        if self.kind == "ServiceAccount":
            return f"{self.kind} {go_quote(self.name + '/' + (self.namespace or binding_namespace))}"
        return f"{self.kind} {go_quote(self.name)}"


@dataclass(frozen=True)
class _Binding:
    """A RoleBinding (namespace set) or a ClusterRoleBinding (namespace empty)."""

    name: str
    namespace: str
    ref_kind: str
    ref_name: str
    subjects: tuple[_Subject, ...]

    @classmethod
    def of(cls, obj: dict[str, Any]) -> _Binding:
        m = obj.get("metadata") or {}
        ref = obj.get("roleRef") or {}
        subjects = tuple(
            _Subject(str(s.get("kind") or ""), str(s.get("name") or ""), str(s.get("namespace") or ""))
            for s in obj.get("subjects") or []
            if isinstance(s, dict)
        )
        return cls(
            str(m.get("name") or ""),
            str(m.get("namespace") or ""),
            str(ref.get("kind") or ""),
            str(ref.get("name") or ""),
            subjects,
        )

    def first_subject(self, user: UserInfo) -> _Subject | None:
        """appliesTo: the first subject naming this user (by name, group or ServiceAccount)."""
        for s in self.subjects:
            if s.kind == "Group":
                if s.name in user.groups:
                    return s
            elif s.username(self.namespace) == user.name:
                return s
        return None

    def describe(self, subject: _Subject) -> str:
        """The source of a rule as upstream's binding describers print it."""
        if self.namespace:
            kind, name = "RoleBinding", f"{self.name}/{self.namespace}"
        else:
            kind, name = "ClusterRoleBinding", self.name
        return (
            f"{kind} {go_quote(name)} of {self.ref_kind} {go_quote(self.ref_name)} to "
            f"{subject.describe(self.namespace)}"
        )


@dataclass(frozen=True)
class SourcedRule:
    """A rule and the binding that grants it (for `RBAC: allowed by …`)."""

    source: str
    rule: Rule


@dataclass(frozen=True)
class ResolvedRules:
    """Everything one user holds in one namespace, and the roles that could not be found."""

    rules: tuple[SourcedRule, ...]
    errors: tuple[str, ...]
    _by_verb: dict[str, tuple[SourcedRule, ...]] = field(default_factory=dict, compare=False, repr=False)

    def for_verb(self, verb: str) -> tuple[SourcedRule, ...]:
        """The rules naming this verb (or `*`), in visiting order; worked out once per verb."""
        found = self._by_verb.get(verb)
        if found is None:
            found = self._by_verb[verb] = tuple(s for s in self.rules if verb in s.rule.verbs or "*" in s.rule.verbs)
        return found


class PolicyIndex:
    """Roles, ClusterRoles and their bindings from the watch cache, bindings indexed by subject."""

    def __init__(self, cache: WatchCache | None = None) -> None:
        self._roles: dict[tuple[str, str], tuple[Rule, ...]] = {}
        self._cluster_roles: dict[str, tuple[Rule, ...]] = {}
        self._bindings: dict[tuple[str, str], _Binding] = {}  # (namespace or "", name)
        # subject key → binding keys; keys are ("u", namespace, user) or ("g", namespace, group)
        self._by_subject: dict[tuple[str, str, str], set[tuple[str, str]]] = defaultdict(set)
        self._resolved: dict[tuple[str, tuple[str, ...], str], ResolvedRules] = {}
        self.generation = 0
        self._feeds = (
            [
                CacheFeed(cache, plural, partial(self._event, plural), partial(self._reset, plural))
                for plural in _RESOURCES
            ]
            if cache is not None
            else []
        )

    # --- following the cache ----------------------------------------------------------------
    def catch_up(self) -> None:
        """Fold in every change the watch cache has seen (cheap when nothing changed)."""
        changed = False
        for feed in self._feeds:
            changed |= feed.catch_up()
        if changed:
            self._changed()

    def apply(self, plural: str, event: str, obj: dict[str, Any]) -> None:
        """Fold in one change (ADDED, MODIFIED or DELETED) of a roles/clusterroles/… object."""
        self._event(plural, event, obj)
        self._changed()

    def _changed(self) -> None:
        self.generation += 1
        self._resolved.clear()

    def _event(self, plural: str, event: str, obj: dict[str, Any]) -> None:
        if plural in ("roles", "clusterroles"):
            self._role_event(event, obj)
        else:
            self._binding_event(event, obj)

    def _reset(self, plural: str) -> None:
        if plural in ("roles", "clusterroles"):
            self._reset_roles(namespaced=plural == "roles")
        else:
            self._reset_bindings(namespaced=plural == "rolebindings")

    def _reset_roles(self, namespaced: bool) -> None:
        if namespaced:
            self._roles.clear()
        else:
            self._cluster_roles.clear()

    def _role_event(self, kind: str, obj: dict[str, Any]) -> None:
        m = obj.get("metadata") or {}
        name, ns = str(m.get("name") or ""), m.get("namespace")
        if ns:
            if kind == "DELETED":
                self._roles.pop((ns, name), None)
            else:
                self._roles[(ns, name)] = _rules(obj)
        elif kind == "DELETED":
            self._cluster_roles.pop(name, None)
        else:
            self._cluster_roles[name] = _rules(obj)

    def _reset_bindings(self, namespaced: bool) -> None:
        for key in [k for k in self._bindings if bool(k[0]) == namespaced]:
            self._unindex(key)

    def _binding_event(self, kind: str, obj: dict[str, Any]) -> None:
        m = obj.get("metadata") or {}
        key = (str(m.get("namespace") or ""), str(m.get("name") or ""))
        self._unindex(key)
        if kind != "DELETED":
            binding = _Binding.of(obj)
            self._bindings[key] = binding
            for subject_key in self._subject_keys(binding):
                self._by_subject[subject_key].add(key)

    def _unindex(self, key: tuple[str, str]) -> None:
        old = self._bindings.pop(key, None)
        if old is None:
            return
        for subject_key in self._subject_keys(old):
            keys = self._by_subject.get(subject_key)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_subject[subject_key]

    @staticmethod
    def _subject_keys(binding: _Binding) -> Iterable[tuple[str, str, str]]:
        for s in binding.subjects:
            if s.kind == "Group":
                yield ("g", binding.namespace, s.name)
            elif (user := s.username(binding.namespace)) is not None:
                yield ("u", binding.namespace, user)

    # --- resolving ---------------------------------------------------------------------------
    def role_rules(self, ref_kind: str, ref_name: str, namespace: str) -> tuple[Rule, ...] | str:
        """GetRoleReferenceRules: the referenced role's rules, or the error text when it is missing."""
        if ref_kind == "ClusterRole":
            rules = self._cluster_roles.get(ref_name)
            return (
                rules if rules is not None else f"clusterrole.rbac.authorization.k8s.io {go_quote(ref_name)} not found"
            )
        if ref_kind == "Role":
            rules = self._roles.get((namespace, ref_name))
            return rules if rules is not None else f"role.rbac.authorization.k8s.io {go_quote(ref_name)} not found"
        return f"unsupported role reference kind: {go_quote(ref_kind)}"

    def _bindings_for(self, user: UserInfo, namespace: str) -> list[_Binding]:
        keys: set[tuple[str, str]] = set()
        for ns in ("", namespace) if namespace else ("",):
            keys |= self._by_subject.get(("u", ns, user.name), set())
            for group in user.groups:
                keys |= self._by_subject.get(("g", ns, group), set())
        # cluster-wide bindings first, then the namespace's, each by name: upstream's visiting order
        return [self._bindings[k] for k in sorted(keys)]

    def resolve(self, user: UserInfo, namespace: str) -> ResolvedRules:
        """Every rule `user` holds in `namespace` ("" for cluster-wide bindings only), remembered until a change."""
        key = (user.name, user.groups, namespace)
        found = self._resolved.get(key)
        if found is not None:
            return found
        rules: list[SourcedRule] = []
        errors: list[str] = []
        for binding in self._bindings_for(user, namespace):
            subject = binding.first_subject(user)
            if subject is None:
                continue
            granted = self.role_rules(binding.ref_kind, binding.ref_name, binding.namespace)
            if isinstance(granted, str):
                errors.append(granted)
                continue
            source = binding.describe(subject)
            rules += [SourcedRule(source, r) for r in granted]
        found = ResolvedRules(tuple(rules), tuple(errors))
        if len(self._resolved) >= _CACHE_LIMIT:
            self._resolved.clear()
        self._resolved[key] = found
        return found

    def close(self) -> None:
        """Stop following the cache."""
        for feed in self._feeds:
            feed.close()


class RBACAuthorizer:
    """`--authorization-mode RBAC`: allow what a bound role allows, else no opinion."""

    name = "RBAC"

    def __init__(self, index: PolicyIndex) -> None:
        self.index = index

    def rules_for(self, user: UserInfo, namespace: str) -> ResolvedRules:
        """The user's rules in a namespace, from the freshest cache state (SelfSubjectRulesReview, escalation)."""
        self.index.catch_up()
        return self.index.resolve(user, namespace)

    def rules_review(self, user: UserInfo, namespace: str) -> RulesAnswer:
        """RulesFor: every rule the user holds in the namespace, with the roles that could not be found."""
        resolved = self.rules_for(user, namespace)
        errors = [aggregate_errors(resolved.errors)] if resolved.errors else []
        return RulesAnswer([s.rule for s in resolved.rules], False, errors)

    def decision_stamp(self, user: UserInfo) -> int:
        """The policy's generation, caught up with the watch cache: it moves with every change of a role or binding."""
        self.index.catch_up()
        return self.index.generation

    async def authorize(self, attrs: Attributes) -> Decision:
        """Allowed by the first rule that matches; otherwise no opinion, with missing roles as the reason."""
        resolved = self.rules_for(attrs.user, attrs.namespace)
        for sourced in resolved.for_verb(attrs.verb):
            if rule_allows(attrs, sourced.rule):
                return Decision(Verdict.ALLOW, f"RBAC: allowed by {sourced.source}")
        if not resolved.errors:
            return _NO_OPINION
        return Decision(Verdict.NO_OPINION, f"RBAC: {aggregate_errors(resolved.errors)}")
