"""`tinykube`: bring a local cluster up (etcd + the control plane), take it down, show status."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import typer

from tinykube.procs import free_port, start_apiserver, start_etcd

app = typer.Typer(add_completion=False, help="A small but real Kubernetes on your machine.")

DEFAULT_DIR = Path(os.environ.get("TINYKUBE_DATA_DIR", Path.home() / ".tinykube"))


def write_kubeconfig(path: Path, server: str) -> None:
    """A kubeconfig with one cluster/context named tinykube."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "tinykube", "cluster": {"server": server}}],
        "users": [{"name": "tinykube", "user": {}}],
        "contexts": [{"name": "tinykube", "context": {"cluster": "tinykube", "user": "tinykube"}}],
        "current-context": "tinykube",
    }
    path.write_text(json.dumps(config, indent=2))


@app.command()
def up(
    data_dir: Path = typer.Option(DEFAULT_DIR, "--data-dir", envvar="TINYKUBE_DATA_DIR", help="State and logs."),
    port: int = typer.Option(8080, "--port", envvar="TINYKUBE_PORT", help="apiserver port."),
    nodes: int = typer.Option(1, "--nodes", help="Nodes to run (kubelets land with the kubelet issue)."),
) -> None:
    """Start etcd and the apiserver, write DIR/kubeconfig, and run until Ctrl-C."""
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        etcd, etcd_url = start_etcd(data_dir, free_port(), free_port())
    except RuntimeError as e:
        typer.echo(f"tinykube: {e}", err=True)
        raise typer.Exit(1) from e
    try:
        apiserver, url = start_apiserver(data_dir, etcd_url, port)
    except RuntimeError as e:
        etcd.stop()
        typer.echo(f"tinykube: {e}", err=True)
        raise typer.Exit(1) from e
    kubeconfig = data_dir / "kubeconfig"
    write_kubeconfig(kubeconfig, url)
    (data_dir / "etcd-url").write_text(etcd_url)
    (data_dir / "pids.json").write_text(
        json.dumps({"etcd": etcd.pid, "apiserver": apiserver.pid, "launcher": os.getpid()})
    )
    typer.echo(f"tinykube is up: apiserver {url}, etcd {etcd_url}, logs in {data_dir / 'logs'}")
    typer.echo(f"export KUBECONFIG={kubeconfig}")
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stop:
            if not apiserver.alive() or not etcd.alive():
                typer.echo("tinykube: a component exited; see the logs", err=True)
                break
            time.sleep(0.5)
    finally:
        apiserver.stop()
        etcd.stop()
        (data_dir / "pids.json").unlink(missing_ok=True)
        typer.echo("tinykube is down")


@app.command()
def down(data_dir: Path = typer.Option(DEFAULT_DIR, "--data-dir", envvar="TINYKUBE_DATA_DIR")) -> None:
    """Stop a cluster started with `tinykube up`."""
    pids_file = data_dir / "pids.json"
    if not pids_file.exists():
        typer.echo("tinykube: nothing is running")
        return
    pids = json.loads(pids_file.read_text())
    try:
        os.kill(pids["launcher"], signal.SIGTERM)
    except ProcessLookupError:
        for pid in (pids.get("apiserver"), pids.get("etcd")):
            if pid:
                try:
                    os.killpg(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        pids_file.unlink(missing_ok=True)
    typer.echo("tinykube: stopping")


@app.command()
def status(data_dir: Path = typer.Option(DEFAULT_DIR, "--data-dir", envvar="TINYKUBE_DATA_DIR")) -> None:
    """Show whether the cluster answers."""
    kubeconfig = data_dir / "kubeconfig"
    if not kubeconfig.exists():
        typer.echo("tinykube: no cluster here")
        raise typer.Exit(1)
    server = json.loads(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    try:
        ready = httpx.get(f"{server}/readyz", timeout=2).text
    except httpx.HTTPError:
        ready = "unreachable"
    typer.echo(f"apiserver {server}: {ready}")
    etcd_url = data_dir / "etcd-url"
    if etcd_url.exists():
        typer.echo(f"etcd {etcd_url.read_text()}")


if __name__ == "__main__":
    app()
