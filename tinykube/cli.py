"""`tinykube`: bring a local cluster up (etcd, control plane, kubelets), take it down, show status."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import typer

from client.config import ConfigError, load_kubeconfig
from tinykube.cluster import Cluster, ClusterSpec, write_kubeconfig

app = typer.Typer(add_completion=False, help="A small but real Kubernetes on your machine.")

DEFAULT_DIR = Path(os.environ.get("TINYKUBE_DATA_DIR", Path.home() / ".tinykube"))

__all__ = ["app", "write_kubeconfig"]


@app.command()
def up(
    data_dir: Path = typer.Option(DEFAULT_DIR, "--data-dir", envvar="TINYKUBE_DATA_DIR", help="State and logs."),
    port: int = typer.Option(
        0, "--port", envvar="TINYKUBE_PORT", help="apiserver port (default: 8080 + the cluster's slot)."
    ),
    slot: int = typer.Option(
        -1,
        "--slot",
        envvar="TINYKUBE_SLOT",
        help="Address slot 0-31, node i being 127.0.(100+SLOT).i (default: the data dir's, else the lowest free).",
    ),
    ingress: bool = typer.Option(False, "--ingress/--no-ingress", help="Run the ingress controller add-on."),
    dashboard: bool = typer.Option(True, "--dashboard/--no-dashboard", help="Run the dashboard add-on."),
    metrics_server: bool = typer.Option(
        True, "--metrics-server/--no-metrics-server", help="Run the metrics-server add-on (kubectl top, autoscaling)."
    ),
    nodes: int = typer.Option(1, "--nodes", min=0, help="Nodes whose kubelets run pods as local processes."),
    simulated_nodes: int = typer.Option(
        0, "--simulated-nodes", min=0, help="Extra simulated nodes (pods reported Running, nothing started)."
    ),
    apiserver_count: int = typer.Option(
        1,
        "--apiserver-count",
        min=1,
        help="apiserver processes serving the same ports (SO_REUSEPORT), each with its own watch cache.",
    ),
    controllers: str = typer.Option("*", "--controllers", help="Controllers the controller-manager runs."),
    runtime: str = typer.Option(
        "process",
        "--runtime",
        help="The kubelets' container runtime: process (local processes), docker (real images through the "
        "Docker Engine on /var/run/docker.sock) or auto (docker when it answers).",
    ),
    authorization_mode: str = typer.Option(
        "Node,RBAC",
        "--authorization-mode",
        help="The apiserver's authorizers, asked in order (AlwaysAllow: everyone may do everything).",
    ),
    log_level: str = typer.Option("info", "--log-level", help="Log level of every component."),
) -> None:
    """Start etcd, the control plane, a kubelet and a kube-proxy per node and the DNS add-on; run until
    Ctrl-C, restarting any component that exits."""
    spec = ClusterSpec(
        data_dir=data_dir,
        port=port or None,
        default_port=True,
        slot=None if slot < 0 else slot,
        ingress=ingress,
        dashboard=dashboard,
        metrics_server=metrics_server,
        nodes=nodes,
        simulated_nodes=simulated_nodes,
        apiserver_count=apiserver_count,
        controllers=controllers,
        container_runtime=runtime,
        authorization_mode=authorization_mode,
        log_level=log_level,
    )
    cluster = Cluster(spec, launcher_pid=os.getpid())
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    typer.echo(f"tinykube: starting etcd, the control plane, cluster DNS and {nodes} node(s)…")
    try:
        cluster.start()
    except (RuntimeError, OSError) as e:
        typer.echo(f"tinykube: {e}", err=True)
        raise typer.Exit(1) from e
    net = cluster.network
    processes = f" ({apiserver_count} processes)" if apiserver_count > 1 else ""
    typer.echo(f"tinykube is up: apiserver {cluster.secure_server}{processes}, etcd {cluster.etcd_url}")
    typer.echo(f"insecure port {cluster.server} (full access, no authentication: for local tools only)")
    addresses = ", ".join(f"{n} {cluster.node_ip(n)}" for n in cluster.node_names) or "-"
    typer.echo(f"slot {net.slot}: nodes {addresses}; Services {net.service_range}; pods {net.pod_network}")
    if dashboard:
        typer.echo(f"dashboard: {cluster.dashboard_url}")
    typer.echo(f"logs in {data_dir / 'logs'}")
    typer.echo(f"export KUBECONFIG={cluster.kubeconfig}")
    try:
        while not stop:
            for name in cluster.supervise():
                typer.echo(f"tinykube: {name} exited; started it again (restart {cluster.restarts[name]})", err=True)
            time.sleep(0.5)
    finally:
        cluster.stop()
        typer.echo("tinykube is down")


@app.command()
def down(data_dir: Path = typer.Option(DEFAULT_DIR, "--data-dir", envvar="TINYKUBE_DATA_DIR")) -> None:
    """Stop a cluster started with `tinykube up` (waits until every process is gone)."""
    pids_file = data_dir / "pids.json"
    if not pids_file.exists():
        typer.echo("tinykube: nothing is running")
        return
    pids: dict[str, int] = json.loads(pids_file.read_text())
    launcher = pids.pop("launcher", None)
    if launcher and _alive(launcher):
        os.kill(launcher, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while _alive(launcher) and time.monotonic() < deadline:
            time.sleep(0.2)
    for pid in pids.values():
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    pids_file.unlink(missing_ok=True)
    typer.echo("tinykube is down")


@app.command()
def status(data_dir: Path = typer.Option(DEFAULT_DIR, "--data-dir", envvar="TINYKUBE_DATA_DIR")) -> None:
    """Show the components, the apiserver's readiness and the nodes."""
    kubeconfig = data_dir / "kubeconfig"
    pids_file = data_dir / "pids.json"
    if not kubeconfig.exists() or not pids_file.exists():
        typer.echo("tinykube: no cluster running here")
        raise typer.Exit(1)
    restarts_file = data_dir / "restarts.json"
    restarts = json.loads(restarts_file.read_text()) if restarts_file.exists() else {}
    for name, pid in json.loads(pids_file.read_text()).items():
        state = "running" if _alive(pid) else "exited"
        typer.echo(f"{name:<28} pid {pid:<8} {state:<8} restarts {restarts.get(name, 0)}")
    try:
        config = load_kubeconfig(kubeconfig)
    except ConfigError as e:
        typer.echo(f"tinykube: {e}")
        raise typer.Exit(1) from None
    server = config.server
    try:
        with httpx.Client(base_url=server, verify=config.verify(), timeout=5) as http:
            ready = http.get("/readyz").text
            nodes = http.get("/api/v1/nodes").json().get("items") or []
            selector = {"labelSelector": "apiserver.kubernetes.io/identity=kube-apiserver"}
            found = http.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", params=selector)
            leases = found.json().get("items") or [] if found.status_code == 200 else []
    except httpx.HTTPError:
        typer.echo(f"apiserver {server}: unreachable")
        raise typer.Exit(1) from None
    typer.echo(f"apiserver {server}: {ready}")
    for lease in leases:
        spec = lease.get("spec") or {}
        typer.echo(f"apiserver identity {lease['metadata']['name']}: renewed {spec.get('renewTime', '-')}")
    for n in nodes:
        conds = {c["type"]: c["status"] for c in (n.get("status") or {}).get("conditions") or []}
        typer.echo(f"node {n['metadata']['name']}: Ready={conds.get('Ready', 'Unknown')}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@app.command()
def dashboard(
    data_dir: Path = typer.Option(DEFAULT_DIR, "--data-dir", envvar="TINYKUBE_DATA_DIR", help="The cluster's state."),
    no_open: bool = typer.Option(False, "--no-open", help="Print the URL only; do not open a browser."),
) -> None:
    """Print the URL of the cluster's dashboard (first line) and open it in a browser where there is one."""
    import sys
    import webbrowser

    url_file = data_dir / "dashboard-url"
    if not url_file.exists():
        typer.echo(
            f"tinykube: no dashboard is running in {data_dir} (no {url_file}); start one with `tinykube up`", err=True
        )
        raise typer.Exit(1)
    url = url_file.read_text().strip()
    try:
        httpx.get(url, timeout=3).raise_for_status()
    except httpx.HTTPError as e:
        typer.echo(
            f"tinykube: the dashboard at {url} does not answer ({e}); is the cluster in {data_dir} running?", err=True
        )
        raise typer.Exit(1) from None
    typer.echo(url)
    graphical = sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    if no_open:
        return
    if not graphical:  # a console browser would take over this terminal
        typer.echo("no graphical browser here: open the URL above", err=True)
        return
    try:
        opened = webbrowser.open(url)
    except webbrowser.Error:
        opened = False
    if not opened:
        typer.echo("could not open a browser: open the URL above", err=True)


if __name__ == "__main__":
    app()
