"""Unit tests for apiserver.fastcheck: what its compiled look passes, both walks pass unchanged.

Every object of the examples' manifests, and thousands of variants of each (every value swapped for a value of
each JSON type, null, an out-of-range number, and an undeclared field added to every object), go through
`surely_clean` and through the walks it stands in for; whatever it passes, the type check must pass without
changing it, and the unknown-field walk must find nothing. The examples themselves must pass it (else the
fast path would never be taken)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from apimachinery import errors
from apimachinery.resources import ResourceInfo, by_kind, by_plural
from apiserver import fastcheck, openapi, typecheck

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SWAPS: list[Any] = [None, "x", "", 7, -1, 1 << 40, 1 << 70, 1.5, True, [], [1], {}, {"bogusField": 1}]


def _objects() -> list[tuple[str, ResourceInfo, dict[str, Any]]]:
    out = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if not doc:
                continue
            res = by_kind(doc["apiVersion"], doc["kind"])
            if res is not None and not res.custom:
                out.append((f"{path.stem}-{i}-{doc['kind']}", res, doc))
    return out


OBJECTS = _objects()


def _prepared(res: ResourceInfo) -> ResourceInfo:
    asyncio.run(fastcheck.prepare(res))
    return res


def _variants(value: Any) -> Iterator[Any]:
    """`value` with one change: each value swapped for each of SWAPS, or an undeclared field added."""
    if isinstance(value, dict):
        yield {**value, "bogusField": "x"}
        for key, sub in value.items():
            for swap in SWAPS:
                yield {**value, key: swap}
            for inner in _variants(sub):
                yield {**value, key: inner}
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            for swap in SWAPS:
                yield [*value[:i], swap, *value[i + 1 :]]
            for inner in _variants(sub):
                yield [*value[:i], inner, *value[i + 1 :]]


def _has_bytes(obj: dict[str, Any]) -> bool:
    return obj["kind"] == "Secret" and bool(obj.get("data"))


def _walks_pass_unchanged(res: ResourceInfo, obj: dict[str, Any]) -> bool:
    checked = copy.deepcopy(obj)
    return typecheck.first_type_error(res, checked) is None and checked == obj and not openapi.unknown_fields(res, obj)


def test_the_examples_cover_many_kinds() -> None:
    assert len({res.kind for _, res, _ in OBJECTS}) >= 8


@pytest.mark.parametrize(("res", "obj"), [pytest.param(r, o, id=i) for i, r, o in OBJECTS])
def test_what_it_passes_the_walks_pass_unchanged(res: ResourceInfo, obj: dict[str, Any]) -> None:
    _prepared(res)
    assert _walks_pass_unchanged(res, obj)
    assert fastcheck.surely_clean(res, obj) is not _has_bytes(obj)  # base64 is the walk's to check
    passed = refused = 0
    for variant in _variants(obj):
        if fastcheck.surely_clean(res, variant):
            passed += 1
            assert _walks_pass_unchanged(res, variant), variant
        else:
            refused += 1
    assert passed and refused  # both ways taken: some swaps keep the object valid, most do not


@pytest.mark.parametrize(
    ("change", "fast"),
    [
        pytest.param(
            {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": "80"}]}]}}, False, id="str-int32"
        ),
        pytest.param({"spec": {"containers": [{"name": "c"}], "priority": True}}, False, id="bool-int32"),
        pytest.param({"spec": {"containers": [{"name": "c"}], "priority": 1 << 31}}, False, id="past-int32"),
        pytest.param({"spec": {"containers": [{"name": "c"}], "nodeName": None}}, False, id="declared-null"),
        pytest.param({"spec": {"containers": [{"name": "c"}], "bogus": 1}}, False, id="undeclared"),
        pytest.param({"metadata": {"name": "p", "labels": {"a": 1}}}, False, id="number-in-string-map"),
        pytest.param({"metadata": {"name": "p", "labels": {"a": None}}}, True, id="null-map-value"),
        pytest.param({"spec": {"containers": [{"name": "c"}], "overhead": {"cpu": 1.5}}}, True, id="number-quantity"),
        pytest.param({"spec": {"containers": [{"name": "c"}], "overhead": {"cpu": "1"}}}, True, id="string-quantity"),
        pytest.param({"spec": {"containers": [{"name": "c"}], "overhead": {"cpu": True}}}, False, id="bool-quantity"),
    ],
)
def test_pod_cases(change: dict[str, Any], fast: bool) -> None:
    res = _prepared(by_plural("", "pods"))  # type: ignore[arg-type]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}
    pod.update(change)
    assert fastcheck.surely_clean(res, pod) is fast
    if fast:
        assert _walks_pass_unchanged(res, pod)


def test_byte_fields_are_left_to_the_walk() -> None:
    res = _prepared(by_plural("", "secrets"))  # type: ignore[arg-type]
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "not base64!"}}
    assert not fastcheck.surely_clean(res, secret)
    assert not _walks_pass_unchanged(res, secret)
    assert fastcheck.surely_clean(res, {**secret, "data": None, "stringData": {"k": "v"}}) is False  # null: declared
    assert fastcheck.surely_clean(res, {**secret, "data": {}, "stringData": {"k": "v"}})


def test_a_kind_not_prepared_is_left_to_the_walks() -> None:
    res = by_plural("", "configmaps")
    assert res is not None
    fastcheck._VALIDATORS.pop((res.group, res.version, res.kind), None)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}
    assert not fastcheck.surely_clean(res, cm)
    _prepared(res)
    assert fastcheck.surely_clean(res, cm)


def test_check_fields_still_removes_a_declared_null_of_a_patched_status() -> None:
    res = _prepared(by_plural("", "pods"))  # type: ignore[arg-type]
    condition = {"type": "Ready", "status": "True", "lastProbeTime": None}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"conditions": [condition]}}
    assert openapi.check_fields(res, pod, "Strict", depth_known=True, only={"status"}).warnings == []
    assert pod["status"]["conditions"] == [{"type": "Ready", "status": "True"}]  # as decoding into Go drops it
    # and a clean one passes untouched, unknown fields still refused
    assert openapi.check_fields(res, pod, "Strict", depth_known=True, only={"status"}).warnings == []
    assert pod["status"]["conditions"] == [{"type": "Ready", "status": "True"}]
    pod["status"]["bogus"] = 1
    with pytest.raises(errors.StatusError, match=r'unknown field "status\.bogus"'):
        openapi.check_fields(res, pod, "Strict", depth_known=True, only={"status"})
