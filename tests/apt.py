"""apt-get from the tests: one caller at a time on this machine (scripts/*.sh take the same lock), so test
workers installing at once wait for each other instead of failing on dpkg's lock."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

APT_LOCK = Path(os.environ.get("TMPDIR") or "/tmp") / "tinykube-apt.lock"


def apt_install(*packages: str, timeout: float = 600) -> None:
    """`apt-get update`, then `apt-get install -y` the packages (through sudo when not root)."""
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["update", "-qq"], ["install", "-y", "-qq", *packages]):
        cmd = [*sudo, "flock", "--close", str(APT_LOCK), "apt-get", *args]  # no daemon it starts holds the lock
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout, env=env)
