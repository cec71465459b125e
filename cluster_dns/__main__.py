"""`python -m cluster_dns`: run the cluster DNS add-on (flags or TINYKUBE_* environment variables)."""

from __future__ import annotations

from apimachinery import gctuning, leanstart

gctuning.pause()  # until run_component freezes startup's objects
leanstart.skip_cli_modules()

import ipaddress
import logging

import click

from apimachinery.flags import command, kubeconfig_option, log_level_option, option, server_option
from apimachinery.logs import setup_logging
from client.component import ComponentOptions, run_component
from client.rest import ApiClient
from cluster_dns.app import ClusterDns, DnsOptions


@command()
@server_option
@kubeconfig_option
@option("--bind-address", required=True, envvar="TINYKUBE_BIND_ADDRESS", help="Address to serve DNS on.")
@option("--port", default=53, envvar="TINYKUBE_PORT", help="DNS port (UDP and TCP).")
@option(
    "--service-cluster-ip-range",
    required=True,
    envvar="TINYKUBE_SERVICE_CLUSTER_IP_RANGE",
    help="Service range; kube-dns gets its 10th address.",
)
@option("--cluster-domain", default="cluster.local", envvar="TINYKUBE_CLUSTER_DOMAIN", help="Cluster domain.")
@option(
    "--ttl",
    default=5,
    envvar="TINYKUBE_TTL",
    type=click.IntRange(min=0, max=3600),
    help="TTL of the cluster's records (s).",
)
@option(
    "--health-port",
    default=9153,
    envvar="TINYKUBE_HEALTH_PORT",
    help="Port on the bind address for /healthz, /readyz, /metrics (0: off).",
)
@option(
    "--resolv-conf",
    default="/etc/resolv.conf",
    envvar="TINYKUBE_RESOLV_CONF",
    help="Resolvers for names outside the cluster.",
)
@option(
    "--forward-timeout",
    default=2.0,
    envvar="TINYKUBE_FORWARD_TIMEOUT",
    type=click.FloatRange(min=0.01),
    help="Seconds to wait for upstream resolvers.",
)
@log_level_option
def cli(
    server: str,
    kubeconfig: str,
    bind_address: str,
    port: int,
    service_cluster_ip_range: str,
    cluster_domain: str,
    ttl: int,
    health_port: int,
    resolv_conf: str,
    forward_timeout: float,
    log_level: str,
) -> None:
    """Serve the cluster's DNS zone and forward every other name to the host's resolvers."""
    try:
        ipaddress.ip_address(bind_address)
        ipaddress.ip_network(service_cluster_ip_range, strict=False)
    except ValueError as e:
        raise click.BadParameter(str(e)) from e
    opts = DnsOptions(
        bind_address=bind_address,
        service_cluster_ip_range=service_cluster_ip_range,
        port=port,
        cluster_domain=cluster_domain,
        ttl=ttl,
        health_port=health_port,
        resolv_conf=resolv_conf,
        forward_timeout=forward_timeout,
    )
    setup_logging(log_level)  # before ClusterDns reads resolv.conf, which may warn
    try:
        dns_server = ClusterDns(opts)
    except ValueError as e:
        raise click.BadParameter(str(e)) from e

    async def main(api: ApiClient) -> None:
        """Serve until SIGTERM."""
        if log_level.lower() != "debug":
            logging.getLogger("httpx").setLevel(logging.WARNING)
        await dns_server.run(api)

    component = ComponentOptions(
        name="cluster-dns",
        server=server or None,
        kubeconfig=kubeconfig or None,
        health_bind=bind_address,
        health_port=health_port,
        log_level=log_level,
        ready=dns_server.ready,
    )
    run_component(component, main)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
