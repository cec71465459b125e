"""What the benchmarks built on bench/apiserver.py share: loading it as a module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_apiserver_bench() -> ModuleType:
    """bench/apiserver.py by path (the name `apiserver` is the server's package in the repo root)."""
    spec = importlib.util.spec_from_file_location("bench_apiserver", Path(__file__).with_name("apiserver.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
