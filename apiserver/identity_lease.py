"""The apiserver's identity Lease (KEP-1965), as kube-apiserver keeps it, and its garbage collector.

Each apiserver process holds a Lease in kube-system named `apiserver-<hash>` (the hash of its identity,
by default the hostname, as upstream's APIServerID), labelled `apiserver.kubernetes.io/identity:
kube-apiserver` and `kubernetes.io/hostname`, holderIdentity `<name>_<uuid of this run>`, renewed every
10 s with a duration of one hour. The annotation `kubernetes.io/peer-advertise-address` (`ip:port`) says
where the process serves, which the endpoint reconciler reads to know whether another live process still
serves an address it would otherwise drop. Every process also deletes identity Leases that have expired
(upstream's apiserver lease garbage collector, once an hour).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import socket
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apimachinery import errors
from apimachinery.meta import parse_time
from apimachinery.resources import by_plural
from apiserver.options import WriteOptions
from apiserver.registry import Registry
from apiserver.storage import StorageError

__all__ = [
    "IDENTITY_LABEL",
    "KUBE_APISERVER",
    "PEER_ADDRESS_ANNOTATION",
    "IdentityLease",
    "IdentityOptions",
    "format_micro_time",
    "identity_lease_name",
    "live_identity_leases",
]

log = logging.getLogger("apiserver.identity")

IDENTITY_LABEL = "apiserver.kubernetes.io/identity"
KUBE_APISERVER = "kube-apiserver"
HOSTNAME_LABEL = "kubernetes.io/hostname"
PEER_ADDRESS_ANNOTATION = "kubernetes.io/peer-advertise-address"
NAMESPACE = "kube-system"
GC_PERIOD = 3600.0  # upstream's IdentityLeaseGCPeriod
_LEASES = by_plural("coordination.k8s.io", "leases")


@dataclass(frozen=True)
class IdentityOptions:
    """How this process names and renews its identity Lease."""

    identity: str = ""  # hashed into the Lease's name; "" means the hostname
    lease_duration_seconds: int = 3600
    renew_interval: float = 10.0
    gc_period: float = GC_PERIOD  # how often expired identity Leases are collected


def identity_lease_name(identity: str, component: str = KUBE_APISERVER) -> str:
    """`apiserver-<hash>`: base32 of the first 16 bytes of sha256 over the length-prefixed identity and
    component, as upstream's APIServerID is built from the hostname."""
    data = b""
    for part in (identity.encode(), component.encode()):
        data += struct.pack(">H", len(part)) + part
    digest = hashlib.sha256(data).digest()[:16]
    return "apiserver-" + base64.b32encode(digest).decode().rstrip("=").lower()


def format_micro_time(t: datetime) -> str:
    """A metav1.MicroTime: `2006-01-02T15:04:05.000000Z`."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _expired(lease: dict[str, Any], now: datetime) -> bool:
    spec = lease.get("spec") or {}
    renewed = spec.get("renewTime") or spec.get("acquireTime")
    duration = spec.get("leaseDurationSeconds")
    if not renewed or not isinstance(duration, int):
        return False  # not one we can judge; upstream's collector leaves it too
    try:
        return parse_time(renewed) + timedelta(seconds=duration) < now
    except ValueError:
        return False


def _identity_leases(reg: Registry) -> Iterator[dict[str, Any]]:
    prefix = f"/registry/leases/{NAMESPACE}/"
    for stored in reg.cache.cache("leases").snapshot():
        labels = (stored.obj.get("metadata") or {}).get("labels") or {}
        if stored.key.startswith(prefix) and labels.get(IDENTITY_LABEL) == KUBE_APISERVER:
            yield stored.obj


def live_identity_leases(reg: Registry, within: float) -> list[dict[str, Any]]:
    """The kube-apiserver identity Leases renewed in the last `within` seconds, as the watch cache holds them."""
    now = datetime.now(UTC)
    out = []
    for lease in _identity_leases(reg):
        renewed = (lease.get("spec") or {}).get("renewTime")
        try:
            if renewed and now - parse_time(renewed) <= timedelta(seconds=within):
                out.append(lease)
        except ValueError:
            continue
    return out


class IdentityLease:
    """Creates and renews this process's identity Lease; collects expired ones of other processes."""

    def __init__(self, reg: Registry, options: IdentityOptions, peer_address: str) -> None:
        self.reg = reg
        self.options = options
        self.name = identity_lease_name(options.identity or socket.gethostname())
        self.holder = f"{self.name}_{uuid.uuid4()}"
        self.peer_address = peer_address
        self.hostname = socket.gethostname()

    def _stamp(self, lease: dict[str, Any]) -> dict[str, Any]:
        """Our holder, duration, renewTime, labels and annotation on `lease`."""
        meta = lease.setdefault("metadata", {})
        meta.setdefault("labels", {}).update({IDENTITY_LABEL: KUBE_APISERVER, HOSTNAME_LABEL: self.hostname})
        if self.peer_address:
            meta.setdefault("annotations", {})[PEER_ADDRESS_ANNOTATION] = self.peer_address
        spec = lease.setdefault("spec", {})
        spec["holderIdentity"] = self.holder
        spec["leaseDurationSeconds"] = self.options.lease_duration_seconds
        spec["renewTime"] = format_micro_time(datetime.now(UTC))
        return lease

    async def renew(self) -> None:
        """Create the Lease, or renew it (taking it over from an earlier run of the same identity)."""
        assert _LEASES is not None
        try:
            await self.reg.update(_LEASES, NAMESPACE, self.name, self._stamp, WriteOptions())
            return
        except errors.StatusError as e:
            if e.code != 404:
                raise
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": self.name}}
        try:
            await self.reg.create(_LEASES, NAMESPACE, self._stamp(body), WriteOptions())
        except errors.StatusError as e:
            if e.code != 409:  # another start of this identity made it: the next renewal takes it over
                raise

    async def run(self) -> None:
        """Renew every interval until cancelled (failures are logged and retried at the next tick)."""
        while True:
            try:
                await self.renew()
            except (errors.StatusError, StorageError) as e:
                log.warning("identity lease %s/%s not renewed: %s", NAMESPACE, self.name, getattr(e, "message", e))
            await asyncio.sleep(self.options.renew_interval)

    async def collect_expired(self) -> int:
        """Delete expired identity Leases (each only if unchanged since read); how many went."""
        assert _LEASES is not None
        now, deleted = datetime.now(UTC), 0
        for lease in list(_identity_leases(self.reg)):
            meta = lease.get("metadata") or {}
            if meta.get("name") == self.name or not _expired(lease, now):
                continue
            options = {"preconditions": {"resourceVersion": meta.get("resourceVersion")}}
            try:
                await self.reg.delete(_LEASES, NAMESPACE, meta["name"], options, False)
                deleted += 1
                log.info("deleted expired identity lease %s/%s", NAMESPACE, meta["name"])
            except errors.StatusError as e:
                if e.code not in (404, 409):
                    raise
        return deleted

    async def run_gc(self) -> None:
        """Collect expired identity Leases every gc_period seconds until cancelled."""
        while True:
            await asyncio.sleep(self.options.gc_period)
            try:
                await self.collect_expired()
            except (errors.StatusError, StorageError) as e:
                log.warning("identity lease garbage collection failed: %s", getattr(e, "message", e))
