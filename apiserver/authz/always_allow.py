"""AlwaysAllow: the authorization mode when none is configured (kube-apiserver's default too)."""

from __future__ import annotations

from apiserver.authz import Attributes, Decision, Verdict
from apiserver.context import UserInfo

__all__ = ["AlwaysAllow"]


class AlwaysAllow:
    """Allows every request (`--authorization-mode AlwaysAllow`)."""

    name = "AlwaysAllow"

    def decision_stamp(self, user: UserInfo) -> int:
        """Its decisions never change (apiserver/authz/decisions.py)."""
        return 0

    async def authorize(self, attrs: Attributes) -> Decision:
        """Allow, whatever is asked."""
        return Decision(Verdict.ALLOW)
