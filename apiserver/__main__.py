"""`python -m apiserver`: run the apiserver (flags or TINYKUBE_* environment variables)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import TypeVar

import typer
import uvicorn
from fastapi import FastAPI

from apimachinery.logs import setup_logging
from apiserver.app import Config, create_app
from apiserver.chain.listener import INSECURE, Listener
from apiserver.portallocator import PortRange
from apiserver.security import SecurityConfig

cli = typer.Typer(add_completion=False)


@cli.command()
def run(
    etcd_servers: str = typer.Option(
        "http://127.0.0.1:2379",
        envvar="TINYKUBE_ETCD_SERVERS",
        help="etcd endpoint(s), comma separated.",
    ),
    insecure_bind_address: str = typer.Option(
        None,
        envvar="TINYKUBE_INSECURE_BIND_ADDRESS",
        help="Address of the insecure port [default: 127.0.0.1].",
        show_default=False,
    ),
    insecure_port: int = typer.Option(
        None,
        envvar="TINYKUBE_INSECURE_PORT",
        help="Plain-HTTP port with full access, no authentication or authorization (0: none) [default: 8080].",
        show_default=False,
    ),
    bind_address: str = typer.Option(None, envvar="TINYKUBE_BIND_ADDRESS", hidden=True),
    port: int = typer.Option(None, envvar="TINYKUBE_PORT", hidden=True, help="Old name of --insecure-port."),
    watch_cache_size: int = typer.Option(
        1000,
        envvar="TINYKUBE_WATCH_CACHE_SIZE",
        help="Recent events kept per resource for watch resumes.",
    ),
    service_cluster_ip_range: str = typer.Option(
        "127.96.0.0/16",
        envvar="TINYKUBE_SERVICE_CLUSTER_IP_RANGE",
        help="CIDR that Service cluster IPs are allocated from.",
    ),
    service_node_port_range: str = typer.Option(
        "30000-32767",
        envvar="TINYKUBE_SERVICE_NODE_PORT_RANGE",
        help="Port range (low-high, inclusive) that Service node ports are allocated from.",
    ),
    service_repair_interval: float = typer.Option(
        180.0,
        envvar="TINYKUBE_SERVICE_REPAIR_INTERVAL",
        help="Seconds between passes recording unrecorded Service IPs/node ports and freeing leaked ones (0: once).",
    ),
    etcd_compaction_interval: float = typer.Option(
        300.0,
        envvar="TINYKUBE_ETCD_COMPACTION_INTERVAL",
        help="Seconds between etcd compactions (0 disables).",
    ),
    default_not_ready_toleration_seconds: int = typer.Option(
        300,
        envvar="TINYKUBE_DEFAULT_NOT_READY_TOLERATION_SECONDS",
        help="tolerationSeconds of the not-ready:NoExecute toleration added to every pod.",
    ),
    default_unreachable_toleration_seconds: int = typer.Option(
        300,
        envvar="TINYKUBE_DEFAULT_UNREACHABLE_TOLERATION_SECONDS",
        help="tolerationSeconds of the unreachable:NoExecute toleration added to every pod.",
    ),
    max_requests_inflight: int = typer.Option(
        400,
        envvar="TINYKUBE_MAX_REQUESTS_INFLIGHT",
        help="Most non-mutating requests in flight at once; more get 429 (0: no limit).",
    ),
    max_mutating_requests_inflight: int = typer.Option(
        200,
        envvar="TINYKUBE_MAX_MUTATING_REQUESTS_INFLIGHT",
        help="Most mutating requests in flight at once; more get 429 (0: no limit).",
    ),
    request_timeout: float = typer.Option(
        60.0, envvar="TINYKUBE_REQUEST_TIMEOUT", help="Seconds a non-long-running request may take."
    ),
    audit_policy_file: str = typer.Option(
        "", envvar="TINYKUBE_AUDIT_POLICY_FILE", help="audit.k8s.io/v1 Policy saying what to audit."
    ),
    audit_log_path: str = typer.Option(
        "",
        envvar="TINYKUBE_AUDIT_LOG_PATH",
        help="File the audit events are written to, one JSON per line (-: stdout).",
    ),
    anonymous_auth: bool = typer.Option(
        True,
        "--anonymous-auth/--no-anonymous-auth",
        envvar="TINYKUBE_ANONYMOUS_AUTH",
        help="Serve requests without credentials as system:anonymous (else 401).",
    ),
    authorization_mode: str = typer.Option(
        "",
        envvar="TINYKUBE_AUTHORIZATION_MODE",
        help="Comma-separated authorization modes, asked in order (empty: AlwaysAllow).",
    ),
    log_level: str = typer.Option("info", envvar="TINYKUBE_LOG_LEVEL", help="Log level."),
) -> None:
    """Serve the Kubernetes API over HTTP on top of etcd."""
    setup_logging(log_level)
    try:
        PortRange.parse(service_node_port_range)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--service-node-port-range") from e
    try:
        ipaddress.ip_network(service_cluster_ip_range, strict=False)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--service-cluster-ip-range") from e
    config = Config(
        etcd_servers=etcd_servers,
        insecure_bind_address=_first(insecure_bind_address, bind_address, "127.0.0.1"),
        insecure_port=_first(insecure_port, port, 8080),
        max_requests_inflight=max_requests_inflight,
        max_mutating_requests_inflight=max_mutating_requests_inflight,
        request_timeout=request_timeout,
        audit_policy_file=audit_policy_file,
        audit_log_path=audit_log_path,
        watch_cache_size=watch_cache_size,
        service_cluster_ip_range=service_cluster_ip_range,
        service_node_port_range=service_node_port_range,
        service_repair_interval=service_repair_interval,
        etcd_compaction_interval=etcd_compaction_interval,
        security=SecurityConfig(
            authorization_modes=tuple(m.strip() for m in authorization_mode.split(",") if m.strip()),
            anonymous_auth=anonymous_auth,
            default_not_ready_toleration_seconds=default_not_ready_toleration_seconds,
            default_unreachable_toleration_seconds=default_unreachable_toleration_seconds,
        ),
    )
    try:
        app = create_app(config)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    servers = []
    if config.insecure_port:
        servers.append(_listener(app, INSECURE, config.insecure_bind_address, config.insecure_port))
    if not servers:
        raise typer.BadParameter("no port to serve on", param_hint="--insecure-port")
    asyncio.run(_serve(servers))


T = TypeVar("T")


def _first(value: T | None, old_name: T | None, default: T) -> T:
    """A flag's value, else its old name's, else the default."""
    if value is not None:
        return value
    return old_name if old_name is not None else default


def _listener(app: FastAPI, name: str, host: str, port: int, **tls: object) -> _Server:
    """One uvicorn server of the app, its requests marked with the listener's name."""
    config = uvicorn.Config(
        Listener(app, name),
        host=host,
        port=port,
        log_config=None,
        timeout_graceful_shutdown=3,
        access_log=False,
        **tls,  # type: ignore[arg-type]
    )
    return _Server(config, app)


