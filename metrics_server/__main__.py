"""`python -m metrics_server`: the Metrics API add-on (flags or TINYKUBE_* environment variables)."""

from __future__ import annotations

from apimachinery import gctuning

gctuning.pause()  # until run_component freezes startup's objects

import ipaddress
import logging

import typer

from client.component import ComponentOptions, run_component
from client.rest import ApiClient
from metrics_server.app import MetricsServer, MetricsServerOptions
from metrics_server.kubelet_client import KubeletClientOptions

cli = typer.Typer(add_completion=False)


@cli.command()
def run(
    server: str = typer.Option("", envvar="TINYKUBE_SERVER", help="API server URL (overrides the kubeconfig)."),
    kubeconfig: str = typer.Option("", envvar="KUBECONFIG", help="kubeconfig file."),
    bind_address: str = typer.Option(..., envvar="TINYKUBE_BIND_ADDRESS", help="Address to serve the Metrics API on."),
    port: int = typer.Option(10250, envvar="TINYKUBE_PORT", min=1, max=65535, help="Port of the Metrics API."),
    metric_resolution: float = typer.Option(
        15.0,
        envvar="TINYKUBE_METRIC_RESOLUTION",
        min=0.1,
        help="Seconds between scrapes of the kubelets (the CPU rate is over this window).",
    ),
    kubelet_request_timeout: float = typer.Option(
        10.0, envvar="TINYKUBE_KUBELET_REQUEST_TIMEOUT", min=0.1, help="Seconds to wait for one kubelet."
    ),
    kubelet_insecure_tls: bool = typer.Option(
        False,
        "--kubelet-insecure-tls",
        envvar="TINYKUBE_KUBELET_INSECURE_TLS",
        help="Do not verify the kubelets' serving certificates. For testing purposes only.",
    ),
    kubelet_certificate_authority: str = typer.Option(
        "",
        envvar="TINYKUBE_KUBELET_CERTIFICATE_AUTHORITY",
        help="CA bundle verifying the kubelets' serving certificates [default: the kubeconfig's CA].",
    ),
    kubelet_client_certificate: str = typer.Option(
        "",
        envvar="TINYKUBE_KUBELET_CLIENT_CERTIFICATE",
        help="Client certificate for the kubelets [default: the kubeconfig's credentials].",
    ),
    kubelet_client_key: str = typer.Option("", envvar="TINYKUBE_KUBELET_CLIENT_KEY", help="Its key."),
    deprecated_kubelet_completely_insecure: bool = typer.Option(
        False,
        "--deprecated-kubelet-completely-insecure",
        envvar="TINYKUBE_DEPRECATED_KUBELET_COMPLETELY_INSECURE",
        help="Plain HTTP to the kubelets, without credentials (kubelets serving without TLS).",
    ),
    register: bool = typer.Option(
        True,
        envvar="TINYKUBE_REGISTER",
        help="Publish the metrics-server Service and the v1beta1.metrics.k8s.io APIService at start.",
    ),
    health_port: int = typer.Option(
        0, envvar="TINYKUBE_HEALTH_PORT", help="Port on the bind address for /healthz, /readyz, /metrics (0: off)."
    ),
    log_level: str = typer.Option("info", envvar="TINYKUBE_LOG_LEVEL", help="Log level."),
) -> None:
    """Scrape every kubelet's resource metrics and serve metrics.k8s.io/v1beta1 (`kubectl top`, autoscaling)."""
    try:
        ipaddress.ip_address(bind_address)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--bind-address") from e
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
        raise typer.BadParameter(str(e)) from None
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
