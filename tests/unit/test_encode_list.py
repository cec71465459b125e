"""A list from the watch cache is written from each object's kept JSON, byte for byte what encoding it whole gives."""

from __future__ import annotations

import orjson

from apiserver.registry import CachedItems, encode_list
from apiserver.storage import StoredObject


def _listing(items: list[dict]) -> dict:
    return {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"}, "items": items}


def test_cached_items_encode_as_the_whole_list_does() -> None:
    objs = [{"metadata": {"name": f"p{i}", "resourceVersion": str(i)}, "spec": {"n": i, "s": "é\n"}} for i in range(3)]
    items = CachedItems()
    for i, obj in enumerate(objs):
        items.add(StoredObject(f"/registry/pods/ns/p{i}", obj, i))
    listing = _listing(items)
    assert encode_list(listing) == orjson.dumps(_listing(objs))
    more = {**listing, "metadata": {"resourceVersion": "8", "continue": "x"}}
    assert orjson.loads(encode_list(more))["items"] == objs


def test_each_object_is_encoded_once_and_kept() -> None:
    stored = StoredObject("/registry/pods/ns/a", {"metadata": {"name": "a"}}, 1)
    assert stored.json() is stored.json()
    items = CachedItems()
    items.add(stored)
    assert encode_list(_listing(items)).endswith(b'"items":[' + stored.json() + b"]}")


def test_empty_and_plain_lists_encode_whole() -> None:
    assert encode_list(_listing(CachedItems())) == orjson.dumps(_listing([]))
    assert encode_list(_listing([{"a": 1}])) == orjson.dumps(_listing([{"a": 1}]))