async def _serve(servers: list[_Server]) -> None:
    """Run every listener of the one app in this process. The first runs the app's lifespan (startup
    and shutdown); the others start listening once it has started. A signal stops them all."""
    first = asyncio.create_task(servers[0].serve())
    listening = asyncio.create_task(servers[0].listening.wait())
    await asyncio.wait({first, listening}, return_when=asyncio.FIRST_COMPLETED)
    listening.cancel()
    rest = []
    for server in servers[1:]:
        server.config.lifespan = "off"
        server.peers = servers
        rest.append(asyncio.create_task(server.serve()))
    servers[0].peers = servers
    await asyncio.gather(first, *rest)


class _Server(uvicorn.Server):
    """uvicorn, ending open watch streams cleanly as soon as SIGTERM or SIGINT arrives."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app
        self.peers: list[_Server] = []  # the other listeners of the same app, stopped together
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start (the lifespan, if on, then the socket) and say so."""
        await super().startup(sockets)
        self.listening.set()

    def handle_exit(self, sig: int, frame: object) -> None:
        cache = self.app.state.registry.cache
        try:
            asyncio.get_running_loop().call_soon_threadsafe(cache.close_watches)
        except RuntimeError:
            logging.getLogger("apiserver").warning("no running loop at shutdown signal")
        super().handle_exit(sig, frame)  # type: ignore[arg-type]
        for peer in self.peers:
            peer.should_exit = True
            peer.force_exit = peer.force_exit or self.force_exit
        self._captured_signals.clear()  # handled: exit 0 after a graceful shutdown


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
