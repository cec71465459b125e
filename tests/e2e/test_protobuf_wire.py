"""The real kubectl reads our protobuf answers: what it prints equals what the server holds as JSON."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Kubectl

CASES = [
    (["deployment", "d", "--image=nginx", "--replicas=0", "--port=80"], "/apis/apps/v1/namespaces/{ns}/deployments/d"),
    (["service", "nodeport", "np", "--tcp=80:8080"], "/api/v1/namespaces/{ns}/services/np"),
    (["configmap", "c", "--from-literal=a=b", "--from-literal=empty="], "/api/v1/namespaces/{ns}/configmaps/c"),
    (["secret", "generic", "s", "--from-literal=k=v"], "/api/v1/namespaces/{ns}/secrets/s"),
    (
        ["cronjob", "cj", "--image=busybox", "--schedule=*/5 * * * *", "--", "date"],
        "/apis/batch/v1/namespaces/{ns}/cronjobs/cj",
    ),
    (["role", "r", "--verb=get", "--resource=pods"], "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/r"),
    (["quota", "q", "--hard=pods=2,requests.cpu=500m"], "/api/v1/namespaces/{ns}/resourcequotas/q"),
]


def _prune(value: Any) -> Any:
    """Drop nulls and empty objects/lists: Go prints empty non-pointer structs, the stored JSON has none."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


@pytest.mark.parametrize(("args", "path"), CASES, ids=[c[0][0] for c in CASES])
def test_kubectl_decodes_protobuf_answers(
    args: list[str], path: str, kubectl: Kubectl, namespace: str, http: httpx.Client
) -> None:
    proc = kubectl("-v=8", "create", *args[:1], "-n", namespace, "-o", "json", *args[1:])
    assert proc.returncode == 0, proc.stderr
    # kubectl asked in protobuf first and got protobuf back
    assert "Content-Type: application/vnd.kubernetes.protobuf" in proc.stderr.split('"Response" status="201')[1]
    printed = json.loads(proc.stdout)
    stored = http.get(path.format(ns=namespace)).json()
    stored["metadata"].pop("managedFields")  # kubectl leaves them out of what it prints
    assert _prune(printed) == _prune(stored)
