"""`python -m kube_proxy`: one node's kube-proxy in userspace mode (flags or TINYKUBE_* environment variables)."""

from __future__ import annotations

from apimachinery import gctuning, leanstart

gctuning.pause()  # until run_component freezes startup's objects
leanstart.skip_cli_modules()

import contextlib
import ipaddress
import logging
import resource
import socket

import click

from apimachinery.durations import parse_duration
from apimachinery.flags import command, kubeconfig_option, log_level_option, option, server_option
from client.component import ComponentOptions, run_component
from client.rest import ApiClient
from kube_proxy.plan import NodeInfo
from kube_proxy.proxier import ProxierOptions
from kube_proxy.server import ProxyOptions, ProxyServer


def _raise_open_files_limit() -> None:
    """Every proxied connection costs two descriptors: use the hard limit, as Go programs do."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _duration(name: str, text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=name) from None


@command()
@server_option
@kubeconfig_option
@option(
    "--node-name",
    default="",
    envvar="TINYKUBE_NODE_NAME",
    help="This node's name (endpoints' nodeName); default: the hostname.",
)
@option(
    "--bind-address",
    default="127.0.0.1",
    envvar="TINYKUBE_BIND_ADDRESS",
    help="This node's address: NodePorts, healthz and metrics listen there.",
)
@option("--healthz-port", default=10256, envvar="TINYKUBE_HEALTHZ_PORT", help="Port of /healthz (0: off).")
@option("--metrics-port", default=10249, envvar="TINYKUBE_METRICS_PORT", help="Port of /metrics (0: off).")
@option(
    "--sync-period",
    default="30",
    envvar="TINYKUBE_SYNC_PERIOD",
    help="Longest time between full syncs (seconds or 30s).",
)
@option(
    "--min-sync-period",
    default="0.1",
    envvar="TINYKUBE_MIN_SYNC_PERIOD",
    help="Shortest time between syncs; changes in between are batched.",
)
@option(
    "--udp-timeout",
    default="2s",
    envvar="TINYKUBE_UDP_TIMEOUT",
    help="Idle time after which a UDP client association is closed.",
)
@log_level_option
def cli(
    server: str,
    kubeconfig: str,
    node_name: str,
    bind_address: str,
    healthz_port: int,
    metrics_port: int,
    sync_period: str,
    min_sync_period: str,
    udp_timeout: str,
    log_level: str,
) -> None:
    """Run kube-proxy: forward Service addresses (ClusterIP, NodePort, LoadBalancer, external IPs) to endpoints."""
    try:
        address = str(ipaddress.IPv4Address(bind_address))
    except ValueError:
        raise click.BadParameter(f'"{bind_address}" is not an IPv4 address', param_hint="--bind-address") from None
    for name, port in (("--healthz-port", healthz_port), ("--metrics-port", metrics_port)):
        if not 0 <= port <= 65535:
            raise click.BadParameter(f"{port} is not a port number", param_hint=name)
    period = _duration("--sync-period", sync_period)
    min_period = _duration("--min-sync-period", min_sync_period)
    udp_idle = _duration("--udp-timeout", udp_timeout)
    if period <= 0 or udp_idle <= 0:
        raise click.BadParameter("--sync-period and --udp-timeout must be greater than 0")
    if min_period > period:
        raise click.BadParameter(f"must not exceed --sync-period ({period}s)", param_hint="--min-sync-period")
    options = ProxyOptions(
        node=NodeInfo(node_name or socket.gethostname().lower(), address),
        healthz_port=healthz_port,
        metrics_port=metrics_port,
        sync_period=period,
        min_sync_period=min_period,
        proxier=ProxierOptions(udp_idle_timeout=udp_idle),
    )

    _raise_open_files_limit()

    async def main(api: ApiClient) -> None:
        if log_level.lower() != "debug":
            logging.getLogger("httpx").setLevel(logging.WARNING)
        await ProxyServer(api, options).run()

    opts = ComponentOptions(
        name="kube-proxy",
        server=server or None,
        kubeconfig=kubeconfig or None,
        health_port=0,  # kube-proxy serves its own healthz and metrics servers
        log_level=log_level,
    )
    run_component(opts, main)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
