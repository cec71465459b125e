"""The ingress controller: applies its IngressClass, watches Ingresses, IngressClasses, Services and
EndpointSlices, serves HTTP on `bind_address:port`, publishes itself as the LoadBalancer Service
kube-system/ingress-nginx-controller and writes that Service's address into each Ingress's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx
import uvicorn

from apimachinery.errors import StatusError
from apimachinery.httpserver import bind_socket
from apimachinery.resources import ResourceInfo, by_plural
from client.addon import AddonEndpoint, publish_addon
from client.backoff import Backoff
from client.component import _QuietServer as QuietServer
from client.events import EventRecorder
from client.informer import InformerFactory
from client.request import Obj, PatchType
from client.rest import ApiClient
from client.store import meta_key
from ingress_controller.classes import CONTROLLER_NAME, ingress_class_manifest
from ingress_controller.proxy import IngressProxy, ProxyOptions, QuietAborts
from ingress_controller.state import SLICE_SERVICE_INDEX, RoutingState, slice_service_indexer
from ingress_controller.status import StatusSyncer

__all__ = [
    "INGRESSES",
    "INGRESS_CLASSES",
    "IngressOptions",
    "publish_service",
    "run_ingress_controller",
]

log = logging.getLogger("ingress")

FIELD_MANAGER = "tinykube-ingress-controller"
EVENT_SOURCE = "nginx-ingress-controller"
# the apiserver's table when it serves them; the same names otherwise
INGRESSES = by_plural("networking.k8s.io", "ingresses") or ResourceInfo(
    "networking.k8s.io", "v1", "Ingress", "ingresses", short_names=("ing",), subresources=("status",), has_status=True
)
INGRESS_CLASSES = by_plural("networking.k8s.io", "ingressclasses") or ResourceInfo(
    "networking.k8s.io", "v1", "IngressClass", "ingressclasses", namespaced=False
)
_LABELS = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}

T = TypeVar("T")


@dataclass(frozen=True)
class IngressOptions:
    """What the controller is told on its command line."""

    bind_address: str
    port: int = 80
    ingress_class: str = "tinykube"
    default_class: bool = True
    controller: str = CONTROLLER_NAME
    publish_namespace: str = "kube-system"
    publish_name: str = "ingress-nginx-controller"
    proxy: ProxyOptions = field(default_factory=ProxyOptions)


def publish_service(opts: IngressOptions, port: int) -> Obj:
    """The LoadBalancer Service the controller is reached through (port `http` 80 → `port`)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": opts.publish_name, "namespace": opts.publish_namespace, "labels": dict(_LABELS)},
        "spec": {
            "type": "LoadBalancer",
            "ports": [{"name": "http", "port": 80, "targetPort": port, "protocol": "TCP", "appProtocol": "http"}],
        },
    }


