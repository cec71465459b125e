"""The informer's local cache: objects by key, plus secondary indexes (client-go `cache.Indexer`).

Keys are `namespace/name`, or `name` for cluster-scoped objects. An indexer maps an object to
the index values it is filed under (e.g. its namespace, or its `spec.nodeName`); `by_index`
answers "every object with this value" without a scan. Indexes are kept exact on every add,
update, delete and replace, including when an object's indexed value changes. Indexers can be
added at any time: existing objects are indexed at once. The store hands out the objects it
holds: callers must treat them as read-only (copy before changing).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from client.request import Obj

__all__ = ["NAMESPACE_INDEX", "Indexer", "Store", "field_indexer", "meta_key", "namespace_indexer"]

Indexer = Callable[[Obj], Iterable[str]]
NAMESPACE_INDEX = "namespace"


def meta_key(obj: Mapping[str, Any]) -> str:
    """`namespace/name`, or `name` when the object has no namespace (client-go MetaNamespaceKeyFunc)."""
    m = obj.get("metadata") or {}
    ns, name = m.get("namespace"), m.get("name", "")
    return f"{ns}/{name}" if ns else name


def namespace_indexer(obj: Obj) -> list[str]:
    """Index by `metadata.namespace` (client-go MetaNamespaceIndexFunc)."""
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


def field_indexer(path: str) -> Indexer:
    """Index by the string value at a dotted path such as `spec.nodeName`; absent or empty means unindexed."""
    parts = path.split(".")

    def index(obj: Obj) -> list[str]:
        cur: Any = obj
        for p in parts:
            if not isinstance(cur, Mapping):
                return []
            cur = cur.get(p)
        return [str(cur)] if cur not in (None, "") else []

    return index


class Store:
    """Objects by key with named secondary indexes."""

    def __init__(self, indexers: Mapping[str, Indexer] | None = None, key_func: Callable[[Obj], str] = meta_key):
        self.key_func = key_func
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, Indexer] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self.add_indexers(indexers or {})

    def add_indexers(self, indexers: Mapping[str, Indexer]) -> None:
        """Add named indexers and index the objects already held; a taken name is a ValueError."""
        for name, fn in indexers.items():
            if name in self._indexers:
                if self._indexers[name] is fn:
                    continue
                raise ValueError(f'indexer "{name}" already exists')
            self._indexers[name] = fn
            self._indices[name] = {}
            for key, obj in self._items.items():
                self._index_one(name, key, obj)

    def _index_one(self, name: str, key: str, obj: Obj) -> None:
        index = self._indices[name]
        for value in self._indexers[name](obj):
            index.setdefault(value, set()).add(key)

    def _unindex_one(self, name: str, key: str, obj: Obj) -> None:
        index = self._indices[name]
        for value in self._indexers[name](obj):
            keys = index.get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[value]

    def _put(self, key: str, obj: Obj) -> Obj | None:
        old = self._items.get(key)
        for name in self._indexers:
            if old is not None:
                self._unindex_one(name, key, old)
            self._index_one(name, key, obj)
        self._items[key] = obj
        return old

    def add(self, obj: Obj) -> Obj | None:
        """Insert or replace an object; returns the object it replaced, if any."""
        return self._put(self.key_func(obj), obj)

    update = add

    def delete(self, obj: Obj) -> Obj | None:
        """Remove an object by its key; returns what was held, if anything."""
        return self.delete_key(self.key_func(obj))

    def delete_key(self, key: str) -> Obj | None:
        """Remove the object at `key`; returns what was held, if anything."""
        old = self._items.pop(key, None)
        if old is not None:
            for name in self._indexers:
                self._unindex_one(name, key, old)
        return old

    def replace(self, objs: Iterable[Obj]) -> tuple[list[Obj], list[tuple[Obj, Obj]], list[Obj]]:
        """Make the store hold exactly `objs`; returns (added, [(old, new) updated], deleted)."""
        fresh = {self.key_func(o): o for o in objs}
        deleted = [old for key in list(self._items) if key not in fresh and (old := self.delete_key(key)) is not None]
        added: list[Obj] = []
        updated: list[tuple[Obj, Obj]] = []
        for key, obj in fresh.items():
            old = self._put(key, obj)
            if old is None:
                added.append(obj)
            else:
                updated.append((old, obj))
        return added, updated, deleted

    def get(self, key: str) -> Obj | None:
        """The object at `key` (`namespace/name` or `name`), if held."""
        return self._items.get(key)

    def get_by_name(self, name: str, namespace: str | None = None) -> Obj | None:
        """The object with this name (and namespace), if held."""
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def list(self) -> list[Obj]:
        """Every object held."""
        return list(self._items.values())

    def keys(self) -> builtins.list[str]:
        """Every key held."""
        return list(self._items)

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        """Objects that indexer `name` files under `value`; an unknown indexer is a KeyError."""
        return [self._items[k] for k in sorted(self.index_keys(name, value))]

    def index_keys(self, name: str, value: str) -> set[str]:
        """Keys that indexer `name` files under `value`."""
        if name not in self._indices:
            raise KeyError(f'indexer "{name}" does not exist')
        return set(self._indices[name].get(value, ()))

    def index_values(self, name: str) -> builtins.list[str]:
        """Every value indexer `name` currently has objects for."""
        if name not in self._indices:
            raise KeyError(f'indexer "{name}" does not exist')
        return sorted(self._indices[name])

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items
