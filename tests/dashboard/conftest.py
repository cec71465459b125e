"""Fixtures for the dashboard tests: the real `python -m dashboard` on the session's apiserver, the
real controller-manager (Deployments make their pods), and a real headless Chromium driven by
Playwright."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.apt import apt_install
from tests.dashboard.kit import CHROMIUM, CHROMIUM_ARGS
from tinykube.procs import Process, free_port, start_apiserver, start_etcd, wait_ready


@dataclass
class Dashboard:
    """A running dashboard process."""

    proc: Process
    url: str
    health: str

    def stop(self) -> int:
        """SIGTERM it; its exit code."""
        self.proc.stop()
        return self.proc.proc.returncode


def start_dashboard(apiserver: str, log: Path, port: int | None = None) -> Dashboard:
    """Start `python -m dashboard` on 127.0.0.1 and wait until it is ready."""
    port, health = port or free_port(), free_port()
    argv = [sys.executable, "-m", "dashboard", "--server", apiserver, "--port", str(port)]
    argv += ["--health-port", str(health), "--log-level", "debug"]
    proc = Process("dashboard", argv, log)
    wait_ready(f"http://127.0.0.1:{health}/readyz", proc)
    return Dashboard(proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{health}")


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The dashboard tests' own etcd: their controller-manager must not act on other suites' objects."""
    proc, url = start_etcd(tmp_path_factory.mktemp("dashboard-etcd"))
    yield url
    proc.stop()


@pytest.fixture(scope="session")
def apiserver_proc(etcd: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Process, str]]:
    """The dashboard tests' own apiserver, on their own etcd."""
    proc, url = start_apiserver(tmp_path_factory.mktemp("dashboard-apiserver"), etcd)
    yield proc, url
    proc.stop()


@pytest.fixture(scope="session")
def apiserver(apiserver_proc: tuple[Process, str]) -> str:
    """Base URL of the dashboard tests' apiserver."""
    return apiserver_proc[1]


@pytest.fixture(scope="session")
def dashboard(apiserver: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """The dashboard process of the session; it must exit 0 on SIGTERM."""
    d = start_dashboard(apiserver, tmp_path_factory.mktemp("dashboard") / "dashboard.log")
    yield d
    assert d.stop() == 0, d.proc.tail()


@pytest.fixture(scope="session")
def controller_manager(apiserver: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    """The real controller-manager, running the Deployment and ReplicaSet controllers."""
    health = free_port()
    argv = [sys.executable, "-m", "controller_manager", "--server", apiserver, "--no-leader-elect"]
    argv += ["--controllers", "deployment,replicaset", "--health-port", str(health)]
    proc = Process("controller-manager", argv, tmp_path_factory.mktemp("cm") / "controller-manager.log")
    wait_ready(f"http://127.0.0.1:{health}/readyz", proc)
    yield proc
    proc.stop()


def _ensure_chromium() -> str:
    """Debian's chromium, installed with apt-get when it is missing (as scripts/setup.sh does)."""
    if shutil.which(CHROMIUM) or Path(CHROMIUM).exists():
        return CHROMIUM
    apt_install("chromium")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser_context(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[object]:
    """A headless Chromium with a fresh profile, for the whole session."""
    from playwright.async_api import async_playwright

    executable = _ensure_chromium()
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        yield context
        await context.close()


@pytest.fixture
async def page(browser_context: object) -> AsyncIterator[object]:
    """A new tab; the browser's console errors fail the test."""
    from playwright.async_api import BrowserContext

    assert isinstance(browser_context, BrowserContext)
    tab = await browser_context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.set_default_timeout(15000)
    yield tab
    await tab.close()
    # a failed API request shows in the console as a failed resource load; the page's own faults do not
    assert [e for e in errors if "Failed to load resource" not in e] == []


@pytest.fixture
async def http(dashboard: Dashboard) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the dashboard."""
    async with httpx.AsyncClient(base_url=dashboard.url, timeout=10) as client:
        yield client
