"""The package as a user installs it: a built wheel in a fresh venv (not the editable checkout)
starts a whole cluster, every component from the installed code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# what a checkout holds beside the sources (environments, caches, build output, a cluster's data)
_NOT_SOURCE = (".git", ".venv", "build", "dist", "wheels", "output", "data", "*.egg-info", "__pycache__", ".*cache")

# Runs with the fresh venv's python from a directory outside the checkout, so nothing can be
# imported from the work tree by accident.
START_CLUSTER = """
import json, sys, pathlib
import apiserver, kube_proxy, cluster_dns, ingress_controller, kubelet
from tinykube.cluster import Cluster, ClusterSpec
spec = ClusterSpec(data_dir=pathlib.Path(sys.argv[1]), nodes=1, ingress=True, dashboard=True)
with Cluster(spec) as c:
    files = [m.__file__ for m in (apiserver, kube_proxy, cluster_dns, ingress_controller, kubelet)]
    print(json.dumps({"names": [p.name for p in c.processes], "files": files}))
"""


@pytest.mark.timeout(300)
def test_wheel_installs_and_runs_every_component(tmp_path: Path) -> None:
    # built from a copy: setuptools writes build/ and *.egg-info into the tree it builds, which
    # scripts/compose-up.sh may be building at the same time in another test worker
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
    )
    wheel = next(dist.glob("tinykube-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True, timeout=240
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = subprocess.run(
        [str(python), "-c", START_CLUSTER, str(tmp_path / "cluster")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert all(str(env_dir) in f for f in report["files"]), report["files"]
    assert {"etcd", "apiserver", "scheduler", "controller-manager", "kubelet-node-1", "kube-proxy-node-1"} <= set(
        report["names"]
    )
    assert {"cluster-dns", "ingress-controller", "dashboard"} <= set(report["names"])
    assert (env_dir / "bin" / "tinykube").exists() and (env_dir / "bin" / "tinykube-kube-proxy").exists()
