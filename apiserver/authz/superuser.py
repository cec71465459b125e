"""The privileged-groups authorizer kube-apiserver puts before every configured mode: members of
`system:masters` may do anything (upstream's authorizerfactory.NewPrivilegedGroups)."""

from __future__ import annotations

from apiserver.authz import Attributes, Decision, Verdict

__all__ = ["MASTERS", "PrivilegedGroups"]

MASTERS = "system:masters"


class PrivilegedGroups:
    """Allow every request of a member of one of the groups; no opinion otherwise."""

    name = "PrivilegedGroups"

    def __init__(self, *groups: str) -> None:
        self.groups = frozenset(groups or (MASTERS,))

    async def authorize(self, attrs: Attributes) -> Decision:
        """Allow members of the privileged groups."""
        if attrs.user is not None and self.groups.intersection(attrs.user.groups):
            return Decision(Verdict.ALLOW)
        return Decision(Verdict.NO_OPINION)