async def _persist(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """Run `call` until it succeeds, backing off while the apiserver is unreachable or failing (5xx);
    a 4xx answer is a real error and is raised."""
    backoff = Backoff(initial=0.5, cap=10.0)
    attempt = 0
    while True:
        try:
            return await call()
        except (httpx.TransportError, StatusError) as e:
            if isinstance(e, StatusError) and e.code < 500:
                raise
            delay = backoff.delay(attempt)
            attempt += 1
            log.warning("%s failed (%s); retrying in %.1fs", what, e, delay)
            await asyncio.sleep(delay)


def _spec_changed(old: Obj, new: Obj) -> bool:
    return old.get("spec") != new.get("spec") or (old.get("metadata") or {}).get("annotations") != (
        new.get("metadata") or {}
    ).get("annotations")


async def run_ingress_controller(api: ApiClient, opts: IngressOptions, ready: asyncio.Event) -> None:
    """Run until cancelled; `ready` is set once the informers have synced, the server listens and the
    Service is published."""
    klass = ingress_class_manifest(opts.ingress_class, opts.default_class, opts.controller)
    try:
        await _persist(
            f"applying IngressClass {opts.ingress_class}",
            lambda: api.patch(
                INGRESS_CLASSES,
                opts.ingress_class,
                klass,
                patch_type=PatchType.APPLY,
                field_manager=FIELD_MANAGER,
                force=True,
            ),
        )
    except StatusError as e:
        if e.code == 404:
            raise RuntimeError("the apiserver does not serve networking.k8s.io/v1 IngressClasses") from e
        raise

    factory = InformerFactory(api)
    ingresses = factory.informer(INGRESSES)
    classes = factory.informer(INGRESS_CLASSES)
    services = factory.informer("services")
    slices = factory.informer("endpointslices", indexers={SLICE_SERVICE_INDEX: slice_service_indexer})
    state = RoutingState(
        opts.ingress_class, ingresses.store, classes.store, services.store, slices.store, opts.controller
    )
    syncer = StatusSyncer(api, INGRESSES, state, f"{opts.publish_namespace}/{opts.publish_name}")
    recorder = EventRecorder(api, EVENT_SOURCE)

    def ingress_added(obj: Obj) -> None:
        state.routes_changed()
        if state.class_filter.serves(obj):
            recorder.record(obj, "Normal", "Sync", "Scheduled for sync")
        syncer.enqueue(meta_key(obj))

    def ingress_updated(old: Obj, new: Obj) -> None:
        if _spec_changed(old, new):
            state.routes_changed()
            if state.class_filter.serves(new):
                recorder.record(new, "Normal", "Sync", "Scheduled for sync")
        syncer.enqueue(meta_key(new))

    def class_changed(*_: Obj) -> None:
        state.classes_changed()
        syncer.enqueue_all()

    def service_changed(*objs: Obj) -> None:
        state.endpoints_changed()
        if meta_key(objs[-1]) == syncer.publish_key:
            syncer.enqueue_all()

    ingresses.add_handler(ingress_added, ingress_updated, lambda _: state.routes_changed())
    classes.add_handler(class_changed, class_changed, class_changed)
    services.add_handler(service_changed, service_changed, service_changed)
    endpoints_changed = lambda *_: state.endpoints_changed()  # noqa: E731
    slices.add_handler(endpoints_changed, endpoints_changed, endpoints_changed)

    logging.getLogger("uvicorn.error").addFilter(QuietAborts())
    sock = bind_socket(opts.bind_address, opts.port)
    port = sock.getsockname()[1]
    proxy_opts = ProxyOptions(**{**opts.proxy.__dict__, "port": port})
    transport = proxy_opts.transport()
    server = QuietServer(
        uvicorn.Config(
            IngressProxy(state, proxy_opts, transport),
            http="httptools",
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            date_header=False,
            timeout_keep_alive=75,
            timeout_graceful_shutdown=5,
        )
    )
    serving: asyncio.Task[None] | None = None
    try:
        async with recorder, factory, asyncio.TaskGroup() as tg:
            while not await factory.wait_for_sync(timeout=30):
                log.warning("informers not synced after 30s; still waiting")
            tg.create_task(syncer.run())
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started:  # uvicorn has no started event
                if serving.done():
                    raise RuntimeError("the HTTP server did not start")
                await asyncio.sleep(0.01)
            log.info("serving Ingresses of class %s on %s:%d", opts.ingress_class, opts.bind_address, port)
            await _persist(
                "publishing the Service",
                lambda: publish_addon(
                    api,
                    publish_service(opts, port),
                    opts.bind_address,
                    [AddonEndpoint("http", port)],
                    field_manager=FIELD_MANAGER,
                ),
            )
            ready.set()
            await asyncio.shield(serving)  # on cancellation the server still gets to shut down gracefully
            raise RuntimeError("the HTTP server stopped")
    finally:
        ready.clear()
        server.should_exit = True
        if serving is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(serving, 10)
        with contextlib.suppress(Exception):
            await transport.aclose()
        sock.close()
