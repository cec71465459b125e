"""`python -m scheduler`: run the scheduler (flags or TINYKUBE_* environment variables)."""

from __future__ import annotations

from apimachinery import gctuning, leanstart

gctuning.pause()  # until run_component freezes startup's objects
leanstart.skip_cli_modules()

import logging

import click

from apimachinery.flags import command, kubeconfig_option, log_level_option, option, server_option
from client.component import ComponentOptions, run_component
from client.rest import ApiClient
from scheduler.podinfo import DEFAULT_SCHEDULER_NAME
from scheduler.scheduler import run_scheduler


@command()
@server_option
@kubeconfig_option
@option(
    "--scheduler-name",
    default=DEFAULT_SCHEDULER_NAME,
    envvar="TINYKUBE_SCHEDULER_NAME",
    help="Schedule pods with this spec.schedulerName.",
)
@option("--health-port", default=10259, envvar="TINYKUBE_HEALTH_PORT", help="Port for /healthz and /metrics.")
@option(
    "--leader-elect/--no-leader-elect",
    default=True,
    envvar="TINYKUBE_LEADER_ELECT",
    help="Run only while holding the lease.",
)
@option("--bind-concurrency", default=16, envvar="TINYKUBE_BIND_CONCURRENCY", help="Binds in flight at most.")
@option(
    "--percentage-of-nodes-to-score",
    default=0,
    envvar="TINYKUBE_PERCENTAGE_OF_NODES_TO_SCORE",
    type=click.IntRange(0, 100),
    help="Stop filtering once this percentage of the nodes is feasible (0: adaptive, as upstream).",
)
@log_level_option
def cli(
    server: str,
    kubeconfig: str,
    scheduler_name: str,
    health_port: int,
    leader_elect: bool,
    bind_concurrency: int,
    percentage_of_nodes_to_score: int,
    log_level: str,
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
