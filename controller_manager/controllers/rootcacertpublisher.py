"""The root CA certificate publisher (upstream pkg/controller/certificates/rootcacertpublisher): every
namespace has a `kube-root-ca.crt` ConfigMap holding the cluster CA under `ca.crt`, which the
ServiceAccount volume of every pod projects to /var/run/secrets/kubernetes.io/serviceaccount/ca.crt.
Edited or deleted copies are put back.

The CA is `--root-ca-file`, else the CA this controller-manager trusts the apiserver with (its
kubeconfig's), as upstream falls back to; with neither, there is nothing to publish.
"""

from __future__ import annotations

from pathlib import Path

from apimachinery.errors import StatusError
from client.request import Obj, Selectors
from controller_manager.base import Controller
from controller_manager.controllers import register

__all__ = ["CONFIGMAP_NAME", "DESCRIPTION", "RootCACertPublisher"]

CONFIGMAP_NAME = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as "
    "the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of "
    "Kubernetes clusters."
)


@register
class RootCACertPublisher(Controller):
    """Keeps `kube-root-ca.crt` in every active namespace."""

    name = "root-ca-cert-publisher"
    event_source = "root-ca-cert-publisher"
    workers = 2

    def setup(self) -> None:
        self.root_ca = self._root_ca()
        self.namespaces = self.ctx.factory.informer("namespaces")
        self.namespaces.add_handler(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n))
        self.configmaps = self.ctx.factory.informer(
            "configmaps", selectors=Selectors.of(fields={"metadata.name": CONFIGMAP_NAME})
        )
        self.configmaps.add_handler(on_update=lambda _o, n: self._configmap(n), on_delete=self._configmap)

    def _root_ca(self) -> str:
        path = self.ctx.text_option("root-ca-file", "")
        if path:
            return Path(path).read_text()
        config = self.api.config
        if config.ca_data:
            return config.ca_data.decode()
        if config.ca_file:
            return Path(config.ca_file).read_text()
        self.log.warning("no --root-ca-file and no CA in the kubeconfig: no %s ConfigMaps published", CONFIGMAP_NAME)
        return ""

    def _configmap(self, cm: Obj) -> None:
        ns = (cm.get("metadata") or {}).get("namespace")
        if ns:
            self.enqueue_key(ns)

    async def sync(self, key: str) -> None:
        """Create or repair the namespace's `kube-root-ca.crt`."""
        if not self.root_ca:
            return
        ns = self.namespaces.store.get(key)
        if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp"):
            return
        if (ns.get("status") or {}).get("phase", "Active") != "Active":
            return
        data = {"ca.crt": self.root_ca}
        cm = self.configmaps.store.get_by_name(CONFIGMAP_NAME, key)
        try:
            if cm is None:
                body = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": CONFIGMAP_NAME,
                        "namespace": key,
                        "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
                    },
                    "data": data,
                }
                await self.api.create("configmaps", body, key)
                return
            annotations = (cm.get("metadata") or {}).get("annotations") or {}
            if cm.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION) == DESCRIPTION:
                return
            fixed = {
                **cm,
                "metadata": {**cm["metadata"], "annotations": {**annotations, DESCRIPTION_ANNOTATION: DESCRIPTION}},
                "data": data,
            }
            fixed.pop("binaryData", None)
            await self.api.update("configmaps", fixed, key)
        except StatusError as e:
            if e.code == 404 or (e.code == 403 and "being terminated" in e.message):
                return  # the namespace is going away
            if e.code == 409:
                self.enqueue_key(key)  # raced with another writer: look again at the newest copy
                return
            raise
