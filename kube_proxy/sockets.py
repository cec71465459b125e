"""Listening sockets of the userspace proxy.

Every node's proxy binds a ClusterIP (load-balancer IP, external IP) with SO_REUSEPORT, and the
kernel spreads new connections over the group's sockets by a hash of the 4-tuple, so one client's
connections reach several proxies. ClientIP session affinity is a table in each proxy, and two
tables agree only as long as nothing happened to one that did not happen to the other (a failover
to the next endpoint, an endpoint seen a little earlier). Upstream, a client's connections all go
through its own node's proxy; so for an address whose Service has ClientIP affinity, a classic BPF
program on the reuseport group (`SO_ATTACH_REUSEPORT_CBPF`, "return 0") sends every new connection
(UDP: every datagram) to the group's first socket, which is the oldest one still open. When that
socket closes, the kernel moves another into its place. The program belongs to the group, not to
one socket, so each proxy attaches the same one; the last proxy to see the Service lose its affinity
detaches it.
"""

from __future__ import annotations

import ctypes
import logging
import socket
import struct

from kube_proxy.plan import ListenerKey, Route

__all__ = ["bind_socket", "set_steering", "update_steering"]

log = logging.getLogger("kube_proxy.sockets")

SO_ATTACH_REUSEPORT_CBPF = getattr(socket, "SO_ATTACH_REUSEPORT_CBPF", 51)  # linux/asm-generic/socket.h
SO_DETACH_REUSEPORT_BPF = getattr(socket, "SO_DETACH_REUSEPORT_BPF", 68)
_BPF_RET_K = 0x06  # BPF_RET | BPF_K
_RETURN_FIRST = ctypes.create_string_buffer(struct.pack("HBBI", _BPF_RET_K, 0, 0, 0))  # struct sock_filter[1]
_PROGRAM = struct.pack("HP", 1, ctypes.addressof(_RETURN_FIRST))  # struct sock_fprog


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


def set_steering(sock: socket.socket, first: bool) -> None:
    """Send new connections to `sock`'s reuseport group all to its first socket (`first`), or let the
    kernel spread them again. Call on a socket already in its group: a TCP socket once it listens, a
    UDP socket once bound (a program attached before then is dropped when the socket joins). OSError
    when the kernel refuses."""
    if first:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, _PROGRAM)
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, 0)
    except FileNotFoundError:
        pass  # ENOENT: no program attached (this proxy is not the first to see the change)


def update_steering(sock: socket.socket, route: Route, steered: bool | None) -> bool | None:
    """Steer `sock`'s group to its first socket when `route` has ClientIP affinity, else spread, unless
    `steered` (what this listener last set; None: nothing yet) already says so; what is set now. A
    socket of its own (a NodePort) has no group: None."""
    if not route.reuse_port:
        return None
    want = route.affinity_timeout is not None
    if want is steered:
        return steered
    try:
        set_steering(sock, want)
    except OSError as e:
        # the kernel keeps spreading a client's connections over the proxies: affinity holds per proxy only
        action = "steer" if want else "stop steering"
        log.warning("%s: cannot %s new connections to one proxy: %s", route.ref, action, e)
    return want
