"""Fixtures for the end-to-end tests: the real kubectl v1.35 binary pointed at the session apiserver."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.required_fields import RequiredFieldChecker

DEFAULT_TIMEOUT = 30.0


@dataclass
class Kubectl:
    """Runs the real kubectl against one server, isolated from the user's kubeconfig and cache."""

    binary: Path
    server: str
    cache_dir: Path
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run `kubectl --server … <args>` and return the finished process (never raises on exit codes)."""
        return subprocess.run(
            self.argv(*args), input=input, capture_output=True, text=True, timeout=timeout, env=self.env, check=False
        )

    def argv(self, *args: str) -> list[str]:
        """The full command line for `args`."""
        return [str(self.binary), "--server", self.server, "--cache-dir", str(self.cache_dir), *args]

    def ok(self, *args: str, input: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Run kubectl, assert exit code 0 and return stdout."""
        r = self(*args, input=input, timeout=timeout)
        assert r.returncode == 0, (
            f"kubectl {' '.join(args)} exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
        )
        return r.stdout

    def fails(self, *args: str, input: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Run kubectl, assert a non-zero exit code and return stderr."""
        r = self(*args, input=input, timeout=timeout)
        assert r.returncode != 0, f"kubectl {' '.join(args)} unexpectedly succeeded\nstdout:\n{r.stdout}"
        return r.stderr

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start kubectl in the background (for `wait` and watches); the caller must wait or kill it."""
        return subprocess.Popen(
            self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env
        )


@pytest.fixture(scope="session")
def kubectl(kubectl_binary: Path, apiserver: str, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """kubectl with `--server <apiserver>`, its own `--cache-dir`, and KUBECONFIG pointing at no file."""
    root = tmp_path_factory.mktemp("kubectl")
    home = root / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "KUBECONFIG": str(root / "no-such-kubeconfig"),
        "KUBECTL_EXTERNAL_DIFF": "diff -u -N",
        "LANG": "C.UTF-8",
    }
    return Kubectl(kubectl_binary, apiserver, root / "cache", home, env)


@pytest.fixture(scope="session")
def required_fields(apiserver: str) -> RequiredFieldChecker:
    """Checks objects against the required fields of the schemas the apiserver serves."""
    return RequiredFieldChecker(apiserver)


def _is_watch(request: httpx.Request) -> bool:
    return request.url.params.get("watch") in ("1", "true") or "/watch/" in request.url.path


@pytest.fixture(scope="session")
def http(apiserver: str, required_fields: RequiredFieldChecker) -> Iterator[httpx.Client]:
    """A synchronous HTTP client on the apiserver, for reading back what kubectl wrote.

    Every JSON object (or list) it receives is checked against the served schemas' required fields.
    """

    def check(response: httpx.Response) -> None:
        if _is_watch(response.request) or not response.is_success:
            return
        if not response.headers.get("content-type", "").startswith("application/json"):
            return
        response.read()
        missing = required_fields.missing(response.json())
        assert not missing, f"{response.request.method} {response.request.url.path}: required fields missing {missing}"

    with httpx.Client(base_url=apiserver, timeout=10, event_hooks={"response": [check]}) as client:
        yield client


@pytest.fixture
def namespace(http: httpx.Client) -> str:
    """A fresh namespace for one test."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    r = http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    return name


def table(text: str) -> list[list[str]]:
    """Split kubectl's column output into cells (columns are separated by two or more spaces)."""
    return [re.split(r"\s{2,}", line.rstrip()) for line in text.splitlines() if line.strip()]


AGE = re.compile(r"^(\d+s|\d+m\d*s?|<unknown>)$")


def rows_without_age(text: str, age_column: str = "AGE") -> list[list[str]]:
    """Table rows with the AGE column checked (a fresh age) and dropped, headers included."""
    rows = table(text)
    if not rows:
        return rows
    i = rows[0].index(age_column)
    for row in rows[1:]:
        assert AGE.match(row[i]), f"not a fresh age: {row[i]!r} in {row}"
    return [row[:i] + row[i + 1 :] for row in rows]


def get_json(http: httpx.Client, path: str, expect: int = 200) -> dict[str, Any]:
    """GET a path and return the JSON body, asserting the status code."""
    r = http.get(path)
    assert r.status_code == expect, f"GET {path}: {r.status_code} {r.text}"
    return r.json()


def finish(proc: subprocess.Popen[str], timeout: float = DEFAULT_TIMEOUT) -> tuple[int, str, str]:
    """Wait for a background kubectl and return (exit code, stdout, stderr); kill it on timeout."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"kubectl did not finish in {timeout}s:\n{out}\n{err}") from None
    return proc.returncode, out, err


def manifest(*docs: str) -> str:
    """Join YAML documents into one multi-document manifest."""
    return "\n---\n".join(d.strip("\n") for d in docs) + "\n"


def helm_env(apiserver: str, root: Path) -> dict[str, str]:
    """The environment of the real helm on `apiserver`: a kubeconfig and helm's homes under `root`."""
    kubeconfig = root / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
        f"clusters: [{{name: t, cluster: {{server: '{apiserver}'}}}}]\n"
        "contexts: [{name: t, context: {cluster: t}}]\nusers: []\n"
    )
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "KUBECONFIG": str(kubeconfig),
        "HELM_CACHE_HOME": str(root / "cache"),
        "HELM_CONFIG_HOME": str(root / "config"),
        "HELM_DATA_HOME": str(root / "data"),
    }
