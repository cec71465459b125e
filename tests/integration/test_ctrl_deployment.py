"""Deployment controller (with the ReplicaSet controller) against the real apiserver: rollouts,
rollback, pause/resume, history clean-up, proportional scaling, Recreate, progress deadline, and
the real `kubectl rollout status` / `rollout undo` reading what the controllers write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import yaml

from controller_manager.controllers import deployment_util as du
from tests.integration.controller_kit import controllers, eventually
from tests.integration.rsdeploy_kit import (
    PodCensus,
    auto_ready,
    create,
    deployment,
    event_messages,
    get,
    kubectl,
    list_pods,
    patch,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rolling-update.yaml"
REVISION = "deployment.kubernetes.io/revision"


def d_path(ns: str, name: str = "") -> str:
    """URL path of the deployments collection or one Deployment."""
    return f"/apis/apps/v1/namespaces/{ns}/deployments" + (f"/{name}" if name else "")


async def replica_sets(api: httpx.AsyncClient, ns: str) -> dict[str, dict[str, Any]]:
    """ReplicaSets in `ns` by the image of their first container (each test template has its own image)."""
    r = await api.get(f"/apis/apps/v1/namespaces/{ns}/replicasets")
    assert r.status_code == 200, r.text
    return {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs for rs in r.json()["items"]}


def condition(d: dict[str, Any], type_: str) -> dict[str, Any]:
    """The deployment's condition of that type ({} if absent)."""
    return next((c for c in (d.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


async def rolled_out(api: httpx.AsyncClient, ns: str, name: str, n: int) -> dict[str, Any] | None:
    """The deployment once its latest generation is observed with all `n` replicas updated and available."""
    d = await get(api, d_path(ns, name))
    st = d.get("status") or {}
    done = (
        st.get("observedGeneration", 0) >= d["metadata"]["generation"]
        and st.get("updatedReplicas", 0) == n
        and st.get("replicas", 0) == n
        and st.get("availableReplicas", 0) == n
        and condition(d, "Progressing").get("reason") == "NewReplicaSetAvailable"
    )
    return d if done else None


async def test_rolling_update_example_rollout_and_rollback(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    """examples/rolling-update.yaml reaches 4 available; an image change rolls within maxSurge/maxUnavailable;
    patching the template back (what kubectl rollout undo does) reuses the first ReplicaSet as revision 3."""
    body = yaml.safe_load(EXAMPLE.read_text())
    name = body["metadata"]["name"]
    async with controllers(apiserver, "replicaset,deployment"), auto_ready(api, ns):
        await create(api, d_path(ns), body)
        d = await eventually(lambda: rolled_out(api, ns, name, 4), timeout=30, what="initial rollout")
        assert condition(d, "Available") | {"lastUpdateTime": None, "lastTransitionTime": None} == {
            "type": "Available",
            "status": "True",
            "reason": "MinimumReplicasAvailable",
            "message": "Deployment has minimum availability.",
            "lastUpdateTime": None,
            "lastTransitionTime": None,
        }
        (first,) = (await replica_sets(api, ns)).values()
        first_name = first["metadata"]["name"]
        pod_hash = first["metadata"]["labels"]["pod-template-hash"]
        assert first_name == f"{name}-{pod_hash}"
        assert first["spec"]["selector"]["matchLabels"] == {"app": "nginx", "pod-template-hash": pod_hash}
        assert first["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == pod_hash
        assert first["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
        ann = first["metadata"]["annotations"]
        assert ann[REVISION] == "1"
        assert ann["deployment.kubernetes.io/desired-replicas"] == "4"
        assert ann["deployment.kubernetes.io/max-replicas"] == "5"
        assert ann["kubernetes.io/change-cause"] == "initial rollout of nginx:1.12"
        assert d["metadata"]["annotations"][REVISION] == "1"
        assert d["status"]["terminatingReplicas"] == 0
        assert condition(d, "Progressing")["message"] == f'ReplicaSet "{first_name}" has successfully progressed.'
        want = f"Scaled up replica set {first_name} from 0 to 4"
        msgs = await event_messages(api, ns, name, "ScalingReplicaSet", lambda m: want in m)
        assert want in msgs

        # Roll to a new image while watching the pods: never fewer than 4-1 ready, never more than 4+1 pods.
        def invariant(active: int, ready: int) -> str | None:
            if active > 5:
                return f"{active} pods > replicas + maxSurge"
            if ready < 3:
                return f"{ready} ready < replicas - maxUnavailable"
            return None

        async with PodCensus(api, ns, invariant) as census:
            new_template = {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.13"}]}}}}
            await api.patch(
                d_path(ns, name), json=new_template, headers={"content-type": "application/strategic-merge-patch+json"}
            )
            d = await eventually(lambda: rolled_out(api, ns, name, 4), timeout=40, what="rollout to nginx:1.13")
        assert census.events > 8, census.events
        assert census.violations == []
        rss = await replica_sets(api, ns)
        assert sorted(rss) == ["nginx:1.12", "nginx:1.13"]
        first, second = rss["nginx:1.12"], rss["nginx:1.13"]
        assert first["metadata"]["name"] == first_name
        assert first["spec"]["replicas"] == 0 and second["spec"]["replicas"] == 4
        assert second["metadata"]["annotations"][REVISION] == "2"
        assert d["metadata"]["annotations"][REVISION] == "2"
        assert {p["spec"]["containers"][0]["image"] for p in await list_pods(api, ns)} == {"nginx:1.13"}
        up = f"Scaled up replica set {second['metadata']['name']} from 0 to 1"
        down = f"Scaled down replica set {first_name} from 4 to "
        msgs = await event_messages(
            api, ns, name, "ScalingReplicaSet", lambda m: up in m and any(x.startswith(down) for x in m)
        )
        assert up in msgs

        # Roll back the way kubectl rollout undo does: the old template (minus the hash label) patched in.
        old_template = json.loads(json.dumps(first["spec"]["template"]))
        del old_template["metadata"]["labels"]["pod-template-hash"]
        r = await api.patch(
            d_path(ns, name),
            json=[{"op": "replace", "path": "/spec/template", "value": old_template}],
            headers={"content-type": "application/json-patch+json"},
        )
        assert r.status_code == 200, r.text
        await eventually(lambda: rolled_out(api, ns, name, 4), timeout=40, what="rollback")
        rss = await replica_sets(api, ns)
        assert {k: rs["metadata"]["name"] for k, rs in rss.items()} == {
            "nginx:1.12": first_name,
            "nginx:1.13": second["metadata"]["name"],
        }
        reused = rss["nginx:1.12"]
        assert rss["nginx:1.13"]["spec"]["replicas"] == 0
        assert reused["spec"]["replicas"] == 4
        assert reused["metadata"]["annotations"][REVISION] == "3"
        assert reused["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
        d = await get(api, d_path(ns, name))
        assert d["metadata"]["annotations"][REVISION] == "3"


async def test_kubectl_rollout_status_and_undo(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    """The real kubectl reads rollout status, history and undoes a rollout through what the controllers write."""
    async with controllers(apiserver, "replicaset,deployment"), auto_ready(api, ns):
        await create(api, d_path(ns), deployment("web", 2, {"app": "web"}, image="nginx:1"))
        code, out, err = await kubectl(apiserver, "-n", ns, "rollout", "status", "deployment/web", "--timeout=30s")
        assert code == 0, err
        assert 'deployment "web" successfully rolled out' in out
        await patch(
            api,
            d_path(ns, "web"),
            {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}},
        )
        code, out, err = await kubectl(apiserver, "-n", ns, "rollout", "status", "deployment/web", "--timeout=30s")
        assert code == 0, err
        assert 'deployment "web" successfully rolled out' in out
        code, out, err = await kubectl(apiserver, "-n", ns, "rollout", "history", "deployment/web")
        assert code == 0, err
        assert [line.split()[0] for line in out.splitlines()[2:] if line.strip()] == ["1", "2"]
        code, out, err = await kubectl(apiserver, "-n", ns, "rollout", "undo", "deployment/web")
        assert code == 0, err
        assert "rolled back" in out
        code, out, err = await kubectl(apiserver, "-n", ns, "rollout", "status", "deployment/web", "--timeout=30s")
        assert code == 0, err
        await eventually(lambda: rolled_out(api, ns, "web", 2), timeout=30, what="undo rolled out")
        rss = await replica_sets(api, ns)
        assert sorted(rss) == ["nginx:1", "nginx:2"]
        assert rss["nginx:1"]["metadata"]["annotations"][REVISION] == "3"
        assert {p["spec"]["containers"][0]["image"] for p in await list_pods(api, ns)} == {"nginx:1"}


async def test_pause_two_edits_resume_makes_one_replica_set(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    """While paused: no new ReplicaSet, scaling still works, Progressing is DeploymentPaused; resume rolls once."""
    async with controllers(apiserver, "replicaset,deployment"), auto_ready(api, ns):
        await create(api, d_path(ns), deployment("p", 2, {"app": "p"}, image="img:1"))
        await eventually(lambda: rolled_out(api, ns, "p", 2), timeout=30, what="initial rollout")
        await patch(api, d_path(ns, "p"), {"spec": {"paused": True}})

        async def paused() -> dict | None:
            d = await get(api, d_path(ns, "p"))
            return d if condition(d, "Progressing").get("reason") == "DeploymentPaused" else None

        d = await eventually(paused, what="paused condition")
        prog = condition(d, "Progressing")
        assert (prog["status"], prog["message"]) == ("Unknown", "Deployment is paused")
        for image in ("img:2", "img:3"):
            await patch(
                api, d_path(ns, "p"), {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}}
            )
        await patch(api, d_path(ns, "p"), {"spec": {"replicas": 3}})

        async def scaled() -> list | None:
            d = await get(api, d_path(ns, "p"))
            rss = await replica_sets(api, ns)
            ok = d["status"].get("observedGeneration") == d["metadata"]["generation"] and list(rss) == ["img:1"]
            return rss if ok and rss["img:1"]["spec"]["replicas"] == 3 else None

        await eventually(scaled, what="scaled while paused, still one ReplicaSet")
        await patch(api, d_path(ns, "p"), {"spec": {"paused": False}})
        d = await eventually(lambda: rolled_out(api, ns, "p", 3), timeout=40, what="rollout after resume")
        by_image = await replica_sets(api, ns)
        assert sorted(by_image) == ["img:1", "img:3"]
        assert by_image["img:3"]["metadata"]["annotations"][REVISION] == "2"
        assert by_image["img:1"]["spec"]["replicas"] == 0


async def test_revision_history_limit(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    """revisionHistoryLimit 1: after three templates only the newest old ReplicaSet is kept."""
    async with controllers(apiserver, "replicaset,deployment"), auto_ready(api, ns):
        await create(api, d_path(ns), deployment("h", 1, {"app": "h"}, image="img:1", revisionHistoryLimit=1))
        await eventually(lambda: rolled_out(api, ns, "h", 1), timeout=30, what="rollout 1")
        for image in ("img:2", "img:3"):
            await patch(
                api, d_path(ns, "h"), {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}}
            )
            await eventually(lambda: rolled_out(api, ns, "h", 1), timeout=30, what=f"rollout to {image}")

        async def two_left() -> dict | None:
            rss = await replica_sets(api, ns)
            return rss if len(rss) == 2 else None

        rss = await eventually(two_left, what="history trimmed to one old ReplicaSet")
        assert {k: rs["metadata"]["annotations"][REVISION] for k, rs in rss.items()} == {"img:2": "2", "img:3": "3"}


async def test_proportional_scaling_mid_rollout(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    """Scaling a stalled rollout 4 → 8 (maxSurge 1, maxUnavailable 0) spreads the 4 new pods 3:1 (old 7, new 2)."""
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    async with controllers(apiserver, "replicaset,deployment"):
        async with auto_ready(api, ns):
            await create(api, d_path(ns), deployment("s", 4, {"app": "s"}, image="img:1", strategy=strategy))
            await eventually(lambda: rolled_out(api, ns, "s", 4), timeout=30, what="initial rollout")
        await patch(
            api, d_path(ns, "s"), {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "img:2"}]}}}}
        )

        async def sizes(want: dict[str, int]) -> dict | None:
            rss = await replica_sets(api, ns)
            return rss if {k: rs["spec"]["replicas"] for k, rs in rss.items()} == want else None

        await eventually(lambda: sizes({"img:1": 4, "img:2": 1}), what="stalled rollout 4+1")
        await patch(api, d_path(ns, "s"), {"spec": {"replicas": 8}})
        rss = await eventually(lambda: sizes({"img:1": 7, "img:2": 2}), what="proportional 7+2")
        for rs in rss.values():
            assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "8"
            assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "9"


async def test_recreate_never_overlaps(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    """Recreate scales the old ReplicaSet to 0 and waits for its pods to go before creating the new one."""

    async with controllers(apiserver, "replicaset,deployment"), auto_ready(api, ns):
        body = deployment("r", 2, {"app": "r"}, image="img:1", strategy={"type": "Recreate"})
        await create(api, d_path(ns), body)
        await eventually(lambda: rolled_out(api, ns, "r", 2), timeout=30, what="initial rollout")
        images: set[str] = set()

        def one_image(active: int, ready: int) -> str | None:
            return None

        async with PodCensus(api, ns, one_image) as census:

            def mixed(active: int, ready: int) -> str | None:
                live = [p for p in census.pods.values() if not p["metadata"].get("deletionTimestamp")]
                seen = {p["spec"]["containers"][0]["image"] for p in live}
                images.update(seen)
                return f"old and new pods together: {seen}" if len(seen) > 1 else None

            census.check = mixed
            await patch(
                api,
                d_path(ns, "r"),
                {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "img:2"}]}}}},
            )
            await eventually(lambda: rolled_out(api, ns, "r", 2), timeout=30, what="recreate rollout")
        assert census.violations == []
        assert images == {"img:1", "img:2"}


async def test_progress_deadline_exceeded(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    """Pods that never become Ready: Progressing turns False/ProgressDeadlineExceeded after the deadline."""
    async with controllers(apiserver, "replicaset,deployment"):
        await create(api, d_path(ns), deployment("slow", 1, {"app": "slow"}, progressDeadlineSeconds=2))

        async def timed_out() -> dict | None:
            d = await get(api, d_path(ns, "slow"))
            return d if condition(d, "Progressing").get("reason") == "ProgressDeadlineExceeded" else None

        d = await eventually(timed_out, timeout=15, what="ProgressDeadlineExceeded")
        (rs,) = (await replica_sets(api, ns)).values()
        prog = condition(d, "Progressing")
        assert prog["status"] == "False"
        assert prog["message"] == f'ReplicaSet "{rs["metadata"]["name"]}" has timed out progressing.'
        avail = condition(d, "Available")
        assert (avail["status"], avail["reason"]) == ("False", "MinimumReplicasUnavailable")
        assert avail["message"] == "Deployment does not have minimum availability."
        st = d["status"]
        assert (st["replicas"], st["updatedReplicas"], st["unavailableReplicas"]) == (1, 1, 1)
        assert st["observedGeneration"] == d["metadata"]["generation"]
        code, _, err = await kubectl(apiserver, "-n", ns, "rollout", "status", "deployment/slow", "--timeout=10s")
        assert code != 0
        assert 'deployment "slow" exceeded its progress deadline' in err


async def test_hash_collision_bumps_collision_count(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    """A foreign ReplicaSet squatting on "<deployment>-<hash>" makes the controller bump collisionCount and use
    the next hash."""
    await create(api, d_path(ns), deployment("col", 1, {"app": "col"}, paused=True))
    d = await get(api, d_path(ns, "col"))
    taken = du.compute_hash(d["spec"]["template"])
    squatter = deployment(f"col-{taken}", 0, {"app": "other"})
    squatter["kind"] = "ReplicaSet"
    await create(api, f"/apis/apps/v1/namespaces/{ns}/replicasets", squatter)
    async with controllers(apiserver, "replicaset,deployment"), auto_ready(api, ns, "app=col"):
        await patch(api, d_path(ns, "col"), {"spec": {"paused": False}})
        d = await eventually(lambda: rolled_out(api, ns, "col", 1), timeout=30, what="rollout despite collision")
    assert d["status"]["collisionCount"] == 1
    r = await api.get(f"/apis/apps/v1/namespaces/{ns}/replicasets")
    rss = {rs["metadata"]["name"] for rs in r.json()["items"]}
    assert rss == {f"col-{taken}", f"col-{du.compute_hash(d['spec']['template'], 1)}"}


async def test_deployment_adopts_matching_orphan_replica_set(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    """An orphan ReplicaSet with the deployment's template is adopted and used as its new ReplicaSet."""
    labels = {"app": "ad", "pod-template-hash": "manual"}
    orphan = deployment("ad-manual", 1, labels, image="img:1")
    orphan["kind"] = "ReplicaSet"
    orphan["metadata"]["labels"] = labels
    await create(api, f"/apis/apps/v1/namespaces/{ns}/replicasets", orphan)
    async with controllers(apiserver, "replicaset,deployment"), auto_ready(api, ns):
        d = await create(api, d_path(ns), deployment("ad", 2, {"app": "ad"}, image="img:1"))
        await eventually(lambda: rolled_out(api, ns, "ad", 2), timeout=30, what="rollout on the adopted ReplicaSet")
    r = await api.get(f"/apis/apps/v1/namespaces/{ns}/replicasets")
    (rs,) = r.json()["items"]
    assert rs["metadata"]["name"] == "ad-manual"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    assert rs["spec"]["replicas"] == 2
    assert rs["metadata"]["annotations"][REVISION] == "1"
