"""The docker runtime: real images through the Docker Engine, on a one-node cluster from the launcher.

The engine is started by scripts/docker-engine.sh when nothing answers (as in CI); there is no
registry here, so the test image is built locally (busybox-static, FROM scratch). Nothing is
skipped: if dockerd cannot start, these tests fail.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kubelet.docker_api import EngineClient
from kubelet.docker_runtime import DockerRuntime, busybox_image_context
from kubelet.runtime import ContainerConfig, SandboxConfig
from tests.apt import apt_install
from tests.cluster.conftest import events_of, kubectl_on, wait_for
from tests.e2e.conftest import Kubectl, table
from tinykube.cluster import Cluster, ClusterSpec

REPO = Path(__file__).resolve().parents[2]
IMAGE = "tinykube-test/hello:1"
NAMESPACES: list[str] = []  # the tests' namespaces: no container of theirs may outlive the cluster
# a command that exists only in the image: the process runtime could not run it
HELLO = b"""#!/bin/sh
echo "tk-hello starting on $(hostname) with GREETING=$GREETING"
mkdir -p /www && echo "hello from $(hostname)" > /www/index.html
exec httpd -f -vv -p 8080 -h /www
"""


def _docker_labelled(*labels: str) -> list[str]:
    """Ids of the containers carrying every `key=value` label."""

    async def ids() -> list[str]:
        engine = EngineClient()
        try:
            return [c["Id"] for c in await engine.list(dict(label.split("=", 1) for label in labels))]
        finally:
            await engine.close()

    return asyncio.run(ids())


def _image_id(image: str) -> str:
    async def get() -> str:
        engine = EngineClient()
        try:
            return str((await engine.image_inspect(image) or {}).get("Id"))
        finally:
            await engine.close()

    return asyncio.run(get())


@pytest.fixture(scope="module")
def engine_ready() -> None:
    """A Docker Engine answering on /var/run/docker.sock, busybox-static, and the test image built."""
    subprocess.run(["bash", str(REPO / "scripts" / "docker-engine.sh")], check=True, timeout=300)
    if subprocess.run(["dpkg", "-s", "busybox-static"], capture_output=True).returncode != 0:
        apt_install("busybox-static")

    context = busybox_image_context(
        Path("/bin/busybox").read_bytes(), {"/usr/local/bin/tk-hello": HELLO}, ["/usr/local/bin/tk-hello"]
    )

    async def build() -> None:
        engine = EngineClient()
        try:
            await engine.build(context, IMAGE)
        finally:
            await engine.close()

    asyncio.run(build())


@pytest.fixture(scope="module")
def dcluster(engine_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A one-node cluster whose kubelet runs pods with the docker runtime."""
    spec = ClusterSpec(
        data_dir=tmp_path_factory.mktemp("dcluster"),
        nodes=1,
        dns=False,
        metrics_server=False,
        container_runtime="docker",
    )
    with Cluster(spec) as c:
        yield c
    left = [cid for ns in NAMESPACES for cid in _docker_labelled(f"io.kubernetes.pod.namespace={ns}")]
    assert left == [], "the kubelet left containers behind"


@pytest.fixture(scope="module")
def dkube(kubectl_binary: Path, dcluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """The real kubectl on the docker-runtime cluster."""
    return kubectl_on(kubectl_binary, dcluster, tmp_path_factory.mktemp("kubectl-docker"))


@pytest.fixture(scope="module")
def dhttp(dcluster: Cluster) -> Iterator[httpx.Client]:
    """A synchronous client on the cluster's apiserver."""
    with httpx.Client(base_url=dcluster.server, timeout=10) as client:
        yield client


@pytest.fixture
def dns_(dhttp: httpx.Client) -> Iterator[str]:
    """A fresh namespace, deleted afterwards."""
    name = f"d-{uuid.uuid4().hex[:8]}"
    NAMESPACES.append(name)
    r = dhttp.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    yield name
    dhttp.delete(f"/api/v1/namespaces/{name}")


def _pod(dhttp: httpx.Client, ns: str, name: str) -> dict:
    r = dhttp.get(f"/api/v1/namespaces/{ns}/pods/{name}")
    assert r.status_code == 200, r.text
    return r.json()


def _ready(dhttp: httpx.Client, ns: str, name: str) -> dict | None:
    """The pod once Ready (else None; wait_for then reports its last status)."""
    pod = _pod(dhttp, ns, name)
    conds = pod.get("status", {}).get("conditions") or []
    return pod if any(c["type"] == "Ready" and c["status"] == "True" for c in conds) else None


def _state(dhttp: httpx.Client, ns: str, name: str) -> dict:
    statuses = _pod(dhttp, ns, name).get("status", {}).get("containerStatuses") or [{}]
    return statuses[0].get("state") or {}


def test_pod_from_a_local_image_runs_serves_logs_and_execs(
    dkube: Kubectl, dhttp: httpx.Client, dcluster: Cluster, dns_: str
) -> None:
    manifest = f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: conf}}
