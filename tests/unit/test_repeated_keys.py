"""A body that is exactly the encoding of its decode repeats no key: `duplicate_fields` skips its search for it,
so that shortcut must never pass a body that gives a key twice."""

from __future__ import annotations

import json

import orjson
import pytest

from apiserver.openapi import _no_duplicates, duplicate_fields

REPEATING = [
    b'{"a":1,"a":1}',
    b'{"a":1,"a":2}',
    b'{"metadata":{"name":"x","name":"x"}}',
    b'{"data":{"k":"v"},"data":{"k":"v"}}',
    b'{"items":[{"a":1,"a":1}]}',
    b'{"a":{"b":{"c":{"d":1,"d":1}}}}',
]
CLEAN = [
    b'{"a":1,"b":2}',
    b'{"metadata":{"name":"x"},"data":{"name":"x"}}',
    b'{"items":[{"a":1},{"a":1}]}',
    b'{"s":"\\"a\\":1,\\"a\\":1"}',
]


@pytest.mark.parametrize("raw", REPEATING)
def test_a_repeated_key_is_never_passed(raw: bytes) -> None:
    assert duplicate_fields(raw) != []
    assert not _no_duplicates(raw, orjson.loads(raw))


@pytest.mark.parametrize("raw", CLEAN)
def test_compact_json_without_repeats_passes(raw: bytes) -> None:
    assert duplicate_fields(raw) == []
    assert _no_duplicates(raw, orjson.loads(raw))


@pytest.mark.parametrize("raw", CLEAN)
def test_other_spellings_go_to_the_search(raw: bytes) -> None:
    spaced = json.dumps(json.loads(raw)).encode()  # ", " and ": ": another spelling of the same document
    assert orjson.dumps(orjson.loads(spaced)) != spaced  # not the shortcut's: the search answers
    assert duplicate_fields(spaced) == []
