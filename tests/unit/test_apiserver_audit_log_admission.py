"""The audit log backend (JSON lines, off the event loop, drop-and-count when full) and the admission
chain with the plug-ins that need no store (DefaultTolerationSeconds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apimachinery.errors import StatusError
from apimachinery.resources import by_plural
from apiserver.admission import AdmissionAttributes
from apiserver.admission.chain import AdmissionChain
from apiserver.admission.default_tolerations import DefaultTolerationSeconds
from apiserver.audit.log import AuditLog

PODS = by_plural("", "pods")


async def test_audit_log_writes_one_json_line_per_event(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "audit.log"
    log = AuditLog(str(path))
    await log.start()
    for i in range(5):
        log.emit({"kind": "Event", "auditID": str(i)})
    await log.stop()
    lines = path.read_text().splitlines()
    assert [json.loads(line)["auditID"] for line in lines] == ["0", "1", "2", "3", "4"]


async def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    log = AuditLog(str(tmp_path / "audit.log"), queue_size=2)
    for i in range(5):  # the writer is not running: nothing drains the queue
        log.emit({"auditID": str(i)})
    assert log.dropped == 3
    await log.start()
    await log.stop()
    assert [json.loads(x)["auditID"] for x in (tmp_path / "audit.log").read_text().splitlines()] == ["0", "1"]


def pod_create(spec: Any) -> AdmissionAttributes:
    assert PODS is not None
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}
    return AdmissionAttributes("CREATE", PODS, "", "ns", "p", obj, None, None)


async def test_default_tolerations_are_added_with_the_configured_seconds() -> None:
    plugin = DefaultTolerationSeconds(not_ready_seconds=10, unreachable_seconds=20)
    attrs = pod_create({"containers": []})
    assert plugin.handles(attrs)
    await plugin.admit(attrs, None)  # type: ignore[arg-type]
    assert attrs.obj is not None
    assert attrs.obj["spec"]["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 20},
    ]


async def test_a_pod_tolerating_a_key_keeps_its_own() -> None:
    mine = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    attrs = pod_create({"tolerations": [mine]})
    await DefaultTolerationSeconds().admit(attrs, None)  # type: ignore[arg-type]
    assert attrs.obj is not None
    assert [t.get("tolerationSeconds") for t in attrs.obj["spec"]["tolerations"]] == [None, 300]


def test_default_tolerations_only_on_pod_creates() -> None:
    plugin = DefaultTolerationSeconds()
    attrs = pod_create({})
    for operation, sub in (("UPDATE", ""), ("CREATE", "binding"), ("DELETE", "")):
        assert not plugin.handles(AdmissionAttributes(operation, attrs.resource, sub, "ns", "p", None, None, None))


class Recorder:
    """A plug-in that notes when it ran, and refuses writes of objects named `no`."""

    def __init__(self, name: str, log: list[str], only: str = "") -> None:
        self.name, self.log, self.only = name, log, only

    def handles(self, attrs: AdmissionAttributes) -> bool:
        return not self.only or attrs.operation == self.only

    async def admit(self, attrs: AdmissionAttributes, reg: Any) -> None:
        self.log.append(f"admit:{self.name}")
        if attrs.name == "no":
            raise StatusError(403, "Forbidden", f"{self.name} says no")

    async def validate(self, attrs: AdmissionAttributes, reg: Any) -> None:
        self.log.append(f"validate:{self.name}")


async def test_the_chain_runs_the_plugins_that_handle_a_write_in_order() -> None:
    log: list[str] = []
    chain = AdmissionChain(
        [Recorder("a", log), Recorder("b", log, only="DELETE"), Recorder("c", log)],
        [Recorder("v", log)],
    )
    attrs = pod_create({})
    await chain.admit(attrs, None)  # type: ignore[arg-type]
    await chain.validate(attrs, None)  # type: ignore[arg-type]
    assert log == ["admit:a", "admit:c", "validate:v"]
    attrs.name = "no"
    with pytest.raises(StatusError, match="a says no"):
        await chain.admit(attrs, None)  # type: ignore[arg-type]
