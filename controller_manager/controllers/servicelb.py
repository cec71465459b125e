"""The service load-balancer controller: LoadBalancer Services get an IP from a local pool.

Like k3s's ServiceLB (or minikube's tunnel), the "load balancer" is the node proxies themselves:
this controller only hands out an address from `--load-balancer-ip-range` and writes it to
`status.loadBalancer.ingress` through /status (`ipMode: VIP`, so kube-proxy serves it); kube-proxy
binds it. As upstream's service controller it leaves alone Services whose `spec.loadBalancerClass`
names another implementation, and it reports EnsuringLoadBalancer / EnsuredLoadBalancer events.

Which IPs are in use is derived from the informer cache (every Service's load-balancer IPs and
external IPs in the pool) plus the IPs this process wrote but has not yet seen come back, so two
syncs never hand out one IP; a status write carries the resourceVersion it read, and a conflict
puts the key back to be decided again against the fresher cache. A Service that is deleted or
stops being a LoadBalancer frees its IP (the apiserver clears the status of a Service that is no
longer a LoadBalancer); Services waiting for an IP are looked at again whenever one is freed.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from apimachinery.errors import StatusError
from client.request import Obj
from client.store import meta_key
from controller_manager.base import Controller
from controller_manager.controllers import register

__all__ = ["LOAD_BALANCER_CLASS", "ServiceLBController"]

# Services with no loadBalancerClass, or this one, are ours; any other class belongs to someone else.
LOAD_BALANCER_CLASS = "tinykube.io/service-lb"
DEFAULT_RANGE = "127.200.0.0/24"


def _lb_ips(svc: Obj) -> list[str]:
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [i["ip"] for i in ingress if isinstance(i, dict) and i.get("ip")]


def _rv(obj: Obj) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _age_key(svc: Obj) -> tuple[str, str, str]:
    m = svc.get("metadata") or {}
    return (m.get("creationTimestamp") or "", m.get("namespace") or "", m.get("name") or "")


def _is_ours(svc: Obj) -> bool:
    spec = svc.get("spec") or {}
    if spec.get("type") != "LoadBalancer" or (svc.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return spec.get("loadBalancerClass") in (None, LOAD_BALANCER_CLASS)


@register
class ServiceLBController(Controller):
    """Gives each LoadBalancer Service an IP from the pool, through /status."""

    name = "servicelb"
    event_source = "service-controller"
    workers = 2

    def setup(self) -> None:
        self.pool = ipaddress.ip_network(self.ctx.text_option("load-balancer-ip-range", DEFAULT_RANGE), strict=False)
        self._hosts = [str(ip) for ip in self.pool.hosts()] or [str(self.pool.network_address)]
        # IPs this process wrote to a Service's status that the cache may not show yet:
        # ip -> (service key, resourceVersion of the write).
        self._written: dict[str, tuple[str, int]] = {}
        # Service keys being synced right now, with the IP chosen for each (two workers never pick one IP).
        self._choosing: dict[str, str] = {}
        self.services = self.ctx.factory.informer("services")
        self.services.add_handler(on_add=self._added, on_update=self._updated, on_delete=self._deleted)

    # --- informer handlers -------------------------------------------------------------------
    def _added(self, svc: Obj) -> None:
        self._seen(svc)
        if _is_ours(svc) or _lb_ips(svc):
            self.enqueue(svc)

    def _updated(self, old: Obj, new: Obj) -> None:
        self._seen(new)
        if _is_ours(new) or _lb_ips(new) != _lb_ips(old):
            self.enqueue(new)
        if _is_ours(old) and _lb_ips(old) and (new.get("spec") or {}).get("type") != "LoadBalancer":
            self.events.record(new, "Normal", "DeletedLoadBalancer", "Deleted load balancer")
        if set(_lb_ips(old)) - set(_lb_ips(new)):
            self._wake_waiting()

    def _deleted(self, svc: Obj) -> None:
        key = meta_key(svc)
        for ip in [ip for ip, (owner, _) in self._written.items() if owner == key]:
            del self._written[ip]
        if _lb_ips(svc):
            if (svc.get("spec") or {}).get("loadBalancerClass") in (None, LOAD_BALANCER_CLASS):
                self.events.record(svc, "Normal", "DeletedLoadBalancer", "Deleted load balancer")
            self._wake_waiting()

    def _seen(self, svc: Obj) -> None:
        """Once the cache shows a Service at or past a write to it, the cache alone says what it holds."""
        key, rv = meta_key(svc), _rv(svc)
        for ip in [ip for ip, (owner, written) in self._written.items() if owner == key and rv >= written]:
            del self._written[ip]

    def _wake_waiting(self) -> None:
        """An IP was freed: Services still without one get another look."""
        for svc in self.services.store.list():
            if _is_ours(svc) and not _lb_ips(svc):
                self.enqueue(svc)

    # --- the pool ------------------------------------------------------------------------------
    def _in_pool(self, ip: str) -> bool:
        try:
            return ipaddress.ip_address(ip) in self.pool
        except ValueError:
            return False

    def _used_by_others(self, key: str, svc: Obj) -> set[str]:
        """IPs other Services hold; of an IP two claim (say after a status edit), the older keeps it."""
        mine, age = set(_lb_ips(svc)), _age_key(svc)
        used: set[str] = set()
        for other in self.services.store.list():
            if meta_key(other) == key:
                continue
            senior = _age_key(other) < age
            used.update(ip for ip in _lb_ips(other) if ip not in mine or senior)
            used.update((other.get("spec") or {}).get("externalIPs") or [])
        used.update(ip for ip, (owner, _) in self._written.items() if owner != key)
        used.update(ip for owner, ip in self._choosing.items() if owner != key)
        return used

    def _choose(self, key: str, svc: Obj) -> tuple[str | None, str]:
        """The IP the Service should have, or None with the reason it cannot have one."""
        used = self._used_by_others(key, svc)
        requested = (svc.get("spec") or {}).get("loadBalancerIP") or ""
        if requested:
            if not self._in_pool(requested):
                return None, f"requested IP {requested} is not in the load-balancer pool {self.pool}"
            if requested in used:
                return None, f"requested IP {requested} is already in use"
            return requested, ""
        for ip in _lb_ips(svc):
            if self._in_pool(ip) and ip not in used:
                return ip, ""  # keep what it has
        for ip in self._hosts:
            if ip not in used:
                return ip, ""
        return None, f"no available IP in the load-balancer pool {self.pool}"

    # --- reconcile -----------------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        """Make the Service's load-balancer status hold exactly its pool IP (or nothing if it is not ours)."""
        svc = self.services.store.get(key)
        if svc is None or not _is_ours(svc):
            return  # a Service that stops being a LoadBalancer has its status cleared by the apiserver
        ip, why = self._choose(key, svc)
        if ip is None:
            self.events.record(svc, "Warning", "SyncLoadBalancerFailed", f"Error syncing load balancer: {why}")
            return
        if _lb_ips(svc) == [ip]:
            return
        self._choosing[key] = ip
        try:
            self.events.record(svc, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer")
            await self._write(key, svc, ip)
        finally:
            self._choosing.pop(key, None)

    async def _write(self, key: str, svc: Obj, ip: str) -> None:
        ingress: list[dict[str, Any]] = [{"ip": ip, "ipMode": "VIP"}]
        body = {**svc, "status": {**(svc.get("status") or {}), "loadBalancer": {"ingress": ingress}}}
        ns = (svc.get("metadata") or {}).get("namespace")
        try:
            stored = await self.api.update_status("services", body, ns)
        except StatusError as e:
            if e.code == 404:
                return  # gone: nothing holds the IP
            if e.code == 409:
                self.log.info("service %s changed while assigning its load-balancer IP; retrying", key)
            raise  # back into the queue with backoff, to decide again on a fresher cache
        written = _rv(stored)
        cached = self.services.store.get(key)
        if cached is not None and _rv(cached) < written:  # else the cache has caught up (or it is gone)
            self._written[ip] = (key, written)
        self.events.record(stored, "Normal", "EnsuredLoadBalancer", "Ensured load balancer")
