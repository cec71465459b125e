"""The components' command lines: flags and TINYKUBE_* environment variables reach the component, and a bad
value is refused with click's usage error (exit 2) naming the flag, before anything starts."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from click.testing import CliRunner

import kubelet.__main__ as kubelet_main
import scheduler.__main__ as scheduler_main
from client.component import ComponentOptions

gc.enable()  # importing a component's __main__ paused the collector (gctuning.pause) for its process start


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[ComponentOptions]:
    """The options each component would have been started with (run_component replaced)."""
    seen: list[ComponentOptions] = []

    def capture(opts: ComponentOptions, main: Any) -> None:
        seen.append(opts)

    monkeypatch.setattr(scheduler_main, "run_component", capture)
    monkeypatch.setattr(kubelet_main, "run_component", capture)
    return seen


def test_environment_variables_set_the_scheduler(started: list[ComponentOptions]) -> None:
    env = {"TINYKUBE_LEADER_ELECT": "false", "TINYKUBE_HEALTH_PORT": "12345", "TINYKUBE_SERVER": "https://x:6443"}
    result = CliRunner().invoke(scheduler_main.cli, ["--log-level", "debug"], env=env)
    assert result.exit_code == 0, result.output
    (opts,) = started
    assert (opts.leader_elect, opts.health_port, opts.server, opts.log_level) == (
        False,
        12345,
        "https://x:6443",
        "debug",
    )


def test_a_flag_beats_its_environment_variable(started: list[ComponentOptions]) -> None:
    result = CliRunner().invoke(scheduler_main.cli, ["--leader-elect"], env={"TINYKUBE_LEADER_ELECT": "false"})
    assert result.exit_code == 0, result.output
    assert started[0].leader_elect is True
    assert started[0].lease_name == "kube-scheduler" and started[0].health_port == 10259


def test_defaults_when_nothing_is_given(started: list[ComponentOptions]) -> None:
    result = CliRunner().invoke(scheduler_main.cli, [], env={"TINYKUBE_SERVER": None, "KUBECONFIG": None})
    assert result.exit_code == 0, result.output
    assert (started[0].server, started[0].kubeconfig, started[0].log_level) == (None, None, "info")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "Missing option '--node-name'"),
        (["--node-name", "n1", "--node-labels", "nokey"], "invalid label 'nokey' (want key=value)"),
        (["--node-name", "n1", "--cluster-dns", "10.0.0.10,bogus"], "'bogus' is not a valid IP address"),
        (["--node-name", "n1", "--max-pods", "many"], "'many' is not a valid integer"),
        (["--node-name", "n1", "--container-runtime", "rkt"], "'rkt' is not a container runtime"),
    ],
)
def test_kubelet_refuses_bad_values(started: list[ComponentOptions], args: list[str], says: str) -> None:
    result = CliRunner().invoke(kubelet_main.cli, args, env={"TINYKUBE_NODE_NAME": None})
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert not started


def test_help_names_each_flag_with_its_environment_variable() -> None:
    result = CliRunner().invoke(scheduler_main.cli, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    for flag, env in (("--server", "TINYKUBE_SERVER"), ("--bind-concurrency", "TINYKUBE_BIND_CONCURRENCY")):
        line = next(line for line in result.output.splitlines() if line.lstrip().startswith(flag))
        assert f"env var: {env}" in line, result.output
