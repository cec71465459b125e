"""AlwaysAllow: the authorization mode when none is configured (kube-apiserver's default too)."""

from __future__ import annotations

from apiserver.authz import Attributes, Decision, Verdict

__all__ = ["AlwaysAllow"]


class AlwaysAllow:
    """Allows every request (`--authorization-mode AlwaysAllow`)."""

    name = "AlwaysAllow"

    async def authorize(self, attrs: Attributes) -> Decision:
        """Allow, whatever is asked."""
        return Decision(Verdict.ALLOW)
