"""Small pure pieces of the runtime and worker: CRI log lines, Go durations, the state journal."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kubelet.hooks import hook_failure_message
from kubelet.journal import Journal, read_journal
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


def test_journal_keeps_entries_across_reopening_and_compacts(tmp_path: Path) -> None:
    path = tmp_path / "records"
    j = Journal(path)
    j.set("a", '{"x": 1}')
    j.set("b", "two words")
    j.delete("a")
    j.delete("missing")  # nothing written
    assert path.read_text() == 'a {"x": 1}\nb two words\na\n'
    assert read_journal(path) == ({"b": "two words"}, 3)
    again = Journal(path)  # stale lines: rewritten with the live entries only
    assert again.entries == {"b": "two words"} and path.read_text() == "b two words\n"
    for i in range(3000):
        again.set(f"k{i}", "v")
        again.delete(f"k{i}")
    assert len(path.read_text().splitlines()) < 1100
    assert Journal(path).entries == {"b": "two words"}


def test_journal_folds_in_records_of_an_earlier_layout(tmp_path: Path) -> None:
    path = tmp_path / "records"
    path.write_text("a new\nc\n")
    j = Journal(path, {"a": "old", "b": "legacy", "c": "removed since"})
    assert j.entries == {"a": "new", "b": "legacy"}  # the journal's lines come after the old records
    assert read_journal(path) == ({"a": "new", "b": "legacy"}, 2)
