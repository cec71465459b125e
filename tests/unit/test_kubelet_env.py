"""Container environment resolution: value, fieldRef, resourceFieldRef, configMap/secret refs, envFrom."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kubelet.envvars import ConfigError, container_env, expand_command

ALLOCATABLE = {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "10Gi"}


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


CONFIGMAPS = {("ns", "cfg"): {"data": {"mode": "fast", "level": "3", "bad key": "x"}}}
SECRETS = {("ns", "creds"): {"data": {"user": b64("admin"), "pass": b64("s3cr3t")}}}


def env_of(container: dict[str, Any], pod: dict[str, Any] | None = None) -> dict[str, str]:
    pod = pod or POD
    return container_env(
        pod,
        container,
        configmaps=lambda ns, n: CONFIGMAPS.get((ns, n)),
        secrets=lambda ns, n: SECRETS.get((ns, n)),
        allocatable=ALLOCATABLE,
    )


POD = {
    "metadata": {
        "name": "p",
        "namespace": "ns",
        "uid": "u-1",
        "labels": {"app": "web"},
        "annotations": {"note": "hi"},
    },
    "spec": {"nodeName": "n1", "serviceAccountName": "default"},
    "status": {"podIP": "127.1.0.2", "podIPs": [{"ip": "127.1.0.2"}], "hostIP": "127.0.0.1"},
}


def field(path: str) -> dict[str, Any]:
    return {"valueFrom": {"fieldRef": {"fieldPath": path}}}


def test_values_and_field_refs() -> None:
    c = {
        "name": "c",
        "env": [
            {"name": "A", "value": "1"},
            {"name": "B", "value": "$(A)-x-$(MISSING)"},
            {"name": "NAME", **field("metadata.name")},
            {"name": "NS", **field("metadata.namespace")},
            {"name": "UID", **field("metadata.uid")},
            {"name": "APP", **field("metadata.labels['app']")},
            {"name": "NOTE", **field("metadata.annotations['note']")},
            {"name": "NODE", **field("spec.nodeName")},
            {"name": "SA", **field("spec.serviceAccountName")},
            {"name": "IP", **field("status.podIP")},
            {"name": "IPS", **field("status.podIPs")},
            {"name": "HOST", **field("status.hostIP")},
        ],
    }
    assert env_of(c) == {
        "A": "1",
        "B": "1-x-$(MISSING)",
        "NAME": "p",
        "NS": "ns",
        "UID": "u-1",
        "APP": "web",
        "NOTE": "hi",
        "NODE": "n1",
        "SA": "default",
        "IP": "127.1.0.2",
        "IPS": "127.1.0.2",
        "HOST": "127.0.0.1",
    }


def test_resource_field_refs_with_divisor_and_allocatable_default() -> None:
    def res(resource: str, divisor: str | None = None) -> dict[str, Any]:
        ref: dict[str, Any] = {"resource": resource}
        if divisor:
            ref["divisor"] = divisor
        return {"valueFrom": {"resourceFieldRef": ref}}

    c = {
        "name": "c",
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
        "env": [
            {"name": "CPU", **res("limits.cpu")},
            {"name": "CPU_M", **res("limits.cpu", "1m")},
            {"name": "MEM", **res("limits.memory")},
            {"name": "MEM_MI", **res("limits.memory", "1Mi")},
            {"name": "REQ_CPU_M", **res("requests.cpu", "1m")},
            {"name": "EPH", **res("limits.ephemeral-storage", "1Gi")},
        ],
    }
    assert env_of(c) == {
        "CPU": "1",
        "CPU_M": "500",
        "MEM": str(128 * 2**20),
        "MEM_MI": "128",
        "REQ_CPU_M": "250",
        "EPH": "10",
    }
    bare = {"name": "c", "env": [{"name": "CPU", **res("limits.cpu")}]}
    assert env_of(bare) == {"CPU": "2"}


def test_config_map_and_secret_refs_and_env_from() -> None:
    c = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"secretRef": {"name": "creds"}}],
        "env": [
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "pass"}}},
            {"name": "user", "value": "override"},
            {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope", "optional": True}}},
            {"name": "OPT2", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": True}}},
        ],
    }
    env = env_of(c)
    assert env["CFG_mode"] == "fast" and env["CFG_level"] == "3"
    assert "CFG_bad key" not in env
    assert env["pass"] == "s3cr3t" and env["user"] == "override"
    assert env["MODE"] == "fast" and env["PASS"] == "s3cr3t"
    assert "OPT" not in env and "OPT2" not in env


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}], 'configmap "nope" not found'),
        (
            [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}],
            "couldn't find key k in ConfigMap ns/cfg",
        ),
        ([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}], 'secret "nope" not found'),
        (
            [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}],
            "couldn't find key k in Secret ns/creds",
        ),
    ],
)
def test_missing_objects_and_keys(env: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        env_of({"name": "c", "env": env})
    assert str(err.value) == message


def test_env_from_missing_config_map() -> None:
    with pytest.raises(ConfigError, match='configmap "other" not found'):
        env_of({"name": "c", "envFrom": [{"configMapRef": {"name": "other"}}]})
    assert env_of({"name": "c", "envFrom": [{"configMapRef": {"name": "other", "optional": True}}]}) == {}


def test_command_expansion_uses_container_env() -> None:
    c = {"command": ["python3", "-m", "http.server", "8080", "--bind", "$(POD_IP)"], "args": ["$$(POD_IP)", "$(X)"]}
    assert expand_command(c, {"POD_IP": "127.1.0.9"}) == [
        "python3",
        "-m",
        "http.server",
        "8080",
        "--bind",
        "127.1.0.9",
        "$(POD_IP)",
        "$(X)",
    ]
