"""The watch cache's reads for admission: a namespace's objects (`under`) and values derived from a whole
collection (`derived`), worked out again only after the collection changed."""

from __future__ import annotations

from apiserver.storage import StoredObject, WatchEvent
from apiserver.watch_cache import ResourceCache


def _put(cache: ResourceCache, key: str, revision: int, **fields: object) -> None:
    obj = {"metadata": {"name": key.rsplit("/", 1)[-1]}, **fields}
    cache.apply(WatchEvent("PUT", key, StoredObject(key, obj, revision), revision, True))


def test_under_gives_one_namespace_in_key_order() -> None:
    cache = ResourceCache("limitranges", 10)
    for revision, key in enumerate(
        [
            "/registry/limitranges/b/y",
            "/registry/limitranges/a/z",
            "/registry/limitranges/ab/x",
            "/registry/limitranges/b/x",
        ],
        1,
    ):
        _put(cache, key, revision)
    assert [s.key for s in cache.under("/registry/limitranges/b/")] == [
        "/registry/limitranges/b/x",
        "/registry/limitranges/b/y",
    ]
    assert [s.key for s in cache.under("/registry/limitranges/a/")] == ["/registry/limitranges/a/z"]  # not ab's
    assert cache.under("/registry/limitranges/c/") == []


def test_derived_is_built_once_per_change() -> None:
    cache = ResourceCache("priorityclasses", 10)
    builds: list[int] = []

    def values(stored: list[StoredObject]) -> list[int]:
        builds.append(len(stored))
        return [s.obj["value"] for s in stored]

    _put(cache, "/registry/priorityclasses/low", 1, value=1)
    assert cache.derived(values) == [1]
    assert cache.derived(values) == [1]
    assert builds == [1]  # the second read reused the first build
    _put(cache, "/registry/priorityclasses/high", 2, value=100)
    assert cache.derived(values) == [100, 1]
    _put(cache, "/registry/priorityclasses/low", 3, value=2)  # a change of a key already there
    assert cache.derived(values) == [100, 2]
    cache.apply(WatchEvent("DELETE", "/registry/priorityclasses/high", None, 4, False))
    assert cache.derived(values) == [2]
    assert builds == [1, 2, 2, 1]


def test_derived_is_built_again_after_a_relist() -> None:
    cache = ResourceCache("priorityclasses", 10)
    _put(cache, "/registry/priorityclasses/a", 5, value=1)
    assert cache.derived(len) == 1
    cache.reset([], 5)  # the same revision, other contents (a stop empties the cache at its revision)
    assert cache.derived(len) == 0
