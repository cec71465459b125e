"""Small pure pieces of the runtime and worker: CRI log lines and Go durations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubelet.hooks import hook_failure_message
from kubelet.pod_sync import go_duration
from kubelet.process_runtime import cri_log_line, rfc3339_nano


def test_cri_log_line() -> None:
    t = int(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()) * 1_000_000_000
    assert cri_log_line("stdout", b"hello", t + 123456789) == b"2026-01-02T03:04:05.123456789Z stdout F hello\n"
    assert cri_log_line("stderr", b"part", t + 120_000_000, tag="P") == b"2026-01-02T03:04:05.12Z stderr P part\n"
    assert rfc3339_nano(t) == "2026-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("seconds", "text"), [(10, "10s"), (20, "20s"), (40, "40s"), (80, "1m20s"), (160, "2m40s"), (300, "5m0s")]
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_hook_failure_message() -> None:
    handler = {"exec": {"command": ["sh", "-c", "exit 1"]}}
    msg = hook_failure_message(handler, "c", "p_ns(u)", "command 'sh -c exit 1' exited with 1: ", "")
    assert msg == (
        'Exec lifecycle hook ([sh -c exit 1]) for Container "c" in Pod "p_ns(u)" failed - error: '
        "command 'sh -c exit 1' exited with 1: , message: \"\""
    )
    http = hook_failure_message({"httpGet": {"path": "/stop"}}, "c", "p_ns(u)", "boom", "")
    assert http == 'HTTP lifecycle hook (/stop) for Container "c" in Pod "p_ns(u)" failed - error: boom'
