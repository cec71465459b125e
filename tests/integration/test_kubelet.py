"""The kubelet as a real process against a real apiserver: node registration, pods, probes, volumes, deletion."""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from websockets.asyncio.client import connect

from tests.integration.test_kubelet_kit import (
    KubeletProc,
    alive,
    condition,
    container_status,
    create,
    eventually,
    get_pod,
    start_kubelet,
    stop_kubelet,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def manifests(name: str) -> list[dict[str, Any]]:
    """The documents of an example manifest."""
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


@pytest.fixture(scope="module")
def kubelet(apiserver: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeletProc]:
    """One kubelet process shared by the tests of this module."""
    k = start_kubelet(
        apiserver,
        tmp_path_factory.mktemp("kubelet"),
        "--node-lease-duration",
        "8",
        "--node-status-update-frequency",
        "2",
        "--node-labels",
        "tier=test,zone=z1",
    )
    yield k
    stop_kubelet(k)


@pytest.fixture
async def pods(api: httpx.AsyncClient, ns: str) -> AsyncIterator[list[str]]:
    """Names of pods the test creates in `ns`; deleted (and waited for) afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        await api.delete(f"/api/v1/namespaces/{ns}/pods/{name}", params={"gracePeriodSeconds": "1"})
    for name in names:
        await eventually(lambda n=name: _gone(api, ns, n), 30, f"pod {name} deleted")


async def _gone(api: httpx.AsyncClient, ns: str, name: str) -> bool:
    return await get_pod(api, ns, name) is None


def bound(pod: dict[str, Any], node: str) -> dict[str, Any]:
    """A copy of `pod` already bound to `node`."""
    pod = copy.deepcopy(pod)
    pod["spec"]["nodeName"] = node
    return pod


async def start_pod(
    api: httpx.AsyncClient, ns: str, pods: list[str], kubelet: KubeletProc, body: dict[str, Any]
) -> dict[str, Any]:
    """Create a pod bound to the test kubelet."""
    created = await create(api, ns, "pods", bound(body, kubelet.node))
    pods.append(created["metadata"]["name"])
    return created


async def running_ready(api: httpx.AsyncClient, ns: str, name: str, timeout: float = 30) -> dict[str, Any]:
    """Wait for the pod to be Running and Ready."""

    async def check() -> dict[str, Any] | None:
        pod = await get_pod(api, ns, name)
        if pod and pod["status"].get("phase") == "Running" and condition(pod, "Ready") == "True":
            return pod
        return None

    return await eventually(check, timeout, f"{name} Running and Ready")


def simple_pod(name: str, command: list[str], **extra: Any) -> dict[str, Any]:
    """A one-container pod running `command`."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "c", "image": "busybox:1.36", "command": command, **extra}],
        },
    }


