"""`python -m controller_manager`: run the control loops (flags or TINYKUBE_* environment variables)."""

from __future__ import annotations

from apimachinery import gctuning

gctuning.pause()  # until run_component freezes startup's objects

import asyncio
import ipaddress
from pathlib import Path

import typer

from client.component import ComponentOptions, run_component
from client.informer import InformerFactory
from client.rest import ApiClient
from controller_manager.base import Context
from controller_manager.controllers import load, select

cli = typer.Typer(add_completion=False)
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
            raise typer.BadParameter(f"invalid duration {text!r}", param_hint=flag)
        total += float(number) * _UNITS[unit]
        number, i = "", i + len(unit)
    if number or not raw:
        raise typer.BadParameter(f"invalid duration {text!r} (missing unit)", param_hint=flag)
    return total


@cli.command()
def run(
    server: str = typer.Option("", envvar="TINYKUBE_SERVER", help="API server URL (overrides the kubeconfig)."),
    kubeconfig: str = typer.Option("", envvar="KUBECONFIG", help="kubeconfig file."),
    controllers: str = typer.Option(
        "*", envvar="TINYKUBE_CONTROLLERS", help="Controllers to run: '*', names, '-name' to leave one out."
    ),
    health_port: int = typer.Option(10257, envvar="TINYKUBE_HEALTH_PORT", help="Port for /healthz and /metrics."),
    leader_elect: bool = typer.Option(True, envvar="TINYKUBE_LEADER_ELECT", help="Run only while holding the lease."),
    node_monitor_grace_period: float = typer.Option(
        40.0, help="Seconds without a node heartbeat before the node is marked Ready=Unknown."
    ),
    pod_eviction_timeout: float = typer.Option(
        300.0, help="Default tolerationSeconds for the not-ready/unreachable NoExecute taints."
    ),
    terminated_pod_gc_threshold: int = typer.Option(12500, help="Terminated pods kept before pod GC deletes some."),
    resource_quota_sync_period: float = typer.Option(
        300.0, help="Seconds between full recalculations of every ResourceQuota's status.used."
    ),
    load_balancer_ip_range: str = typer.Option(
        "127.200.0.0/24",
        envvar="TINYKUBE_LOAD_BALANCER_IP_RANGE",
        help="CIDR the service-lb controller gives LoadBalancer Services their IPs from.",
    ),
    allocate_node_cidrs: bool = typer.Option(
        False,
        "--allocate-node-cidrs/--no-allocate-node-cidrs",
        envvar="TINYKUBE_ALLOCATE_NODE_CIDRS",
        help="Give Nodes without a podCIDR one from --cluster-cidr (the nodeipam controller).",
    ),
    cluster_cidr: str = typer.Option("", envvar="TINYKUBE_CLUSTER_CIDR", help="CIDR range of the pods in the cluster."),
    node_cidr_mask_size: int = typer.Option(
        24, envvar="TINYKUBE_NODE_CIDR_MASK_SIZE", help="Mask size of each Node's podCIDR in --cluster-cidr."
    ),
    root_ca_file: str = typer.Option(
        "",
        envvar="TINYKUBE_ROOT_CA_FILE",
        help="The cluster CA published as kube-root-ca.crt in every namespace [default: the kubeconfig's CA].",
    ),
    horizontal_pod_autoscaler_sync_period: str = typer.Option(
        "15s", help="How often each HorizontalPodAutoscaler is reconciled (Go duration or seconds)."
    ),
    horizontal_pod_autoscaler_downscale_stabilization: str = typer.Option(
        "5m", help="The window of past recommendations a scale-down must not go below."
    ),
    horizontal_pod_autoscaler_tolerance: float = typer.Option(
        0.1, min=0.0, help="Minimum change (from 1.0) in the usage ratio for the autoscaler to act."
    ),
    horizontal_pod_autoscaler_cpu_initialization_period: str = typer.Option(
        "5m", help="After a pod starts, how long its CPU samples may be skipped while it initialises."
    ),
    horizontal_pod_autoscaler_initial_readiness_delay: str = typer.Option(
        "30s", help="After a pod starts, how long readiness changes count as its initial readiness."
    ),
    log_level: str = typer.Option("info", envvar="TINYKUBE_LOG_LEVEL", help="Log level."),
) -> None:
    """Run the controller-manager: the loops that make Deployments, Jobs, Services and nodes converge."""
    try:
        chosen = select(controllers)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--controllers") from e
    if root_ca_file and not Path(root_ca_file).is_file():
        raise typer.BadParameter(f"{root_ca_file} is not a file", param_hint="--root-ca-file")
    try:
        ipaddress.ip_network(load_balancer_ip_range, strict=False)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--load-balancer-ip-range") from e
    if cluster_cidr or allocate_node_cidrs:
        try:
            pods_net = ipaddress.IPv4Network(cluster_cidr, strict=False)
        except ValueError as e:
            raise typer.BadParameter(f"{cluster_cidr!r} is not an IPv4 CIDR: {e}", param_hint="--cluster-cidr") from e
        if not pods_net.prefixlen <= node_cidr_mask_size <= 32:
            raise typer.BadParameter(
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
