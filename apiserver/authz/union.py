"""Asking several authorizers as one (k8s.io/apiserver's union authorizer and union rule resolver).

`authorize` asks each in order: the first ALLOW or DENY decides; when none has an opinion, the
reasons they gave are joined with newlines. `rules_for` gathers what each can enumerate of a user's
permissions in a namespace (SelfSubjectRulesReview): authorizers that cannot enumerate make the
answer incomplete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from apiserver.authz import Attributes, Authorizer, Decision, Verdict
from apiserver.authz.rules import Rule
from apiserver.context import UserInfo

__all__ = ["ALL_RULE", "RulesAnswer", "authorize", "rules_for"]

ALL_RULE = Rule(("*",), ("*",), ("*",), (), ("*",))


@dataclass
class RulesAnswer:
    """What a rule resolver can tell about a user in a namespace."""

    rules: list[Rule] = field(default_factory=list)
    incomplete: bool = False
    errors: list[str] = field(default_factory=list)


async def authorize(authorizers: Sequence[Authorizer], attrs: Attributes) -> Decision:
    """The union of the authorizers' decisions."""
    reasons: list[str] = []
    for a in authorizers:
        decision = await a.authorize(attrs)
        if decision.verdict is not Verdict.NO_OPINION:
            return decision
        if decision.reason:
            reasons.append(decision.reason)
    return Decision(Verdict.NO_OPINION, "\n".join(reasons))


def rules_for(authorizers: Sequence[Authorizer], user: UserInfo, namespace: str) -> RulesAnswer:
    """The union of what each authorizer can enumerate (those that cannot contribute nothing)."""
    answer = RulesAnswer()
    for a in authorizers:
        resolver = getattr(a, "rules_review", None)
        if resolver is not None:
            part: RulesAnswer = resolver(user, namespace)
        elif getattr(a, "name", "") == "AlwaysAllow":
            part = RulesAnswer([ALL_RULE])
        else:
            continue
        answer.rules += part.rules
        answer.incomplete |= part.incomplete
        answer.errors += part.errors
    return answer
