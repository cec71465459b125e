"""The hand-encoded etcd requests (apiserver/etcdwire.py) are byte for byte what aetcd's protobuf messages
serialize to, for short and long keys and values and small, large and zero revisions; and they decode back."""

from __future__ import annotations

import pytest
from aetcd import rpc

from apiserver.etcdwire import range_request, txn_create, txn_delete, txn_update

KEYS = [b"/registry/pods/bench/pod-00001", b"k", b"/registry/" + b"x" * 300]
VALUES = [b'{"kind":"Pod"}', b"v" * 127, b"v" * 128, b"v" * 70_000, b""]
REVISIONS = [0, 1, 127, 128, 300, 2**31, 2**40]


def _mod_is(key: bytes, revision: int) -> rpc.Compare:
    return rpc.Compare(result=rpc.Compare.EQUAL, target=rpc.Compare.MOD, key=key, mod_revision=revision)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("value", VALUES)
def test_a_create_is_upbs(key: bytes, value: bytes) -> None:
    expected = rpc.TxnRequest(
        compare=[rpc.Compare(result=rpc.Compare.EQUAL, target=rpc.Compare.CREATE, key=key, create_revision=0)],
        success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value))],
    )
    assert txn_create(key, value) == expected.SerializeToString()
    assert rpc.TxnRequest.FromString(txn_create(key, value)) == expected


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("revision", REVISIONS)
def test_an_update_and_a_delete_are_upbs(key: bytes, value: bytes, revision: int) -> None:
    update = rpc.TxnRequest(
        compare=[_mod_is(key, revision)],
        success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value))],
        failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=key))],
    )
    assert txn_update(key, value, revision) == update.SerializeToString()
    delete = rpc.TxnRequest(
        compare=[_mod_is(key, revision)],
        success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key))],
        failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=key))],
    )
    assert txn_delete(key, revision) == delete.SerializeToString()


@pytest.mark.parametrize("key", [*KEYS, b"\x00"])
@pytest.mark.parametrize("range_end", [None, b"", b"/registry/pods0"])
@pytest.mark.parametrize("revision", [0, 5, 2**40])
@pytest.mark.parametrize(("limit", "count_only"), [(0, False), (1, True), (500, False)])
def test_a_range_is_upbs(key: bytes, range_end: bytes | None, revision: int, limit: int, count_only: bool) -> None:
    expected = rpc.RangeRequest(key=key, revision=revision, limit=limit, count_only=count_only)
    if range_end is not None:
        expected.range_end = range_end
    got = range_request(key, range_end, revision=revision, limit=limit, count_only=count_only)
    assert got == expected.SerializeToString()
