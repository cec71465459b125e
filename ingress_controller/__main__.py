"""`python -m ingress_controller`: run the HTTP ingress controller add-on (flags or TINYKUBE_* variables)."""

from __future__ import annotations

from apimachinery import gctuning, leanstart

gctuning.pause()  # until run_component freezes startup's objects
leanstart.skip_cli_modules()

import asyncio
import ipaddress
import logging

import click

from apimachinery.flags import command, kubeconfig_option, log_level_option, option, server_option
from client.component import ComponentOptions, run_component
from client.rest import ApiClient
from ingress_controller.controller import IngressOptions, run_ingress_controller
from ingress_controller.proxy import ProxyOptions


@command()
@server_option
@kubeconfig_option
@option(
    "--bind-address",
    required=True,
    envvar="TINYKUBE_BIND_ADDRESS",
    help="Address to serve HTTP (and health) on; published as the endpoint.",
)
@option("--port", default=80, envvar="TINYKUBE_PORT", help="HTTP port.")
@option(
    "--health-port",
    default=10254,
    envvar="TINYKUBE_HEALTH_PORT",
    help="Port for /healthz, /readyz and /metrics (on the bind address).",
)
@option(
    "--ingress-class",
    default="tinykube",
    envvar="TINYKUBE_INGRESS_CLASS",
    help="Name of the IngressClass this controller applies and serves.",
)
@option(
    "--default-class/--no-default-class",
    default=True,
    envvar="TINYKUBE_DEFAULT_CLASS",
    help="Mark the IngressClass as the cluster's default (Ingresses without a class are served).",
)
@option(
    "--publish-service",
    default="kube-system/ingress-nginx-controller",
    envvar="TINYKUBE_PUBLISH_SERVICE",
    help="NAMESPACE/NAME of the LoadBalancer Service to publish; its address goes to Ingress status.",
)
@option(
    "--proxy-connect-timeout",
    default=5.0,
    envvar="TINYKUBE_PROXY_CONNECT_TIMEOUT",
    help="Seconds to connect to an endpoint.",
)
@option(
    "--proxy-read-timeout",
    default=60.0,
    envvar="TINYKUBE_PROXY_READ_TIMEOUT",
    help="Seconds between two reads from an endpoint.",
)
@option(
    "--proxy-send-timeout",
    default=60.0,
    envvar="TINYKUBE_PROXY_SEND_TIMEOUT",
    help="Seconds between two writes to an endpoint.",
)
@log_level_option
def cli(
    server: str,
    kubeconfig: str,
    bind_address: str,
    port: int,
    health_port: int,
    ingress_class: str,
    default_class: bool,
    publish_service: str,
    proxy_connect_timeout: float,
    proxy_read_timeout: float,
    proxy_send_timeout: float,
    log_level: str,
) -> None:
    """Run the ingress controller: route HTTP by host and path to the Services Ingresses name."""
    try:
        ip = ipaddress.ip_address(bind_address)
    except ValueError:
        raise click.BadParameter(f"{bind_address!r} is not an IP address", param_hint="--bind-address") from None
    if ip.is_unspecified:
        raise click.BadParameter("must be one address (it is published as the endpoint)", param_hint="--bind-address")
    publish_namespace, slash, publish_name = publish_service.partition("/")
    if not slash or not publish_namespace or not publish_name:
        raise click.BadParameter("expected NAMESPACE/NAME", param_hint="--publish-service")
    opts = IngressOptions(
        bind_address=bind_address,
        publish_namespace=publish_namespace,
        publish_name=publish_name,
        port=port,
        ingress_class=ingress_class,
        default_class=default_class,
        proxy=ProxyOptions(
            port=port,
            connect_timeout=proxy_connect_timeout,
            read_timeout=proxy_read_timeout,
            send_timeout=proxy_send_timeout,
        ),
    )
    ready = asyncio.Event()

    async def main(api: ApiClient) -> None:
        if log_level.lower() != "debug":  # a line per API call tells little
            logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("httpcore").setLevel(logging.INFO)  # a line per read and write of every request
        await run_ingress_controller(api, opts, ready)

    component = ComponentOptions(
        name="ingress-controller",
        server=server or None,
        kubeconfig=kubeconfig or None,
        health_bind=bind_address,
        health_port=health_port,
        log_level=log_level,
        ready=ready.is_set,
    )
    run_component(component, main)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
