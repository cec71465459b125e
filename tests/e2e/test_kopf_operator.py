"""A real kopf operator (its own process) drives a custom resource: create handler, status, finalizer, delete."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.thirdparty_crd import crontab_crd, delete_crd, install_crd, wait_for

GROUP = "kopf.thirdparty.example.com"
OPERATOR = Path(__file__).parent / "operators" / "crontab_operator.py"
FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"


@dataclass
class Operator:
    """The running operator: the namespace it watches and the file its output goes to."""

    namespace: str
    log: Path

    def output(self) -> str:
        """What the operator printed so far (for failure messages)."""
        return self.log.read_text()


@pytest.fixture(scope="module")
def operator(http: httpx.Client, apiserver: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    """The CRD installed and the operator running, watching one fresh namespace; stopped after the module."""
    crd = crontab_crd(GROUP)
    install_crd(http, crd)
    ns = f"kopf-{uuid.uuid4().hex[:8]}"
    r = http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    assert r.status_code == 201, r.text
    root = tmp_path_factory.mktemp("kopf")
    kubeconfig = root / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
        f"clusters: [{{name: t, cluster: {{server: '{apiserver}'}}}}]\n"
        f"contexts: [{{name: t, context: {{cluster: t, namespace: {ns}}}}}]\nusers: [{{name: u, user: {{}}}}]\n"
    )
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "CRONTAB_GROUP": GROUP, "HOME": str(root)}
    log = (root / "kopf.log").open("w")
    argv = [sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", ns, str(OPERATOR)]
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield Operator(ns, root / "kopf.log")
        delete_crd(http, crd["metadata"]["name"])  # while the operator runs, to release its finalizers
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _crontab(http: httpx.Client, ns: str, name: str) -> dict[str, Any] | None:
    r = http.get(f"/apis/{GROUP}/v1/namespaces/{ns}/crontabs/{name}")
    assert r.status_code in (200, 404), r.text
    return r.json() if r.status_code == 200 else None


def test_kopf_handles_create_status_finalizer_and_delete(http: httpx.Client, operator: Operator) -> None:
    ns = operator.namespace
    body = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "CronTab",
        "metadata": {"name": "nightly"},
        "spec": {"cronSpec": "0 3 * * *", "image": "backup:1", "replicas": 1},
    }
    r = http.post(f"/apis/{GROUP}/v1/namespaces/{ns}/crontabs", json=body)
    assert r.status_code == 201, r.text

    def handled() -> dict[str, Any] | None:
        obj = _crontab(http, ns, "nightly")
        return obj if obj and obj.get("status", {}).get("phase") == "Scheduled" else None

    what = "kopf's on.create handler to write the status"
    obj = wait_for(handled, timeout=60, what=lambda: f"{what}; operator output:\n{operator.output()}")
    assert obj["status"]["image"] == "backup:1"
    assert FINALIZER in obj["metadata"]["finalizers"]

    r = http.delete(f"/apis/{GROUP}/v1/namespaces/{ns}/crontabs/nightly")
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["deletionTimestamp"]  # held by kopf's finalizer until the handler ran
    wait_for(
        lambda: _crontab(http, ns, "nightly") is None,
        timeout=60,
        what=lambda: f"the CronTab to go; operator output:\n{operator.output()}",
    )
    marker = http.get(f"/api/v1/namespaces/{ns}/configmaps/nightly-deleted")
    assert marker.status_code == 200 and marker.json()["data"] == {"crontab": "nightly"}
