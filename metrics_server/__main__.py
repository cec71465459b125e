"""`python -m metrics_server`: the Metrics API add-on (flags or TINYKUBE_* environment variables)."""

from __future__ import annotations

from apimachinery import gctuning, leanstart

gctuning.pause()  # until run_component freezes startup's objects
leanstart.skip_cli_modules()

import ipaddress
import logging

import click

from apimachinery.flags import command, kubeconfig_option, log_level_option, option, server_option
from client.component import ComponentOptions, run_component
from client.rest import ApiClient
from metrics_server.app import MetricsServer, MetricsServerOptions
from metrics_server.kubelet_client import KubeletClientOptions


@command()
@server_option
@kubeconfig_option
@option("--bind-address", required=True, envvar="TINYKUBE_BIND_ADDRESS", help="Address to serve the Metrics API on.")
@option(
    "--port",
    default=10250,
    envvar="TINYKUBE_PORT",
    type=click.IntRange(min=1, max=65535),
    help="Port of the Metrics API.",
)
@option(
    "--metric-resolution",
    default=15.0,
    envvar="TINYKUBE_METRIC_RESOLUTION",
    type=click.FloatRange(min=0.1),
    help="Seconds between scrapes of the kubelets (the CPU rate is over this window).",
)
@option(
    "--kubelet-request-timeout",
    default=10.0,
    envvar="TINYKUBE_KUBELET_REQUEST_TIMEOUT",
    type=click.FloatRange(min=0.1),
    help="Seconds to wait for one kubelet.",
)
@option(
    "--kubelet-insecure-tls",
    is_flag=True,
    default=False,
    envvar="TINYKUBE_KUBELET_INSECURE_TLS",
    help="Do not verify the kubelets' serving certificates. For testing purposes only.",
)
@option(
    "--kubelet-certificate-authority",
    default="",
    envvar="TINYKUBE_KUBELET_CERTIFICATE_AUTHORITY",
    help="CA bundle verifying the kubelets' serving certificates [default: the kubeconfig's CA].",
)
@option(
    "--kubelet-client-certificate",
    default="",
    envvar="TINYKUBE_KUBELET_CLIENT_CERTIFICATE",
    help="Client certificate for the kubelets [default: the kubeconfig's credentials].",
)
@option("--kubelet-client-key", default="", envvar="TINYKUBE_KUBELET_CLIENT_KEY", help="Its key.")
@option(
    "--deprecated-kubelet-completely-insecure",
    is_flag=True,
    default=False,
    envvar="TINYKUBE_DEPRECATED_KUBELET_COMPLETELY_INSECURE",
    help="Plain HTTP to the kubelets, without credentials (kubelets serving without TLS).",
)
@option(
    "--register/--no-register",
    default=True,
    envvar="TINYKUBE_REGISTER",
    help="Publish the metrics-server Service and the v1beta1.metrics.k8s.io APIService at start.",
)
@option(
    "--health-port",
    default=0,
    envvar="TINYKUBE_HEALTH_PORT",
    help="Port on the bind address for /healthz, /readyz, /metrics (0: off).",
)
@log_level_option
def cli(
    server: str,
    kubeconfig: str,
    bind_address: str,
    port: int,
    metric_resolution: float,
    kubelet_request_timeout: float,
    kubelet_insecure_tls: bool,
    kubelet_certificate_authority: str,
    kubelet_client_certificate: str,
    kubelet_client_key: str,
    deprecated_kubelet_completely_insecure: bool,
    register: bool,
    health_port: int,
    log_level: str,
) -> None:
    """Scrape every kubelet's resource metrics and serve metrics.k8s.io/v1beta1 (`kubectl top`, autoscaling)."""
    try:
        ipaddress.ip_address(bind_address)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--bind-address") from e
    kubelet = KubeletClientOptions(
        insecure_tls=kubelet_insecure_tls,
        certificate_authority=kubelet_certificate_authority,
        client_certificate=kubelet_client_certificate,
        client_key=kubelet_client_key,
        completely_insecure=deprecated_kubelet_completely_insecure,
    )
    try:
        kubelet.check()
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    metrics = MetricsServer(
        MetricsServerOptions(
            bind_address=bind_address,
            port=port,
            metric_resolution=metric_resolution,
            kubelet_request_timeout=kubelet_request_timeout,
            register=register,
            kubelet=kubelet,
        )
    )

    async def main(api: ApiClient) -> None:
        if log_level.lower() != "debug":
            logging.getLogger("httpx").setLevel(logging.WARNING)
        await metrics.run(api)

    component = ComponentOptions(
        name="metrics-server",
        server=server or None,
        kubeconfig=kubeconfig or None,
        health_bind=bind_address,
        health_port=health_port,
        log_level=log_level,
        ready=metrics.ready,
    )
    run_component(component, main)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
