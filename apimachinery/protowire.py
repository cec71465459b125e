"""Protobuf's wire format, the two pieces every encoder here writes: varints and length-delimited fields
(the apiserver's protobuf responses, its OpenAPI v2 document, the requests it sends etcd)."""

from __future__ import annotations

__all__ = ["length_delimited", "varint"]

_U64 = (1 << 64) - 1
_ONE_BYTE = [bytes((n,)) for n in range(0x80)]


def varint(value: int) -> bytes:
    """`value` as a base-128 varint; a negative one as its 64-bit two's complement (int32 and int64 fields)."""
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    value &= _U64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited(number: int, payload: bytes) -> bytes:
    """Field `number` holding `payload` (bytes, a string's UTF-8 or an embedded message): wire type 2."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload
