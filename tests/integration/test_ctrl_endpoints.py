"""Endpoints and EndpointSlice controllers: both follow pod readiness, IPs and named ports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from controller_kit import controllers, eventually
from housekeeping_kit import delete_quietly, get_or_none, node_body, pod_body, set_pod_status, uniq

from client.request import DeleteOptions, Selectors
from client.rest import ApiClient


def _service(name: str, app: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"tier": "web"}},
        "spec": {
            "selector": {"app": app},
            "ports": [
                {"name": "http", "port": 80, "targetPort": "web"},
                {"name": "metrics", "port": 9100, "targetPort": 9100},
            ],
        },
    }


def _web_pod(name: str, app: str, container_port: int, node: str) -> dict:
    body = pod_body(name, {"app": app})
    body["spec"]["containers"][0]["ports"] = [{"name": "web", "containerPort": container_port}]
    body["spec"]["nodeName"] = node
    return body


@pytest.fixture
async def node(apiserver: str) -> AsyncIterator[str]:
    """A Node (zone z1) for the pods to be bound to; EndpointSlices skip pods of unknown nodes."""
    name = uniq("epnode")
    async with ApiClient(apiserver) as api:
        body = node_body(name)
        body["metadata"]["labels"]["topology.kubernetes.io/zone"] = "z1"
        await api.create("nodes", body)
        yield name
        await delete_quietly(api, "nodes", name)


async def _slices(api: ApiClient, ns: str, svc: str) -> list[dict]:
    sel = Selectors.of({"kubernetes.io/service-name": svc})
    return (await api.list("endpointslices", ns, selectors=sel))["items"]


async def test_endpoints_and_slices_follow_pod_readiness(apiserver: str, ns: str, node: str) -> None:
    async with controllers(apiserver, "endpoints,endpointslice") as ctx:
        api = ctx.api
        app, svc = uniq("app"), uniq("svc")
        await api.create("services", _service(svc, app), ns)
        await api.create("pods", _web_pod("a", app, 8080, node), ns)
        await api.create("pods", _web_pod("b", app, 8081, node), ns)
        await api.create("pods", pod_body("other", {"app": "nope"}), ns)

        async def placeholder() -> list[dict] | None:
            items = await _slices(api, ns, svc)
            return items if items and not items[0].get("endpoints") else None

        (ph,) = await eventually(placeholder, 10, "placeholder slice with no endpoints")
        assert ph["metadata"]["name"].startswith(f"{svc}-") and len(ph["metadata"]["name"]) == len(svc) + 6
        ep = await eventually(lambda: get_or_none(api, "endpoints", svc, ns), 10, "Endpoints created")
        assert not ep.get("subsets")

        await set_pod_status(api, ns, "a", "10.1.0.2", ready=True)
        await set_pod_status(api, ns, "b", "10.1.0.3", ready=False)

        async def endpoints_ready() -> dict | None:
            cur = await get_or_none(api, "endpoints", svc, ns)
            return cur if cur and len(cur.get("subsets") or []) == 2 else None

        ep = await eventually(endpoints_ready, 10, "Endpoints with both pods")
        sub_a = next(s for s in ep["subsets"] if any(p["port"] == 8080 for p in s["ports"]))
        sub_b = next(s for s in ep["subsets"] if any(p["port"] == 8081 for p in s["ports"]))
        assert [a["ip"] for a in sub_a["addresses"]] == ["10.1.0.2"]
        assert sub_a["addresses"][0]["targetRef"]["name"] == "a"
        assert sub_a["addresses"][0]["nodeName"] == node
        assert "notReadyAddresses" not in sub_a
        assert [a["ip"] for a in sub_b["notReadyAddresses"]] == ["10.1.0.3"]
        assert sorted((p["name"], p["port"], p["protocol"]) for p in sub_a["ports"]) == [
            ("http", 8080, "TCP"),
            ("metrics", 9100, "TCP"),
        ]
        assert ep["metadata"]["labels"]["tier"] == "web"
        assert ep["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"] == "true"
        assert ep["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]

        async def slices_ready() -> list[dict] | None:
            items = [s for s in await _slices(api, ns, svc) if s.get("endpoints")]
            return items if len(items) == 2 and len(await _slices(api, ns, svc)) == 2 else None

        slices = await eventually(slices_ready, 10, "two slices, one per port set")
        for s in slices:
            assert s["addressType"] == "IPv4"
            assert s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == (
                "endpointslice-controller.k8s.io"
            )
            assert s["metadata"]["ownerReferences"][0]["kind"] == "Service"
        s_a = next(s for s in slices if s["endpoints"][0]["targetRef"]["name"] == "a")
        assert s_a["endpoints"][0]["addresses"] == ["10.1.0.2"]
        assert s_a["endpoints"][0]["conditions"] == {"ready": True, "serving": True, "terminating": False}
        assert s_a["endpoints"][0]["nodeName"] == node
        assert s_a["endpoints"][0]["zone"] == "z1"
        assert sorted((p["name"], p["port"]) for p in s_a["ports"]) == [("http", 8080), ("metrics", 9100)]
        s_b = next(s for s in slices if s["endpoints"][0]["targetRef"]["name"] == "b")
        assert s_b["endpoints"][0]["conditions"] == {"ready": False, "serving": False, "terminating": False}

        # b turns ready: moves to addresses, slice condition flips; unchanged objects are not rewritten
        rv_a = s_a["metadata"]["resourceVersion"]
        await set_pod_status(api, ns, "b", "10.1.0.3", ready=True)

        async def b_ready() -> bool:
            cur = await get_or_none(api, "endpoints", svc, ns)
            subs = (cur or {}).get("subsets") or []
            return any(a["ip"] == "10.1.0.3" for s in subs for a in s.get("addresses") or [])

        await eventually(b_ready, 10, "b in ready addresses")

        async def slice_b_ready() -> bool:
            items = await _slices(api, ns, svc)
            return any(
                s["endpoints"][0]["targetRef"]["name"] == "b" and s["endpoints"][0]["conditions"]["ready"]
                for s in items
                if s.get("endpoints")
            )

        await eventually(slice_b_ready, 10, "b ready in its slice")
        cur_a = next(s for s in await _slices(api, ns, svc) if s["metadata"]["name"] == s_a["metadata"]["name"])
        assert cur_a["metadata"]["resourceVersion"] == rv_a

        # pod deleted → gone from both
        await api.delete("pods", "a", ns, options=DeleteOptions(grace_period_seconds=0))

        async def a_gone() -> bool:
            cur = await get_or_none(api, "endpoints", svc, ns)
            ips = [a["ip"] for s in (cur or {}).get("subsets") or [] for a in s.get("addresses") or []]
            items = await _slices(api, ns, svc)
            slice_ips = [e["addresses"][0] for s in items for e in s.get("endpoints") or []]
            return ips == ["10.1.0.3"] and slice_ips == ["10.1.0.3"] and len(items) == 1

        await eventually(a_gone, 10, "deleted pod removed")

        await api.delete("services", svc, ns)

        async def endpoints_gone() -> bool:
            return await get_or_none(api, "endpoints", svc, ns) is None

        await eventually(endpoints_gone, 10, "Endpoints deleted with the service")


async def test_pods_without_ip_are_skipped(apiserver: str, ns: str, node: str) -> None:
    async with controllers(apiserver, "endpoints,endpointslice") as ctx:
        api = ctx.api
        app, svc = uniq("app"), uniq("svc")
        await api.create("services", _service(svc, app), ns)
        await api.create("pods", _web_pod("noip", app, 8080, node), ns)
        await set_pod_status(api, ns, "noip", None, ready=True)
        ep = await eventually(lambda: get_or_none(api, "endpoints", svc, ns), 10, "Endpoints created")
        assert not ep.get("subsets")
        items = await eventually(lambda: _slices(api, ns, svc), 10, "placeholder slice")
        assert [s.get("endpoints") or [] for s in items] == [[]]


async def test_terminating_pod_leaves_endpoints_stays_in_slice(apiserver: str, ns: str, node: str) -> None:
    async with controllers(apiserver, "endpoints,endpointslice") as ctx:
        api = ctx.api
        app, svc = uniq("app"), uniq("svc")
        await api.create("services", _service(svc, app), ns)
        body = _web_pod("t", app, 8080, node)
        body["metadata"]["finalizers"] = ["example.com/hold"]
        await api.create("pods", body, ns)
        await set_pod_status(api, ns, "t", "10.2.0.5", ready=True)

        async def listed() -> bool:
            cur = await get_or_none(api, "endpoints", svc, ns)
            return bool(cur and cur.get("subsets"))

        await eventually(listed, 10, "ready pod in Endpoints")
        await api.delete("pods", "t", ns)
        try:

            async def dropped() -> bool:
                cur = await get_or_none(api, "endpoints", svc, ns)
                return bool(cur) and not cur.get("subsets")

            await eventually(dropped, 10, "terminating pod left Endpoints")

            async def terminating() -> dict | None:
                eps = [e for s in await _slices(api, ns, svc) for e in s.get("endpoints") or []]
                return eps[0]["conditions"] if eps and eps[0]["conditions"]["terminating"] else None

            conds = await eventually(terminating, 10, "terminating endpoint in the slice")
            assert conds == {"ready": False, "serving": True, "terminating": True}
        finally:
            await api.patch("pods", "t", {"metadata": {"finalizers": None}}, ns)


async def test_slice_skips_pods_of_unknown_nodes(apiserver: str, ns: str) -> None:
    async with controllers(apiserver, "endpoints,endpointslice") as ctx:
        api = ctx.api
        app, svc = uniq("app"), uniq("svc")
        await api.create("services", _service(svc, app), ns)
        await api.create("pods", _web_pod("lost", app, 8080, "no-such-node"), ns)
        await set_pod_status(api, ns, "lost", "10.3.0.7", ready=True)

        async def in_endpoints() -> bool:
            cur = await get_or_none(api, "endpoints", svc, ns)
            return bool(cur and cur.get("subsets"))

        await eventually(in_endpoints, 10, "pod listed in Endpoints (no node check there)")
        # the EndpointSlice controller is another controller: its slice may come after the Endpoints
        items = await eventually(lambda: _slices(api, ns, svc), 10, "placeholder slice")
        assert [s.get("endpoints") or [] for s in items] == [[]]


async def test_leftover_endpoints_of_deleted_services_are_removed_at_start(apiserver: str, ns: str) -> None:
    async with ApiClient(apiserver) as api:
        body = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "leftover"}}
        await api.create("endpoints", body, ns)
        keep = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "lock"}}
        keep["metadata"]["annotations"] = {"control-plane.alpha.kubernetes.io/leader": "{}"}
        await api.create("endpoints", keep, ns)
    async with controllers(apiserver, "endpoints") as ctx:

        async def gone() -> bool:
            return await get_or_none(ctx.api, "endpoints", "leftover", ns) is None

        await eventually(gone, 10, "leftover Endpoints deleted")
        assert await get_or_none(ctx.api, "endpoints", "lock", ns) is not None


async def test_slice_picks_up_pod_once_its_node_appears(apiserver: str, ns: str) -> None:
    node = uniq("late")
    async with controllers(apiserver, "endpointslice") as ctx:
        api = ctx.api
        app, svc = uniq("app"), uniq("svc")
        await api.create("services", _service(svc, app), ns)
        await api.create("pods", _web_pod("late", app, 8080, node), ns)
        await set_pod_status(api, ns, "late", "10.4.0.9", ready=True)
        await eventually(lambda: _slices(api, ns, svc), 10, "placeholder slice")
        try:
            await api.create("nodes", node_body(node))

            async def listed() -> bool:
                return any(s.get("endpoints") for s in await _slices(api, ns, svc))

            await eventually(listed, 10, "pod listed once its node exists")
        finally:
            await delete_quietly(api, "nodes", node)
