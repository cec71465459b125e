"""Controllers on a real cluster: Deployments roll, RCs replicate, Jobs finish, nodes fail over."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.cluster.conftest import NODE_GRACE, processes_with, wait_for
from tests.e2e.conftest import Kubectl, table
from tinykube.cluster import Cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class _Watched:
    """One kind's objects in a namespace, kept current by a list and a watch on a thread of its own; `changed`
    runs after every event."""

    def __init__(self, server: str, path: str, selector: str, changed: Callable[[], None]) -> None:
        self.objects: dict[str, dict] = {}
        self._changed = changed
        self._stop = threading.Event()
        self._started = threading.Event()
        threading.Thread(target=self._run, args=(server, path, selector), daemon=True).start()
        assert self._started.wait(10)

    def _run(self, server: str, path: str, selector: str) -> None:
        with httpx.Client(base_url=server, timeout=httpx.Timeout(10, read=60)) as c:
            listed = c.get(path, params={"labelSelector": selector}).json()
            self.objects = {o["metadata"]["name"]: o for o in listed["items"]}
            rv = listed["metadata"]["resourceVersion"]
            params = {"watch": "1", "labelSelector": selector, "resourceVersion": rv}
            with c.stream("GET", path, params=params) as r:
                self._started.set()
                for line in r.iter_lines():
                    if self._stop.is_set():
                        return
                    if not line.strip():
                        continue
                    ev = json.loads(line)
                    if ev["type"] == "BOOKMARK":
                        continue
                    name = ev["object"]["metadata"]["name"]
                    if ev["type"] == "DELETED":
                        self.objects.pop(name, None)
                    else:
                        self.objects[name] = ev["object"]
                    self._changed()

    def stop(self) -> None:
        """Stop at the next event."""
        self._stop.set()


class RolloutCounter:
    """Watches a Deployment's ReplicaSets and pods and records the worst moments of a rollout, as upstream's
    e2e framework checks a rolling update (`checkRollingUpdateStatus`): the ReplicaSets' replicas summed (the
    pods the Deployment asks for; a pod of an old ReplicaSet scaled down may outlive that by the moment its
    controller takes to delete it, while the new one's pod is created) and the pods ready."""

    def __init__(self, server: str, ns: str, selector: str) -> None:
        self.max_total = 0
        self.min_ready = 10**9
        self._armed = False
        self._lock = threading.Lock()
        self._sets = _Watched(server, f"/apis/apps/v1/namespaces/{ns}/replicasets", selector, self._observe)
        self._pods = _Watched(server, f"/api/v1/namespaces/{ns}/pods", selector, self._observe)

    def _observe(self) -> None:
        with self._lock:
            if not self._armed:
                return
            wanted = sum(rs["spec"].get("replicas", 1) for rs in list(self._sets.objects.values()))
            live = [p for p in list(self._pods.objects.values()) if not p["metadata"].get("deletionTimestamp")]
            ready = sum(
                1
                for p in live
                if any(
                    c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions") or []
                )
            )
            self.max_total = max(self.max_total, wanted)
            self.min_ready = min(self.min_ready, ready)

    def arm(self) -> None:
        """Start counting from now on."""
        with self._lock:
            self._armed = True
        self._observe()

    def stop(self) -> None:
        """Stop at the next events."""
        self._sets.stop()
        self._pods.stop()


