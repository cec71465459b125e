"""`python -m route_agent`: one node's route agent (flags or TINYKUBE_* environment variables)."""

from __future__ import annotations

from apimachinery import gctuning, leanstart

gctuning.pause()  # until run_component freezes startup's objects
leanstart.skip_cli_modules()

import socket

import click

from apimachinery.flags import command, kubeconfig_option, log_level_option, option, server_option
from client.component import ComponentOptions, run_component
from client.rest import ApiClient
from route_agent.agent import RouteAgent
from route_agent.iproute import IpRoute


@command()
@server_option
@kubeconfig_option
@option(
    "--node-name",
    default="",
    envvar="TINYKUBE_NODE_NAME",
    help="This node's name (its own podCIDR needs no route; default: hostname).",
)
@option(
    "--resync-period",
    default=30.0,
    envvar="TINYKUBE_RESYNC_PERIOD",
    type=click.FloatRange(min=1.0),
    help="Seconds between full reconciliations.",
)
@option("--health-port", default=0, envvar="TINYKUBE_HEALTH_PORT", help="Port for /healthz (0 = off).")
@log_level_option
def cli(
    server: str,
    kubeconfig: str,
    node_name: str,
    resync_period: float,
    health_port: int,
    log_level: str,
) -> None:
    """Route every other node's podCIDR via its InternalIP (flannel's host-gw), following the Nodes."""
    name = node_name or socket.gethostname().lower()
    holder: dict[str, RouteAgent] = {}

    async def main(api: ApiClient) -> None:
        agent = holder["a"] = RouteAgent(api, name, IpRoute(), resync_period=resync_period)
        await agent.run()

    opts = ComponentOptions(
        name="route-agent",
        server=server or None,
        kubeconfig=kubeconfig or None,
        health_port=health_port,
        log_level=log_level,
        ready=lambda: "a" in holder and holder["a"].ready(),
    )
    run_component(opts, main)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
