"""Unit tests for client.store: keys, indexes kept exact through add/update/delete/replace."""

from __future__ import annotations

from typing import Any

import pytest

from client.store import NAMESPACE_INDEX, Store, field_indexer, meta_key, namespace_indexer


def pod(name: str, ns: str = "default", node: str | None = None, rv: str = "1") -> dict[str, Any]:
    spec = {"nodeName": node} if node else {}
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv}, "spec": spec}


def make_store() -> Store:
    return Store({NAMESPACE_INDEX: namespace_indexer, "node": field_indexer("spec.nodeName")})


def names(objs: list[dict[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


@pytest.mark.parametrize(
    ("obj", "key"),
    [
        (pod("a", "ns1"), "ns1/a"),
        ({"metadata": {"name": "node-1"}}, "node-1"),
        ({"metadata": {"name": "x", "namespace": ""}}, "x"),
    ],
    ids=["namespaced", "cluster-scoped", "empty-namespace"],
)
def test_meta_key(obj: dict[str, Any], key: str) -> None:
    assert meta_key(obj) == key


def test_add_get_list_delete() -> None:
    s = make_store()
    assert s.add(pod("a")) is None
    s.add(pod("b", "other"))
    assert s.get("default/a") == pod("a")
    assert s.get_by_name("b", "other") == pod("b", "other")
    assert s.get("a") is None
    assert sorted(names(s.list())) == ["a", "b"]
    assert sorted(s.keys()) == ["default/a", "other/b"]
    assert len(s) == 2 and "default/a" in s
    assert s.delete(pod("a")) == pod("a")
    assert s.delete(pod("a")) is None
    assert s.keys() == ["other/b"]


def test_update_returns_old_and_moves_index_entries() -> None:
    s = make_store()
    s.add(pod("a", node="n1"))
    s.add(pod("b", node="n1"))
    old = s.update(pod("a", node="n2", rv="2"))
    assert old == pod("a", node="n1")
    assert names(s.by_index("node", "n1")) == ["b"]
    assert names(s.by_index("node", "n2")) == ["a"]
    s.update(pod("b"))  # unscheduled: no longer indexed by node
    assert s.by_index("node", "n1") == []
    assert s.index_values("node") == ["n2"]


def test_by_index_namespace() -> None:
    s = make_store()
    for name, ns in (("a", "x"), ("b", "x"), ("c", "y")):
        s.add(pod(name, ns))
    assert names(s.by_index(NAMESPACE_INDEX, "x")) == ["a", "b"]
    assert names(s.by_index(NAMESPACE_INDEX, "y")) == ["c"]
    assert s.by_index(NAMESPACE_INDEX, "z") == []
    s.delete(pod("c", "y"))
    assert s.index_values(NAMESPACE_INDEX) == ["x"]


def test_unknown_indexer_is_an_error() -> None:
    with pytest.raises(KeyError):
        make_store().by_index("nope", "x")


def test_add_indexers_indexes_existing_objects() -> None:
    s = Store()
    s.add(pod("a", node="n1"))
    s.add_indexers({"node": field_indexer("spec.nodeName")})
    assert names(s.by_index("node", "n1")) == ["a"]
    with pytest.raises(ValueError, match="already exists"):
        s.add_indexers({"node": namespace_indexer})


def test_custom_multi_value_indexer() -> None:
    def by_label_values(obj: dict[str, Any]) -> list[str]:
        return list((obj["metadata"].get("labels") or {}).values())

    s = Store({"labels": by_label_values})
    s.add({"metadata": {"name": "a", "labels": {"app": "web", "tier": "front"}}})
    s.add({"metadata": {"name": "b", "labels": {"app": "web"}}})
    assert names(s.by_index("labels", "web")) == ["a", "b"]
    assert names(s.by_index("labels", "front")) == ["a"]


def test_replace_reports_added_updated_deleted_and_reindexes() -> None:
    s = make_store()
    s.add(pod("keep", node="n1"))
    s.add(pod("change", node="n1"))
    s.add(pod("gone", node="n1"))
    added, updated, deleted = s.replace([pod("keep", node="n1"), pod("change", node="n2", rv="5"), pod("new")])
    assert names(added) == ["new"]
    assert [(o["metadata"]["name"], n["spec"]["nodeName"]) for o, n in updated] == [("keep", "n1"), ("change", "n2")]
    assert names(deleted) == ["gone"]
    assert sorted(s.keys()) == ["default/change", "default/keep", "default/new"]
    assert names(s.by_index("node", "n1")) == ["keep"]
    assert names(s.by_index("node", "n2")) == ["change"]
