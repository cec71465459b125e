"""metrics-server's parts: the exposition parser, the store's rates, quantities and durations as
Kubernetes prints them, and the Metrics API documents with selectors."""

from __future__ import annotations

import httpx
import pytest

from metrics_server.api import MetricsApi, cpu_quantity, go_duration, memory_quantity
from metrics_server.app import api_service, kubelet_url, metrics_service
from metrics_server.scrape import MetricsBatch, ParseError, Point, parse_exposition
from metrics_server.storage import MetricsStore


def test_parse_exposition_labels_escapes_and_timestamps() -> None:
    text = (
        "# HELP x y\n"
        'container_cpu_usage_seconds_total{container="a",namespace="n",pod="p\\"q"} 1.5 1700000000123\n'
        "node_cpu_usage_seconds_total 3e+01\n"
    )
    samples = parse_exposition(text)
    assert samples[0] == (
        "container_cpu_usage_seconds_total",
        {"container": "a", "namespace": "n", "pod": 'p"q'},
        1.5,
        1700000000.123,
    )
    assert samples[1] == ("node_cpu_usage_seconds_total", {}, 30.0, None)
    with pytest.raises(ParseError):
        parse_exposition('x{a="b} 1')


@pytest.mark.parametrize(
    ("nanocores", "text"),
    [(0, "0"), (2_000_000_000, "2"), (250_000_000, "250m"), (1_500_000, "1500u"), (123456789, "123456789n")],
)
def test_cpu_quantity(nanocores: int, text: str) -> None:
    assert cpu_quantity(nanocores) == text


@pytest.mark.parametrize(("value", "text"), [(0, "0"), (10837 * 1024, "10837Ki"), (2 * 2**30, "2Gi"), (12345, "12345")])
def test_memory_quantity(value: int, text: str) -> None:
    assert memory_quantity(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(15, "15s"), (10.044, "10.044s"), (60.5, "1m0.5s"), (0.5, "500ms"), (3725, "1h2m5s")]
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def batch(t: float, node_cpu: float, containers: dict[tuple[str, str, str], tuple[float, int, float]]) -> MetricsBatch:
    return MetricsBatch(
        Point(t, node_cpu, 1 << 30), {k: Point(t, cpu, mem, start) for k, (cpu, mem, start) in containers.items()}
    )


def test_store_rates_restarts_and_staleness() -> None:
    store = MetricsStore(max_age=30, fresh_start=10)
    key = ("ns", "web", "app")
    store.store("n1", batch(100, 50.0, {key: (5.0, 100, 10.0)}), now=100)
    assert store.node_usage("n1", 100) is None  # one point: no rate
    assert store.pod_usage("ns", "web", 100) is None  # long-running container: no rate either
    store.store("n1", batch(110, 60.0, {key: (7.5, 200, 10.0)}), now=110)
    node = store.node_usage("n1", 110)
    assert node is not None and (node.cpu_nanocores, node.window) == (1_000_000_000, 10)
    usage = store.pod_usage("ns", "web", 110)
    assert usage is not None and usage["app"].cpu_nanocores == 250_000_000 and usage["app"].memory_bytes == 200
    # the container restarted: its counter began again
    store.store("n1", batch(120, 70.0, {key: (0.5, 50, 118.0)}), now=120)
    usage = store.pod_usage("ns", "web", 120)
    # started 2 s before the sample: measured from its start
    assert usage is not None and usage["app"].cpu_nanocores == 250_000_000
    assert store.node_usage("n1", 151) is None  # stale
    store.forget(set())
    assert store.pods(120) == {}


def api_with(store: MetricsStore) -> httpx.AsyncClient:
    nodes = [{"metadata": {"name": "n1", "labels": {"zone": "a"}}}, {"metadata": {"name": "n2", "labels": {}}}]
    pods = [
        {
            "metadata": {"name": "web", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app"}]},
        },
        {
            "metadata": {"name": "db", "namespace": "other", "labels": {"app": "db"}},
            "spec": {"containers": [{"name": "db"}]},
        },
    ]
    app = MetricsApi(store, lambda: nodes, lambda: pods, clock=lambda: 110.0).app()
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://metrics")


async def test_metrics_api_documents_and_selectors() -> None:
    store = MetricsStore(max_age=60)
    for t, cpu in ((100, 1.0), (110, 3.0)):
        store.store(
            "n1",
            batch(
                t, cpu * 2, {("ns", "web", "app"): (cpu, 64 << 20, 1.0), ("other", "db", "db"): (cpu / 2, 1 << 20, 1.0)}
            ),
            now=t,
        )
    async with api_with(store) as client:
        nodes = (await client.get("/apis/metrics.k8s.io/v1beta1/nodes")).json()
        assert nodes["kind"] == "NodeMetricsList"
        assert [(m["metadata"]["name"], m["usage"]["cpu"], m["window"]) for m in nodes["items"]] == [
            ("n1", "400m", "10s")
        ]
        assert nodes["items"][0]["metadata"]["labels"] == {"zone": "a"}
        r = await client.get("/apis/metrics.k8s.io/v1beta1/nodes/n2")
        assert r.status_code == 404 and r.json()["message"] == 'nodemetrics.metrics.k8s.io "n2" not found'
        pods = (await client.get("/apis/metrics.k8s.io/v1beta1/pods", params={"labelSelector": "app=web"})).json()
        assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods["items"]] == [("ns", "web")]
        assert pods["items"][0]["containers"] == [{"name": "app", "usage": {"cpu": "200m", "memory": "64Mi"}}]
        one = (await client.get("/apis/metrics.k8s.io/v1beta1/namespaces/other/pods/db")).json()
        assert one["kind"] == "PodMetrics" and one["containers"][0]["usage"]["cpu"] == "100m"
        by_field = await client.get(
            "/apis/metrics.k8s.io/v1beta1/pods", params={"fieldSelector": "metadata.namespace=other"}
        )
        assert [p["metadata"]["name"] for p in by_field.json()["items"]] == ["db"]
        bad = await client.get("/apis/metrics.k8s.io/v1beta1/pods", params={"labelSelector": "a in ("})
        assert bad.status_code == 400
        table = await client.get(
            "/apis/metrics.k8s.io/v1beta1/nodes", headers={"accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
        )
        assert [c["name"] for c in table.json()["columnDefinitions"]] == ["Name", "CPU", "Memory", "Window"]
        assert table.json()["rows"][0]["cells"] == ["n1", "400m", "1Gi", "10s"]
        listing = (await client.get("/apis/metrics.k8s.io/v1beta1")).json()
        assert [r["name"] for r in listing["resources"]] == ["nodes", "pods"]


def test_registration_objects_and_kubelet_address() -> None:
    svc = metrics_service(10250)
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 443, "protocol": "TCP", "targetPort": 10250, "appProtocol": "http"}
    ]
    aps = api_service()
    assert aps["metadata"]["name"] == "v1beta1.metrics.k8s.io"
    assert aps["spec"]["service"] == {"namespace": "kube-system", "name": "metrics-server", "port": 443}
    node = {
        "status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "127.0.100.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        }
    }
    assert kubelet_url(node) == "https://127.0.100.1:10250"
    assert kubelet_url(node, "http") == "http://127.0.100.1:10250"  # --deprecated-kubelet-completely-insecure
    assert kubelet_url({"status": {}}) is None
