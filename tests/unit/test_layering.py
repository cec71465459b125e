"""The layering DESIGN.md sets: components → client → apimachinery; no component imports another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {
    "apimachinery",
    "client",
    "apiserver",
    "scheduler",
    "controller_manager",
    "kubelet",
    "kube_proxy",
    "dashboard",
    "ingress_controller",
    "cluster_dns",
    "metrics_server",
    "tinykube",
}
ALLOWED = {
    "apimachinery": set(),
    "client": {"apimachinery"},
    "apiserver": {"apimachinery"},
    "scheduler": {"apimachinery", "client"},
    "controller_manager": {"apimachinery", "client"},
    "kubelet": {"apimachinery", "client"},
    "kube_proxy": {"apimachinery", "client"},
    "dashboard": {"apimachinery", "client"},
    "ingress_controller": {"apimachinery", "client"},
    "cluster_dns": {"apimachinery", "client"},
    "metrics_server": {"apimachinery", "client"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level packages of ours that a module imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {n.split(".")[0] for n in names} & OURS
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_lower_layers(package: str) -> None:
    bad = {
        str(f.relative_to(ROOT)): sorted(imported_packages(f) - ALLOWED[package] - {package})
        for f in sorted((ROOT / package).rglob("*.py"))
    }
    assert {f: p for f, p in bad.items() if p} == {}
