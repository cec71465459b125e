"""The nodeipam range allocator's choice of a Node's podCIDR."""

from __future__ import annotations

from controller_manager.controllers.nodeipam import first_free_subnet


def test_first_free_subnet_skips_overlaps() -> None:
    assert first_free_subnet("10.244.0.0/16", 24, []) == "10.244.0.0/24"
    assert first_free_subnet("10.244.0.0/16", 24, ["10.244.0.0/24", "10.244.1.7/24"]) == "10.244.2.0/24"
    assert first_free_subnet("10.244.0.0/16", 24, ["10.244.0.0/23", "garbage", "fd00::/64"]) == "10.244.2.0/24"
    assert first_free_subnet("10.244.0.0/23", 24, ["10.244.0.0/24", "10.244.1.0/24"]) is None
