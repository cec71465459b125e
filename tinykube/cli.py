"""`tinykube`: bring a local cluster up (etcd, control plane, kubelets), take it down, show status."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import typer

from tinykube.cluster import Cluster, ClusterSpec, write_kubeconfig

app = typer.Typer(add_completion=False, help="A small but real Kubernetes on your machine.")

DEFAULT_DIR = Path(os.environ.get("TINYKUBE_DATA_DIR", Path.home() / ".tinykube"))

__all__ = ["app", "write_kubeconfig"]


@app.command()
def up(
    data_dir: Path = typer.Option(DEFAULT_DIR, "--data-dir", envvar="TINYKUBE_DATA_DIR", help="State and logs."),
    port: int = typer.Option(8080, "--port", envvar="TINYKUBE_PORT", help="apiserver port."),
    nodes: int = typer.Option(1, "--nodes", min=0, help="Nodes whose kubelets run pods as local processes."),
    simulated_nodes: int = typer.Option(
        0, "--simulated-nodes", min=0, help="Extra simulated nodes (pods reported Running, nothing started)."
    ),
    controllers: str = typer.Option("*", "--controllers", help="Controllers the controller-manager runs."),
    log_level: str = typer.Option("info", "--log-level", help="Log level of every component."),
) -> None:
    """Start etcd, the apiserver, scheduler, controller-manager and a kubelet per node; run until Ctrl-C."""
    spec = ClusterSpec(
        data_dir=data_dir,
        port=port,
        nodes=nodes,
        simulated_nodes=simulated_nodes,
        controllers=controllers,
        log_level=log_level,
    )
    cluster = Cluster(spec)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    typer.echo(f"tinykube: starting etcd, apiserver, scheduler, controller-manager and {nodes} node(s)…")
    try:
        cluster.start()
    except (RuntimeError, OSError) as e:
        typer.echo(f"tinykube: {e}", err=True)
        raise typer.Exit(1) from e
    pids = json.loads((data_dir / "pids.json").read_text())
    (data_dir / "pids.json").write_text(json.dumps({**pids, "launcher": os.getpid()}))
    typer.echo(f"tinykube is up: apiserver {cluster.server}, etcd {cluster.etcd_url}")
    typer.echo(f"nodes: {', '.join(cluster.node_names) or '-'}; logs in {data_dir / 'logs'}")
    typer.echo(f"export KUBECONFIG={cluster.kubeconfig}")
    try:
        while not stop:
            try:
                cluster.check_alive()
            except RuntimeError as e:
                typer.echo(f"tinykube: {e}", err=True)
                break
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
    for name, pid in json.loads(pids_file.read_text()).items():
        typer.echo(f"{name:<24} pid {pid:<8} {'running' if _alive(pid) else 'exited'}")
    server = json.loads(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    try:
        ready = httpx.get(f"{server}/readyz", timeout=2).text
        nodes = httpx.get(f"{server}/api/v1/nodes", timeout=5).json().get("items") or []
    except httpx.HTTPError:
        typer.echo(f"apiserver {server}: unreachable")
        raise typer.Exit(1) from None
    typer.echo(f"apiserver {server}: {ready}")
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
