"""Pod IPs from the node's podCIDR, remembered on disk so a restarted kubelet keeps them."""

from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path

__all__ = ["IPAM", "default_pod_cidr"]


def default_pod_cidr(node_name: str) -> str:
    """A /24 inside 127.0.0.0/8 (never 127.0.0.0/16) derived from a hash of the node name."""
    h = int.from_bytes(hashlib.sha256(node_name.encode()).digest()[:4], "big")
    second = 1 + h % 255  # 1..255: never 127.0.x.x
    third = (h >> 8) % 256
    return f"127.{second}.{third}.0/24"


class IPAM:
    """Allocates addresses of `cidr` (skipping the network address, .1 and broadcast) to pod uids."""

    def __init__(self, cidr: str, state_dir: Path) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        self.dir = state_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        # ip → uid, read from disk once: this kubelet is the directory's only writer
        self._by_ip = self._read_owners()
        self._by_uid = {uid: ip for ip, uid in self._by_ip.items()}

    def _read_owners(self) -> dict[str, str]:
        out = {}
        for f in self.dir.iterdir():
            try:
                out[f.name] = f.read_text().strip()
            except OSError:
                continue
        return out

    def allocate(self, uid: str) -> str:
        """The pod's IP (the same one again if it already has one)."""
        if ip := self._by_uid.get(uid):
            return ip
        skip = {self.network.network_address, self.network.network_address + 1, self.network.broadcast_address}
        for ip in self.network.hosts() if self.network.num_addresses > 2 else self.network:
            if ip in skip or str(ip) in self._by_ip:
                continue
            path = self.dir / str(ip)
            try:
                with open(path, "x") as f:
                    f.write(uid)
            except FileExistsError:
                continue
            self._by_ip[str(ip)] = uid
            self._by_uid[uid] = str(ip)
            return str(ip)
        raise RuntimeError(f"no free IP left in {self.network}")

    def release(self, uid: str) -> None:
        """Free whatever the pod holds."""
        ip = self._by_uid.pop(uid, None)
        if ip is not None:
            self._by_ip.pop(ip, None)
            (self.dir / ip).unlink(missing_ok=True)

    def allocated(self) -> dict[str, str]:
        """ip → pod uid."""
        return dict(self._by_ip)
