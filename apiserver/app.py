"""The apiserver's ASGI app: discovery, health, metrics and the generic API routes."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from apimachinery import errors
from apimachinery.resources import RESOURCES, by_plural
from apiserver import discovery, openapi, proxy, required
from apiserver.codec import json_response, status_response
from apiserver.handlers import handle
from apiserver.kinds.core import ServiceStrategy
from apiserver.kinds.pods import PodStrategy
from apiserver.options import WriteOptions
from apiserver.registry import Registry
from apiserver.request_info import parse_path
from apiserver.storage import EtcdStorage, StorageError
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
    etcd_compaction_interval: float = 300.0
    request_timeout: float = 60.0
    default_not_ready_toleration_seconds: int = 300
    default_unreachable_toleration_seconds: int = 300


async def _bootstrap(reg: Registry, config: Config) -> None:
    """Create the default namespaces and the `kubernetes` Service, retrying until etcd answers."""
    ip = str(next(ipaddress.ip_network(config.service_cluster_ip_range).hosts()))
    service = {
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
    endpoints = {
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
    wanted = [
        ("namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}})
        for n in DEFAULT_NAMESPACES
    ]
    wanted += [("services", "default", service), ("endpoints", "default", endpoints)]
    delay = 0.1
    for plural, namespace, body in wanted:
        res = by_plural("", plural)
        assert res is not None
        while True:
            try:
                await reg.create(res, namespace, copy.deepcopy(body), WriteOptions())
                break
            except errors.StatusError as e:
                if e.code in (409, 422):  # exists already (422: the cluster IP is taken by it)
                    break
                log.warning("bootstrap: creating %s %s: %s", plural, body["metadata"]["name"], e.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)


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
    storage = EtcdStorage(config.etcd_servers.split(",")[0], timeout=5.0)
    cache = WatchCache(storage, window=config.watch_cache_size)
    reg = Registry(storage, cache)
    ServiceStrategy.service_range = config.service_cluster_ip_range
    PodStrategy.not_ready_toleration_seconds = config.default_not_ready_toleration_seconds
    PodStrategy.unreachable_toleration_seconds = config.default_unreachable_toleration_seconds

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the schemas and each kind's required-field filler, compiled once before the first write
        await openapi.ensure_loaded()
        await asyncio.to_thread(required.compile_all, RESOURCES)
        cache.start()
        tasks = [asyncio.create_task(_bootstrap(reg, config), name="bootstrap")]
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
