"""Kubelet lifecycle details: init containers, restart policies, volume refresh, kubelet restarts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubelet.journal import read_journal
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


@pytest.fixture(scope="module")
def kubelet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this module's kubelets keep their state and logs."""
    return tmp_path_factory.mktemp("kubelet-lifecycle")


@pytest.fixture(scope="module")
def kubelet(apiserver: str, kubelet_dir: Path) -> Iterator[KubeletProc]:
    """A kubelet for this module."""
    k = start_kubelet(apiserver, kubelet_dir)
    yield k
    stop_kubelet(k)


@pytest.fixture
async def cleanup(api: httpx.AsyncClient, ns: str) -> AsyncIterator[list[str]]:
    """Pod names to delete (and wait for) after the test."""
    names: list[str] = []
    yield names
    for name in names:
        await api.delete(f"/api/v1/namespaces/{ns}/pods/{name}", params={"gracePeriodSeconds": "1"})

    async def all_gone() -> bool:
        return all([await get_pod(api, ns, n) is None for n in names])

    await eventually(all_gone, 30, "pods deleted")


def pod(name: str, node: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A pod bound to `node`."""
    for c in [*containers, *spec.get("initContainers", [])]:
        c.setdefault("image", "busybox:1.36")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": containers, **spec},
    }


async def phase_is(api: httpx.AsyncClient, ns: str, name: str, phase: str, timeout: float = 20) -> dict[str, Any]:
    """Wait for the pod's phase."""

    async def check() -> dict[str, Any] | None:
        p = await get_pod(api, ns, name)
        return p if p and p["status"].get("phase") == phase else None

    return await eventually(check, timeout, f"{name} phase {phase}")


async def test_init_containers_run_in_order(
    api: httpx.AsyncClient, ns: str, cleanup: list[str], kubelet: KubeletProc
) -> None:
    body = pod(
        "with-init",
        kubelet.node,
        [
            {
                "name": "main",
                "command": ["sh", "-c", "cat /work/order; sleep 600"],
                "volumeMounts": [{"name": "work", "mountPath": "/work"}],
            }
        ],
        initContainers=[
            {
                "name": "first",
                "command": ["sh", "-c", "sleep 2; echo first >> /work/order"],
                "volumeMounts": [{"name": "work", "mountPath": "/work"}],
            },
            {
                "name": "second",
                "command": ["sh", "-c", "echo second >> /work/order"],
                "volumeMounts": [{"name": "work", "mountPath": "/work"}],
            },
        ],
        volumes=[{"name": "work", "emptyDir": {}}],
    )
    await create(api, ns, "pods", body)
    cleanup.append("with-init")

    async def initializing() -> dict[str, Any] | None:
        p = await get_pod(api, ns, "with-init")
        inits = (p or {}).get("status", {}).get("initContainerStatuses") or []
        return p if inits and "running" in inits[0]["state"] else None

    p = await eventually(initializing, 15, "first init container running")
    assert p["status"]["phase"] == "Pending"
    assert condition(p, "Initialized") == "False"
    init = {c["name"]: c for c in p["status"]["initContainerStatuses"]}
    assert init["second"]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert container_status(p, "main")["state"] == {"waiting": {"reason": "PodInitializing"}}
    cond = next(c for c in p["status"]["conditions"] if c["type"] == "Initialized")
    assert cond["message"] == "containers with incomplete status: [first second]"

    p = await phase_is(api, ns, "with-init", "Running")
    assert condition(p, "Initialized") == "True"
    for s in p["status"]["initContainerStatuses"]:
        assert s["state"]["terminated"]["exitCode"] == 0 and s["state"]["terminated"]["reason"] == "Completed"
        assert s["ready"] is True
    log = kubelet.root / "pods" / p["metadata"]["uid"] / "logs" / "main" / "0.log"

    async def logged() -> str:
        text = log.read_text() if log.exists() else ""
        return text if "second" in text else ""

    text = await eventually(logged, 10, "main container output")
    assert [line.split(" ", 3)[3] for line in text.splitlines()] == ["first", "second"]


async def test_restart_policy_never_and_on_failure(
    api: httpx.AsyncClient, ns: str, cleanup: list[str], kubelet: KubeletProc
) -> None:
    await create(api, ns, "pods", pod("ok", kubelet.node, [{"name": "c", "command": ["true"]}], restartPolicy="Never"))
    await create(
        api,
        ns,
        "pods",
        pod("bad", kubelet.node, [{"name": "c", "command": ["sh", "-c", "exit 3"]}], restartPolicy="Never"),
    )
    await create(
        api,
        ns,
        "pods",
        pod("onfail", kubelet.node, [{"name": "c", "command": ["true"]}], restartPolicy="OnFailure"),
    )
    cleanup.extend(["ok", "bad", "onfail"])
    ok = await phase_is(api, ns, "ok", "Succeeded")
    term = container_status(ok, "c")["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed" and term["startedAt"] and term["finishedAt"]
    ready = next(c for c in ok["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "PodCompleted"
    bad = await phase_is(api, ns, "bad", "Failed")
    cs = container_status(bad, "c")
    assert cs["state"]["terminated"]["exitCode"] == 3 and cs["state"]["terminated"]["reason"] == "Error"
    assert cs["restartCount"] == 0
    onfail = await phase_is(api, ns, "onfail", "Succeeded")
    assert container_status(onfail, "c")["restartCount"] == 0


async def test_config_map_volume_refreshes(
    api: httpx.AsyncClient, ns: str, cleanup: list[str], kubelet: KubeletProc
) -> None:
    await create(api, ns, "configmaps", {"metadata": {"name": "conf"}, "data": {"greeting": "hello"}})
    body = pod(
        "reader",
        kubelet.node,
        [
            {
                "name": "c",
                "command": ["sh", "-c", "while true; do cat /etc/conf/greeting; echo; sleep 0.3; done"],
                "volumeMounts": [{"name": "conf", "mountPath": "/etc/conf", "readOnly": True}],
            }
        ],
        volumes=[{"name": "conf", "configMap": {"name": "conf"}}],
    )
    p = await create(api, ns, "pods", body)
    cleanup.append("reader")
    log = kubelet.root / "pods" / p["metadata"]["uid"] / "logs" / "c" / "0.log"

    def has(word: str) -> bool:
        return log.exists() and word in log.read_text()

    async def hello() -> bool:
        return has("hello")

    await eventually(hello, 15, "configmap contents")
    r = await api.patch(
        f"/api/v1/namespaces/{ns}/configmaps/conf",
        json={"data": {"greeting": "bonjour"}},
        headers={"content-type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text

    async def bonjour() -> bool:
        return has("bonjour")

    await eventually(bonjour, 15, "refreshed configmap contents")
    cs = container_status(await get_pod(api, ns, "reader") or {}, "c")
    assert cs["restartCount"] == 0


async def test_missing_command_is_create_container_error(
    api: httpx.AsyncClient, ns: str, cleanup: list[str], kubelet: KubeletProc
) -> None:
    await create(api, ns, "pods", pod("nocmd", kubelet.node, [{"name": "c", "image": "nginx:alpine"}]))
    cleanup.append("nocmd")

    async def waiting() -> dict[str, Any] | None:
        cs = container_status(await get_pod(api, ns, "nocmd") or {}, "c")
        w = cs.get("state", {}).get("waiting", {})
        return w if w.get("reason") == "CreateContainerError" else None

    w = await eventually(waiting, 15, "CreateContainerError")
    assert w["message"] == "the process runtime needs a command for image nginx:alpine"


async def test_args_without_command_run_as_the_command(
    api: httpx.AsyncClient, ns: str, cleanup: list[str], kubelet: KubeletProc
) -> None:
    # `kubectl run x --image=busybox -- sleep 600` sends args only; with no image to read an
    # ENTRYPOINT from, the args are the command line (as in an image without ENTRYPOINT)
    await create(
        api, ns, "pods", pod("argsonly", kubelet.node, [{"name": "c", "image": "busybox", "args": ["sleep", "600"]}])
    )
    cleanup.append("argsonly")

    async def running() -> dict[str, Any] | None:
        cs = container_status(await get_pod(api, ns, "argsonly") or {}, "c")
        return cs if "running" in cs.get("state", {}) else None

    await eventually(running, 15, "args-only container running")


def _to_file_per_record_layout(root: Path) -> None:
    """Rewrite a stopped kubelet's pid and sandbox journals as the files of earlier versions."""
    for journal, path in ((root / "pids" / "containers", "pids/{}.json"), (root / "sandboxes", "pods/{}/sandbox.json")):
        for key, text in read_journal(journal)[0].items():
            (root / path.format(key)).write_text(text)
        journal.unlink()


@pytest.mark.parametrize("layout", ["journal", "file per record"])
async def test_kubelet_restart_kills_leftovers_and_reruns_pods(
    apiserver: str, api: httpx.AsyncClient, ns: str, kubelet_dir: Path, layout: str
) -> None:
    first = start_kubelet(apiserver, kubelet_dir)
    second: KubeletProc | None = None
    old_pid = 0
    try:
        await create(api, ns, "pods", pod("survivor", first.node, [{"name": "c", "command": ["sleep", "600"]}]))
        p = await phase_is(api, ns, "survivor", "Running")
        old_pid = first.pid_of(container_status(p, "c")["containerID"])
        old_ip = p["status"]["podIP"]
        first.proc.kill()  # SIGKILL: the container process is left behind
        assert alive(old_pid)
        if layout == "file per record":  # left by a kubelet of an earlier version
            _to_file_per_record_layout(first.root)
        second = await asyncio.to_thread(start_kubelet, apiserver, kubelet_dir, like=first)

        async def replaced() -> dict[str, Any] | None:
            cur = await get_pod(api, ns, "survivor")
            cs = container_status(cur or {}, "c")
            running = "running" in cs.get("state", {})
            return cur if running and cs.get("containerID") != container_status(p, "c")["containerID"] else None

        cur = await eventually(replaced, 20, "pod re-run by the new kubelet")
        assert not alive(old_pid)
        assert cur["status"]["podIP"] == old_ip
        assert container_status(cur, "c")["restartCount"] == 1
        # the sandbox records are in the journal, an earlier version's file folded into it
        assert p["metadata"]["uid"] in read_journal(first.root / "sandboxes")[0]
        assert not (first.root / "pods" / p["metadata"]["uid"] / "sandbox.json").exists()
        await api.delete(f"/api/v1/namespaces/{ns}/pods/survivor", params={"gracePeriodSeconds": "1"})

        async def gone() -> bool:
            return await get_pod(api, ns, "survivor") is None

        await eventually(gone, 20, "pod deleted")
    finally:
        if second is not None:
            await asyncio.to_thread(stop_kubelet, second)
        elif first.proc.alive():
            await asyncio.to_thread(stop_kubelet, first)
        for pid in {*first.container_pids(), old_pid}:
            if pid and alive(pid):
                os.killpg(pid, 9)


async def test_working_dir_sub_path_read_only_and_host_path(
    api: httpx.AsyncClient, ns: str, cleanup: list[str], kubelet: KubeletProc, kubelet_dir: Path
) -> None:
    host_dir = kubelet_dir / f"host-{ns}"
    script = (
        "pwd; echo from-pod > /host/out.txt; echo data > file; "
        "touch /conf/x 2>/dev/null || echo read-only; cat /conf/k; echo; sleep 600"
    )
    body = pod(
        "mounts",
        kubelet.node,
        [
            {
                "name": "c",
                "command": ["sh", "-c", script],
                "workingDir": f"/tk-{ns}/scratch",
                "volumeMounts": [
                    {"name": "scratch", "mountPath": f"/tk-{ns}/scratch", "subPath": "sub"},
                    {"name": "host", "mountPath": "/host"},
                    {"name": "conf", "mountPath": "/conf", "readOnly": True},
                ],
            }
        ],
        volumes=[
            {"name": "scratch", "emptyDir": {}},
            {"name": "host", "hostPath": {"path": str(host_dir), "type": "DirectoryOrCreate"}},
            {"name": "conf", "configMap": {"name": "conf2"}},
        ],
    )
    await create(api, ns, "configmaps", {"metadata": {"name": "conf2"}, "data": {"k": "v"}})
    p = await create(api, ns, "pods", body)
    cleanup.append("mounts")
    pod_dir = kubelet.root / "pods" / p["metadata"]["uid"]
    log = pod_dir / "logs" / "c" / "0.log"

    async def done() -> str:
        text = log.read_text() if log.exists() else ""
        return text if "read-only" in text and " v\n" in text else ""

    text = await eventually(done, 15, "container output")
    assert [line.split(" ", 3)[3] for line in text.splitlines()] == [f"/tk-{ns}/scratch", "read-only", "v"]
    assert (host_dir / "out.txt").read_text() == "from-pod\n"
    assert (pod_dir / "volumes" / "scratch" / "sub" / "file").read_text() == "data\n"
    # mount points that do not exist are made in the container's own root, never on the host
    assert not _exists(f"/tk-{ns}")


def _exists(path: str) -> bool:
    return Path(path).exists()


async def test_sidecar_runs_beside_main_and_stops_after_it(
    api: httpx.AsyncClient, ns: str, cleanup: list[str], kubelet: KubeletProc
) -> None:
    body = pod(
        "with-sidecar",
        kubelet.node,
        [{"name": "main", "command": ["sh", "-c", "sleep 3; echo done"]}],
        restartPolicy="Never",
        initContainers=[
            {"name": "side", "restartPolicy": "Always", "command": ["sleep", "600"]},
            {"name": "after", "command": ["true"]},
        ],
    )
    await create(api, ns, "pods", body)
    cleanup.append("with-sidecar")

    async def main_running() -> dict[str, Any] | None:
        p = await get_pod(api, ns, "with-sidecar")
        return p if p and "running" in container_status(p, "main").get("state", {}) else None

    p = await eventually(main_running, 15, "main container running")
    assert p["status"]["phase"] == "Running" and condition(p, "Initialized") == "True"
    init = {s["name"]: s for s in p["status"]["initContainerStatuses"]}
    assert "running" in init["side"]["state"] and init["side"]["started"] and init["side"]["ready"]
    assert init["after"]["state"]["terminated"]["exitCode"] == 0
    p = await phase_is(api, ns, "with-sidecar", "Succeeded")
    init = {s["name"]: s for s in p["status"]["initContainerStatuses"]}
    assert "terminated" in init["side"]["state"]
    assert container_status(p, "main")["state"]["terminated"]["reason"] == "Completed"


async def test_active_deadline_fails_pod(
    api: httpx.AsyncClient, ns: str, cleanup: list[str], kubelet: KubeletProc
) -> None:
    body = pod("deadline", kubelet.node, [{"name": "c", "command": ["sleep", "600"]}], activeDeadlineSeconds=2)
    await create(api, ns, "pods", body)
    cleanup.append("deadline")
    p = await phase_is(api, ns, "deadline", "Failed", 20)
    assert p["status"]["reason"] == "DeadlineExceeded"
    assert p["status"]["message"] == "Pod was active on the node longer than the specified deadline"
    assert "terminated" in container_status(p, "c")["state"]
    ready = next(c for c in p["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "PodFailed"


async def test_missing_secret_volume_waits_in_container_creating(
    api: httpx.AsyncClient, ns: str, cleanup: list[str], kubelet: KubeletProc
) -> None:
    body = pod(
        "needs-secret",
        kubelet.node,
        [{"name": "c", "command": ["sleep", "600"], "volumeMounts": [{"name": "s", "mountPath": "/s"}]}],
        volumes=[{"name": "s", "secret": {"secretName": "later"}}],
    )
    await create(api, ns, "pods", body)
    cleanup.append("needs-secret")

    async def failed_mount() -> str:
        r = await api.get(f"/api/v1/namespaces/{ns}/events")
        return next((e["message"] for e in r.json()["items"] if e["reason"] == "FailedMount"), "")

    message = await eventually(failed_mount, 15, "FailedMount event")
    assert message == 'MountVolume.SetUp failed for volume "s" : secret "later" not found'

    async def reported() -> dict[str, Any] | None:
        p = await get_pod(api, ns, "needs-secret")
        return p if p and container_status(p, "c") else None

    # the event is queued before the kubelet writes the pod's status, which may reach the API later
    p = await eventually(reported, 15, "the kubelet's status of the pod")
    assert p and p["status"]["phase"] == "Pending"
    assert container_status(p, "c")["state"] == {"waiting": {"reason": "ContainerCreating"}}
    await create(api, ns, "secrets", {"metadata": {"name": "later"}, "stringData": {"k": "v"}})
    await phase_is(api, ns, "needs-secret", "Running", 15)


async def test_post_start_and_pre_stop_hooks(
    api: httpx.AsyncClient, ns: str, kubelet: KubeletProc, kubelet_dir: Path
) -> None:
    out = kubelet_dir / f"hooks-{ns}"
    body = pod(
        "hooks",
        kubelet.node,
        [
            {
                "name": "c",
                "command": ["sleep", "600"],
                "volumeMounts": [{"name": "out", "mountPath": "/out"}],
                "lifecycle": {
                    "postStart": {"exec": {"command": ["sh", "-c", "echo started > /out/post"]}},
                    "preStop": {"exec": {"command": ["sh", "-c", "echo stopping > /out/pre"]}},
                },
            }
        ],
        volumes=[{"name": "out", "hostPath": {"path": str(out), "type": "DirectoryOrCreate"}}],
    )
    body["spec"]["terminationGracePeriodSeconds"] = 5
    await create(api, ns, "pods", body)
    await phase_is(api, ns, "hooks", "Running")

    async def post_ran() -> bool:
        return _read(out / "post") == "started\n"

    await eventually(post_ran, 10, "postStart hook output")
    assert _read(out / "pre") == ""
    await api.delete(f"/api/v1/namespaces/{ns}/pods/hooks")

    async def gone() -> bool:
        return await get_pod(api, ns, "hooks") is None

    await eventually(gone, 20, "pod deleted")
    assert _read(out / "pre") == "stopping\n"


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def test_failed_post_start_hook_restarts_container(
    api: httpx.AsyncClient, ns: str, cleanup: list[str], kubelet: KubeletProc
) -> None:
    hook = {"postStart": {"exec": {"command": ["sh", "-c", "echo nope; exit 1"]}}}
    body = pod("bad-hook", kubelet.node, [{"name": "c", "command": ["sleep", "600"], "lifecycle": hook}])
    p = await create(api, ns, "pods", body)
    cleanup.append("bad-hook")
    uid = p["metadata"]["uid"]

    async def hook_event() -> str:
        r = await api.get(f"/api/v1/namespaces/{ns}/events")
        return next((e["message"] for e in r.json()["items"] if e["reason"] == "FailedPostStartHook"), "")

    message = await eventually(hook_event, 15, "FailedPostStartHook event")
    assert message == (
        f'Exec lifecycle hook ([sh -c echo nope; exit 1]) for Container "c" in Pod "bad-hook_{ns}({uid})" '
        "failed - error: command 'sh -c echo nope; exit 1' exited with 1: nope\n, message: \"nope\\n\""
    )

    async def restarted() -> bool:
        return container_status(await get_pod(api, ns, "bad-hook") or {}, "c").get("restartCount", 0) >= 1

    await eventually(restarted, 15, "container restarted after the failed hook")
