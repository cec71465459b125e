"""The apiserver's ASGI app: discovery, health, metrics and the generic API routes."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from apimachinery import errors
from apimachinery.meta import format_time
from apimachinery.resources import RESOURCES, by_plural
from apiserver import discovery, openapi, proxy, required
from apiserver.codec import json_response, status_response
from apiserver.continuetoken import ContinueTokens
from apiserver.encryption import load_encryption_config
from apiserver.etcdclient import EtcdTLS
from apiserver.handlers import handle
from apiserver.ipallocator import DEFAULT_SERVICE_CIDR, service_ref
from apiserver.kinds import KindOptions, ServiceNetwork, Strategies
from apiserver.limits import BoundedRequests, ServingLimits
from apiserver.options import WriteOptions
from apiserver.portallocator import PortRange
from apiserver.registry import Registry
from apiserver.repair import ServiceRepair
from apiserver.request_info import parse_path
from apiserver.storage import DEFAULT_MAX_OBJECT_BYTES, EtcdStorage, StorageError
from apiserver.watch_cache import WatchCache

__all__ = ["Config", "create_app"]

log = logging.getLogger("apiserver")

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class Config:
    """apiserver settings (flags and TINYKUBE_* environment variables)."""

    etcd_servers: str = "http://127.0.0.1:2379"
    bind_address: str = "127.0.0.1"
    port: int = 8080
    watch_cache_size: int = 1000
    service_cluster_ip_range: str = "127.96.0.0/16"
    service_node_port_range: str = "30000-32767"
    service_repair_interval: float = 180.0
    etcd_compaction_interval: float = 300.0
    request_timeout: float = 60.0
    default_not_ready_toleration_seconds: int = 300
    default_unreachable_toleration_seconds: int = 300
    serving: ServingLimits = field(default_factory=ServingLimits)
    etcd_tls: EtcdTLS = field(default_factory=EtcdTLS)
    encryption_provider_config: str = ""  # an EncryptionConfiguration file (Secrets encrypted at rest)
    max_object_size_bytes: int = DEFAULT_MAX_OBJECT_BYTES  # an object's stored size (etcd's request limit)


def _kubernetes_service(ip: str, config: Config) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ip,
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": config.port}],
            "sessionAffinity": "None",
        },
    }


def _kubernetes_endpoints(config: Config) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [
            {
                "addresses": [{"ip": config.bind_address}],
                "ports": [{"name": "https", "port": config.port, "protocol": "TCP"}],
            }
        ],
    }


async def _retrying(what: str, step: Callable[[], Awaitable[None]]) -> None:
    """Run a bootstrap step until it succeeds, backing off while etcd does not answer."""
    delay = 0.1
    while True:
        try:
            await step()
            return
        except (errors.StatusError, StorageError) as e:
            log.warning("bootstrap: %s: %s", what, getattr(e, "message", e))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)


async def _create_missing(reg: Registry, group: str, plural: str, namespace: str | None, body: dict[str, Any]) -> None:
    res = by_plural(group, plural)
    assert res is not None
    try:
        await reg.create(res, namespace, copy.deepcopy(body), WriteOptions())
    except errors.StatusError as e:
        if e.code != 409:
            raise


async def _ensure_service_cidr(reg: Registry, config: Config) -> None:
    """The `kubernetes` ServiceCIDR holds --service-cluster-ip-range and is Ready (default-servicecidr controller)."""
    res = by_plural("networking.k8s.io", "servicecidrs")
    assert res is not None
    cidr = str(ipaddress.ip_network(config.service_cluster_ip_range, strict=False))
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": DEFAULT_SERVICE_CIDR}}
    await _create_missing(reg, "networking.k8s.io", "servicecidrs", None, {**body, "spec": {"cidrs": [cidr]}})
    current = await reg.get(res, None, DEFAULT_SERVICE_CIDR)
    if (current.get("spec") or {}).get("cidrs") != [cidr]:
        # as upstream, the existing default range stays; cluster IPs keep coming from it
        held = (current.get("spec") or {}).get("cidrs")
        log.warning("the kubernetes ServiceCIDR holds %s, not --service-cluster-ip-range %s; keeping it", held, cidr)
        return
    if (current.get("metadata") or {}).get("deletionTimestamp"):
        return
    for cond in (current.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return  # Ready already set (True, or False by someone who knows why)
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "",
        "message": "Kubernetes default Service CIDR is ready",
        "lastTransitionTime": format_time(datetime.now(UTC)),
    }

    def set_ready(obj: dict[str, Any]) -> dict[str, Any]:
        obj["status"] = {"conditions": [ready]}
        return obj

    await reg.update(res, None, DEFAULT_SERVICE_CIDR, set_ready, WriteOptions(), "status")


async def _ensure_kubernetes_service(reg: Registry, config: Config) -> None:
    """The `kubernetes` Service on the first address of the range; a leftover IPAddress of it is cleared first."""
    res, ips = by_plural("", "services"), by_plural("networking.k8s.io", "ipaddresses")
    assert res is not None and ips is not None
    ip = str(next(ipaddress.ip_network(config.service_cluster_ip_range, strict=False).hosts()))
    try:
        await reg.get(res, "default", "kubernetes")
        return
    except errors.StatusError as e:
        if e.code != 404:
            raise
    try:
        await _create_missing(reg, "", "services", "default", _kubernetes_service(ip, config))
    except errors.StatusError as e:
        if e.code != 422:
            raise
        try:
            held = await reg.get(ips, None, ip)
        except errors.StatusError as missing:
            if missing.code != 404:
                raise
            held = {}
        if (held.get("spec") or {}).get("parentRef") != service_ref("default", "kubernetes"):
            # not ours to fix (another object holds the IP, or it is outside the ServiceCIDRs): say so, go on
            log.error("cannot create the kubernetes Service: %s", e.message)
            return
        # allocated by an earlier start that died before the Service was written: free it and try again
        await reg.delete(ips, None, ip, {"preconditions": {"uid": held["metadata"]["uid"]}}, False)
        raise


async def _bootstrap(reg: Registry, config: Config, repair: ServiceRepair, tokens: ContinueTokens) -> None:
    """Create the default namespaces, the `kubernetes` ServiceCIDR and Service, then check allocations once."""
    await _retrying("continue-token key", partial(tokens.use_cluster_key, reg.storage))
    for name in DEFAULT_NAMESPACES:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        await _retrying(f"namespace {name}", partial(_create_missing, reg, "", "namespaces", None, body))
    await _retrying("ServiceCIDR kubernetes", partial(_ensure_service_cidr, reg, config))
    await _retrying("Service kubernetes", partial(_ensure_kubernetes_service, reg, config))
    body = _kubernetes_endpoints(config)
    await _retrying("Endpoints kubernetes", partial(_create_missing, reg, "", "endpoints", "default", body))
    await _retrying("service allocation repair", repair.run_once)


async def _compactor(storage: EtcdStorage, interval: float) -> None:
    """Compact etcd to the revision seen one interval ago, as kube-apiserver does."""
    previous = 0
    while True:
        await asyncio.sleep(interval)
        try:
            current = await storage.ping()
            if previous:
                await storage.compact(previous)
                log.info("compacted etcd to revision %d", previous)
            previous = current
        except StorageError as e:
            log.warning("compaction skipped: %s", e)


def create_app(config: Config) -> FastAPI:
    """Build the apiserver app for one etcd."""
    transformer = (
        load_encryption_config(config.encryption_provider_config) if config.encryption_provider_config else None
    )
    storage = EtcdStorage(
        config.etcd_servers,
        timeout=5.0,
        tls=config.etcd_tls,
        transformer=transformer,
        max_object_bytes=config.max_object_size_bytes,
    )
    cache = WatchCache(storage, window=config.watch_cache_size)
    network = ServiceNetwork(config.service_cluster_ip_range, PortRange.parse(config.service_node_port_range))
    strategies = Strategies(
        KindOptions(
            service_network=network,
            not_ready_toleration_seconds=config.default_not_ready_toleration_seconds,
            unreachable_toleration_seconds=config.default_unreachable_toleration_seconds,
        )
    )
    tokens = ContinueTokens()
    reg = Registry(storage, cache, strategies, tokens)
    repair = ServiceRepair(reg, network)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the schemas and each kind's required-field filler, compiled once before the first write
        await openapi.ensure_loaded()
        await asyncio.to_thread(required.compile_all, RESOURCES)
        cache.start()
        tasks = [asyncio.create_task(_bootstrap(reg, config, repair, tokens), name="bootstrap")]
        if config.service_repair_interval > 0:
            tasks.append(asyncio.create_task(repair.run(config.service_repair_interval), name="service-repair"))
        if config.etcd_compaction_interval > 0:
            tasks.append(asyncio.create_task(_compactor(storage, config.etcd_compaction_interval)))
        app.state.bootstrap = tasks[0]
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            await cache.stop()
            await storage.close()

    app = FastAPI(
        title="tinykube apiserver",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.registry = reg
    app.add_middleware(BoundedRequests, limits=config.serving)  # outermost: body bounds, the last-resort 500

    @app.exception_handler(errors.StatusError)
    async def _status_error(request: Request, exc: errors.StatusError) -> Response:
        return status_response(exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error serving %s %s", request.method, request.url.path)
        return status_response(errors.internal_error(type(exc).__name__))

    @app.get("/healthz")
    @app.get("/livez")
    async def healthz() -> Response:
        return PlainTextResponse("ok")

    @app.get("/readyz")
    async def readyz() -> Response:
        try:
            await asyncio.wait_for(storage.ping(), 2)
        except (StorageError, TimeoutError):
            return PlainTextResponse("[-]etcd failed: etcd unreachable\nreadyz check failed", 500)
        if not cache.ready.is_set() or not app.state.bootstrap.done():
            return PlainTextResponse("[-]informer-sync failed\nreadyz check failed", 500)
        return PlainTextResponse("ok")

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/version")
    @app.get("/version/")
    async def version() -> Response:
        return json_response(discovery.version_info())

    @app.get("/api")
    @app.get("/api/")
    async def api(request: Request) -> Response:
        if discovery.wants_aggregated(request.headers.get("accept")):
            return _aggregated(core=True)
        return json_response(discovery.api_versions(f"{config.bind_address}:{config.port}"))

    @app.get("/apis")
    @app.get("/apis/")
    async def apis(request: Request) -> Response:
        if discovery.wants_aggregated(request.headers.get("accept")):
            return _aggregated(core=False)
        return json_response(discovery.api_group_list())

    async def api_path(request: Request) -> Response:
        path = request.url.path
        info = parse_path(path)
        if info is None:
            raise errors.path_not_found()
        if not info.resource:
            return _discovery_doc(path, request.method)
        return await handle(reg, request, info)

    app.add_api_route("/openapi/v3", openapi.openapi_v3_index, methods=["GET"], include_in_schema=False)
    app.add_api_route("/openapi/v3/{path:path}", openapi.openapi_v3_gv, methods=["GET"], include_in_schema=False)
    app.add_api_route("/openapi/v2", openapi.openapi_v2, methods=["GET"], include_in_schema=False)
    # kubectl exec upgrades to a WebSocket on the exec subresource; plain HTTP requests fall through below
    app.add_api_websocket_route("/api/v1/namespaces/{namespace}/pods/{name}/exec", proxy.exec_websocket)
    app.add_api_route(
        "/{path:path}",
        api_path,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    return app


def _aggregated(core: bool) -> Response:
    """Aggregated discovery (apidiscovery.k8s.io/v2) of /api or /apis."""
    return json_response(discovery.aggregated(core), headers={"Content-Type": discovery.AGGREGATED_CONTENT_TYPE})


def _discovery_doc(path: str, method: str) -> Response:
    if method != "GET":
        raise errors.method_not_allowed()
    parts = [p for p in path.split("/") if p]
    if parts[0] == "api" and len(parts) == 2:
        doc = discovery.api_resource_list(parts[1])
    elif parts[0] == "apis" and len(parts) == 2:
        doc = discovery.api_group(parts[1])
    elif parts[0] == "apis" and len(parts) == 3:
        doc = discovery.api_resource_list(f"{parts[1]}/{parts[2]}")
    else:
        doc = None
    if doc is None:
        raise errors.path_not_found()
    return json_response(doc)