data: {{motd: "hi from a configmap"}}
---
apiVersion: v1
kind: Pod
metadata: {{name: hello}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    env: [{{name: GREETING, value: bonjour}}]
    readinessProbe: {{httpGet: {{path: /, port: 8080}}, periodSeconds: 1}}
    livenessProbe: {{exec: {{command: [cat, /post-start]}}, periodSeconds: 1, failureThreshold: 1}}
    lifecycle: {{postStart: {{exec: {{command: [sh, -c, "echo hook ran > /post-start"]}}}}}}
    volumeMounts: [{{name: conf, mountPath: /etc/conf}}]
  volumes: [{{name: conf, configMap: {{name: conf}}}}]
"""
    assert not Path("/usr/local/bin/tk-hello").exists()
    dkube.ok("apply", "-n", dns_, "-f", "-", input=manifest)
    try:
        pod = wait_for(lambda: _ready(dhttp, dns_, "hello"), 60, "pod hello Ready")
    except AssertionError as e:
        raise AssertionError(f"{e}; its status: {_pod(dhttp, dns_, 'hello').get('status')}") from None
    cs = pod["status"]["containerStatuses"][0]
    assert cs["containerID"].startswith("docker://")
    assert cs["imageID"] == _image_id(IMAGE)  # the engine's id of the image, not a name hash
    ip = pod["status"]["podIP"]
    assert ip and not ip.startswith("127."), ip  # the sandbox's address on the docker network
    assert httpx.get(f"http://{ip}:8080/", timeout=5).text == "hello from hello\n"

    def logged() -> str | None:
        out = dkube.ok("logs", "-n", dns_, "hello")
        return out if "tk-hello starting on hello with GREETING=bonjour" in out else None

    wait_for(logged, 15, "the container's output in kubectl logs")
    assert dkube.ok("exec", "-n", dns_, "hello", "--", "cat", "/etc/conf/motd") == "hi from a configmap"
    assert dkube.ok("exec", "-n", dns_, "hello", "--", "sh", "-c", "echo $GREETING $((6*7))").strip() == "bonjour 42"
    assert dkube("exec", "-n", dns_, "hello", "--", "sh", "-c", "exit 3").returncode == 3
    out = dkube.ok("exec", "-i", "-n", dns_, "hello", "--", "sh", "-c", "tr a-z A-Z", input="through stdin\n")
    assert out == "THROUGH STDIN\n"
    events = events_of(dkube, dns_, "hello", "already present on machine")
    assert f'Container image "{IMAGE}" already present on machine' in events

    follow = dkube.start("logs", "-f", "-n", dns_, "hello")
    try:
        assert httpx.get(f"http://{ip}:8080/followed", timeout=5).status_code == 404
        assert follow.stdout is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = follow.stdout.readline()
            if "/followed" in line:
                break
        else:
            raise AssertionError("kubectl logs -f did not show the new request")
    finally:
        follow.kill()
        follow.wait(5)

    assert dkube.ok("exec", "-n", dns_, "hello", "--", "cat", "/post-start") == "hook ran\n"
    assert _pod(dhttp, dns_, "hello")["status"]["containerStatuses"][0]["restartCount"] == 0  # liveness held
    uid = pod["metadata"]["uid"]
    assert len(_docker_labelled(f"io.kubernetes.pod.uid={uid}")) == 2  # the sandbox and the app container
    dkube.ok("delete", "pod", "-n", dns_, "hello", "--wait=true", timeout=40)
    wait_for(lambda: _docker_labelled(f"io.kubernetes.pod.uid={uid}") == [], 15, "the pod's containers removed")


def test_memory_limit_is_enforced_as_oom_killed(dkube: Kubectl, dhttp: httpx.Client, dns_: str) -> None:
    manifest = f"""
apiVersion: v1
kind: Pod
metadata: {{name: hog}}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: {IMAGE}
    imagePullPolicy: Never
    command: ["sh", "-c"]
    args: ["head -c 100m /dev/zero | tail"]
    resources: {{limits: {{memory: 32Mi, cpu: 500m}}}}
"""
    dkube.ok("apply", "-n", dns_, "-f", "-", input=manifest)
    term = wait_for(lambda: _state(dhttp, dns_, "hog").get("terminated"), 60, "the container terminated")
    assert term["reason"] == "OOMKilled", term
    assert term["exitCode"] == 137
    assert _pod(dhttp, dns_, "hog")["status"]["phase"] == "Failed"


def _waiting_reasons(dhttp: httpx.Client, ns: str, name: str, until: str, timeout: float) -> list[str]:
    """The container's waiting reasons in the order the pod's status went through them, until `until`."""
    seen: list[str] = []
    params = {"watch": "1", "fieldSelector": f"metadata.name={name}", "timeoutSeconds": str(int(timeout))}
    with dhttp.stream("GET", f"/api/v1/namespaces/{ns}/pods", params=params, timeout=timeout + 5) as resp:
        for line in resp.iter_lines():
            if not line:
                continue
            obj = json.loads(line)["object"]
            for cs in obj.get("status", {}).get("containerStatuses") or []:
                reason = (cs.get("state") or {}).get("waiting", {}).get("reason")
                if reason and (not seen or seen[-1] != reason):
                    seen.append(reason)
            if until in seen:
                break
    return seen


def test_unreachable_image_is_err_image_pull_then_back_off(dkube: Kubectl, dhttp: httpx.Client, dns_: str) -> None:
    dkube.ok("run", "-n", dns_, "nope", "--image=127.0.0.1:9/nope:1")
    started = time.monotonic()
    seen = _waiting_reasons(dhttp, dns_, "nope", "ImagePullBackOff", 40)
    assert "ErrImagePull" in seen and seen[-1] == "ImagePullBackOff", seen
    assert seen.index("ErrImagePull") < seen.index("ImagePullBackOff")
    assert time.monotonic() - started < 30  # a refused connection fails fast, no hang
    st = _state(dhttp, dns_, "nope")["waiting"]
    assert st["message"] == 'Back-off pulling image "127.0.0.1:9/nope:1"'
    events = events_of(dkube, dns_, "nope", "Error: ErrImagePull")
    assert 'Pulling image "127.0.0.1:9/nope:1"' in events, events
    row = table(dkube.ok("get", "pod", "-n", dns_, "nope"))[1]
    assert row[:3] in (["nope", "0/1", "ImagePullBackOff"], ["nope", "0/1", "ErrImagePull"]), row


def test_pull_policy_never_with_a_missing_image(dkube: Kubectl, dhttp: httpx.Client, dns_: str) -> None:
    dkube.ok("run", "-n", dns_, "never", "--image=tinykube-test/absent:1", "--image-pull-policy=Never")
    waiting = wait_for(
        lambda: (
            _state(dhttp, dns_, "never").get("waiting", {}).get("reason") == "ErrImageNeverPull"
            and _state(dhttp, dns_, "never")["waiting"]
        ),
        30,
        "ErrImageNeverPull",
    )
    assert waiting["message"] == 'Container image "tinykube-test/absent:1" is not present with pull policy of Never'


def test_a_sandbox_removed_behind_the_kubelets_back_is_re_made(dkube: Kubectl, dhttp: httpx.Client, dns_: str) -> None:
    manifest = f"""
apiVersion: v1
kind: Pod
metadata: {{name: phoenix}}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{{name: web, image: "{IMAGE}", imagePullPolicy: Never}}]
"""
    dkube.ok("apply", "-n", dns_, "-f", "-", input=manifest)
    pod = wait_for(lambda: _ready(dhttp, dns_, "phoenix"), 60, "pod phoenix Ready")
    uid = pod["metadata"]["uid"]
    sandbox = _docker_labelled(f"io.kubernetes.pod.uid={uid}", "io.kubernetes.docker.type=podsandbox")
    assert len(sandbox) == 1

    async def remove() -> None:
        engine = EngineClient()
        try:
            await engine.remove(sandbox[0])
        finally:
            await engine.close()

    asyncio.run(remove())

    def again() -> dict | None:
        p = _ready(dhttp, dns_, "phoenix")
        return p if p and p["status"]["containerStatuses"][0]["restartCount"] == 1 else None

    pod = wait_for(again, 60, "phoenix Ready again in a new sandbox")
    new = _docker_labelled(f"io.kubernetes.pod.uid={uid}", "io.kubernetes.docker.type=podsandbox")
    assert len(new) == 1 and new != sandbox

    def serves() -> str | None:
        try:
            return httpx.get(f"http://{pod['status']['podIP']}:8080/", timeout=5).text
        except httpx.ConnectError:
            return None  # no readiness probe: Ready before httpd listens

    assert wait_for(serves, 15, "the new instance serving on the new pod IP") == "hello from phoenix\n"
    assert "tk-hello starting on phoenix" in dkube.ok("logs", "-n", dns_, "phoenix", "--previous")
    events = events_of(dkube, dns_, "phoenix", "SandboxChanged")
    assert "Pod sandbox changed, it will be killed and re-created." in events


def test_a_restarted_kubelet_removes_what_its_predecessor_left(engine_ready: None, tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int, int]:
        first = DockerRuntime(tmp_path, "leftover-node")
        await first.start()
        await first.run_pod_sandbox(SandboxConfig("uid-left", "default", "left"))
        cid = await first.create_container("uid-left", ContainerConfig("c", IMAGE, [], {}, command=["sleep", "600"]))
        await first.start_container(cid)
        # the kubelet dies (it is left as it is: nothing is stopped or removed)
        other = DockerRuntime(tmp_path / "elsewhere", "leftover-node")  # another kubelet, same node name
        await other.start()
        await other.run_pod_sandbox(SandboxConfig("uid-other", "default", "other"))
        before = len(await other.engine.list({"io.tinykube.node": "leftover-node"}))
        second = DockerRuntime(tmp_path, "leftover-node")
        await second.start()
        after = len(await other.engine.list({"io.tinykube.node": "leftover-node"}))
        await second.shutdown(0)
        left = len(await first.engine.list({"io.tinykube.node": "leftover-node"}))
        await other.shutdown(0)
        await first.engine.close()
        return before, after, left

    # its own two went, the other kubelet's sandbox stayed (until that one stopped)
    assert asyncio.run(scenario()) == (3, 1, 1)
    assert _docker_labelled("io.tinykube.node=leftover-node") == []


def test_run_interactive_reads_stdin_through_the_engine(
    kubectl_binary: Path, dkube: Kubectl, dcluster: Cluster, dns_: str
) -> None:
    """`kubectl run -i --rm`: the container is created with its stdin open (StdinOnce); the attach writes to it
    through the engine's attach API and follows the output until the container exits."""
    skube = Kubectl(kubectl_binary, dcluster.secure_server, dkube.cache_dir, dkube.home, dkube.env)
    run = ("run", "ask", "-i", "--rm", "--restart=Never", f"--image={IMAGE}", "--image-pull-policy=Never")
    r = skube("-n", dns_, *run, "--command", "--", "sh", "-c", "read x; echo got $x", input="hello\n", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "got hello" in r.stdout, (r.stdout, r.stderr)
    wait_for(lambda: "NotFound" in skube("-n", dns_, "get", "pod", "ask").stderr, what="pod ask removed")
