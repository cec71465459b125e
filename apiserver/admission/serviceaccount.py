"""The ServiceAccount admission plug-in (upstream plugin/pkg/admission/serviceaccount): every pod runs as
a ServiceAccount that exists, and — unless the pod or the account turns automounting off — gets the
projected `kube-api-access-<random>` volume (a bound token, the cluster CA and its namespace) mounted
read-only at /var/run/secrets/kubernetes.io/serviceaccount in every container.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from apimachinery import errors
from apimachinery.meta import generate_name
from apimachinery.resources import by_plural
from apiserver.admission import AdmissionAttributes

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = [
    "DEFAULT_SERVICE_ACCOUNT",
    "MOUNT_PATH",
    "VOLUME_PREFIX",
    "ServiceAccountAdmission",
    "token_volume_source",
]

DEFAULT_SERVICE_ACCOUNT = "default"
VOLUME_PREFIX = "kube-api-access"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
ENFORCE_MOUNTABLE_SECRETS = "kubernetes.io/enforce-mountable-secrets"
MIRROR_POD = "kubernetes.io/config.mirror"
TOKEN_EXPIRATION_SECONDS = 3607  # serviceaccount.WarnOnlyBoundTokenExpirationSeconds


def token_volume_source() -> dict[str, Any]:
    """The projected volume source upstream's plug-in adds (TokenVolumeSource), as v1 JSON."""
    return {
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {
                "downwardAPI": {
                    "items": [
                        {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
                    ]
                }
            },
        ],
    }


def _automount(sa: dict[str, Any], spec: dict[str, Any]) -> bool:
    """The pod's preference wins, then the account's; true by default."""
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if sa.get("automountServiceAccountToken") is not None:
        return bool(sa["automountServiceAccountToken"])
    return True


def _mount_token(spec: dict[str, Any]) -> None:
    volumes = spec.get("volumes") or []
    name = next((v.get("name") for v in volumes if str(v.get("name", "")).startswith(VOLUME_PREFIX + "-")), None)
    has_volume = name is not None
    name = name or generate_name(VOLUME_PREFIX + "-")
    needed = False
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            mounts = c.get("volumeMounts") or []
            if any(m.get("mountPath") == MOUNT_PATH for m in mounts):
                continue  # a mount of its own at the token path wins
            c["volumeMounts"] = [*mounts, {"name": name, "readOnly": True, "mountPath": MOUNT_PATH}]
            needed = True
    if needed and not has_volume:
        spec["volumes"] = [*(spec.get("volumes") or []), {"name": name, "projected": token_volume_source()}]