def test_rolling_update_history_undo_pause(kube: Kubectl, chttp: httpx.Client, cluster: Cluster, cns: str) -> None:
    kube.ok("apply", "-n", cns, "-f", str(EXAMPLES / "rolling-update.yaml"))
    out = kube.ok("rollout", "status", "-n", cns, "deploy/nginx-deployment", "--timeout=60s", timeout=70)
    assert 'deployment "nginx-deployment" successfully rolled out' in out
    rows = table(kube.ok("get", "deploy", "-n", cns))
    assert rows[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows[1][:4] == ["nginx-deployment", "4/4", "4", "4"]

    counter = RolloutCounter(cluster.server, cns, "app=nginx")
    counter.arm()
    kube.ok("set", "image", "-n", cns, "deploy/nginx-deployment", "nginx=nginx:1.13")
    kube.ok("annotate", "-n", cns, "deploy/nginx-deployment", "kubernetes.io/change-cause=image 1.13", "--overwrite")
    kube.ok("rollout", "status", "-n", cns, "deploy/nginx-deployment", "--timeout=90s", timeout=100)
    counter.stop()
    # maxSurge 1 and maxUnavailable 1 with 4 replicas: never more than 5 pods asked for, never fewer than 3 ready
    assert counter.max_total == 5, counter.max_total  # the new ReplicaSet starts at 1 beside the old 4
    assert counter.min_ready >= 3, counter.min_ready

    history = kube.ok("rollout", "history", "-n", cns, "deploy/nginx-deployment")
    lines = [line.split(None, 1) for line in history.splitlines()[2:] if line.strip()]
    assert [r[0] for r in lines] == ["1", "2"]
    assert "initial rollout of nginx:1.12" in lines[0][1] and "image 1.13" in lines[1][1]

    rs_before = json.loads(kube.ok("get", "rs", "-n", cns, "-o", "json"))["items"]
    old = next(r for r in rs_before if r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1")
    kube.ok("rollout", "undo", "-n", cns, "deploy/nginx-deployment", "--to-revision=1")
    kube.ok("rollout", "status", "-n", cns, "deploy/nginx-deployment", "--timeout=90s", timeout=100)
    back = json.loads(kube.ok("get", "rs", "-n", cns, old["metadata"]["name"], "-o", "json"))
    assert back["status"]["readyReplicas"] == 4
    assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert back["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.12"

    kube.ok("rollout", "pause", "-n", cns, "deploy/nginx-deployment")
    kube.ok("set", "image", "-n", cns, "deploy/nginx-deployment", "nginx=nginx:1.14")
    kube.ok("set", "env", "-n", cns, "deploy/nginx-deployment", "MODE=paused-edit")
    rs_paused = json.loads(kube.ok("get", "rs", "-n", cns, "-o", "json"))["items"]
    assert len(rs_paused) == 2  # no rollout while paused
    kube.ok("rollout", "resume", "-n", cns, "deploy/nginx-deployment")
    kube.ok("rollout", "status", "-n", cns, "deploy/nginx-deployment", "--timeout=90s", timeout=100)
    rs_after = json.loads(kube.ok("get", "rs", "-n", cns, "-o", "json"))["items"]
    assert len(rs_after) == 3  # one new ReplicaSet for both edits
    new = next(r for r in rs_after if r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4")
    c = new["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "nginx:1.14" and {"name": "MODE", "value": "paused-edit"} in c["env"]


def test_delete_deployment_cascades_or_orphans(kube: Kubectl, chttp: httpx.Client, cns: str) -> None:
    kube.ok("create", "deployment", "-n", cns, "web", "--image=busybox", "--replicas=2", "--", "sleep", "3600")
    kube.ok("rollout", "status", "-n", cns, "deploy/web", "--timeout=60s", timeout=70)
    kube.ok("delete", "deploy", "-n", cns, "web", "--cascade=orphan", "--wait=true", timeout=30)
    rs = json.loads(kube.ok("get", "rs", "-n", cns, "-o", "json"))["items"]
    assert len(rs) == 1 and not rs[0]["metadata"].get("ownerReferences")
    assert len(json.loads(kube.ok("get", "pods", "-n", cns, "-o", "json"))["items"]) == 2

    kube.ok("create", "deployment", "-n", cns, "api", "--image=busybox", "--replicas=2", "--", "sleep", "3600")
    kube.ok("rollout", "status", "-n", cns, "deploy/api", "--timeout=60s", timeout=70)
    kube.ok("delete", "deploy", "-n", cns, "api", "--cascade=foreground", "--wait=true", timeout=60)

    def api_gone() -> bool:
        pods = json.loads(kube.ok("get", "pods", "-n", cns, "-l", "app=api", "-o", "json"))["items"]
        rs = json.loads(kube.ok("get", "rs", "-n", cns, "-l", "app=api", "-o", "json"))["items"]
        return not pods and not rs

    wait_for(api_gone, 30, "the api Deployment's ReplicaSet and Pods deleted")

    # kubectl's default cascade is background: the Deployment goes at once, the GC takes the rest
    kube.ok("create", "deployment", "-n", cns, "bg", "--image=busybox", "--replicas=2", "--", "sleep", "3600")
    kube.ok("rollout", "status", "-n", cns, "deploy/bg", "--timeout=60s", timeout=70)
    kube.ok("delete", "deploy", "-n", cns, "bg", timeout=30)

    def bg_gone() -> bool:
        pods = json.loads(kube.ok("get", "pods", "-n", cns, "-l", "app=bg", "-o", "json"))["items"]
        rs = json.loads(kube.ok("get", "rs", "-n", cns, "-l", "app=bg", "-o", "json"))["items"]
        return not pods and not rs

    wait_for(bg_gone, 30, "the bg Deployment's ReplicaSet and Pods deleted in the background")


def test_replication_controller_and_web_stack(kube: Kubectl, chttp: httpx.Client, cluster: Cluster, cns: str) -> None:
    kube.ok("apply", "-n", cns, "-f", str(EXAMPLES / "replication-controller.yaml"))
    kube.ok("apply", "-n", cns, "-f", str(EXAMPLES / "web-stack.yaml"))

    def rcs_ready() -> list | None:
        rows = table(kube.ok("get", "rc", "-n", cns))
        return (
            rows
            if rows[0][:4] == ["NAME", "DESIRED", "CURRENT", "READY"] and all(r[1] == r[3] for r in rows[1:])
            else None
        )

    rows = wait_for(rcs_ready, 60, "replication controllers ready")
    assert sorted(r[:4] for r in rows[1:]) == [["mysql", "1", "1", "1"], ["myweb", "2", "2", "2"]]
    for d in ("nginx", "php", "wordpress-mysql"):
        kube.ok("rollout", "status", "-n", cns, f"deploy/{d}", "--timeout=60s", timeout=70)

    def endpoints(name: str, n: int) -> dict | None:
        ep = chttp.get(f"/api/v1/namespaces/{cns}/endpoints/{name}").json()
        return ep if len([a for s in ep.get("subsets") or [] for a in s.get("addresses") or []]) == n else None

    # the endpoints controller follows the pods on its own, apart from the RC and Deployment statuses
    ep = wait_for(lambda: endpoints("myweb", 2), 20, "myweb's Endpoints listing both pods")
    assert len(ep["subsets"][0]["addresses"]) == 2 and ep["subsets"][0]["ports"][0]["port"] == 8080
    ep = wait_for(lambda: endpoints("wordpress-mysql", 1), 20, "wordpress-mysql's Endpoints listing its pod")
    assert len(ep["subsets"][0]["addresses"]) == 1
    # myweb answers on nodePort 30001 of every node
    for node in cluster.node_names:
        url = f"http://{cluster.node_ip(node)}:30001/"
        r = wait_for(lambda u=url: _try_get(u), 20, f"nodePort 30001 on {node}")
        assert r.status_code == 200 and "Directory listing" in r.text

    # a deleted RC pod is replaced
    pod = json.loads(kube.ok("get", "pods", "-n", cns, "-l", "app=myweb", "-o", "json"))["items"][0]
    kube.ok("delete", "pod", "-n", cns, pod["metadata"]["name"], "--wait=true", timeout=30)
    wait_for(rcs_ready, 30, "myweb back to 2 ready")


def _try_get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=3)
    except httpx.HTTPError:
        return None


def test_batch_jobs(kube: Kubectl, chttp: httpx.Client, cns: str) -> None:
    kube.ok("apply", "-n", cns, "-f", str(EXAMPLES / "batch.yaml"))
    kube.ok("wait", "-n", cns, "--for=condition=Complete", "job/compute", "--timeout=90s", timeout=100)
    job = chttp.get(f"/apis/batch/v1/namespaces/{cns}/jobs/compute").json()
    assert job["status"]["succeeded"] == 5
    kube.ok("wait", "-n", cns, "--for=condition=Failed", "job/always-fails", "--timeout=90s", timeout=100)
    failed = chttp.get(f"/apis/batch/v1/namespaces/{cns}/jobs/always-fails").json()
    cond = next(c for c in failed["status"]["conditions"] if c["type"] == "Failed")
    assert cond["reason"] == "BackoffLimitExceeded"
    logs = kube.ok("logs", "-n", cns, "job/compute")
    assert logs.strip() == str(sum(i * i for i in range(10**6)))


def test_daemonset_and_statefulset(kube: Kubectl, chttp: httpx.Client, cluster: Cluster, cns: str) -> None:
    kube.ok("apply", "-n", cns, "-f", str(EXAMPLES / "daemon-and-stateful.yaml"))
    kube.ok("rollout", "status", "-n", cns, "ds/log-collector", "--timeout=60s", timeout=70)
    pods = json.loads(kube.ok("get", "pods", "-n", cns, "-l", "app=log-collector", "-o", "json"))["items"]
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(cluster.node_names)
    kube.ok("rollout", "status", "-n", cns, "sts/db", "--timeout=90s", timeout=100)
    pods = json.loads(kube.ok("get", "pods", "-n", cns, "-l", "app=db", "-o", "json"))["items"]
    assert sorted(p["metadata"]["name"] for p in pods) == ["db-0", "db-1", "db-2"]
    assert kube.ok("logs", "-n", cns, "db-1").startswith("I am db-1")
    db0 = chttp.get(f"/api/v1/namespaces/{cns}/pods/db-0").json()
    assert db0["spec"]["hostname"] == "db-0" and db0["spec"]["subdomain"] == "db"


def test_killed_kubelet_pods_come_back_on_the_other_node(
    kube: Kubectl, chttp: httpx.Client, cluster: Cluster, cns: str
) -> None:
    victim = cluster.node_names[-1]
    marker = f"{4000 + uuid.uuid4().int % 1000}.5"
    kube.ok("create", "deployment", "-n", cns, "survivor", "--image=busybox", "--replicas=2", "--", "sleep", marker)
    kube.ok("rollout", "status", "-n", cns, "deploy/survivor", "--timeout=60s", timeout=70)
    kubelet = next(p for p in cluster.processes if p.name == f"kubelet-{victim}")
    kubelet.kill()
    try:

        def node_unknown() -> bool:
            node = chttp.get(f"/api/v1/nodes/{victim}").json()
            ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
            taints = {t["key"] for t in node["spec"].get("taints") or []}
            return ready["status"] == "Unknown" and "node.kubernetes.io/unreachable" in taints

        wait_for(node_unknown, NODE_GRACE + 20, f"{victim} Ready=Unknown with the unreachable taint")

        def all_on_survivor() -> bool:
            pods = json.loads(kube.ok("get", "pods", "-n", cns, "-l", "app=survivor", "-o", "json"))["items"]
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            return (
                len(live) == 2
                and all(p["spec"].get("nodeName") != victim for p in live)
                and all(
                    any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])
                    for p in live
                )
            )

        wait_for(all_on_survivor, 60, "both replicas Ready on the healthy node")
    finally:
        cluster.restart(kubelet.name)
    # the restarted kubelet ended what its killed predecessor left running: only the two live replicas remain
    assert wait_for(lambda: len(processes_with(f"sleep {marker}")) == 2, 15, "orphaned containers ended")
