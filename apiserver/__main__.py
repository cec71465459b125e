"""`python -m apiserver`: run the apiserver (flags or TINYKUBE_* environment variables)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

import typer
import uvicorn

from apimachinery.logs import setup_logging
from apiserver.app import Config, create_app
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
    bind_address: str = typer.Option("127.0.0.1", envvar="TINYKUBE_BIND_ADDRESS", help="Address to listen on."),
    port: int = typer.Option(8080, envvar="TINYKUBE_PORT", help="Port to listen on."),
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
        bind_address=bind_address,
        port=port,
        watch_cache_size=watch_cache_size,
        service_cluster_ip_range=service_cluster_ip_range,
        service_node_port_range=service_node_port_range,
        service_repair_interval=service_repair_interval,
        etcd_compaction_interval=etcd_compaction_interval,
        security=SecurityConfig(
            authorization_modes=tuple(m.strip() for m in authorization_mode.split(",") if m.strip()),
            default_not_ready_toleration_seconds=default_not_ready_toleration_seconds,
            default_unreachable_toleration_seconds=default_unreachable_toleration_seconds,
        ),
    )
    try:
        app = create_app(config)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    uv_config = uvicorn.Config(
        app, host=bind_address, port=port, log_config=None, timeout_graceful_shutdown=3, access_log=False
    )
    _Server(uv_config).run()


class _Server(uvicorn.Server):
    """uvicorn, ending open watch streams cleanly as soon as SIGTERM or SIGINT arrives."""

    def handle_exit(self, sig: int, frame: object) -> None:
        cache = self.config.app.state.registry.cache
        try:
            asyncio.get_running_loop().call_soon_threadsafe(cache.close_watches)
        except RuntimeError:
            logging.getLogger("apiserver").warning("no running loop at shutdown signal")
        super().handle_exit(sig, frame)  # type: ignore[arg-type]
        self._captured_signals.clear()  # handled: exit 0 after a graceful shutdown


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
