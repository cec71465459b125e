"""The request metrics' cheap counters and histograms (apimachinery/hotmetrics.py) expose exactly what
prometheus_client's Counter and Histogram of the same definition expose after the same updates (less the
`_created` samples), bucket bounds included."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from apimachinery.hotmetrics import HotCounter, HotHistogram

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def exposition(registry: CollectorRegistry) -> list[str]:
    return sorted(line for line in generate_latest(registry).decode().splitlines() if "_created" not in line)


def test_the_exposition_is_prometheus_clients() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    labels = ["verb", "resource", "code"]
    counters = (
        Counter("apiserver_request_total", "API requests", labels, registry=theirs),
        HotCounter("apiserver_request_total", "API requests", labels, registry=ours),
    )
    histograms = (
        Histogram("apiserver_request_duration_seconds", "latency", ["verb"], buckets=BUCKETS, registry=theirs),
        HotHistogram("apiserver_request_duration_seconds", "latency", ["verb"], buckets=BUCKETS, registry=ours),
    )
    rng = random.Random(7)
    # bounds themselves (an observation equal to a bound is in its bucket), between them, and past the last
    amounts = [*BUCKETS, 0.0, 0.0003, 0.003, 0.07, 3.0, 11.0, 1e9]
    for _ in range(2000):
        verb, resource, code = rng.choice(["get", "create"]), rng.choice(["pods", "nodes"]), rng.choice(["200", "404"])
        amount = rng.choice(amounts)
        for counter in counters:
            counter.labels(verb, resource, code).inc()
        for histogram in histograms:
            histogram.labels(verb).observe(amount)
    assert exposition(ours) == exposition(theirs)
    assert any(
        line.startswith('apiserver_request_duration_seconds_bucket{le="+Inf",verb="get"}') for line in exposition(ours)
    )


def test_a_second_metric_of_the_same_name_is_refused_as_prometheus_client_refuses_it() -> None:
    registry = CollectorRegistry()
    HotHistogram("etcd_request_duration_seconds", "latency", ["operation"], buckets=BUCKETS, registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Histogram("etcd_request_duration_seconds", "latency", ["operation"], buckets=BUCKETS, registry=registry)
    HotCounter("apiserver_request_total", "requests", ["code"], registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        HotCounter("apiserver_request_total", "requests", ["code"], registry=registry)
