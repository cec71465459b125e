"""The apiserver's ASGI app: discovery, health, metrics and the generic API routes."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.websockets import WebSocket

from apimachinery import errors, gctuning
from apimachinery.httpserver import ServingLimits
from apimachinery.meta import format_time, parse_time
from apimachinery.resources import RESOURCES, by_plural
from apiserver import discovery, openapi, portforward, proxy, required
from apiserver.admission.priority import SYSTEM_PRIORITY_CLASSES
from apiserver.aggregator import Aggregator
from apiserver.apiroute import ApiRoute, fastapi_options
from apiserver.audit.log import AuditLog
from apiserver.audit.policy import load_policy
from apiserver.authz.reconcile import reconcile_bootstrap_policy
from apiserver.chain import ChainOptions, HandlerChain
from apiserver.chain.request_info import request_verb
from apiserver.codec import json_response, status_response
from apiserver.compaction import Compactor
from apiserver.context import RequestContext, context_of
from apiserver.continuetoken import ContinueTokens
from apiserver.crd.controller import CRDController
from apiserver.encryption import load_encryption_config
from apiserver.endpoint_reconciler import EndpointReconciler, ReconcilerOptions
from apiserver.etcdclient import EtcdTLS
from apiserver.handlers import handle
from apiserver.identity_lease import IdentityLease, IdentityOptions
from apiserver.ipallocator import DEFAULT_SERVICE_CIDR, service_ref
from apiserver.kindregistry import KindRegistry
from apiserver.kinds import KindOptions, ServiceNetwork
from apiserver.kubelet_client import KubeletClient, KubeletClientConfig
from apiserver.limits import BoundedRequests
from apiserver.options import WriteOptions
from apiserver.portallocator import PortRange
from apiserver.registry import Registry
from apiserver.repair import ServiceRepair
from apiserver.security import (
    SecurityConfig,
    build_admission,
    build_authenticators,
    build_authorizers,
    build_impersonator,
    identity_of,
)
from apiserver.storage import DEFAULT_MAX_OBJECT_BYTES, EtcdStorage, StorageError
from apiserver.versions import Forward, serve_converted
from apiserver.watch_cache import WatchCache

__all__ = ["Config", "create_app"]

log = logging.getLogger("apiserver")

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# an IPAddress of the `kubernetes` Service with no Service this old is a leftover of a start that died
_LEFTOVER_AFTER = 10.0


@dataclass
class Config:
    """apiserver settings (flags and TINYKUBE_* environment variables)."""

    etcd_servers: str = "http://127.0.0.1:2379"
    insecure_bind_address: str = "127.0.0.1"
    insecure_port: int = 8080  # 0: no insecure port
    secure_port: int = 0  # the secure port (0: off)
    advertise_address: str = "127.0.0.1"  # what the `kubernetes` Service's endpoints name
    watch_cache_size: int = 1000
    service_cluster_ip_range: str = "127.96.0.0/16"
    service_node_port_range: str = "30000-32767"
    service_repair_interval: float = 180.0
    etcd_compaction_interval: float = 300.0
    request_timeout: float = 60.0
    max_requests_inflight: int = 400
    max_mutating_requests_inflight: int = 200
    audit_policy_file: str = ""
    audit_log_path: str = ""  # "-": stdout
    security: SecurityConfig = field(default_factory=SecurityConfig)
    serving: ServingLimits = field(default_factory=ServingLimits)
    etcd_tls: EtcdTLS = field(default_factory=EtcdTLS)
    encryption_provider_config: str = ""  # an EncryptionConfiguration file (Secrets encrypted at rest)
    max_object_size_bytes: int = DEFAULT_MAX_OBJECT_BYTES  # an object's stored size (etcd's request limit)
    kubelet: KubeletClientConfig = field(default_factory=KubeletClientConfig)  # how pods/log and exec reach kubelets
    identity: IdentityOptions = field(default_factory=IdentityOptions)  # this process's identity Lease
    endpoint_reconciler: ReconcilerOptions = field(default_factory=ReconcilerOptions)  # the `kubernetes` Endpoints


def _api_endpoint(config: Config) -> tuple[str, int]:
    """Where in-cluster clients reach the API: the secure port when served, else the insecure one."""
    if config.secure_port:
        return config.advertise_address, config.secure_port
    return config.insecure_bind_address, config.insecure_port


def _kubernetes_service(ip: str, config: Config) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ip,
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": _api_endpoint(config)[1]}],
            "sessionAffinity": "None",
        },
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
        current = await reg.get(res, "default", "kubernetes")
    except errors.StatusError as e:
        if e.code != 404:
            raise
    else:
        await _retarget_kubernetes_service(reg, current, config)
        return
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
        created = parse_time((held.get("metadata") or {}).get("creationTimestamp") or "1970-01-01T00:00:00Z")
        if datetime.now(UTC) - created < timedelta(seconds=_LEFTOVER_AFTER):
            raise  # another apiserver is creating the Service right now: look again after a back-off
        # allocated by an earlier start that died before the Service was written: free it and try again
        await reg.delete(ips, None, ip, {"preconditions": {"uid": held["metadata"]["uid"]}}, False)
        raise


async def _retarget_kubernetes_service(reg: Registry, svc: dict[str, Any], config: Config) -> None:
    """The `kubernetes` Service's https port points at the port the apiserver serves the API on now."""
    res = by_plural("", "services")
    assert res is not None
    target = _api_endpoint(config)[1]
    ports = (svc.get("spec") or {}).get("ports") or []
    if all(p.get("name") != "https" or p.get("targetPort") == target for p in ports):
        return

    def put(obj: dict[str, Any]) -> dict[str, Any]:
        for p in obj["spec"].get("ports") or []:
            if p.get("name") == "https":
                p["targetPort"] = target
        return obj

    await reg.update(res, "default", "kubernetes", put, WriteOptions())


