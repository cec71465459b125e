"""The process runtime's container fork server: starts, exit codes, signals, volumes, exec, recovery."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubelet.process_runtime import ProcessRuntime
from kubelet.runtime import ContainerConfig, ContainerState, Mount, SandboxConfig
from kubelet.zygote import Zygote, ZygoteProcess

pytestmark = pytest.mark.skipif(os.geteuid() != 0 and not Path("/proc/self/ns/user").exists(), reason="no namespaces")


@pytest.fixture(params=["root", "user"])
async def runtime(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[ProcessRuntime]:
    rt = ProcessRuntime(tmp_path / "kubelet", "10.250.0.0/24")
    await rt.start()
    if rt.mode == "none" or (request.param == "root" and rt.mode != "root"):
        pytest.skip(f"{request.param} mount namespaces are not available here")
    if rt.mode != request.param:  # root can run the user-namespace mode too
        rt.mode, rt.zygote = request.param, Zygote(request.param)
    yield rt
    await rt.shutdown(0)


def _cfg(argv: list[str], env: dict[str, str] | None = None, **kw: object) -> ContainerConfig:
    return ContainerConfig("c", "busybox", argv, env or {}, command=argv, **kw)  # type: ignore[arg-type]


async def _create(rt: ProcessRuntime, uid: str, config: ContainerConfig) -> str:
    await rt.run_pod_sandbox(SandboxConfig(uid, "default", uid))
    return await rt.create_container(uid, config)


async def _run(rt: ProcessRuntime, uid: str, config: ContainerConfig) -> str:
    cid = await _create(rt, uid, config)
    await rt.start_container(cid)
    return cid


async def _exited(rt: ProcessRuntime, cid: str, timeout: float = 10.0) -> None:
    await asyncio.wait_for(rt._containers[cid].exited.wait(), timeout)


async def _fds_once_exec_is_done(pid: int, timeout: float = 5.0) -> list[str]:
    """The process's open fds once its exec has finished. posix_spawn's vfork parent resumes when the child
    swaps in the new program's memory, a moment before the kernel closes the child's close-on-exec fds, so a
    listing right after the start can still show one; an fd that really leaked stays, and is seen at the end."""
    deadline = time.monotonic() + timeout
    while True:
        fds = sorted(await asyncio.to_thread(os.listdir, f"/proc/{pid}/fd"))
        if fds == ["0", "1", "2"] or time.monotonic() > deadline:
            return fds
        await asyncio.sleep(0.01)


def _log(rt: ProcessRuntime, cid: str) -> str:
    st = rt.container_status(cid)
    assert st is not None and st.log_path is not None
    return st.log_path.read_text()


async def test_container_starts_through_the_fork_server(runtime: ProcessRuntime, tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "hello").write_text("from the volume")
    script = 'cat /data/hello; echo " $GREETING $(pwd)"; ls -ld /tmp | cut -c1-10; echo oops >&2; exit 3'
    cid = await _run(
        runtime,
        "p1",
        _cfg(
            ["sh", "-c", script],
            {"GREETING": "hi"},
            working_dir="/work/zygote-wd",
            mounts=[Mount(vol, "/data")],
        ),
    )
    c = runtime._containers[cid]
    assert isinstance(c.proc, ZygoteProcess)
    assert runtime.zygote is not None and runtime.zygote.server_pid is not None
    await _exited(runtime, cid)
    st = runtime.container_status(cid)
    assert st is not None and st.exit_code == 3 and st.reason == "Error"
    log = _log(runtime, cid)
    assert " stdout F from the volume hi /work/zygote-wd\n" in log
    assert " stdout F drwxrwxrwt\n" in log
    assert " stderr F oops\n" in log
    assert not await asyncio.to_thread(
        os.path.exists, "/work/zygote-wd"
    )  # made in the container's root, not on the host


async def test_stop_signals_the_group_and_reports_the_signal(runtime: ProcessRuntime) -> None:
    script = "trap 'echo got TERM; exit 0' TERM; echo up; while true; do sleep 0.05; done"
    cid = await _run(runtime, "p2", _cfg(["sh", "-c", script], {}))
    deadline = time.monotonic() + 10
    while "stdout F up" not in _log(runtime, cid):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    await runtime.stop_container(cid, 5)
    st = runtime.container_status(cid)
    assert st is not None and st.state is ContainerState.EXITED and st.exit_code == 0
    assert "stdout F got TERM" in _log(runtime, cid)

    cid = await _run(runtime, "p3", _cfg(["sleep", "600"], {}))
    await runtime.stop_container(cid, 0)
    st = runtime.container_status(cid)
    assert st is not None and st.exit_code == 137


async def test_missing_command_and_stdin_and_exec(runtime: ProcessRuntime) -> None:
    cid = await _run(runtime, "p4", _cfg(["no-such-command-xyz"], {}))
    await _exited(runtime, cid)
    st = runtime.container_status(cid)
    assert st is not None and st.exit_code == 128
    assert 'exec: "no-such-command-xyz": executable file not found in $PATH' in _log(runtime, cid)

    cid = await _run(runtime, "p5", _cfg(["sh", "-c", "read x; echo got $x"], {}, stdin=True))
    pipe = await runtime.attach_stdin("default", "p5", "c")
    assert pipe is not None
    code, out = await runtime.exec_sync(cid, ["sh", "-c", "echo inside $POD_IP; ls -ld /tmp | cut -c1-10"], 10)
    assert code == 0 and out.startswith(b"inside 10.250.0.") and b"drwxrwxrwt" in out
    pipe.write(b"hello\n")
    await pipe.drain()
    await _exited(runtime, cid)
    assert "stdout F got hello" in _log(runtime, cid)


async def test_killed_fork_server_is_noticed_and_restarted(runtime: ProcessRuntime) -> None:
    cid = await _run(runtime, "p6", _cfg(["sleep", "600"], {}))
    zygote = runtime.zygote
    assert zygote is not None and zygote.server_pid is not None
    old_server = zygote.server_pid
    os.kill(old_server, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while zygote.server_pid is not None:
        assert time.monotonic() < deadline, "the runtime did not notice its fork server died"
        await asyncio.sleep(0.02)
    # its container still runs, and its end is still seen
    st = runtime.container_status(cid)
    assert st is not None and st.state is ContainerState.RUNNING
    # the next start brings up a new server
    cid2 = await _run(runtime, "p7", _cfg(["sh", "-c", "exit 7"], {}))
    assert isinstance(runtime._containers[cid2].proc, ZygoteProcess)
    assert zygote.server_pid not in (None, old_server)
    await _exited(runtime, cid2)
    st2 = runtime.container_status(cid2)
    assert st2 is not None and st2.exit_code == 7
    await runtime.stop_container(cid, 0)
    st = runtime.container_status(cid)
    assert st is not None and st.state is ContainerState.EXITED and st.exit_code == 137


async def test_container_has_default_sigpipe(runtime: ProcessRuntime) -> None:
    # Python ignores SIGPIPE and an ignored signal survives exec: a container must not inherit that
    cid = await _run(runtime, "p8", _cfg(["sh", "-c", "yes | head -n 1; grep SigIgn /proc/self/status"]))
    await _exited(runtime, cid)
    log = _log(runtime, cid)
    assert "Broken pipe" not in log
    ignored = int(log.split("SigIgn:")[1].split()[0], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1)), log
    # nor any other: not the SIGINT the server ignores, not glibc's internal signals posix_spawn ignores
    assert ignored == 0, log


async def test_container_gets_only_its_stdio_and_failed_starts_leave_the_server_as_it_was(
    runtime: ProcessRuntime, tmp_path: Path
) -> None:
    zygote = runtime.zygote
    assert zygote is not None
    cid = await _run(runtime, "f1", _cfg(["sleep", "600"]))
    pid = runtime._containers[cid].proc.pid  # type: ignore[union-attr]
    assert await _fds_once_exec_is_done(pid) == ["0", "1", "2"]
    await runtime.stop_container(cid, 0)
    server = zygote.server_pid
    assert server is not None

    def state() -> tuple[int, str, str, str]:
        proc = f"/proc/{server}"
        return (
            len(os.listdir(f"{proc}/fd")),
            os.readlink(f"{proc}/ns/mnt"),
            os.readlink(f"{proc}/root"),
            os.readlink(f"{proc}/cwd"),
        )

    before = await asyncio.to_thread(state)
    if runtime.mode == "root":  # the server starts containers from the kubelet's own namespace and root
        assert before[1:3] == (os.readlink("/proc/self/ns/mnt"), "/")
    # a volume whose source is gone, a command that is not there, a shadowed host dir, a working dir
    cid = await _run(runtime, "f2", _cfg(["true"], mounts=[Mount(tmp_path / "gone", "/data")]))
    await _exited(runtime, cid)
    st = runtime.container_status(cid)
    assert st is not None and st.exit_code == 128
    assert "tinykube: container setup failed: [Errno 2] No such file or directory" in _log(runtime, cid)
    cid = await _run(runtime, "f3", _cfg(["/no/such/binary"]))
    await _exited(runtime, cid)
    st = runtime.container_status(cid)
    assert st is not None and st.exit_code == 128
    assert 'exec: "/no/such/binary": executable file not found in $PATH' in _log(runtime, cid)
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "f").write_text("shadowed\n")
    target = f"/usr/share/tk-zygote-{os.getpid()}"
    cid = await _run(
        runtime,
        "f4",
        _cfg(
            ["sh", "-c", f"cat {target}/f; pwd; ls /usr/share | grep -c ."],
            mounts=[Mount(vol, target)],
            working_dir="/wd",
        ),
    )
    await _exited(runtime, cid)
    lines = [line.split(" ", 3)[3] for line in _log(runtime, cid).splitlines()]
    host_entries = len(await asyncio.to_thread(os.listdir, "/usr/share"))
    assert lines == ["shadowed", "/wd", str(host_entries + 1)]
    assert not await asyncio.to_thread(os.path.exists, target)
    assert zygote.server_pid == server
    assert await asyncio.to_thread(state) == before


async def test_many_quick_exits_are_all_reported(runtime: ProcessRuntime) -> None:
    # an exit can be read in the same batch as its start's answer, before the start has its process
    cids = [await _create(runtime, f"q{i}", _cfg(["sh", "-c", f"exit {i % 5}"])) for i in range(40)]
    await asyncio.gather(*(runtime._start_container(cid) for cid in cids))
    await asyncio.gather(*(_exited(runtime, cid) for cid in cids))
    for i, cid in enumerate(cids):
        st = runtime.container_status(cid)
        assert st is not None and st.exit_code == i % 5


async def test_start_falls_back_when_the_server_does_not_answer(runtime: ProcessRuntime) -> None:
    cid = await _run(runtime, "p9", _cfg(["sleep", "600"]))
    zygote = runtime.zygote
    assert zygote is not None and zygote.server_pid is not None
    stuck = zygote.server_pid
    zygote.timeout = 0.5
    os.kill(stuck, signal.SIGSTOP)
    try:
        # no hung start: the container starts the old way, with its volumes and exit code
        cid2 = await asyncio.wait_for(_run(runtime, "p10", _cfg(["sh", "-c", "ls -ld /tmp | cut -c1-10; exit 4"])), 5)
        assert not isinstance(runtime._containers[cid2].proc, ZygoteProcess)
        await _exited(runtime, cid2)
        st2 = runtime.container_status(cid2)
        assert st2 is not None and st2.exit_code == 4 and "stdout F drwxrwxrwt" in _log(runtime, cid2)
    finally:
        with contextlib.suppress(ProcessLookupError):  # given up on, it was killed
            os.kill(stuck, signal.SIGCONT)
    assert zygote.server_pid is None
    cid3 = await _run(runtime, "p11", _cfg(["true"]))
    assert isinstance(runtime._containers[cid3].proc, ZygoteProcess) and zygote.server_pid not in (None, stuck)
    await runtime.stop_container(cid, 0)  # started by the server that was given up on: still seen to end
    st = runtime.container_status(cid)
    assert st is not None and st.state is ContainerState.EXITED


async def test_shutdown_stops_containers_and_the_server(runtime: ProcessRuntime) -> None:
    cid = await _run(runtime, "p12", _cfg(["sleep", "600"]))
    zygote = runtime.zygote
    server = zygote.server_pid if zygote is not None else None
    assert zygote is not None and server is not None
    pid = runtime._containers[cid].proc.pid  # type: ignore[union-attr]
    await runtime.shutdown(0)
    st = runtime.container_status(cid)
    assert st is not None and st.state is ContainerState.EXITED and st.exit_code == 137
    assert zygote.server_pid is None
    for gone in (pid, server):
        assert not await asyncio.to_thread(os.path.exists, f"/proc/{gone}")


async def test_restarted_runtime_keeps_sandboxes_and_kills_what_was_left(
    runtime: ProcessRuntime, tmp_path: Path
) -> None:
    await runtime.run_pod_sandbox(SandboxConfig("keep", "ns", "keeper", hostname="keeper-host"))
    cid = await _run(runtime, "keep", _cfg(["sleep", "600"]))
    pid = runtime._containers[cid].proc.pid  # type: ignore[union-attr]
    await _run(runtime, "gone", _cfg(["true"]))
    await runtime.remove_pod_sandbox("gone")
    ip = runtime.sandbox("keep").ip  # type: ignore[union-attr]
    # one record file per kind, not one per pod or container
    root = tmp_path / "kubelet"
    assert sorted(f.name for f in (root / "pids").iterdir()) == ["containers"]
    assert not (root / "pods" / "keep" / "sandbox.json").exists()

    # a kubelet that died without stopping its containers, and the next one on the same root dir
    again = ProcessRuntime(root, "10.250.0.0/24")
    sb = again.sandbox("keep")
    assert sb is not None and (sb.namespace, sb.name, sb.ip, sb.hostname) == ("ns", "keeper", ip, "keeper-host")
    assert again.sandbox("gone") is None
    await again.start()
    await _exited(runtime, cid)  # killed by the new runtime: its process group was recorded
    st = runtime.container_status(cid)
    assert st is not None and st.exit_code == 137
    assert not await asyncio.to_thread(os.path.exists, f"/proc/{pid}")
    assert again.ipam.allocate("keep") == ip
    await again.shutdown(0)


async def test_records_of_the_file_per_record_layout_are_still_read(tmp_path: Path) -> None:
    root = tmp_path / "kubelet"
    (root / "pids").mkdir(parents=True)
    (root / "pods" / "old-uid" / "tmp").mkdir(parents=True)
    (root / "pods" / "old-uid" / "sandbox.json").write_text(
        '{"namespace": "ns", "name": "old", "ip": "10.250.0.7", "hostname": "old-host"}'
    )
    leftover = await asyncio.create_subprocess_exec("sleep", "600", start_new_session=True)
    ticks = (await asyncio.to_thread(Path(f"/proc/{leftover.pid}/stat").read_text)).rsplit(")", 1)[1].split()[19]
    (root / "pids" / "aaaa.json").write_text(f'{{"pid": {leftover.pid}, "start": "{ticks}", "pod": "old-uid"}}')
    # a recorded pid that is now another process (its start time differs): not killed
    (root / "pids" / "bbbb.json").write_text(f'{{"pid": {os.getpid()}, "start": "0", "pod": "old-uid"}}')
    rt = ProcessRuntime(root, "10.250.0.0/24")
    try:
        sb = rt.sandbox("old-uid")
        assert sb is not None and (sb.namespace, sb.name, sb.ip, sb.hostname) == ("ns", "old", "10.250.0.7", "old-host")
        await rt.start()
        assert await asyncio.wait_for(leftover.wait(), 10) == -signal.SIGKILL
        assert sorted(f.name for f in (root / "pids").iterdir()) == ["containers"]
        assert not (root / "pods" / "old-uid" / "sandbox.json").exists()  # folded into the journal
        assert ProcessRuntime(root, "10.250.0.0/24").sandbox("old-uid") == sb
    finally:
        with contextlib.suppress(ProcessLookupError):
            leftover.kill()
        await rt.shutdown(0)


async def test_logs_of_the_current_and_previous_instance_are_kept(runtime: ProcessRuntime) -> None:
    for attempt in range(4):
        cid = await _run(runtime, "logs", _cfg(["echo", f"attempt {attempt}"], attempt=attempt))
        await _exited(runtime, cid)
    log_dir = runtime.sandbox("logs").dir / "logs" / "c"  # type: ignore[union-attr]
    assert sorted(f.name for f in log_dir.iterdir()) == ["2.log", "3.log"]
    assert runtime.log_path("default", "logs", "c", previous=True) == log_dir / "2.log"
    assert (log_dir / "3.log").read_text().endswith(" stdout F attempt 3\n")
