"""The real helm (client-go, protobuf bodies and answers) drives a release through its whole life."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import helm_env
from tinykube.kubectl_binary import ensure_helm

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: tiny\nversion: 0.1.0\nappVersion: '1.0'\n",
    "values.yaml": "replicas: 1\ngreeting: hello\n",
    "templates/configmap.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    ),
    "templates/serviceaccount.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {{ .Release.Name }}\n",
    "templates/service.yaml": (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n"
        "  selector:\n    app: {{ .Release.Name }}\n  ports:\n  - port: 80\n    targetPort: http\n"
    ),
    "templates/deployment.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n"
        "  replicas: {{ .Values.replicas }}\n  selector:\n    matchLabels:\n      app: {{ .Release.Name }}\n"
        "  template:\n    metadata:\n      labels:\n        app: {{ .Release.Name }}\n    spec:\n"
        "      serviceAccountName: {{ .Release.Name }}\n      containers:\n      - name: web\n"
        "        image: nginx\n        ports:\n        - name: http\n          containerPort: 8080\n"
    ),
}

Helm = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def helm(apiserver: str, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = ensure_helm()
    env = helm_env(apiserver, tmp_path_factory.mktemp("helm"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(binary), *args], env=env, capture_output=True, text=True, timeout=60, check=False)

    return run


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    for name, text in CHART.items():
        path = tmp_path / "tiny" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "tiny"


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    detail = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, f"helm {result.args[1:]} exited {result.returncode}:\n{detail}"
    return result.stdout


def test_install_upgrade_rollback_history_list_uninstall(helm: Helm, chart: Path, http: httpx.Client) -> None:
    ns = f"helm-{uuid.uuid4().hex[:6]}"
    _ok(helm("install", "web", str(chart), "-n", ns, "--create-namespace"))
    cm = http.get(f"/api/v1/namespaces/{ns}/configmaps/web-config").json()
    assert cm["data"] == {"greeting": "hello"}

    _ok(helm("upgrade", "web", str(chart), "-n", ns, "--set", "replicas=0", "--set", "greeting=bye"))
    dep = http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web").json()
    assert dep["spec"]["replicas"] == 0  # a pointer field's zero, through protobuf
    assert http.get(f"/api/v1/namespaces/{ns}/configmaps/web-config").json()["data"] == {"greeting": "bye"}

    _ok(helm("rollback", "web", "1", "-n", ns))
    assert http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web").json()["spec"]["replicas"] == 1
    assert http.get(f"/api/v1/namespaces/{ns}/configmaps/web-config").json()["data"] == {"greeting": "hello"}

    history = _ok(helm("history", "web", "-n", ns)).splitlines()
    assert [line.split()[0] for line in history[1:]] == ["1", "2", "3"]
    assert "Rollback to 1" in history[3]

    listed = _ok(helm("list", "-A")).splitlines()
    row = next(line.split() for line in listed if line.startswith("web"))
    assert row[1:3] == [ns, "3"] and "deployed" in row

    out = _ok(helm("uninstall", "web", "-n", ns))
    assert 'release "web" uninstalled' in out
    for path in (f"/apis/apps/v1/namespaces/{ns}/deployments/web", f"/api/v1/namespaces/{ns}/configmaps/web-config"):
        assert http.get(path).status_code == 404
    secrets = http.get(f"/api/v1/namespaces/{ns}/secrets", params={"labelSelector": "owner=helm"}).json()
    assert secrets["items"] == []  # the release records are gone too
    assert not any(line.startswith("web") for line in _ok(helm("list", "-A")).splitlines())
