"""The clusterrole-aggregation controller (upstream pkg/controller/clusterroleaggregation): a
ClusterRole with an `aggregationRule` holds the union of the rules of every ClusterRole its
selectors match, kept current as those roles come, change and go.

Any ClusterRole event re-queues every aggregated ClusterRole (there are few); a sync gathers the
matching roles' rules in name order, skipping duplicates, and server-side applies them under the
field manager `clusterrole-aggregation-controller` when they differ from what the role holds.
"""

from __future__ import annotations

from typing import Any

from apimachinery.selectors import SelectorError, selector_from_label_selector
from client.request import Obj, PatchType
from controller_manager.base import Controller
from controller_manager.controllers import register

__all__ = ["ClusterRoleAggregationController", "aggregated_rules"]

FIELD_MANAGER = "clusterrole-aggregation-controller"


def aggregated_rules(role: Obj, roles: list[Obj]) -> list[dict[str, Any]]:
    """The rules an aggregated ClusterRole should hold: each selector's matches by name, no duplicates."""
    rules: list[dict[str, Any]] = []
    name = (role.get("metadata") or {}).get("name")
    for selector in (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []:
        match = selector_from_label_selector(selector)
        for other in sorted(roles, key=lambda r: (r.get("metadata") or {}).get("name", "")):
            meta = other.get("metadata") or {}
            if meta.get("name") == name or not match.matches(meta.get("labels") or {}):
                continue
            for rule in other.get("rules") or []:
                if rule not in rules:
                    rules.append(rule)
    return rules


@register
class ClusterRoleAggregationController(Controller):
    """Keeps aggregated ClusterRoles' rules the union of their selected roles' rules."""

    name = "clusterrole-aggregation"
    event_source = "clusterrole-aggregation-controller"
    workers = 5

    def setup(self) -> None:
        self.roles = self.ctx.factory.informer("clusterroles")
        self.roles.add_handler(**self.handlers(lambda _obj: self._enqueue_aggregated()))

    def _enqueue_aggregated(self) -> None:
        for role in self.roles.store.list():
            if role.get("aggregationRule") is not None:
                self.enqueue(role)

    async def sync(self, key: str) -> None:
        """Apply the union of the selected roles' rules to one aggregated ClusterRole."""
        role = self.roles.store.get(key)
        if role is None or role.get("aggregationRule") is None:
            return
        try:
            rules = aggregated_rules(role, self.roles.store.list())
        except SelectorError as e:
            self.log.warning("clusterrole %s: bad aggregation selector: %s", key, e)
            return
        if rules == (role.get("rules") or []):
            return
        body = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": key}}
        await self.api.patch(
            "clusterroles",
            key,
            {**body, "rules": rules},
            patch_type=PatchType.APPLY,
            field_manager=FIELD_MANAGER,
            force=True,
        )
