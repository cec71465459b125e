"""The identity Lease's name: upstream's APIServerID, `apiserver-` + base32 of sha256 over the
length-prefixed hostname and component, first 16 bytes, lower case, no padding."""

from __future__ import annotations

import base64
import hashlib
import re

from apiserver.identity_lease import identity_lease_name


def test_the_name_is_upstreams_hash_of_the_length_prefixed_hostname_and_component() -> None:
    # cryptobyte's AddUint16LengthPrefixed: a big-endian 2-byte length before each part
    data = b"\x00\x06node-a" + b"\x00\x0ekube-apiserver"
    expected = "apiserver-" + base64.b32encode(hashlib.sha256(data).digest()[:16]).decode().rstrip("=").lower()
    assert identity_lease_name("node-a") == expected
    assert re.fullmatch(r"apiserver-[a-z2-7]{26}", expected)


def test_each_identity_has_its_own_name() -> None:
    names = {identity_lease_name(f"host/apiserver-{i}") for i in range(1, 9)}
    assert len(names) == 8
    assert identity_lease_name("host") == identity_lease_name("host")
