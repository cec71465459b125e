"""`python -m controller_manager`: run the control loops (flags or TINYKUBE_* environment variables)."""

from __future__ import annotations

from apimachinery import gctuning, leanstart

gctuning.pause()  # until run_component freezes startup's objects
leanstart.skip_cli_modules()

import asyncio
import ipaddress
from pathlib import Path

import click

from apimachinery.flags import command, kubeconfig_option, log_level_option, option, server_option
from client.component import ComponentOptions, run_component
from client.informer import InformerFactory
from client.rest import ApiClient
from controller_manager.base import Context
from controller_manager.controllers import load, select

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str, flag: str) -> float:
    """Seconds from `15`, `15s`, `1m30s`, `500ms` (a Go duration or plain seconds); BadParameter otherwise."""
    raw = text.strip()
    try:
        return float(raw)
    except ValueError:
        pass
    total, number, i = 0.0, "", 0
    while i < len(raw):
        if raw[i].isdigit() or raw[i] == ".":
            number += raw[i]
            i += 1
            continue
        unit = next((u for u in ("ms", "h", "m", "s") if raw.startswith(u, i)), None)
        if unit is None or not number:
            raise click.BadParameter(f"invalid duration {text!r}", param_hint=flag)
        total += float(number) * _UNITS[unit]
        number, i = "", i + len(unit)
    if number or not raw:
        raise click.BadParameter(f"invalid duration {text!r} (missing unit)", param_hint=flag)
    return total


