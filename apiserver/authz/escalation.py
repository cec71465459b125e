"""RBAC escalation prevention: nobody grants permissions they do not hold.

As pkg/registry/rbac's policy-based storages (role, clusterrole, rolebinding, clusterrolebinding
policybased/storage.go) and escalation_check.go:
- a Role or ClusterRole may be written by someone who holds every rule in it (in the role's
  namespace, or cluster-wide for a ClusterRole), or who may `escalate` roles/clusterroles;
  an aggregationRule needs full authority (`*` on everything);
- a RoleBinding or ClusterRoleBinding may be written by someone who may `bind` the referenced role,
  or who holds every rule of that role in the binding's namespace;
- members of system:masters (and requests without a user: the insecure port) always may;
- an update that only changes what garbage collection changes (owner references, finalizers) always may.

It runs as a validating admission step (`EscalationCheck`), so the requesting user is at hand.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from apimachinery import errors
from apimachinery.validation import go_quote
from apiserver.admission import AdmissionAttributes
from apiserver.authz import Attributes, Authorizer, Verdict
from apiserver.authz.rbac import RBACAuthorizer, aggregate_errors
from apiserver.authz.rules import Rule, compact_rules, compact_string, covers, go_strings
from apiserver.authz.union import authorize
from apiserver.context import UserInfo

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["EscalationCheck", "confirm_no_escalation"]

GROUP = "rbac.authorization.k8s.io"
MASTERS = "system:masters"
FULL_AUTHORITY = (Rule(("*",), ("*",), ("*",)), Rule(("*",), non_resource_urls=("*",)))
_ROLES = ("roles", "clusterroles")
_BINDINGS = ("rolebindings", "clusterrolebindings")
# what garbage collection (and bookkeeping) changes; an update touching only these needs no check
_GC_META = ("ownerReferences", "finalizers", "selfLink", "managedFields", "resourceVersion", "generation")


def confirm_no_escalation(rbac: RBACAuthorizer, user: UserInfo, namespace: str, rules: Sequence[Rule]) -> str | None:
    """ConfirmNoEscalation: None when the user holds every rule, else upstream's message."""
    held = rbac.rules_for(user, namespace)
    ok, missing = covers([s.rule for s in held.rules], rules)
    if ok:
        return None
    described = sorted({compact_string(r) for r in compact_rules(missing)})
    msg = (
        f"user {go_quote(user.name)} (groups={go_strings(user.groups)}) is attempting to grant RBAC permissions "
        "not currently held:\n" + "\n".join(described)
    )
    if held.errors:
        msg += f"; resolution errors: [{aggregate_errors(held.errors)}]"
    return msg


def _only_gc_fields(new: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """IsOnlyMutatingGCFields."""
    if old is None:
        return False
    a, b = copy.deepcopy(new), copy.deepcopy(old)
    for obj in (a, b):
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        for key in _GC_META:
            meta.pop(key, None)
    return a == b


def _rules(obj: dict[str, Any]) -> list[Rule]:
    return [Rule.of(r) for r in obj.get("rules") or [] if isinstance(r, dict)]


class EscalationCheck:
    """The policy-based storages' checks, as a validating step on writes of RBAC objects."""

    name = "RBACEscalation"

    def __init__(self, rbac: RBACAuthorizer, authorizers: Sequence[Authorizer]) -> None:
        self.rbac = rbac
        self.authorizers = authorizers

    def handles(self, attrs: AdmissionAttributes) -> bool:
        """Creates and updates of roles and bindings (not their deletes, not other kinds)."""
        return (
            attrs.resource.group == GROUP
            and attrs.resource.plural in _ROLES + _BINDINGS
            and attrs.operation in ("CREATE", "UPDATE")
            and not attrs.subresource
            and attrs.obj is not None
        )

    async def validate(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Refuse (403) a write that would grant what the user does not hold."""
        user = attrs.user
        if user is None or MASTERS in user.groups:
            return  # EscalationAllowed
        obj = attrs.obj or {}
        if attrs.operation == "UPDATE" and _only_gc_fields(obj, attrs.old):
            return
        name = str((obj.get("metadata") or {}).get("name") or attrs.name)
        res = attrs.resource
        namespace = attrs.namespace if res.namespaced else ""
        if res.plural in _ROLES:
            await self._check_role(user, res.plural, namespace, name, obj, attrs.old)
        else:
            await self._check_binding(user, res.plural, namespace, name, obj)

    async def _allowed(self, attrs: Attributes) -> bool:
        return (await authorize(self.authorizers, attrs)).verdict is Verdict.ALLOW

    async def _check_role(
        self, user: UserInfo, plural: str, namespace: str, name: str, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        # RoleEscalationAuthorized: the `escalate` verb on this role
        escalate = Attributes(user, "escalate", True, namespace, GROUP, "*", plural, "", name)
        if await self._allowed(escalate):
            return
        problem = confirm_no_escalation(self.rbac, user, namespace, _rules(obj))
        if problem:
            raise errors.forbidden(plural, name, problem, GROUP)
        if plural == "clusterroles" and (obj.get("aggregationRule") or (old or {}).get("aggregationRule")):
            if confirm_no_escalation(self.rbac, user, namespace, FULL_AUTHORITY):
                raise errors.forbidden(
                    plural, name, "must have cluster-admin privileges to use the aggregationRule", GROUP
                )

    async def _check_binding(self, user: UserInfo, plural: str, namespace: str, name: str, obj: dict[str, Any]) -> None:
        ref = obj.get("roleRef") if isinstance(obj.get("roleRef"), dict) else {}
        kind, ref_name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        target = {"ClusterRole": "clusterroles", "Role": "roles"}.get(kind)
        if target is not None:
            # BindingAuthorized: the `bind` verb on the referenced role, in the binding's namespace
            bind = Attributes(user, "bind", True, namespace, str(ref.get("apiGroup") or ""), "", target, "", ref_name)
            if await self._allowed(bind):
                return
        self.rbac.index.catch_up()
        granted = self.rbac.index.role_rules(kind, ref_name, namespace)
        if isinstance(granted, str):
            if target is None:
                raise errors.bad_request(granted)
            raise errors.not_found(kind.lower(), ref_name, GROUP)
        problem = confirm_no_escalation(self.rbac, user, namespace, granted)
        if problem:
            raise errors.forbidden(plural, name, problem, GROUP)
