"""The service-account controller (upstream pkg/controller/serviceaccount): every active namespace
has a `default` ServiceAccount, recreated when deleted."""

from __future__ import annotations

from apimachinery.errors import StatusError
from client.request import Obj
from client.store import NAMESPACE_INDEX, namespace_indexer
from controller_manager.base import Controller
from controller_manager.controllers import register

__all__ = ["DEFAULT_SERVICE_ACCOUNTS", "ServiceAccountsController"]

DEFAULT_SERVICE_ACCOUNTS = ("default",)


@register
class ServiceAccountsController(Controller):
    """Ensures the default ServiceAccount in each namespace that is not terminating."""

    name = "serviceaccount"
    event_source = "service-account-controller"
    workers = 2

    def setup(self) -> None:
        self.namespaces = self.ctx.factory.informer("namespaces")
        self.namespaces.add_handler(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n))
        self.accounts = self.ctx.factory.informer("serviceaccounts", indexers={NAMESPACE_INDEX: namespace_indexer})
        self.accounts.add_handler(on_delete=self._account_deleted)

    def _account_deleted(self, sa: Obj) -> None:
        m = sa.get("metadata") or {}
        if m.get("name") in DEFAULT_SERVICE_ACCOUNTS and m.get("namespace"):
            self.enqueue_key(m["namespace"])

    async def sync(self, key: str) -> None:
        """Create the namespace's missing default ServiceAccounts."""
        ns = self.namespaces.store.get(key)
        if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp"):
            return
        if (ns.get("status") or {}).get("phase", "Active") != "Active":
            return
        for name in DEFAULT_SERVICE_ACCOUNTS:
            if self.accounts.store.get_by_name(name, key) is not None:
                continue
            body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": key}}
            try:
                await self.api.create("serviceaccounts", body, key)
            except StatusError as e:
                if e.code in (409, 404) or (e.code == 403 and "being terminated" in e.message):
                    continue
                raise