def _secret_names(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, secret name) for every secret the pod's volumes and env reference, with upstream's wording."""
    out: list[tuple[str, str]] = []
    for v in spec.get("volumes") or []:
        if (v.get("secret") or {}).get("secretName"):
            out.append(("volume", v["secret"]["secretName"]))
    for key, what in (("initContainers", "init container"), ("containers", "container")):
        for c in spec.get(key) or []:
            for env in c.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
                if ref.get("name"):
                    out.append((f"{what} {c.get('name')} with envVar {env.get('name')}", ref["name"]))
            for src in c.get("envFrom") or []:
                if (src.get("secretRef") or {}).get("name"):
                    out.append((f"{what} {c.get('name')} with envFrom", src["secretRef"]["name"]))
    return out


class ServiceAccountAdmission:
    """Mutating (defaults, token volume, image pull secrets) and validating (the account exists) on pod create."""

    name = "ServiceAccount"

    def handles(self, attrs: AdmissionAttributes) -> bool:
        """Pod creates (the pod itself, not a subresource)."""
        return (
            attrs.operation == "CREATE"
            and attrs.resource.group == ""
            and attrs.resource.plural == "pods"
            and not attrs.subresource
            and isinstance(attrs.obj, dict)
        )

    async def admit(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Default the account, mount its token, copy its image pull secrets."""
        pod = attrs.obj
        assert pod is not None
        if MIRROR_POD in ((pod.get("metadata") or {}).get("annotations") or {}):
            await self.validate(attrs, reg)
            return
        spec = pod.setdefault("spec", {})
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = DEFAULT_SERVICE_ACCOUNT
        sa = await self._account(attrs, reg, spec["serviceAccountName"])
        if _automount(sa, spec):
            _mount_token(spec)
        if not spec.get("imagePullSecrets") and sa.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [{"name": s.get("name", "")} for s in sa["imagePullSecrets"]]
        await self.validate(attrs, reg)

    async def validate(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Refuse a pod whose account is missing (or, for mirror pods, that references accounts or secrets)."""
        pod = attrs.obj
        assert pod is not None
        spec = pod.get("spec") or {}
        if MIRROR_POD in ((pod.get("metadata") or {}).get("annotations") or {}):
            if spec.get("serviceAccountName"):
                raise self._forbidden(attrs, "a mirror pod may not reference service accounts")
            if _secret_names(spec) or spec.get("imagePullSecrets"):
                raise self._forbidden(attrs, "a mirror pod may not reference secrets")
            for v in spec.get("volumes") or []:
                if any("serviceAccountToken" in s for s in (v.get("projected") or {}).get("sources") or []):
                    raise self._forbidden(attrs, "a mirror pod may not use ServiceAccountToken volume projections")
            return
        if not spec.get("serviceAccountName"):
            raise self._forbidden(attrs, f"no service account specified for pod {attrs.namespace}/{attrs.name}")
        sa = await self._account(attrs, reg, spec["serviceAccountName"])
        enforce = ((sa.get("metadata") or {}).get("annotations") or {}).get(ENFORCE_MOUNTABLE_SECRETS, "")
        if enforce.lower() in ("true", "1", "t"):
            self._limit_secret_references(attrs, sa, spec)

    async def _account(self, attrs: AdmissionAttributes, reg: Registry, name: str) -> dict[str, Any]:
        """The account from the cache, else from etcd; `default` is waited for a little (the controller makes it).

        Read-only: it is the watch cache's own object (the plug-in only reads it, and copies the image pull
        secrets' names into new dicts), so a pod create costs no copy of its account.
        """
        res = by_plural("", "serviceaccounts")
        assert res is not None
        attempts = 10 if name == DEFAULT_SERVICE_ACCOUNT else 1
        delay = random.uniform(0.1, 0.2)
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(delay)
            for rv in ("0", "") if attempt == 0 else ("",):
                try:
                    return await reg.get(res, attrs.namespace, name, rv, shared=True)
                except errors.StatusError as e:
                    if e.code != 404:
                        why = f"error looking up service account {attrs.namespace}/{name}: {e.message}"
                        raise self._forbidden(attrs, why) from None
        why = f'error looking up service account {attrs.namespace}/{name}: serviceaccount "{name}" not found'
        raise self._forbidden(attrs, why)

    def _limit_secret_references(self, attrs: AdmissionAttributes, sa: dict[str, Any], spec: dict[str, Any]) -> None:
        account = (sa.get("metadata") or {}).get("name", "")
        mountable = {s.get("name") for s in sa.get("secrets") or []}
        for what, secret in _secret_names(spec):
            if secret not in mountable:
                subject = "volume with" if what == "volume" else what + " referencing"
                raise self._forbidden(
                    attrs,
                    f'{subject} secret.secretName="{secret}" is not allowed because service account {account} '
                    "does not reference that secret",
                )
        pull = {s.get("name") for s in sa.get("imagePullSecrets") or []}
        for i, ref in enumerate(spec.get("imagePullSecrets") or []):
            if ref.get("name") not in pull:
                raise self._forbidden(
                    attrs,
                    f'imagePullSecrets[{i}].name="{ref.get("name")}" is not allowed because service account '
                    f"{account} does not reference that imagePullSecret",
                )

    @staticmethod
    def _forbidden(attrs: AdmissionAttributes, why: str) -> errors.StatusError:
        return errors.forbidden(attrs.resource.plural, attrs.name, why, attrs.resource.group)
