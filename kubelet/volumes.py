"""Pod volumes materialised under `<pod dir>/volumes/<name>`: emptyDir, configMap, secret, downwardAPI,
projected and hostPath; configMap/secret/downwardAPI/projected contents are swapped atomically through
a `..data` symlink as the kubelet's AtomicWriter does, so a refresh is never seen half-written."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubelet.downward import DownwardError, field_value, resource_value
from kubelet.envvars import Lookup

__all__ = ["VolumeError", "VolumeManager", "volume_payload"]

Payload = dict[str, tuple[bytes, int]]
Tokens = Mapping[tuple[str, int], bytes]  # (volume name, projected source index) → ServiceAccount token


class VolumeError(Exception):
    """A volume cannot be set up yet; str() is the reason (e.g. `configmap "x" not found`)."""


def _object_files(
    obj: Mapping[str, Any] | None,
    kind: str,
    name: str,
    items: list[Mapping[str, Any]] | None,
    optional: bool,
    mode: int,
) -> Payload:
    if obj is None:
        if optional:
            return {}
        raise VolumeError(f'{kind} "{name}" not found')
    data: dict[str, bytes] = {}
    if kind == "configmap":
        data.update({k: str(v).encode() for k, v in (obj.get("data") or {}).items()})
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    else:
        data.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
        data.update({k: str(v).encode() for k, v in (obj.get("stringData") or {}).items()})
    if not items:
        return {k: (v, mode) for k, v in data.items()}
    out: Payload = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            what = (
                "configmap references non-existent config key"
                if kind == "configmap"
                else ("references non-existent secret key")
            )
            raise VolumeError(f"{what}: {key}")
        out[item.get("path") or key] = (data[key], int(item.get("mode", mode)))
    return out


def _downward_files(
    pod: Mapping[str, Any], items: list[Mapping[str, Any]], mode: int, allocatable: Mapping[str, str]
) -> Payload:
    out: Payload = {}
    spec = pod.get("spec") or {}
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    for item in items:
        try:
            if ref := item.get("fieldRef"):
                value = field_value(pod, ref.get("fieldPath", ""), whole_maps=True)
            elif ref := item.get("resourceFieldRef"):
                target = next((c for c in containers if c.get("name") == ref.get("containerName")), None)
                value = resource_value(target, ref.get("resource", ""), ref.get("divisor"), allocatable)
            else:
                continue
        except (DownwardError, ValueError) as e:
            raise VolumeError(str(e)) from e
        out[item.get("path", "")] = (value.encode(), int(item.get("mode", mode)))
    return out


def volume_payload(
    pod: Mapping[str, Any],
    volume: Mapping[str, Any],
    *,
    configmaps: Lookup,
    secrets: Lookup,
    allocatable: Mapping[str, str],
    tokens: Tokens | None = None,
) -> Payload | None:
    """The files (path → (content, mode)) of a configMap/secret/downwardAPI/projected volume; None for others.
    A projected serviceAccountToken source takes its token from `tokens` (fetched by the TokenManager)."""
    ns = (pod.get("metadata") or {}).get("namespace", "")
    if src := volume.get("configMap"):
        mode = int(src.get("defaultMode", 0o644))
        name = src.get("name", "")
        return _object_files(configmaps(ns, name), "configmap", name, src.get("items"), bool(src.get("optional")), mode)
    if src := volume.get("secret"):
        mode = int(src.get("defaultMode", 0o644))
        name = src.get("secretName", "")
        return _object_files(secrets(ns, name), "secret", name, src.get("items"), bool(src.get("optional")), mode)
    if (src := volume.get("downwardAPI")) is not None:
        return _downward_files(pod, src.get("items") or [], int(src.get("defaultMode", 0o644)), allocatable)
    if (src := volume.get("projected")) is not None:
        mode = int(src.get("defaultMode", 0o644))
        out: Payload = {}
        for index, source in enumerate(src.get("sources") or []):
            if (s := source.get("serviceAccountToken")) is not None:
                token = (tokens or {}).get((volume.get("name", ""), index))
                if token is None:
                    raise VolumeError("failed to fetch token: no token for this source yet")
                out[s.get("path", "token")] = (token, mode)
            elif s := source.get("configMap"):
                name = s.get("name", "")
                cm = configmaps(ns, name)
                out.update(_object_files(cm, "configmap", name, s.get("items"), bool(s.get("optional")), mode))
            elif s := source.get("secret"):
                name = s.get("name", "")
                out.update(
                    _object_files(secrets(ns, name), "secret", name, s.get("items"), bool(s.get("optional")), mode)
                )
            elif (s := source.get("downwardAPI")) is not None:
                out.update(_downward_files(pod, s.get("items") or [], mode, allocatable))
            # clusterTrustBundle sources are not supported: skipped
        return out
    return None


def _digest(payload: Payload) -> str:
    h = hashlib.sha256()
    for path in sorted(payload):
        content, mode = payload[path]
        h.update(f"{path}\0{mode}\0{len(content)}\0".encode())
        h.update(content)
    return h.hexdigest()


def write_atomic(target: Path, payload: Payload) -> None:
    """Publish `payload` in `target` through a new timestamped dir and a `..data` symlink swap."""
    target.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    new_dir = target / stamp
    new_dir.mkdir()
    for rel, (content, mode) in payload.items():
        rel = rel.lstrip("/")
        f = new_dir / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(content)
        f.chmod(mode & 0o7777)
    data_link = target / "..data"
    old = os.readlink(data_link) if data_link.is_symlink() else None
    tmp_link = target / "..data_tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(stamp)
    tmp_link.rename(data_link)
    top = {rel.lstrip("/").split("/", 1)[0] for rel in payload}
    for name in top:
        link = target / name
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            link.symlink_to(f"..data/{name}")
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.is_symlink() and entry.name not in top:
            entry.unlink()
    if old and old != stamp:
        shutil.rmtree(target / old, ignore_errors=True)


class VolumeManager:
    """Sets up and refreshes one node's pod volumes."""

    def __init__(self, configmaps: Lookup, secrets: Lookup, allocatable: Mapping[str, str]) -> None:
        self.configmaps = configmaps
        self.secrets = secrets
        self.allocatable = allocatable
        self._digests: dict[tuple[str, str], str] = {}

    def setup(self, pod: Mapping[str, Any], volumes_dir: Path, tokens: Tokens | None = None) -> dict[str, Path]:
        """Materialise (or refresh) every volume; volume name → host path. VolumeError names the first failure.
        `tokens` are the pod's projected ServiceAccount tokens (see kubelet/tokens.py)."""
        uid = (pod.get("metadata") or {}).get("uid", "")
        out: dict[str, Path] = {}
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            name = vol.get("name", "")
            if (src := vol.get("hostPath")) is not None:
                path = Path(src.get("path", "/"))
                kind = src.get("type") or ""
                if kind == "DirectoryOrCreate":
                    path.mkdir(parents=True, exist_ok=True)
                elif kind == "FileOrCreate" and not path.exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.touch()
                elif kind in ("Directory", "File", "Socket") and not path.exists():
                    raise VolumeError(f"hostPath type check failed: {path} is not a {kind.lower()}")
                out[name] = path
                continue
            target = volumes_dir / name
            try:
                payload = volume_payload(
                    pod,
                    vol,
                    configmaps=self.configmaps,
                    secrets=self.secrets,
                    allocatable=self.allocatable,
                    tokens=tokens,
                )
            except VolumeError as e:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}') from e
            if payload is None:  # emptyDir and volume kinds we only give an empty directory
                target.mkdir(parents=True, exist_ok=True)
            else:
                digest = _digest(payload)
                if self._digests.get((uid, name)) != digest or not (target / "..data").exists():
                    write_atomic(target, payload)
                    self._digests[(uid, name)] = digest
            out[name] = target
        return out

    def forget(self, uid: str) -> None:
        """Drop what is remembered of a removed pod."""
        for key in [k for k in self._digests if k[0] == uid]:
            del self._digests[key]
