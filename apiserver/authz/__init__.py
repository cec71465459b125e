"""Authorization: may this user do this. Authorizers are asked in order (Node, then RBAC, as
kube-apiserver's `--authorization-mode=Node,RBAC`); the first ALLOW or DENY decides, and no
opinion from anyone is a 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from apiserver.context import UserInfo

__all__ = ["Attributes", "Authorizer", "Decision", "Verdict"]


class Verdict(Enum):
    """An authorizer's answer."""

    ALLOW = "allow"
    DENY = "deny"
    NO_OPINION = "no-opinion"


@dataclass(frozen=True)
class Decision:
    """A verdict with the reason upstream puts in messages and audit annotations."""

    verdict: Verdict
    reason: str = ""


@dataclass(frozen=True)
class Attributes:
    """What is being asked, as upstream's `authorizer.Attributes`."""

    user: UserInfo
    verb: str
    resource_request: bool
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""  # for non-resource requests


class Authorizer(Protocol):
    """One authorization mode."""

    async def authorize(self, attrs: Attributes) -> Decision:
        """Decide (or have no opinion on) one request."""
        ...
