"""The aggregation layer (kube-aggregator): APIServices that name a Service have their group version
served by that Service, through this apiserver.

- Proxy: a request under `/apis/<group>/<version>` of such an APIService is relayed, path, query,
  body and all, to one ready endpoint of the Service (endpoint routing, as
  `--enable-aggregator-routing`: the Service's port by number, the EndpointSlices' port by name),
  and the answer streams back (watches too). HTTPS is used, verified with `spec.caBundle` or not at
  all with `insecureSkipTLSVerify`; a Service port whose `appProtocol` is `http` is spoken to in
  plain HTTP (tinykube's own add-ons on loopback). An APIService that is not Available answers 503.
- Availability (the AvailableConditionController): every APIService is checked when it changes and
  then periodically — the Service, its endpoints, and a GET of `/apis/<group>/<version>` on one of
  them within 5 s — and its `Available` condition written through /status with upstream's reasons
  (Local, Passed, ServiceNotFound, ServicePortError, EndpointsNotFound, MissingEndpoints,
  FailedDiscoveryCheck).
- Discovery: `/apis` lists the aggregated groups after the built-in ones, `/apis/<group>` is served
  from the APIServices, and aggregated discovery (apidiscovery.k8s.io/v2) carries each available
  group version's resources, from the APIResourceList its server answered the check with.

The proxied requests reach here only after the apiserver's own handling of the request (the hook
sits in the generic API route), so whatever guards that route guards them too.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from apimachinery import errors
from apimachinery.meta import format_time
from apimachinery.resources import by_plural
from apiserver.codec import json_response
from apiserver.options import ListOptions, WriteOptions
from apiserver.registry import Registry

__all__ = ["Aggregator", "Backend"]

log = logging.getLogger("apiserver.aggregator")

CHECK_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5.0
# request headers not passed on (hop-by-hop, and the client's own credentials)
_DROP_REQUEST = {
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "authorization",
    "content-length",
}
_DROP_RESPONSE = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "date",
    "server",
}


@dataclass(frozen=True)
class Backend:
    """Where one aggregated group version is served."""

    url: str
    """`scheme://host:port` of one ready endpoint."""
    verify: ssl.SSLContext | bool


class _Unavailable(Exception):
    """Why an APIService cannot be reached: (reason, message) as its Available condition says."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def _res(group: str, plural: str) -> Any:
    res = by_plural(group, plural)
    assert res is not None
    return res


def _condition(obj: dict[str, Any]) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Available":
            return c
    return None


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _sort_key(svc: dict[str, Any]) -> tuple[int, str]:
    return (-int((svc.get("spec") or {}).get("versionPriority") or 0), str(svc["metadata"]["name"]))


