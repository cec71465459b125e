"""Downward API rendering and atomic volume publication."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from kubelet.downward import DownwardError, field_value, format_map, go_quote, resource_value
from kubelet.volumes import VolumeError, volume_payload, write_atomic


def test_format_map_sorted_go_quoted() -> None:
    labels = {"zone": "us-test-coast", "cluster": "test-cluster1", "rack": "rack-23"}
    assert format_map(labels) == 'cluster="test-cluster1"\nrack="rack-23"\nzone="us-test-coast"'
    assert format_map({}) == ""


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("plain", '"plain"'),
        ('a"b', '"a\\"b"'),
        ("back\\slash", '"back\\\\slash"'),
        ("l1\nl2", '"l1\\nl2"'),
        ("\x01", '"\\x01"'),
        ("héllo", '"héllo"'),
    ],
)
def test_go_quote(text: str, want: str) -> None:
    assert go_quote(text) == want


def test_field_value_whole_maps_only_in_volumes() -> None:
    pod = {"metadata": {"labels": {"a": "1"}, "annotations": {"b": "2"}}}
    assert field_value(pod, "metadata.labels", whole_maps=True) == 'a="1"'
    assert field_value(pod, "metadata.annotations", whole_maps=True) == 'b="2"'
    with pytest.raises(DownwardError):
        field_value(pod, "metadata.labels")
    with pytest.raises(DownwardError):
        field_value(pod, "spec.containers")


def test_resource_value_rounds_up() -> None:
    c = {"resources": {"limits": {"cpu": "250m", "memory": "100M"}}}
    assert resource_value(c, "limits.cpu", None, {}) == "1"
    assert resource_value(c, "limits.cpu", "100m", {}) == "3"
    assert resource_value(c, "limits.memory", "1Mi", {}) == "96"
    assert resource_value({}, "limits.memory", "1Gi", {"memory": "3Gi"}) == "3"
    assert resource_value({}, "requests.cpu", None, {"cpu": "4"}) == "0"


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


POD = {"metadata": {"namespace": "ns", "name": "p", "labels": {"x": "y"}}, "spec": {"containers": [{"name": "c"}]}}


def payload(volume: dict) -> dict:
    cms = {("ns", "cfg"): {"data": {"a": "1", "b": "2"}}}
    secrets = {("ns", "s"): {"data": {"user.txt": b64("admin")}}}
    return volume_payload(
        POD,
        volume,
        configmaps=lambda ns, n: cms.get((ns, n)),
        secrets=lambda ns, n: secrets.get((ns, n)),
        allocatable={"cpu": "2"},
        tokens={("api", 3): b"jwt"},
    )


def test_payloads() -> None:
    assert payload({"configMap": {"name": "cfg", "defaultMode": 0o600}}) == {"a": (b"1", 0o600), "b": (b"2", 0o600)}
    assert payload({"configMap": {"name": "cfg", "items": [{"key": "b", "path": "sub/b.txt", "mode": 0o400}]}}) == {
        "sub/b.txt": (b"2", 0o400)
    }
    assert payload({"configMap": {"name": "none", "optional": True}}) == {}
    assert payload({"secret": {"secretName": "s"}}) == {"user.txt": (b"admin", 0o644)}
    projected = {
        "projected": {
            "defaultMode": 0o644,
            "sources": [
                {"secret": {"name": "s"}},
                {"configMap": {"name": "cfg", "items": [{"key": "a", "path": "a"}]}},
                {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"serviceAccountToken": {"path": "token"}},
            ],
        }
    }
    assert payload({"name": "api", **projected}) == {
        "user.txt": (b"admin", 0o644),
        "a": (b"1", 0o644),
        "labels": (b'x="y"', 0o644),
        "token": (b"jwt", 0o644),
    }
    with pytest.raises(VolumeError, match="failed to fetch token"):  # the kubelet has no token for it yet
        payload({"name": "other", **projected})
    cpu = {
        "downwardAPI": {
            "items": [{"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu"}}]
        }
    }
    assert payload(cpu) == {"cpu": (b"2", 0o644)}
    assert payload({"emptyDir": {}}) is None


def test_payload_errors() -> None:
    with pytest.raises(VolumeError, match='configmap "nope" not found'):
        payload({"configMap": {"name": "nope"}})
    with pytest.raises(VolumeError, match="configmap references non-existent config key: zz"):
        payload({"configMap": {"name": "cfg", "items": [{"key": "zz", "path": "zz"}]}})
    with pytest.raises(VolumeError, match='secret "nope" not found'):
        payload({"secret": {"secretName": "nope"}})


def test_write_atomic_swaps_data_dir(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert (target / "a").read_text() == "1" and (target / "dir" / "b").read_text() == "2"
    assert os.readlink(target / "a") == "..data/a"
    first = os.readlink(target / "..data")
    assert (target / "dir" / "b").stat().st_mode & 0o777 == 0o600
    write_atomic(target, {"a": (b"changed", 0o644)})
    assert (target / "a").read_text() == "changed"
    assert not (target / "dir").exists() and not (target / first).exists()
    assert sorted(p.name for p in target.iterdir() if not p.name.startswith("..")) == ["a"]
