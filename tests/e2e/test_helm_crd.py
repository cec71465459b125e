"""The real helm on a chart that ships a CRD in crds/ and a custom resource in templates/."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import helm_env
from tests.e2e.thirdparty_crd import CRD_PATH, delete_crd, wait_for
from tinykube.kubectl_binary import ensure_helm

CHART = Path(__file__).parent / "charts" / "crontab"
CRD = "crontabs.helm.thirdparty.example.com"
GROUP = "helm.thirdparty.example.com"

Helm = Callable[..., str]


@pytest.fixture(scope="module")
def helm(apiserver: str, http: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Helm]:
    """Runs the real helm against the apiserver and asserts it succeeded; deletes the chart's CRD afterwards.

    (helm never deletes a CRD it installed from crds/.)"""
    binary = ensure_helm()
    env = helm_env(apiserver, tmp_path_factory.mktemp("helm-crd"))

    def run(*args: str) -> str:
        r = subprocess.run([str(binary), *args], env=env, capture_output=True, text=True, timeout=60, check=False)
        assert r.returncode == 0, f"helm {args} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
        return r.stdout

    yield run
    delete_crd(http, CRD)


def _crontab(http: httpx.Client, ns: str, name: str) -> dict[str, Any] | None:
    r = http.get(f"/apis/{GROUP}/v1/namespaces/{ns}/crontabs/{name}")
    assert r.status_code in (200, 404), r.text
    return r.json() if r.status_code == 200 else None


def test_helm_install_upgrade_uninstall_a_chart_with_a_crd(helm: Helm, http: httpx.Client, namespace: str) -> None:
    assert http.get(f"{CRD_PATH}/{CRD}").status_code == 404
    out = helm("install", "nightly", str(CHART), "-n", namespace, "--wait", "--timeout", "60s")
    assert "STATUS: deployed" in out
    crd = http.get(f"{CRD_PATH}/{CRD}").json()
    assert any(c["type"] == "Established" and c["status"] == "True" for c in crd["status"]["conditions"])
    created = _crontab(http, namespace, "nightly")
    assert created is not None
    assert created["spec"] == {"cronSpec": "*/5 * * * *", "image": "backup:1", "replicas": 1}
    assert created["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert created["metadata"]["annotations"]["meta.helm.sh/release-name"] == "nightly"

    out = helm("upgrade", "nightly", str(CHART), "-n", namespace, "--set", "image=backup:2,replicas=3")
    assert "REVISION: 2" in out
    upgraded = _crontab(http, namespace, "nightly")
    assert upgraded is not None
    assert upgraded["spec"] == {"cronSpec": "*/5 * * * *", "image": "backup:2", "replicas": 3}
    assert upgraded["metadata"]["uid"] == created["metadata"]["uid"]
    listed = helm("list", "-n", namespace, "-o", "json")
    assert '"revision":"2"' in listed and '"status":"deployed"' in listed

    out = helm("uninstall", "nightly", "-n", namespace, "--wait", "--timeout", "60s")
    assert 'release "nightly" uninstalled' in out
    wait_for(lambda: _crontab(http, namespace, "nightly") is None, what="the CronTab to go")
    assert http.get(f"{CRD_PATH}/{CRD}").status_code == 200  # helm leaves CRDs from crds/ in place