class Aggregator:
    """APIServices' proxy, availability checks and discovery, for one apiserver."""

    def __init__(self, reg: Registry, interval: float = 30.0) -> None:
        self.reg = reg
        self.interval = interval
        self._services: dict[str, dict[str, Any]] = {}  # APIService name → object (remote ones)
        self._available: dict[str, bool] = {}
        self._resources: dict[str, dict[str, Any]] = {}  # APIService name → its APIResourceList
        self._clients: dict[Any, httpx.AsyncClient] = {}
        self._wake = asyncio.Event()

    # --- state ---------------------------------------------------------------------------------

    def _by_group_version(self, group: str, version: str) -> dict[str, Any] | None:
        return self._services.get(f"{version}.{group}")

    def _groups(self) -> dict[str, list[dict[str, Any]]]:
        """Aggregated groups → their APIServices, best version first."""
        out: dict[str, list[dict[str, Any]]] = {}
        for svc in self._services.values():
            out.setdefault(str(svc["spec"].get("group", "")), []).append(svc)
        for versions in out.values():
            versions.sort(key=_sort_key)
        return dict(
            sorted(
                out.items(),
                key=lambda kv: (-max(int(s["spec"].get("groupPriorityMinimum") or 0) for s in kv[1]), kv[0]),
            )
        )

    def _observe(self, obj: dict[str, Any], deleted: bool = False) -> None:
        name = str((obj.get("metadata") or {}).get("name", ""))
        spec = obj.get("spec") or {}
        if deleted or not isinstance(spec.get("service"), dict):
            self._services.pop(name, None)
            self._available.pop(name, None)
            self._resources.pop(name, None)
            if not deleted and not isinstance(spec.get("service"), dict):
                self._available[name] = True
            return
        self._services[name] = obj
        cond = _condition(obj)
        self._available.setdefault(name, bool(cond and cond.get("status") == "True"))

    # --- discovery -----------------------------------------------------------------------------

    def group_list(self, doc: dict[str, Any]) -> dict[str, Any]:
        """`/apis` (APIGroupList) with the aggregated groups added."""
        groups = list(doc.get("groups") or [])
        known = {g.get("name") for g in groups}
        for group, services in self._groups().items():
            if group in known:
                continue
            gvs = [
                {"groupVersion": f"{group}/{s['spec']['version']}", "version": s["spec"]["version"]} for s in services
            ]
            groups.append({"name": group, "versions": gvs, "preferredVersion": gvs[0]})
        return {**doc, "groups": groups}

    def api_group(self, group: str) -> dict[str, Any] | None:
        """`/apis/<group>` of an aggregated group."""
        services = self._groups().get(group)
        if not services:
            return None
        gvs = [{"groupVersion": f"{group}/{s['spec']['version']}", "version": s["spec"]["version"]} for s in services]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def aggregated(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Aggregated discovery of `/apis` with each aggregated group version that answered its check."""
        items = list(doc.get("items") or [])
        for group, services in self._groups().items():
            versions = []
            for svc in services:
                name = svc["metadata"]["name"]
                listing = self._resources.get(name)
                if listing is None:
                    continue
                versions.append(
                    {
                        "version": svc["spec"]["version"],
                        "freshness": "Current" if self._available.get(name) else "Stale",
                        "resources": _aggregated_resources(group, svc["spec"]["version"], listing),
                    }
                )
            if versions:
                items.append({"metadata": {"name": group, "creationTimestamp": None}, "versions": versions})
        return {**doc, "items": items}

    # --- routing -------------------------------------------------------------------------------

    async def route(self, request: Request) -> Response | None:
        """Serve the request if it belongs to an aggregated group (else None)."""
        path = request.scope["path"]
        if path.startswith("/api/"):  # the core group (pods, nodes, events…): never aggregated
            return None
        parts = [p for p in path.split("/") if p]  # request.url would build a whole URL
        if len(parts) < 2 or parts[0] != "apis":
            return None
        if len(parts) == 2:
            doc = self.api_group(parts[1])
            if doc is None:
                return None
            if request.method != "GET":
                raise errors.method_not_allowed()
            return json_response(doc)
        svc = self._by_group_version(parts[1], parts[2])
        if svc is None:
            return None
        name = svc["metadata"]["name"]
        if not self._available.get(name):
            raise errors.StatusError(503, "ServiceUnavailable", "service unavailable")
        try:
            backend = await self.backend(svc)
        except _Unavailable as e:
            raise errors.StatusError(503, "ServiceUnavailable", f"service unavailable: {e.message}") from None
        return await self._proxy(request, backend)

    async def backend(self, svc: dict[str, Any]) -> Backend:
        """One ready endpoint of the APIService's Service (raises _Unavailable with the reason)."""
        spec = svc.get("spec") or {}
        ref = spec.get("service") or {}
        ns, name, port = str(ref.get("namespace", "")), str(ref.get("name", "")), int(ref.get("port") or 443)
        try:
            service = await self.reg.get(_res("", "services"), ns, name, "0")
        except errors.StatusError as e:
            if e.code == 404:
                raise _Unavailable("ServiceNotFound", f'service/{name} in "{ns}" is not present') from None
            raise
        sport = next(
            (
                p
                for p in (service.get("spec") or {}).get("ports") or []
                if isinstance(p, dict) and p.get("port") == port
            ),
            None,
        )
        if sport is None:
            raise _Unavailable("ServicePortError", f'service/{name} in "{ns}" is not listening on port {port}')
        port_name = str(sport.get("name") or "")
        opts = ListOptions.parse(
            {"labelSelector": f"kubernetes.io/service-name={name}", "resourceVersion": "0"}, "EndpointSlice"
        )
        slices = (await self.reg.list(_res("discovery.k8s.io", "endpointslices"), ns, opts))["items"]
        if not slices:
            raise _Unavailable("EndpointsNotFound", f'cannot find endpoints for service/{name} in "{ns}"')
        candidates: list[tuple[str, int]] = []
        for sl in slices:
            target = next(
                (
                    p.get("port")
                    for p in sl.get("ports") or []
                    if isinstance(p, dict) and (p.get("name") or "") == port_name
                ),
                None,
            )
            if not isinstance(target, int):
                continue
            for ep in sl.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready") is False:
                    continue
                candidates += [(str(a), target) for a in ep.get("addresses") or []]
        if not candidates:
            raise _Unavailable(
                "MissingEndpoints",
                f'endpoints for service/{name} in "{ns}" have no addresses with port name "{port_name}"',
            )
        host, target_port = random.choice(candidates)
        scheme = "http" if sport.get("appProtocol") == "http" else "https"
        return Backend(
            f"{scheme}://{_host_port(host, target_port)}", self._verify(spec) if scheme == "https" else False
        )

    @staticmethod
    def _verify(spec: dict[str, Any]) -> ssl.SSLContext | bool:
        if spec.get("insecureSkipTLSVerify"):
            return False
        bundle = spec.get("caBundle")
        if bundle:
            try:
                pem = base64.b64decode(str(bundle)).decode()
            except (binascii.Error, ValueError, UnicodeDecodeError):
                return True
            ctx = ssl.create_default_context(cadata=pem)
            ctx.check_hostname = (
                False  # upstream verifies against <service>.<namespace>.svc; endpoint routing dials IPs
            )
            return ctx
        return True

    def _client(self, verify: ssl.SSLContext | bool) -> httpx.AsyncClient:
        key = id(verify) if isinstance(verify, ssl.SSLContext) else verify
        client = self._clients.get(key)
        if client is None:
            client = httpx.AsyncClient(
                verify=verify,
                trust_env=False,
                timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT),
                follow_redirects=False,
            )
            self._clients[key] = client
        return client

    async def _proxy(self, request: Request, backend: Backend) -> Response:
        # the client's credentials, impersonation and any identity headers it made up stay here
        headers = [
            (k, v)
            for k, v in request.headers.items()
            if k.lower() not in _DROP_REQUEST and not k.lower().startswith(("impersonate-", "x-remote-"))
        ]
        client = request.client
        if client is not None:
            headers.append(("X-Forwarded-For", client.host))
        url = backend.url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        body = await request.body()
        http = self._client(backend.verify)
        long_running = request.query_params.get("watch") not in (None, "", "0", "false")
        timeout = httpx.Timeout(None if long_running else 60.0, connect=CONNECT_TIMEOUT)
        built = http.build_request(request.method, url, headers=headers, content=body, timeout=timeout)
        try:
            resp = await http.send(built, stream=True)
        except httpx.HTTPError as e:
            raise errors.StatusError(
                503, "ServiceUnavailable", f"error trying to reach service: {e or type(e).__name__}"
            ) from None

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.aiter_raw():
                    yield chunk
            except httpx.HTTPError as e:
                log.info("aggregated response from %s ended: %s", url, e)
            finally:
                await resp.aclose()

        out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in _DROP_RESPONSE}
        return StreamingResponse(relay(), status_code=resp.status_code, headers=out_headers)

    # --- availability ----------------------------------------------------------------------------

    async def check(self, svc: dict[str, Any]) -> tuple[str, str, str]:
        """(status, reason, message) of one APIService's Available condition, probing its server."""
        spec = svc.get("spec") or {}
        if not isinstance(spec.get("service"), dict):
            return "True", "Local", "Local APIServices are always available"
        try:
            backend = await self.backend(svc)
        except _Unavailable as e:
            return "False", e.reason, e.message
        url = f"{backend.url}/apis/{spec.get('group')}/{spec.get('version')}"
        try:
            resp = await self._client(backend.verify).get(url, timeout=CHECK_TIMEOUT)
        except httpx.HTTPError as e:
            return "False", "FailedDiscoveryCheck", f"failing or missing response from {url}: {e or type(e).__name__}"
        if resp.status_code // 100 != 2:
            why = f"bad status from {url}: {resp.status_code}"
            return "False", "FailedDiscoveryCheck", f"failing or missing response from {url}: {why}"
        with contextlib.suppress(orjson.JSONDecodeError):
            listing = orjson.loads(resp.content)
            if isinstance(listing, dict):
                self._resources[svc["metadata"]["name"]] = listing
        return "True", "Passed", "all checks passed"

    async def _write_condition(self, svc: dict[str, Any], status: str, reason: str, message: str) -> None:
        name = svc["metadata"]["name"]
        res = _res("apiregistration.k8s.io", "apiservices")

        def mutate(cur: dict[str, Any]) -> dict[str, Any]:
            conditions = [c for c in (cur.get("status") or {}).get("conditions") or [] if isinstance(c, dict)]
            old = next((c for c in conditions if c.get("type") == "Available"), None)
            changed_at = format_time(datetime.now(UTC))
            if old is not None and old.get("status") == status:
                changed_at = old.get("lastTransitionTime") or changed_at
            new = {
                "type": "Available",
                "status": status,
                "lastTransitionTime": changed_at,
                "reason": reason,
                "message": message,
            }
            others = [c for c in conditions if c.get("type") != "Available"]
            cur["status"] = {**(cur.get("status") or {}), "conditions": [*others, new]}
            return cur

        cond = _condition(svc)
        if cond and (cond.get("status"), cond.get("reason"), cond.get("message")) == (status, reason, message):
            return
        try:
            await self.reg.update(res, None, name, mutate, WriteOptions(), "status")
        except errors.StatusError as e:
            if e.code != 404:
                log.warning("cannot set the Available condition of APIService %s: %s", name, e.message)

    async def _check_all(self) -> None:
        items = [s.obj for s in self.reg.cache.cache("apiservices").snapshot()]
        names = set()
        for svc in items:
            names.add(svc["metadata"]["name"])
            self._observe(svc)
            status, reason, message = await self.check(svc)
            self._available[svc["metadata"]["name"]] = status == "True"
            await self._write_condition(svc, status, reason, message)
        for gone in [n for n in self._services if n not in names]:
            self._observe(self._services[gone], deleted=True)

    async def run(self) -> None:
        """Follow APIServices and keep their Available conditions, until cancelled."""
        await self.reg.cache.ready.wait()
        cache = self.reg.cache.cache("apiservices")
        watcher = cache.watch(0, lambda _o: True, True)
        next_check = 0.0
        try:
            while True:
                failing = any(not ok for ok in self._available.values())
                if time.monotonic() >= next_check:
                    try:
                        await self._check_all()
                    except Exception:
                        log.exception("APIService availability check failed")
                    failing = any(not ok for ok in self._available.values())
                    next_check = time.monotonic() + (1.0 if failing else self.interval)
                try:
                    timeout = max(next_check - time.monotonic(), 0.05)
                    item = await asyncio.wait_for(watcher.queue.get(), timeout)
                except TimeoutError:
                    continue
                if item is None:  # the cache closed the watch: start another
                    cache.unwatch(watcher)
                    await self.reg.cache.ready.wait()
                    watcher = cache.watch(0, lambda _o: True, True)
                    continue
                ev_type, obj = item
                self._observe(copy.deepcopy(obj), deleted=ev_type == "DELETED")
                next_check = 0.0  # something changed: check now
        finally:
            cache.unwatch(watcher)
            for client in self._clients.values():
                with contextlib.suppress(Exception):
                    await client.aclose()


