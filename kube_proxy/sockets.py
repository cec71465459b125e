"""Listening sockets of the userspace proxy."""

from __future__ import annotations

import socket

from kube_proxy.plan import ListenerKey

__all__ = ["bind_socket"]


def bind_socket(key: ListenerKey, reuse_port: bool, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A non-blocking socket bound to the listener's address; SO_REUSEPORT when the address is shared
    with the other nodes' proxies (OSError when it cannot be bound)."""
    sock = socket.socket(socket.AF_INET, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((key.ip, key.port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
