"""probes.yaml and projected-and-downward.yaml behave as in Kubernetes."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.cluster.conftest import events_of, wait_for
from tests.e2e.conftest import Kubectl, table

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _conditions(chttp: httpx.Client, ns: str, name: str) -> dict[str, str]:
    pod = chttp.get(f"/api/v1/namespaces/{ns}/pods/{name}").json()
    return {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions") or []}


def _container(chttp: httpx.Client, ns: str, name: str) -> dict:
    pod = chttp.get(f"/api/v1/namespaces/{ns}/pods/{name}").json()
    return (pod.get("status", {}).get("containerStatuses") or [{}])[0]


def test_probes_gate_readiness_and_restart_unhealthy_containers(kube: Kubectl, chttp: httpx.Client, cns: str) -> None:
    kube.ok("apply", "-n", cns, "-f", str(EXAMPLES / "probes.yaml"))
    # readiness: the server starts after 10 s; until then the startup probe holds the container not started.
    wait_for(lambda: _container(chttp, cns, "test-readiness").get("state", {}).get("running"), 20, "running")
    early = _container(chttp, cns, "test-readiness")
    assert early["ready"] is False and early["started"] is False
    assert _conditions(chttp, cns, "test-readiness")["Ready"] == "False"
    wait_for(lambda: _conditions(chttp, cns, "test-readiness").get("Ready") == "True", 40, "readiness pod Ready")
    assert _container(chttp, cns, "test-readiness")["started"] is True

    def service_has_pod() -> bool:
        ep = chttp.get(f"/api/v1/namespaces/{cns}/endpoints/readiness-svc").json()
        return any(
            a.get("targetRef", {}).get("name") == "test-readiness"
            for s in ep.get("subsets") or []
            for a in s.get("addresses") or []
        )

    wait_for(service_has_pod, 15, "readiness-svc endpoints list the ready pod")

    # liveness: /tmp/healthy goes away after 30 s, three failed probes 5 s apart restart the container.
    st = wait_for(
        lambda: (s := _container(chttp, cns, "test-liveness")) and s.get("restartCount", 0) >= 1 and s, 90, "restart"
    )
    assert st["lastState"]["terminated"]["exitCode"] in (137, 143)  # SIGKILL, or SIGTERM: sh is not pid 1 here
    events = events_of(kube, cns, "test-liveness", "failed liveness probe, will be restarted")
    assert "Unhealthy" in events and "Liveness probe failed:" in events
    assert "Killing" in events and "failed liveness probe, will be restarted" in events
    row = table(kube.ok("get", "pod", "-n", cns, "test-liveness"))[1]
    assert row[0] == "test-liveness" and row[3].startswith("1 (")


def test_projected_secrets_and_downward_api(kube: Kubectl, chttp: httpx.Client, cns: str) -> None:
    kube.ok("apply", "-n", cns, "-f", str(EXAMPLES / "projected-and-downward.yaml"))
    kube.ok(
        "wait",
        "-n",
        cns,
        "--for=condition=Ready",
        "pod/volume-secret",
        "pod/downwardapi-volume",
        "--timeout=30s",
        timeout=40,
    )
    assert wait_for(lambda: kube.ok("logs", "-n", cns, "volume-secret") == "admins3cr3t" or None, 10, "secret files")

    pod = chttp.get(f"/api/v1/namespaces/{cns}/pods/downwardapi-volume").json()
    node, ip = pod["spec"]["nodeName"], pod["status"]["podIP"]

    def logged() -> str | None:
        out = kube.ok("logs", "-n", cns, "downwardapi-volume")
        return out if "node=" in out else None

    out = wait_for(logged, 15, "downward API output")
    assert 'cluster="test-cluster1"\nrack="rack-23"\nzone="us-test-coast"' in out
    assert f" node={node} pod=downwardapi-volume ns={cns} ip={ip}" in out
    # the projected volume is read-only inside the container
    r = kube("exec", "-n", cns, "volume-secret", "--", "sh", "-c", "echo x > /project-volume/new")
    assert r.returncode != 0