def _aggregated_resources(group: str, version: str, listing: dict[str, Any]) -> list[dict[str, Any]]:
    """An APIResourceList's entries in aggregated discovery's form (subresources under their resource)."""
    top: dict[str, dict[str, Any]] = {}
    subs: list[dict[str, Any]] = []
    for entry in listing.get("resources") or []:
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        name = str(entry["name"])
        if "/" in name:
            subs.append(entry)
            continue
        item: dict[str, Any] = {
            "resource": name,
            "responseKind": {
                "group": entry.get("group", group),
                "version": entry.get("version", version),
                "kind": entry.get("kind", ""),
            },
            "scope": "Namespaced" if entry.get("namespaced") else "Cluster",
            "singularResource": entry.get("singularName") or str(entry.get("kind", "")).lower(),
            "verbs": list(entry.get("verbs") or []),
        }
        for key in ("shortNames", "categories"):
            if entry.get(key):
                item[key] = list(entry[key])
        top[name] = item
    for entry in subs:
        parent, _, sub = str(entry["name"]).partition("/")
        if parent in top:
            top[parent].setdefault("subresources", []).append(
                {
                    "subresource": sub,
                    "responseKind": {
                        "group": entry.get("group", group),
                        "version": entry.get("version", version),
                        "kind": entry.get("kind", ""),
                    },
                    "verbs": list(entry.get("verbs") or []),
                }
            )
    return list(top.values())
