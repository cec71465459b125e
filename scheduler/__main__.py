"""`python -m scheduler`: run the scheduler (flags or TINYKUBE_* environment variables)."""

from __future__ import annotations

from apimachinery import gctuning

gctuning.pause()  # until run_component freezes startup's objects

import logging

import typer

from client.component import ComponentOptions, run_component
from client.rest import ApiClient
from scheduler.podinfo import DEFAULT_SCHEDULER_NAME
from scheduler.scheduler import run_scheduler

cli = typer.Typer(add_completion=False)


@cli.command()
def run(
    server: str = typer.Option("", envvar="TINYKUBE_SERVER", help="API server URL (overrides the kubeconfig)."),
    kubeconfig: str = typer.Option("", envvar="KUBECONFIG", help="kubeconfig file."),
    scheduler_name: str = typer.Option(
        DEFAULT_SCHEDULER_NAME, envvar="TINYKUBE_SCHEDULER_NAME", help="Schedule pods with this spec.schedulerName."
    ),
    health_port: int = typer.Option(10259, envvar="TINYKUBE_HEALTH_PORT", help="Port for /healthz and /metrics."),
    leader_elect: bool = typer.Option(True, envvar="TINYKUBE_LEADER_ELECT", help="Run only while holding the lease."),
    bind_concurrency: int = typer.Option(16, envvar="TINYKUBE_BIND_CONCURRENCY", help="Binds in flight at most."),
    percentage_of_nodes_to_score: int = typer.Option(
        0,
        envvar="TINYKUBE_PERCENTAGE_OF_NODES_TO_SCORE",
        min=0,
        max=100,
        help="Stop filtering once this percentage of the nodes is feasible (0: adaptive, as upstream).",
    ),
    log_level: str = typer.Option("info", envvar="TINYKUBE_LOG_LEVEL", help="Log level."),
) -> None:
    """Run the scheduler: bind pending pods to nodes that fit them."""

    async def main(api: ApiClient) -> None:
        if log_level.lower() != "debug":  # a line per request costs the bind path more than it tells
            logging.getLogger("httpx").setLevel(logging.WARNING)
        await run_scheduler(
            api,
            scheduler_name,
            bind_concurrency=bind_concurrency,
            percentage_of_nodes_to_score=percentage_of_nodes_to_score,
        )

    opts = ComponentOptions(
        name="scheduler",
        server=server or None,
        kubeconfig=kubeconfig or None,
        health_port=health_port,
        leader_elect=leader_elect,
        lease_name="kube-scheduler",
        log_level=log_level,
    )
    run_component(opts, main)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
