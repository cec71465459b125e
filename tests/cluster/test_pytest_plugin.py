"""The pytest plugin shipped with the package: a user's test gets a running cluster and a client."""

from __future__ import annotations

import pytest

USER_TEST = """
import asyncio
import subprocess

def test_cluster_is_usable(tinykube_cluster):
    assert tinykube_cluster.kubeconfig.exists()
    assert tinykube_cluster.node_names == ["node-1"]

    async def check():
        async with tinykube_cluster.api() as api:
            nodes = (await api.list("nodes"))["items"]
            assert [n["metadata"]["name"] for n in nodes] == ["node-1"]
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                   "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "60"]}]}}
            await api.create("pods", pod, namespace="default")
            for _ in range(200):
                p = await api.get("pods", "p", namespace="default")
                if p.get("status", {}).get("phase") == "Running":
                    return p
                await asyncio.sleep(0.1)
            raise AssertionError(p)

    p = asyncio.run(check())
    assert p["spec"]["nodeName"] == "node-1"
"""


def test_plugin_fixture_brings_a_cluster_up_and_down(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "--tinykube-nodes", "1", timeout=110)
    result.assert_outcomes(passed=1)