async def _bootstrap(
    reg: Registry,
    config: Config,
    repair: ServiceRepair,
    tokens: ContinueTokens,
    endpoints: EndpointReconciler | None,
) -> None:
    """Create the default namespaces, the `kubernetes` ServiceCIDR, Service and Endpoints, then check allocations
    once. Every step is safe with several apiservers doing it at once (409s are fine, updates are CAS)."""
    await _retrying("continue-token key", partial(tokens.use_cluster_key, reg.storage))
    for name in DEFAULT_NAMESPACES:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        await _retrying(f"namespace {name}", partial(_create_missing, reg, "", "namespaces", None, body))
    await _retrying("RBAC bootstrap policy", partial(reconcile_bootstrap_policy, reg))
    for pc in SYSTEM_PRIORITY_CLASSES:  # upstream's scheduling post-start hook
        name = pc["metadata"]["name"]
        await _retrying(
            f"PriorityClass {name}", partial(_create_missing, reg, "scheduling.k8s.io", "priorityclasses", None, pc)
        )
    await _retrying("ServiceCIDR kubernetes", partial(_ensure_service_cidr, reg, config))
    await _retrying("Service kubernetes", partial(_ensure_kubernetes_service, reg, config))
    if endpoints is not None:
        await _retrying("Endpoints kubernetes", endpoints.reconcile)
    await _retrying("service allocation repair", repair.run_once)


def _chain_options(config: Config, reg: Registry, audit_log: AuditLog | None) -> ChainOptions:
    """The handler chain's stages, built from the flags (plug-ins come from apiserver.security)."""
    authorizers = build_authorizers(config.security, reg)
    return ChainOptions(
        authenticators=build_authenticators(config.security, reg),
        anonymous=config.security.anonymous_auth,
        impersonator=build_impersonator(config.security, reg, authorizers),
        max_requests_inflight=config.max_requests_inflight,
        max_mutating_requests_inflight=config.max_mutating_requests_inflight,
        audit_policy=load_policy(config.audit_policy_file) if config.audit_policy_file else None,
        audit_emit=audit_log.emit if audit_log is not None else None,
        authorizers=authorizers,
        request_timeout=config.request_timeout,
    )


def _entry(conn: HTTPConnection, reg: Registry) -> RequestContext:
    """Where the chain hands over to the handlers: the request's context, completed with the connection."""
    ctx = context_of(conn.scope)
    ctx.conn = conn
    ctx.registry = reg
    return ctx


