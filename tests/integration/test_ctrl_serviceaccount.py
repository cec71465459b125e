"""ServiceAccount controller: every active namespace gets a `default` ServiceAccount, recreated when deleted."""

from __future__ import annotations

from controller_kit import controllers, eventually
from housekeeping_kit import get_or_none, uniq


async def test_default_service_account_created_and_recreated(apiserver: str) -> None:
    async with controllers(apiserver, "serviceaccount") as ctx:
        api = ctx.api
        ns = uniq("sa")
        await api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

        async def default_sa() -> dict | None:
            return await get_or_none(api, "serviceaccounts", "default", ns)

        first = await eventually(default_sa, 10, "default ServiceAccount")
        await api.delete("serviceaccounts", "default", ns)

        async def recreated() -> dict | None:
            sa = await default_sa()
            return sa if sa and sa["metadata"]["uid"] != first["metadata"]["uid"] else None

        await eventually(recreated, 10, "default ServiceAccount recreated")
        await api.delete("namespaces", ns)
