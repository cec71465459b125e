"""`python -m apiserver`: run the apiserver (flags or TINYKUBE_* environment variables)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

import typer
import uvicorn

from apimachinery.logs import setup_logging
from apiserver import memory
from apiserver.app import Config, create_app
from apiserver.encryption import EncryptionConfigError, load_encryption_config
from apiserver.etcdclient import EtcdTLS, parse_endpoints
from apiserver.httpserver import raise_open_files_limit, uvicorn_options
from apiserver.limits import ServingLimits
from apiserver.portallocator import PortRange
from apiserver.storage import DEFAULT_MAX_OBJECT_BYTES

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
    etcd_cafile: str = typer.Option(
        "", envvar="TINYKUBE_ETCD_CAFILE", help="CA bundle that verifies the etcd servers (https endpoints)."
    ),
    etcd_certfile: str = typer.Option("", envvar="TINYKUBE_ETCD_CERTFILE", help="Client certificate for etcd."),
    etcd_keyfile: str = typer.Option("", envvar="TINYKUBE_ETCD_KEYFILE", help="Client key for etcd."),
    encryption_provider_config: str = typer.Option(
        "",
        envvar="TINYKUBE_ENCRYPTION_PROVIDER_CONFIG",
        help="EncryptionConfiguration file: resources encrypted at rest (aescbc, aesgcm, secretbox, identity).",
    ),
    max_object_size_bytes: int = typer.Option(
        DEFAULT_MAX_OBJECT_BYTES,
        envvar="TINYKUBE_MAX_OBJECT_SIZE_BYTES",
        help="Largest object as stored in etcd (413 past it; match etcd's --max-request-bytes; 0: etcd decides).",
    ),
    max_request_body_bytes: int = typer.Option(
        ServingLimits.max_request_body_bytes,
        envvar="TINYKUBE_MAX_REQUEST_BODY_BYTES",
        help="Largest request body accepted (413 past it, before it is read whole; 0: no bound).",
    ),
    request_body_timeout: float = typer.Option(
        ServingLimits.request_body_timeout,
        envvar="TINYKUBE_REQUEST_BODY_TIMEOUT",
        help="Seconds a client has to send a whole request body (408 after).",
    ),
    max_header_bytes: int = typer.Option(
        ServingLimits.max_header_bytes,
        envvar="TINYKUBE_MAX_HEADER_BYTES",
        help="Largest request line plus headers accepted (431 past it).",
    ),
    header_timeout: float = typer.Option(
        ServingLimits.header_timeout,
        envvar="TINYKUBE_HEADER_TIMEOUT",
        help="Seconds a client has to send a request's headers before the connection is closed.",
    ),
    max_open_connections: int = typer.Option(
        ServingLimits.max_open_connections,
        envvar="TINYKUBE_MAX_OPEN_CONNECTIONS",
        help="Open connections served at once (more are answered 503 and closed; 0: no bound).",
    ),
    max_connections_per_client: int = typer.Option(
        ServingLimits.max_connections_per_client,
        envvar="TINYKUBE_MAX_CONNECTIONS_PER_CLIENT",
        help="Open connections from one client address (more are answered 429 and closed; 0: no bound).",
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
    try:
        parse_endpoints(etcd_servers)
        if encryption_provider_config:
            load_encryption_config(encryption_provider_config)
    except ValueError as e:
        hint = "--encryption-provider-config" if isinstance(e, EncryptionConfigError) else "--etcd-servers"
        raise typer.BadParameter(str(e), param_hint=hint) from e
    if bool(etcd_certfile) != bool(etcd_keyfile):
        raise typer.BadParameter("--etcd-certfile and --etcd-keyfile go together", param_hint="--etcd-certfile")
    config = Config(
        etcd_servers=etcd_servers,
        etcd_tls=EtcdTLS(etcd_cafile, etcd_certfile, etcd_keyfile),
        encryption_provider_config=encryption_provider_config,
        max_object_size_bytes=max_object_size_bytes,
        bind_address=bind_address,
        port=port,
        watch_cache_size=watch_cache_size,
        service_cluster_ip_range=service_cluster_ip_range,
        service_node_port_range=service_node_port_range,
        service_repair_interval=service_repair_interval,
        etcd_compaction_interval=etcd_compaction_interval,
        default_not_ready_toleration_seconds=default_not_ready_toleration_seconds,
        default_unreachable_toleration_seconds=default_unreachable_toleration_seconds,
        serving=ServingLimits(
            max_request_body_bytes=max_request_body_bytes,
            request_body_timeout=request_body_timeout,
            max_header_bytes=max_header_bytes,
            header_timeout=header_timeout,
            max_open_connections=max_open_connections,
            max_connections_per_client=max_connections_per_client,
        ),
    )
    raise_open_files_limit()
    memory.configure()
    app = create_app(config)
    uv_config = uvicorn.Config(
        app,
        host=bind_address,
        port=port,
        log_config=None,
        timeout_graceful_shutdown=3,
        access_log=False,
        **uvicorn_options(config.serving),
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