@command()
@server_option
@kubeconfig_option
@option(
    "--controllers",
    default="*",
    envvar="TINYKUBE_CONTROLLERS",
    help="Controllers to run: '*', names, '-name' to leave one out.",
)
@option("--health-port", default=10257, envvar="TINYKUBE_HEALTH_PORT", help="Port for /healthz and /metrics.")
@option(
    "--leader-elect/--no-leader-elect",
    default=True,
    envvar="TINYKUBE_LEADER_ELECT",
    help="Run only while holding the lease.",
)
@option(
    "--node-monitor-grace-period",
    default=40.0,
    help="Seconds without a node heartbeat before the node is marked Ready=Unknown.",
)
@option(
    "--pod-eviction-timeout",
    default=300.0,
    help="Default tolerationSeconds for the not-ready/unreachable NoExecute taints.",
)
@option("--terminated-pod-gc-threshold", default=12500, help="Terminated pods kept before pod GC deletes some.")
@option(
    "--resource-quota-sync-period",
    default=300.0,
    help="Seconds between full recalculations of every ResourceQuota's status.used.",
)
@option(
    "--load-balancer-ip-range",
    default="127.200.0.0/24",
    envvar="TINYKUBE_LOAD_BALANCER_IP_RANGE",
    help="CIDR the service-lb controller gives LoadBalancer Services their IPs from.",
)
@option(
    "--allocate-node-cidrs/--no-allocate-node-cidrs",
    default=False,
    envvar="TINYKUBE_ALLOCATE_NODE_CIDRS",
    help="Give Nodes without a podCIDR one from --cluster-cidr (the nodeipam controller).",
)
@option("--cluster-cidr", default="", envvar="TINYKUBE_CLUSTER_CIDR", help="CIDR range of the pods in the cluster.")
@option(
    "--node-cidr-mask-size",
    default=24,
    envvar="TINYKUBE_NODE_CIDR_MASK_SIZE",
    help="Mask size of each Node's podCIDR in --cluster-cidr.",
)
@option(
    "--root-ca-file",
    default="",
    envvar="TINYKUBE_ROOT_CA_FILE",
    help="The cluster CA published as kube-root-ca.crt in every namespace [default: the kubeconfig's CA].",
)
@option(
    "--horizontal-pod-autoscaler-sync-period",
    default="15s",
    help="How often each HorizontalPodAutoscaler is reconciled (Go duration or seconds).",
)
@option(
    "--horizontal-pod-autoscaler-downscale-stabilization",
    default="5m",
    help="The window of past recommendations a scale-down must not go below.",
)
@option(
    "--horizontal-pod-autoscaler-tolerance",
    default=0.1,
    type=click.FloatRange(min=0.0),
    help="Minimum change (from 1.0) in the usage ratio for the autoscaler to act.",
)
@option(
    "--horizontal-pod-autoscaler-cpu-initialization-period",
    default="5m",
    help="After a pod starts, how long its CPU samples may be skipped while it initialises.",
)
@option(
    "--horizontal-pod-autoscaler-initial-readiness-delay",
    default="30s",
    help="After a pod starts, how long readiness changes count as its initial readiness.",
)
@log_level_option
def cli(
    server: str,
    kubeconfig: str,
    controllers: str,
    health_port: int,
    leader_elect: bool,
    node_monitor_grace_period: float,
    pod_eviction_timeout: float,
    terminated_pod_gc_threshold: int,
    resource_quota_sync_period: float,
    load_balancer_ip_range: str,
    allocate_node_cidrs: bool,
    cluster_cidr: str,
    node_cidr_mask_size: int,
    root_ca_file: str,
    horizontal_pod_autoscaler_sync_period: str,
    horizontal_pod_autoscaler_downscale_stabilization: str,
    horizontal_pod_autoscaler_tolerance: float,
    horizontal_pod_autoscaler_cpu_initialization_period: str,
    horizontal_pod_autoscaler_initial_readiness_delay: str,
    log_level: str,
) -> None:
    """Run the controller-manager: the loops that make Deployments, Jobs, Services and nodes converge."""
    try:
        chosen = select(controllers)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--controllers") from e
    if root_ca_file and not Path(root_ca_file).is_file():
        raise click.BadParameter(f"{root_ca_file} is not a file", param_hint="--root-ca-file")
    try:
        ipaddress.ip_network(load_balancer_ip_range, strict=False)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--load-balancer-ip-range") from e
    if cluster_cidr or allocate_node_cidrs:
        try:
            pods_net = ipaddress.IPv4Network(cluster_cidr, strict=False)
        except ValueError as e:
            raise click.BadParameter(f"{cluster_cidr!r} is not an IPv4 CIDR: {e}", param_hint="--cluster-cidr") from e
        if not pods_net.prefixlen <= node_cidr_mask_size <= 32:
            raise click.BadParameter(
                f"must be between the mask size of --cluster-cidr ({pods_net.prefixlen}) and 32",
                param_hint="--node-cidr-mask-size",
            )
    options: dict[str, float | str] = {
        "allocate-node-cidrs": float(allocate_node_cidrs),
        "cluster-cidr": cluster_cidr,
        "node-cidr-mask-size": node_cidr_mask_size,
        "node-monitor-grace-period": node_monitor_grace_period,
        "pod-eviction-timeout": pod_eviction_timeout,
        "terminated-pod-gc-threshold": terminated_pod_gc_threshold,
        "resource-quota-sync-period": resource_quota_sync_period,
        "load-balancer-ip-range": load_balancer_ip_range,
        "root-ca-file": root_ca_file,
        "horizontal-pod-autoscaler-sync-period": parse_duration(
            horizontal_pod_autoscaler_sync_period, "--horizontal-pod-autoscaler-sync-period"
        ),
        "horizontal-pod-autoscaler-downscale-stabilization": parse_duration(
            horizontal_pod_autoscaler_downscale_stabilization, "--horizontal-pod-autoscaler-downscale-stabilization"
        ),
        "horizontal-pod-autoscaler-tolerance": horizontal_pod_autoscaler_tolerance,
        "horizontal-pod-autoscaler-cpu-initialization-period": parse_duration(
            horizontal_pod_autoscaler_cpu_initialization_period, "--horizontal-pod-autoscaler-cpu-initialization-period"
        ),
        "horizontal-pod-autoscaler-initial-readiness-delay": parse_duration(
            horizontal_pod_autoscaler_initial_readiness_delay, "--horizontal-pod-autoscaler-initial-readiness-delay"
        ),
    }

    async def main(api: ApiClient) -> None:
        async with InformerFactory(api) as factory:
            ctx = Context(api, factory, options)
            running = [cls(ctx) for cls in chosen]
            factory.start()
            try:
                await asyncio.gather(*(c.run() for c in running))
            finally:
                await ctx.stop_events()

    opts = ComponentOptions(
        name="controller-manager",
        server=server or None,
        kubeconfig=kubeconfig or None,
        health_port=health_port,
        leader_elect=leader_elect,
        lease_name="kube-controller-manager",
        log_level=log_level,
    )
    run_component(opts, main)


def main() -> None:
    """Console-script entry point."""
    cli()


__all__ = ["load", "main"]

if __name__ == "__main__":
    main()
