"""A CronTab CRD in a group of its own per test module, for the third-party tools' tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
REPLICAS_RULE = {"rule": "!has(self.replicas) || self.replicas <= 10", "message": "at most 10 replicas"}


def crontab_crd(group: str, plural: str = "crontabs", kind: str = "CronTab", cel: bool = True) -> dict[str, Any]:
    """A namespaced CronTab-like CRD: typed spec, a CEL rule (unless not `cel`), a status subresource kopf may write."""
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": kind, "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "cronSpec": {"type": "string"},
                                        "image": {"type": "string"},
                                        "replicas": {"type": "integer"},
                                    },
                                    "x-kubernetes-validations": [REPLICAS_RULE],
                                },
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            },
                        }
                    },
                }
            ],
        },
    }
    if not cel:
        del crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"]
    return crd


def install_crd(http: httpx.Client, crd: dict[str, Any], timeout: float = 30.0) -> None:
    """Create a CRD and wait until it is Established."""
    r = http.post(CRD_PATH, json=crd)
    assert r.status_code == 201, r.text
    name = crd["metadata"]["name"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conditions = http.get(f"{CRD_PATH}/{name}").json().get("status", {}).get("conditions", [])
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        time.sleep(0.1)
    raise AssertionError(f"CRD {name} not Established within {timeout}s")


def delete_crd(http: httpx.Client, name: str, timeout: float = 60.0) -> None:
    """Delete a CRD and wait until it and its objects are gone.

    Waiting keeps modules apart: while a CRD with plural `crontabs` is still served, kubectl (and
    tests/e2e/test_kubectl_crd.py) may resolve `crontabs` to it."""
    r = http.delete(f"{CRD_PATH}/{name}")
    assert r.status_code in (200, 404), r.text
    wait_for(lambda: http.get(f"{CRD_PATH}/{name}").status_code == 404, timeout, f"CRD {name} to be deleted")


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str | Callable[[], str] = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; return that, or fail after `timeout` seconds.

    `what` names the condition in the failure message; a callable is asked only on failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what() if callable(what) else what}")