def create_app(config: Config) -> FastAPI:
    """Build the apiserver app for one etcd: the handlers behind the handler chain.

    Raises ValueError for settings that cannot work (an unreadable audit policy, an unknown mode).
    """
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
    tokens = ContinueTokens()
    kinds = KindRegistry(KindOptions(service_network=network))
    reg = Registry(storage, cache, kinds, tokens)
    reg.use_admission(*build_admission(config.security, reg))
    crds = CRDController(reg, kinds)
    repair = ServiceRepair(reg, network)
    audit_log = AuditLog(config.audit_log_path) if config.audit_log_path else None
    options = _chain_options(config, reg, audit_log)
    aggregator = Aggregator(reg)
    kubelets = KubeletClient(config.kubelet)
    api_ip, api_port = _api_endpoint(config)
    identity = IdentityLease(reg, config.identity, f"{api_ip}:{api_port}")
    endpoints = (
        EndpointReconciler(reg, api_ip, api_port, config.endpoint_reconciler)
        if config.endpoint_reconciler.kind == "lease"
        else None
    )

    async def after_bootstrap(bootstrap: asyncio.Task[None]) -> None:
        """The identity Lease once this process is bootstrapped (its Lease existing says it serves)."""
        await bootstrap
        await asyncio.gather(identity.run(), identity.run_gc())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the schemas and each kind's required-field filler, compiled once before the first write
        await openapi.ensure_loaded()
        await asyncio.to_thread(required.compile_all, RESOURCES)
        gctuning.freeze_startup()  # the schemas and fillers are built: no collection walks them again
        if audit_log is not None:
            await audit_log.start()
        cache.start()
        tasks = [asyncio.create_task(_bootstrap(reg, config, repair, tokens, endpoints), name="bootstrap")]
        tasks.append(asyncio.create_task(after_bootstrap(tasks[0]), name="identity-lease"))
        if endpoints is not None:
            tasks.append(asyncio.create_task(endpoints.run(), name="endpoint-reconciler"))
        tasks.append(asyncio.create_task(aggregator.run(), name="aggregator"))
        tasks.append(asyncio.create_task(crds.run(), name="crd-controller"))
        if config.service_repair_interval > 0:
            tasks.append(asyncio.create_task(repair.run(config.service_repair_interval), name="service-repair"))
        if config.etcd_compaction_interval > 0:
            compactor = Compactor(storage, config.etcd_compaction_interval)
            tasks.append(asyncio.create_task(compactor.run(), name="compactor"))
        app.state.bootstrap = tasks[0]
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            if endpoints is not None and tasks[0].done():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await endpoints.stop(identity.name, config.identity.renew_interval)
            await cache.stop()
            await storage.close()
            await kubelets.aclose()
            if audit_log is not None:
                await audit_log.stop()

    app = FastAPI(
        title="tinykube apiserver",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        **fastapi_options(),
    )
    app.state.registry = reg
    app.state.kubelets = kubelets  # pods/log, pods/exec and pods/portforward (apiserver/proxy.py)
    app.state.authorizers = options.authorizers  # the `create` check of exec/portforward WebSockets
    app.state.identity = identity_of(config.security, reg)  # the token issuer and union (TokenRequest, TokenReview)
    if app.state.identity.issuer is None:  # no signing key: upstream neither serves nor advertises TokenRequests
        kinds.drop_subresource("", "serviceaccounts", "token")

    @app.exception_handler(errors.StatusError)
    async def _status_error(request: Request, exc: errors.StatusError) -> Response:
        return status_response(exc)

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
        if not cache.ready.is_set() or not app.state.bootstrap.done() or not crds.synced.is_set():
            return PlainTextResponse("[-]informer-sync failed\nreadyz check failed", 500)
        if not getattr(app.state, "all_listening", True):  # (`python -m apiserver` sets it; an app in a test has none)
            return PlainTextResponse("[-]listeners failed: not every port listens yet\nreadyz check failed", 500)
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
            return _aggregated(kinds, core=True)
        address, port = _api_endpoint(config)
        return json_response(discovery.api_versions(f"{address}:{port}"))

    @app.get("/apis")
    @app.get("/apis/")
    async def apis(request: Request) -> Response:
        if discovery.wants_aggregated(request.headers.get("accept")):
            doc = aggregator.aggregated(discovery.aggregated(kinds, False))
            return json_response(doc, headers={"Content-Type": discovery.AGGREGATED_CONTENT_TYPE})
        return json_response(aggregator.group_list(discovery.api_group_list(kinds)))

    async def api_path(request: Request) -> Response:
        ctx = _entry(request, reg)
        # aggregated APIs (apiserver/aggregator.py) and versions served by conversion (apiserver/versions.py);
        # the chain has authenticated and authorized the request already
        if (aggregated := await aggregator.route(request)) is not None:
            return aggregated
        if ctx.info is None:  # not a resource path; `/apis/<group>` is still a discovery document
            return _discovery_doc(kinds, ctx.path, ctx.method)

        async def dispatch(forward: Forward) -> Response:
            sub = copy.copy(ctx)  # the chain's context stays the client's request
            query = ctx.query if forward.query is None else dict(forward.query)
            sub.info, sub.path, sub.method, sub.query = forward.info, forward.path, forward.method, query
            sub.verb = request_verb(forward.method, forward.info, query)
            sub.body_bytes, sub.decoded_body = forward.body, forward.decoded
            sub.answer_object, sub.fields_checked = forward.answer_object, forward.fields_checked
            return await handle(sub)

        if not ctx.info.resource:
            return _discovery_doc(kinds, ctx.path, ctx.method)
        response = await serve_converted(request, ctx.info, ctx.query, dispatch, kinds)
        if response is None:
            response = await handle(ctx)
        if warning := kinds.deprecation(ctx.info.group, ctx.info.version, ctx.info.resource):
            response.headers.append("Warning", f'299 - "{warning}"')
        return response

    # innermost first: the API paths skip FastAPI's routing (apiserver/apiroute.py), the rest reaches it
    app.add_middleware(ApiRoute, endpoint=api_path, kinds=kinds)
    app.add_middleware(HandlerChain, options=options)
    app.add_middleware(BoundedRequests, limits=config.serving)  # outermost: body bounds, the last-resort 500

    async def exec_websocket(ws: WebSocket) -> None:
        await proxy.exec_websocket(_entry(ws, reg))

    async def attach_websocket(ws: WebSocket) -> None:
        await proxy.attach_websocket(_entry(ws, reg))

    async def portforward_websocket(ws: WebSocket) -> None:
        await portforward.portforward_websocket(_entry(ws, reg))

    # the built-in group versions' documents, and the served CRDs' (apiserver/crd/openapi.py)
    app.add_api_route("/openapi/v3", crds.openapi.index, methods=["GET"], include_in_schema=False)
    app.add_api_route("/openapi/v3/{path:path}", crds.openapi.group_version, methods=["GET"], include_in_schema=False)
    app.add_api_route("/openapi/v2", crds.openapi.openapi_v2, methods=["GET"], include_in_schema=False)
    # kubectl exec upgrades to a WebSocket on the exec subresource; plain HTTP requests fall through below
    app.add_api_websocket_route("/api/v1/namespaces/{namespace}/pods/{name}/exec", exec_websocket)
    app.add_api_websocket_route("/api/v1/namespaces/{namespace}/pods/{name}/attach", attach_websocket)
    app.add_api_websocket_route("/api/v1/namespaces/{namespace}/pods/{name}/portforward", portforward_websocket)
    app.add_api_route(
        "/{path:path}",
        api_path,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    return app


def _aggregated(kinds: KindRegistry, core: bool) -> Response:
    """Aggregated discovery (apidiscovery.k8s.io/v2) of /api or /apis."""
    doc = discovery.aggregated(kinds, core)
    return json_response(doc, headers={"Content-Type": discovery.AGGREGATED_CONTENT_TYPE})


def _discovery_doc(kinds: KindRegistry, path: str, method: str) -> Response:
    if method != "GET":
        raise errors.method_not_allowed()
    parts = [p for p in path.split("/") if p] or [""]
    if parts[0] == "api" and len(parts) == 2:
        doc = discovery.api_resource_list(kinds, parts[1])
    elif parts[0] == "apis" and len(parts) == 2:
        doc = discovery.api_group(kinds, parts[1])
    elif parts[0] == "apis" and len(parts) == 3:
        doc = discovery.api_resource_list(kinds, f"{parts[1]}/{parts[2]}")
    else:
        doc = None
    if doc is None:
        raise errors.path_not_found()
    return json_response(doc)
