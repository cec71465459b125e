"""The impure half of a sync: make the open listeners match a `Plan`.

Listeners not in the plan are closed (their accepted connections run on), new ones are bound, and
listeners that stay get the plan's route (endpoints, affinity) without being reopened. Listeners
that share a service port and endpoint scope share one `Balancer`, so the round-robin turn and the
ClientIP affinity table are the service port's, whichever address a client used.

An address that cannot be bound (taken by something else, not local, a privileged port without
root) is logged once per distinct error and retried on the next sync; `apply` then returns False
so that the runner retries soon.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kube_proxy import metrics
from kube_proxy.balancer import Balancer
from kube_proxy.plan import ListenerKey, Plan, PortRef, Route
from kube_proxy.tcp import TcpListener
from kube_proxy.udp import UdpListener

__all__ = ["Proxier", "ProxierOptions"]

log = logging.getLogger("kube_proxy.proxier")

Listener = TcpListener | UdpListener


@dataclass(frozen=True)
class ProxierOptions:
    """Data-path settings."""

    udp_idle_timeout: float = 2.0


class Proxier:
    """The listeners this proxy holds, kept equal to the latest plan."""

    def __init__(self, options: ProxierOptions | None = None) -> None:
        self.options = options or ProxierOptions()
        self.listeners: dict[ListenerKey, Listener] = {}
        self.balancers: dict[tuple[PortRef, bool], Balancer] = {}
        self._known: set[PortRef] = set()
        self._bind_errors: dict[ListenerKey, str] = {}
        self._warned: set[str] = set()

    async def apply(self, plan: Plan) -> bool:
        """Open, close and update listeners to match `plan`; False if some address could not be bound."""
        for warning in plan.warnings:
            if warning not in self._warned:  # once while it lasts, not at every sync
                log.warning("%s", warning)
        self._warned = set(plan.warnings)
        desired = plan.listeners
        for key, listener in list(self.listeners.items()):
            route = desired.get(key)
            if route is None or route.reuse_port != listener.route.reuse_port:
                listener.close()
                del self.listeners[key]
                log.info("closed %s:%s/%s (%s)", key.ip, key.port, key.protocol, listener.route.ref)
        self._update_balancers(desired)
        ok = True
        for key, route in desired.items():
            balancer = self.balancers[route.balancer_key]
            stats = metrics.stats_for(route.ref)
            held = self.listeners.get(key)
            if held is not None:
                held.set_route(route, balancer, stats)
            elif not await self._open(key, route, balancer, stats):
                ok = False
        for key in [k for k in self._bind_errors if k not in desired]:
            del self._bind_errors[key]
        for ref in self._known - plan.ports:
            metrics.forget(ref)
        self._known = set(plan.ports)
        for protocol in ("TCP", "UDP"):
            metrics.LISTENERS.labels(protocol).set(sum(1 for k in self.listeners if k.protocol == protocol))
        return ok

    def _update_balancers(self, desired: dict[ListenerKey, Route]) -> None:
        fresh: dict[tuple[PortRef, bool], Balancer] = {}
        for route in desired.values():
            key = route.balancer_key
            if key in fresh:
                continue
            balancer = self.balancers.get(key) or Balancer()
            balancer.update(route.endpoints, route.affinity_timeout)
            balancer.expire()
            fresh[key] = balancer
        self.balancers = fresh

    async def _open(self, key: ListenerKey, route: Route, balancer: Balancer, stats: metrics.ServiceStats) -> bool:
        listener: Listener
        if key.protocol == "UDP":
            listener = UdpListener(key, route, balancer, stats, self.options.udp_idle_timeout)
        else:
            listener = TcpListener(key, route, balancer, stats)
        try:
            await listener.open()
        except OSError as e:
            metrics.BIND_ERRORS.inc()
            error = f"{type(e).__name__}: {e.strerror or e}"
            if self._bind_errors.get(key) != error:
                log.error("cannot listen on %s:%s/%s for %s: %s", key.ip, key.port, key.protocol, route.ref, error)
                self._bind_errors[key] = error
            return False
        self._bind_errors.pop(key, None)
        self.listeners[key] = listener
        eps = len(route.endpoints)
        log.info("listening on %s:%s/%s for %s (%d endpoints)", key.ip, key.port, key.protocol, route.ref, eps)
        return True

    def close(self) -> None:
        """Close every listener (at shutdown)."""
        for listener in self.listeners.values():
            listener.close()
        self.listeners.clear()