async def test_node_registers_ready_and_lease_renews(api: httpx.AsyncClient, kubelet: KubeletProc) -> None:
    r = await api.get(f"/api/v1/nodes/{kubelet.node}")
    assert r.status_code == 200, r.text
    node = r.json()
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == kubelet.node
    assert labels["kubernetes.io/os"] == "linux"
    assert labels["kubernetes.io/arch"]
    assert labels["tier"] == "test" and labels["zone"] == "z1"
    assert node["spec"]["podCIDR"] == kubelet.cidr and node["spec"]["podCIDRs"] == [kubelet.cidr]
    status = node["status"]
    for key in ("cpu", "memory", "pods", "ephemeral-storage"):
        assert key in status["capacity"] and key in status["allocatable"]
    assert status["capacity"]["pods"] == "110"
    assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
    assert {"type": "Hostname", "address": kubelet.node} in status["addresses"]
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == kubelet.port
    info = status["nodeInfo"]
    assert info["kubeletVersion"] == "v1.35.0-tinykube"
    assert info["containerRuntimeVersion"] == "process://tinykube"
    assert info["operatingSystem"] == "linux" and info["bootID"] and info["machineID"]
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Ready"]["status"] == "True"
    assert conds["Ready"]["reason"] == "KubeletReady"
    assert conds["Ready"]["message"] == "kubelet is posting ready status"
    assert conds["MemoryPressure"]["status"] == "False"
    assert conds["MemoryPressure"]["reason"] == "KubeletHasSufficientMemory"
    assert conds["DiskPressure"]["status"] == conds["PIDPressure"]["status"] == "False"

    async def lease() -> dict[str, Any] | None:
        r = await api.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{kubelet.node}")
        return r.json() if r.status_code == 200 else None

    first = await eventually(lease, 10, "node lease")
    assert first["spec"]["holderIdentity"] == kubelet.node
    assert first["spec"]["leaseDurationSeconds"] == 8
    assert first["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]

    async def renewed() -> bool:
        cur = await lease()
        return bool(cur) and cur["spec"]["renewTime"] != first["spec"]["renewTime"]

    await eventually(renewed, 10, "lease renewal (every duration/4)")

    async def heartbeat() -> bool:
        r = await api.get(f"/api/v1/nodes/{kubelet.node}")
        now = {c["type"]: c for c in r.json()["status"]["conditions"]}
        beat = now["Ready"]["lastHeartbeatTime"] != conds["Ready"]["lastHeartbeatTime"]
        return beat and now["Ready"]["lastTransitionTime"] == conds["Ready"]["lastTransitionTime"]

    await eventually(heartbeat, 10, "node status heartbeat")


async def test_pod_workflow_runs_and_serves(
    api: httpx.AsyncClient, ns: str, pods: list[str], kubelet: KubeletProc
) -> None:
    (body,) = manifests("pod-workflow.yaml")
    await start_pod(api, ns, pods, kubelet, body)
    pod = await running_ready(api, ns, "ngx")
    ip = pod["status"]["podIP"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(kubelet.cidr)
    assert pod["status"]["podIPs"] == [{"ip": ip}]
    assert pod["status"]["hostIP"] == "127.0.0.1"
    assert pod["status"]["startTime"]
    cs = container_status(pod, "ngx")
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0
    assert cs["image"] == "nginx:alpine" and cs["containerID"].startswith("process://")
    assert "running" in cs["state"]
    types = [c["type"] for c in pod["status"]["conditions"]]
    assert types == ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]

    async def serves() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
                return (await client.get(f"http://{ip}:8080/")).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(serves, 15, "http server on the pod IP")

    async def logged() -> str:
        r = await api.get(f"/api/v1/namespaces/{ns}/pods/ngx/log")
        return r.text if r.status_code == 200 and '"GET / HTTP/1.1" 200' in r.text else ""

    await eventually(logged, 10, "the request in the container log (apiserver → kubelet server)")
    await wait_events(
        api,
        ns,
        ("Pulled", 'Container image "nginx:alpine" already present on machine'),
        ("Created", "Created container: ngx"),
        ("Started", "Started container ngx"),
    )


async def test_delete_ends_processes_and_removes_pod(
    api: httpx.AsyncClient, ns: str, pods: list[str], kubelet: KubeletProc
) -> None:
    await start_pod(api, ns, pods, kubelet, simple_pod("sleeper", ["sh", "-c", "sleep 600 & sleep 600"]))
    pod = await running_ready(api, ns, "sleeper")
    pid = kubelet.pid_of(container_status(pod, "c")["containerID"])
    assert alive(pid)
    r = await api.delete(f"/api/v1/namespaces/{ns}/pods/sleeper")
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["deletionTimestamp"]
    await eventually(lambda: _gone(api, ns, "sleeper"), 20, "pod object removed")
    assert not alive(pid)

    async def group_gone() -> bool:
        return not [p for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == pid and alive(int(p))]

    await eventually(group_gone, 5, "every process of the container's group gone")


def _file_has(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text()


def _private_tmp_has(pod_tmp: Path, name: str) -> bool:
    return (pod_tmp / name).exists() and not Path("/tmp", name).exists()


def _pgid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return -1


async def test_killed_container_restarts(
    api: httpx.AsyncClient, ns: str, pods: list[str], kubelet: KubeletProc
) -> None:
    await start_pod(api, ns, pods, kubelet, simple_pod("victim", ["sleep", "600"]))
    pod = await running_ready(api, ns, "victim")
    first = container_status(pod, "c")
    os.killpg(kubelet.pid_of(first["containerID"]), signal.SIGKILL)

    async def restarted() -> dict[str, Any] | None:
        p = await get_pod(api, ns, "victim")
        cs = container_status(p or {}, "c")
        return cs if cs.get("restartCount") == 1 and "running" in cs.get("state", {}) else None

    cs = await eventually(restarted, 20, "restartCount 1")
    term = cs["lastState"]["terminated"]
    assert term["exitCode"] == 137 and term["reason"] == "Error"
    assert term["containerID"] == first["containerID"] != cs["containerID"]


async def test_crash_loop_back_off(api: httpx.AsyncClient, ns: str, pods: list[str], kubelet: KubeletProc) -> None:
    await start_pod(api, ns, pods, kubelet, simple_pod("crasher", ["sh", "-c", "exit 1"]))

    async def backing_off() -> dict[str, Any] | None:
        cs = container_status(await get_pod(api, ns, "crasher") or {}, "c")
        waiting = cs.get("state", {}).get("waiting", {})
        return cs if waiting.get("reason") == "CrashLoopBackOff" else None

    cs = await eventually(backing_off, 20, "CrashLoopBackOff")
    assert cs["restartCount"] >= 1
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    assert cs["state"]["waiting"]["message"].startswith("back-off 10s restarting failed container=c pod=crasher_")
    pod = await get_pod(api, ns, "crasher")
    assert pod and pod["status"]["phase"] == "Running"
    assert condition(pod, "Ready") == "False"
    uid = pod["metadata"]["uid"]
    await wait_events(
        api, ns, ("Warning", "BackOff", f"Back-off restarting failed container c in pod crasher_{ns}({uid})")
    )


async def test_deletion_honours_grace_period(
    api: httpx.AsyncClient, ns: str, pods: list[str], kubelet: KubeletProc
) -> None:
    body = simple_pod("stubborn", ["sh", "-c", "trap '' TERM; echo trapped; sleep 600"])
    body["spec"]["terminationGracePeriodSeconds"] = 3
    await start_pod(api, ns, pods, kubelet, body)
    pod = await running_ready(api, ns, "stubborn")
    pid = kubelet.pid_of(container_status(pod, "c")["containerID"])
    log = kubelet.root / "pods" / pod["metadata"]["uid"] / "logs" / "c" / "0.log"

    async def trapped() -> bool:
        return _file_has(log, "trapped")

    await eventually(trapped, 10, "SIGTERM ignored by the container")
    start = time.monotonic()
    r = await api.delete(f"/api/v1/namespaces/{ns}/pods/stubborn")
    assert r.status_code == 200 and r.json()["metadata"]["deletionGracePeriodSeconds"] == 3
    await eventually(lambda: _gone(api, ns, "stubborn"), 20, "pod removed after its grace period")
    assert time.monotonic() - start >= 2.5, "SIGTERM-ignoring container was killed before its grace period"
    assert not alive(pid)
    await wait_events(api, ns, ("Killing", "Stopping container c"))


async def test_missing_configmap_key_is_config_error(
    api: httpx.AsyncClient, ns: str, pods: list[str], kubelet: KubeletProc
) -> None:
    await create(api, ns, "configmaps", {"metadata": {"name": "cfg"}, "data": {"present": "1"}})
    env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "absent"}}}]
    await start_pod(api, ns, pods, kubelet, simple_pod("misconf", ["sleep", "600"], env=env))

    async def config_error() -> dict[str, Any] | None:
        cs = container_status(await get_pod(api, ns, "misconf") or {}, "c")
        waiting = cs.get("state", {}).get("waiting", {})
        return waiting if waiting.get("reason") == "CreateContainerConfigError" else None

    waiting = await eventually(config_error, 15, "CreateContainerConfigError")
    assert waiting["message"] == f"couldn't find key absent in ConfigMap {ns}/cfg"
    pod = await get_pod(api, ns, "misconf")
    assert pod and pod["status"]["phase"] == "Pending"
    # adding the key lets the container start
    r = await api.patch(
        f"/api/v1/namespaces/{ns}/configmaps/cfg",
        json={"data": {"absent": "now-here"}},
        headers={"content-type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    await running_ready(api, ns, "misconf", 15)


async def test_projected_and_downward_volumes(
    api: httpx.AsyncClient, ns: str, pods: list[str], kubelet: KubeletProc
) -> None:
    docs = manifests("projected-and-downward.yaml")
    for d in docs:
        if d["kind"] == "Secret":
            await create(api, ns, "secrets", d)
    for d in docs:
        if d["kind"] == "Pod":
            d["spec"]["terminationGracePeriodSeconds"] = 1
            await start_pod(api, ns, pods, kubelet, d)
    secret_pod = await running_ready(api, ns, "volume-secret")
    dw_pod = await running_ready(api, ns, "downwardapi-volume")

    def log_text(pod: dict[str, Any], container: str) -> str:
        path = kubelet.root / "pods" / pod["metadata"]["uid"] / "logs" / container / "0.log"
        return path.read_text() if path.exists() else ""

    async def secret_logged() -> str:
        text = log_text(secret_pod, "volume-secret")
        return text if "s3cr3t" in text else ""

    text = await eventually(secret_logged, 15, "secret contents in the log")
    lines = [line.split(" ", 3) for line in text.splitlines()]
    assert all(stream == "stdout" and tag in ("F", "P") for _, stream, tag, _ in lines)
    assert "admins3cr3t" in "".join(msg for *_, msg in lines)

    async def labels_logged() -> str:
        text = log_text(dw_pod, "client")
        return text if "node=" in text else ""

    text = await eventually(labels_logged, 15, "downward API labels in the log")
    assert 'cluster="test-cluster1"' in text
    assert 'rack="rack-23"' in text
    assert 'zone="us-test-coast"' in text
    ip = dw_pod["status"]["podIP"]
    assert f"node={kubelet.node} pod=downwardapi-volume ns={ns} ip={ip}" in text


async def test_liveness_probe_restarts(api: httpx.AsyncClient, ns: str, pods: list[str], kubelet: KubeletProc) -> None:
    docs = manifests("probes.yaml")
    body = next(d for d in docs if d["metadata"]["name"] == "test-liveness")
    c = body["spec"]["containers"][0]
    c["command"] = ["/bin/sh", "-c", "touch /tmp/healthy; sleep 3; rm -rf /tmp/healthy; sleep 600"]
    c["livenessProbe"].update(initialDelaySeconds=1, periodSeconds=1, failureThreshold=2)
    body["spec"]["terminationGracePeriodSeconds"] = 2
    created = await start_pod(api, ns, pods, kubelet, body)
    pod_tmp = kubelet.root / "pods" / created["metadata"]["uid"] / "tmp"

    async def healthy_in_pod_tmp() -> bool:
        return _private_tmp_has(pod_tmp, "healthy")

    # /tmp is private to the pod: the file lands in the pod's tmp dir, never in the host's /tmp
    await eventually(healthy_in_pod_tmp, 10, "/tmp/healthy inside the pod's private /tmp")

    async def restarted() -> dict[str, Any] | None:
        cs = container_status(await get_pod(api, ns, "test-liveness") or {}, "liveness")
        return cs if cs.get("restartCount", 0) >= 1 else None

    cs = await eventually(restarted, 30, "liveness restart")
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    await wait_events(
        api,
        ns,
        ("Normal", "Killing", "Container liveness failed liveness probe, will be restarted"),
        ("Warning", "Unhealthy", "Liveness probe failed: cat: /tmp/healthy: No such file or directory"),
    )


async def test_readiness_after_server_starts(
    api: httpx.AsyncClient, ns: str, pods: list[str], kubelet: KubeletProc
) -> None:
    docs = manifests("probes.yaml")
    body = next(d for d in docs if d["metadata"]["name"] == "test-readiness")
    body["spec"]["containers"][0]["command"][2] = body["spec"]["containers"][0]["command"][2].replace(
        "sleep 10", "sleep 5"
    )
    body["spec"]["terminationGracePeriodSeconds"] = 1
    await start_pod(api, ns, pods, kubelet, body)

    async def running() -> dict[str, Any] | None:
        pod = await get_pod(api, ns, "test-readiness")
        return pod if pod and pod["status"].get("phase") == "Running" else None

    pod = await eventually(running, 15, "Running")
    cs = container_status(pod, "web")
    assert not cs["ready"] and not cs["started"]
    assert condition(pod, "Ready") == "False"
    pod = await running_ready(api, ns, "test-readiness", 20)
    assert container_status(pod, "web")["started"]
    async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
        assert (await client.get(f"http://{pod['status']['podIP']}:8080/")).status_code == 200


async def wait_events(api: httpx.AsyncClient, ns: str, *wanted: tuple[str, ...]) -> None:
    """Wait until every wanted event exists: (reason, message) or (type, reason, message) tuples."""

    async def check() -> bool:
        items = (await api.get(f"/api/v1/namespaces/{ns}/events")).json()["items"]
        seen = {(e["reason"], e["message"]) for e in items} | {(e["type"], e["reason"], e["message"]) for e in items}
        return all(w in seen for w in wanted)

    await eventually(check, 10, f"events {wanted}")


async def test_exec_with_a_terminal(
    api: httpx.AsyncClient, apiserver: str, ns: str, pods: list[str], kubelet: KubeletProc
) -> None:
    await start_pod(api, ns, pods, kubelet, simple_pod("term", ["sleep", "600"]))
    await running_ready(api, ns, "term")
    query = "command=sh&command=-c&command=read+x%3B+tty%3B+stty+size&stdin=true&stdout=true&tty=true"
    url = f"{apiserver.replace('http://', 'ws://')}/api/v1/namespaces/{ns}/pods/term/exec?{query}"
    out, status = b"", {}
    async with connect(url, subprotocols=["v5.channel.k8s.io"], open_timeout=10, proxy=None) as ws:  # type: ignore[list-item]
        await ws.send(b"\x04" + json.dumps({"Width": 100, "Height": 40}).encode())
        await ws.send(b"\x00go\n")
        async for frame in ws:
            assert isinstance(frame, bytes)
            if frame[0] == 1:
                out += frame[1:]
            elif frame[0] == 2:
                raise AssertionError(f"a terminal has no separate stderr: {frame!r}")
            elif frame[0] == 3:
                status = json.loads(frame[1:])
    assert status["status"] == "Success", (status.get("message"), out)
    lines = out.decode().split("\r\n")
    assert "go" in lines  # the terminal echoes what is typed
    assert any(line.startswith("/dev/pts/") for line in lines), lines
    assert "40 100" in lines, lines


async def test_cluster_first_without_cluster_dns_falls_back_to_default(
    api: httpx.AsyncClient, ns: str, pods: list[str], kubelet: KubeletProc
) -> None:
    created = await start_pod(
        api, ns, pods, kubelet, simple_pod("no-dns", ["sh", "-c", "cat /etc/resolv.conf; sleep 600"])
    )
    await running_ready(api, ns, "no-dns")
    why = (
        'kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. '
        'Falling back to "Default" policy.'
    )
    await wait_events(
        api, ns, ("Warning", "MissingClusterDNS", f'pod: "no-dns_{ns}({created["metadata"]["uid"]})". {why}')
    )

    async def node_event() -> bool:
        items = (await api.get("/api/v1/namespaces/default/events")).json()["items"]
        return any(
            e["involvedObject"]["kind"] == "Node"
            and e["involvedObject"]["name"] == kubelet.node
            and (e["type"], e["reason"], e["message"]) == ("Warning", "MissingClusterDNS", why)
            for e in items
        )

    await eventually(node_event, 10, "MissingClusterDNS event on the node")

    async def resolv_conf() -> str:
        return (await api.get(f"/api/v1/namespaces/{ns}/pods/no-dns/log")).text

    text = await eventually(resolv_conf, 10, "the pod's resolv.conf")
    host = (await asyncio.to_thread(Path("/etc/resolv.conf").read_text)).splitlines()
    for server in [line.split()[1] for line in host if line.startswith("nameserver ") and len(line.split()) > 1]:
        assert f"nameserver {server}\n" in text
    assert "ndots:5" not in text and "svc.cluster.local" not in text
