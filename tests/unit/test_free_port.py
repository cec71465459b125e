"""`free_port` picks outside the kernel's ephemeral range, where no outgoing connection can be given the port
between the pick and its server's bind (the race that made a dashboard fixture fail with EADDRINUSE), and
outside the NodePort range."""

from __future__ import annotations

import socket
from pathlib import Path

from tinykube.procs import free_port


def test_ports_are_free_and_outside_the_ephemeral_range() -> None:
    low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports = [free_port() for _ in range(50)]
    assert not [p for p in ports if low <= p <= high or 30000 <= p <= 32767]  # nor a NodePort
    assert len(set(ports)) > 40  # drawn at random, not one port again and again
    for port in ports[:5]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
