"""CRI log parsing and the kubelet's log filters: tail, since, timestamps, limitBytes, stream, partial lines."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from kubelet.streaming import (
    LogOptions,
    LogOptionsError,
    follow_log,
    format_timestamp,
    parse_cri_line,
    parse_timestamp,
    running_probe,
    tail_offset,
)
from kubelet.streaming_exec import ExecOptions, exit_status, negotiate

T0 = "2026-11-28T19:00:00.000000001Z"
T1 = "2026-11-28T19:00:01.5Z"
T2 = "2026-11-28T19:00:02.123456789Z"


def cri(*records: tuple[str, str, str, str]) -> bytes:
    """CRI log text from (timestamp, stream, tag, content) records."""
    return b"".join(f"{ts} {stream} {tag} {content}\n".encode() for ts, stream, tag, content in records)


async def read(path: Path, **query: str) -> bytes:
    """The whole (non-follow) output for a query."""
    return b"".join([chunk async for chunk in follow_log(path, LogOptions.parse(query))])


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "0.log"
    path.write_bytes(
        cri(
            (T0, "stdout", "F", "one"),
            (T1, "stderr", "F", "two"),
            (T2, "stdout", "P", "thr"),
            (T2, "stdout", "F", "ee"),
        )
    )
    return path


def test_parse_cri_line() -> None:
    rec = parse_cri_line(b"2026-11-28T19:00:00.5Z stdout F hello world")
    assert rec is not None
    assert (rec.stream, rec.partial, rec.content) == ("stdout", False, b"hello world")
    assert rec.timestamp == parse_timestamp("2026-11-28T19:00:00.5Z")
    partial = parse_cri_line(b"2026-11-28T19:00:00Z stderr P ")
    assert partial is not None and partial.partial and partial.content == b""
    assert parse_cri_line(b"2026-11-28T19:00:00Z stdout F") is not None  # an empty line
    for bad in (
        b"",
        b"garbage",
        b"2026-11-28T19:00:00Z stdin F x",
        b"notatime stdout F x",
        b"2026-11-28T19:00:00Z stdout X x",
    ):
        assert parse_cri_line(bad) is None


def test_timestamps_round_trip_nanoseconds() -> None:
    assert format_timestamp(parse_timestamp(T0)) == T0
    assert format_timestamp(parse_timestamp("2026-11-28T19:00:01.500000000Z")) == T1
    assert format_timestamp(parse_timestamp("2026-11-28T19:00:00Z")) == "2026-11-28T19:00:00Z"
    # offsets are normalised to UTC, as Go formats a UTC time
    assert format_timestamp(parse_timestamp("2026-11-28T21:00:00.25+02:00")) == "2026-11-28T19:00:00.25Z"
    with pytest.raises(ValueError):
        parse_timestamp("yesterday")


async def test_plain_output_merges_streams_and_joins_partials(log: Path) -> None:
    assert await read(log) == b"one\ntwo\nthree\n"


async def test_timestamps_prefix_each_line_once(log: Path) -> None:
    out = await read(log, timestamps="true")
    assert out.decode().splitlines() == [f"{T0} one", f"{T1} two", f"{T2} three"]


async def test_tail_lines_counts_whole_lines(log: Path) -> None:
    assert await read(log, tailLines="1") == b"three\n"
    assert await read(log, tailLines="2") == b"two\nthree\n"
    assert await read(log, tailLines="10") == b"one\ntwo\nthree\n"
    assert await read(log, tailLines="0") == b""


def test_tail_offset_across_blocks(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    lines = [(T0, "stdout", "F", f"line {i:05d} " + "x" * 200) for i in range(2000)]
    path.write_bytes(cri(*lines) + b"2026-11-28T19:00:00Z stdout F unterminat")
    data = path.read_bytes()
    off = tail_offset(path, 3)
    assert data[off:].split(b"\n")[0].endswith(lines[-3][3].encode())
    assert tail_offset(path, 5000) == 0


async def test_since_time_and_since_seconds(log: Path) -> None:
    assert await read(log, sinceTime="2026-11-28T19:00:01Z") == b"two\nthree\n"
    t2 = parse_timestamp(T2)
    opts = LogOptions.parse({"sinceSeconds": "1"}, now_ns=lambda: t2 + 500_000_000)
    assert b"".join([c async for c in follow_log(log, opts)]) == b"three\n"


async def test_limit_bytes_cuts_the_output(log: Path) -> None:
    assert await read(log, limitBytes="6") == b"one\ntw"
    assert await read(log, limitBytes="1000") == b"one\ntwo\nthree\n"


async def test_stream_selects_stdout_or_stderr(log: Path) -> None:
    assert await read(log, stream="Stderr") == b"two\n"
    assert await read(log, stream="Stdout") == b"one\nthree\n"


async def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert await read(tmp_path / "none.log") == b""


def test_running_probe_reads_the_runtime() -> None:
    def status(name: str, attempt: int, state: str) -> SimpleNamespace:
        return SimpleNamespace(name=name, attempt=attempt, created_at=float(attempt), state=state)

    containers = {"u1": [status("c", 0, "exited"), status("c", 1, "running"), status("d", 0, "exited")]}
    cri_like = SimpleNamespace(
        sandboxes=lambda: [SimpleNamespace(uid="u1", namespace="ns", name="p")],
        list_containers=lambda uid: containers.get(uid, []),
    )
    probe = running_probe(cri_like, "ns", "p", "c")
    assert probe is not None and probe()
    containers["u1"].append(status("c", 2, "exited"))
    assert not probe()
    assert not running_probe(cri_like, "ns", "p", "d")()  # type: ignore[misc]
    assert not running_probe(cri_like, "ns", "other", "c")()  # type: ignore[misc]
    explicit = SimpleNamespace(container_running=lambda ns, pod, c: c == "c")
    assert running_probe(explicit, "ns", "p", "c")()  # type: ignore[misc]
    assert running_probe(object(), "ns", "p", "c") is None


def test_bad_options_are_rejected() -> None:
    for query in ({"follow": "maybe"}, {"tailLines": "x"}, {"sinceTime": "noon"}, {"stream": "both"}):
        with pytest.raises(LogOptionsError):
            LogOptions.parse(query)


def test_exec_options_and_protocols() -> None:
    params = {"command": ["sh", "-c", "exit 3"], "stdout": ["1"], "stderr": ["true"], "tty": ["0"]}
    opts = ExecOptions.parse(lambda k: params.get(k, []))
    assert (opts.command, opts.stdin, opts.stdout, opts.stderr, opts.tty) == (
        ["sh", "-c", "exit 3"],
        False,
        True,
        True,
        False,
    )
    assert opts.problem() is None
    assert ExecOptions(["ls"]).problem() == "you must specify at least 1 of stdin, stdout, stderr"
    assert negotiate(["v5.channel.k8s.io", "v4.channel.k8s.io"]) == "v5.channel.k8s.io"
    assert negotiate(["x", "v4.channel.k8s.io"]) == "v4.channel.k8s.io"
    assert negotiate(["base64.binary.k8s.io"]) is None
    assert negotiate([]) == ""
    status = exit_status(["sh", "-c", "exit 3"], 3)
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
