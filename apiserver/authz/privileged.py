"""PrivilegedGroups: members of the given groups may do anything (upstream puts `system:masters`
ahead of every configured authorization mode)."""

from __future__ import annotations

from apiserver.authz import Attributes, Decision, Verdict
from apiserver.context import UserInfo

__all__ = ["PrivilegedGroups"]


class PrivilegedGroups:
    """Allows members of the privileged groups; no opinion about anyone else."""

    name = "PrivilegedGroups"

    def __init__(self, groups: tuple[str, ...]) -> None:
        self.groups = frozenset(groups)

    def decision_stamp(self, user: UserInfo) -> int:
        """Its decisions never change (apiserver/authz/decisions.py)."""
        return 0

    async def authorize(self, attrs: Attributes) -> Decision:
        """ALLOW for a member of a privileged group, else NO_OPINION."""
        if self.groups.intersection(attrs.user.groups):
            return Decision(Verdict.ALLOW)
        return Decision(Verdict.NO_OPINION)
