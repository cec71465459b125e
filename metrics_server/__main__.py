"""`python -m metrics_server`: the Metrics API add-on (flags or TINYKUBE_* environment variables)."""

from __future__ import annotations

import ipaddress
import logging

import typer

from client.component import ComponentOptions, run_component
from client.rest import ApiClient
from metrics_server.app import MetricsServer, MetricsServerOptions

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
    metrics = MetricsServer(
        MetricsServerOptions(
            bind_address=bind_address,
            port=port,
            metric_resolution=metric_resolution,
            kubelet_request_timeout=kubelet_request_timeout,
            register=register,
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
