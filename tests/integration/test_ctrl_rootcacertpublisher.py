"""root-ca-cert-publisher: every active namespace gets `kube-root-ca.crt` with the cluster CA; edits and
deletions are undone."""

from __future__ import annotations

from pathlib import Path

from controller_kit import controllers, eventually
from housekeeping_kit import get_or_none, uniq

from controller_manager.controllers.rootcacertpublisher import DESCRIPTION

CA = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"


async def test_kube_root_ca_published_and_repaired(apiserver: str, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(CA)
    async with controllers(apiserver, "root-ca-cert-publisher", root_ca_file=str(ca_file)) as ctx:
        api = ctx.api
        ns = uniq("rootca")
        await api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

        async def published() -> dict | None:
            cm = await get_or_none(api, "configmaps", "kube-root-ca.crt", ns)
            return cm if cm and cm.get("data") == {"ca.crt": CA} else None

        first = await eventually(published, 10, "kube-root-ca.crt")
        assert first["metadata"]["annotations"] == {"kubernetes.io/description": DESCRIPTION}
        # the existing namespaces have theirs too
        assert await eventually(lambda: get_or_none(api, "configmaps", "kube-root-ca.crt", "kube-system"), 10)

        await api.update("configmaps", {**first, "data": {"ca.crt": "tampered"}}, ns)

        async def repaired() -> dict | None:
            cm = await published()
            return cm if cm and cm["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"] else None

        await eventually(repaired, 10, "kube-root-ca.crt put back after an edit")
        await api.delete("configmaps", "kube-root-ca.crt", ns)

        async def recreated() -> dict | None:
            cm = await published()
            return cm if cm and cm["metadata"]["uid"] != first["metadata"]["uid"] else None

        await eventually(recreated, 10, "kube-root-ca.crt recreated after a delete")
        await api.delete("namespaces", ns)
