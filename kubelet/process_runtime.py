"""The `process` runtime: each container is a local process group in its own mount namespace.

Containers are started by a fork server (kubelet/zygote.py, kubelet/preamble.py), one per runtime,
started with the first container: for each container it makes a new mount namespace (in a user
namespace mapping us to root when not root), builds there a tmpfs root mirroring the host's /, with
the pod's private /tmp and each volume at its mountPath, and spawns the command chrooted into it.
A container with a tty, an ephemeral container with a target, and any container while the server
cannot start start the old way, each with an interpreter of its own:
`unshare --mount --propagation private -- python -I -S -c PREAMBLE spec argv` (with `--user
--map-root-user` when not root), running the same code. When neither namespace mode works,
containers start plainly (volumes are not at their mountPath and /tmp is the host's; a warning is
logged once). stdout/stderr go to a
CRI-format log file per container instance. Pids are recorded under the root dir so a restarted
kubelet can kill what a previous run left behind, and sandboxes (name, IP, hostname) so it keeps them;
both as lines of a journal (kubelet/journal.py), not a file per record. Exec (probes, `kubectl exec`) enters the
container's mount namespace and root with nsenter, and so does an ephemeral container with a
`targetContainerName` (`kubectl debug --target`): it sees the target's filesystem. A container with
`stdin: true` reads a pipe the kubelet holds open; attaches write to it (`attach_stdin`), and for
`stdinOnce` the first attach's end closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubelet.ipam import IPAM
from kubelet.journal import Journal
from kubelet.preamble import PREAMBLE
from kubelet.runtime import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    CreateContainerError,
    Mount,
    Sandbox,
    SandboxConfig,
    notify_exit,
)
from kubelet.streaming_attach import PipeStdin
from kubelet.tty import TtyProcess, spawn_tty
from kubelet.zygote import Zygote, ZygoteProcess, ZygoteUnavailable

__all__ = ["ProcessRuntime", "cri_log_line", "rfc3339_nano"]

log = logging.getLogger("kubelet.runtime")

_READ_CHUNK = 64 * 1024
_MAX_LINE = 1024 * 1024
_PARTIAL_AFTER = 0.25
START_CONCURRENCY = 4  # containers being started at once
PIDS_JOURNAL = "containers"
"""In `pids/`: `<container id> {"pid": …, "start": …, "pod": …}` when it starts, `<container id>` at its exit."""
SANDBOXES_JOURNAL = "sandboxes"
"""In the root dir: `<pod uid> {"namespace": …, "name": …, "ip": …, "hostname": …}`, `<pod uid>` once removed
(earlier versions kept a `pods/<uid>/sandbox.json`, and a `pids/<container id>.json`: read and folded in)."""


def rfc3339_nano(ns: int) -> str:
    """Nanoseconds since the epoch as Go's RFC3339Nano prints them in UTC (trailing zeros trimmed)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def cri_log_line(stream: str, line: bytes, now_ns: int | None = None, tag: str = "F") -> bytes:
    """One CRI log line: `<RFC3339Nano UTC> <stream> <F|P> <text>\\n` (P: the line continues in the next record)."""
    ts = rfc3339_nano(time.time_ns() if now_ns is None else now_ns)
    return f"{ts} {stream} {tag} ".encode() + line + b"\n"


def _mkdir_new(d: Path) -> bool:
    """Make the directory `d` (and its parents when missing); False when it existed already."""
    try:
        os.mkdir(d)
    except FileExistsError:
        return False
    except FileNotFoundError:
        d.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(d)
    return True


def _make_sandbox_dir(d: Path) -> None:
    # only what every pod needs: each file or directory made costs 0.1-0.4 ms of CPU on this machine's ext4;
    # volumes/ is made by the volume manager for the pods that have volumes
    _mkdir_new(d)
    _mkdir_new(d / "tmp")
    os.chmod(d / "tmp", 0o1777)
    _mkdir_new(d / "logs")


def _proc_start_ticks(pid: int) -> str:
    try:  # os.read: a start per container, and Path.read_text's text layer costs more than the read itself
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        stat = os.read(fd, 4096)
    except OSError:
        return ""
    finally:
        os.close(fd)
    return stat.rsplit(b")", 1)[1].split()[19].decode()


@dataclass
class _Container:
    status: ContainerStatus
    config: ContainerConfig
    proc: asyncio.subprocess.Process | TtyProcess | ZygoteProcess | None = None
    waiter: asyncio.Task[None] | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)


class ProcessRuntime:
    """Sandboxes as directories + an IP from the pod CIDR; containers as process groups."""

    runtime_type = "process"
    pulls_images = False

    def __init__(self, root_dir: Path, pod_cidr: str, base_env: dict[str, str] | None = None) -> None:
        self.root = root_dir
        self.pods_dir = root_dir / "pods"
        self.pids_dir = root_dir / "pids"
        # where each container's root is built: a mount point only, shared, as every container mounts its own
        # tmpfs there in its own (private) mount namespace
        self.rootfs_dir = root_dir / "rootfs"
        for d in (self.pods_dir, self.pids_dir, self.rootfs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.ipam = IPAM(pod_cidr, root_dir / "ipam")
        self.base_env = base_env if base_env is not None else _default_base_env()
        self.mode = "none"
        self._sandboxes: dict[str, Sandbox] = {}
        self._containers: dict[str, _Container] = {}
        self._callbacks: list[Callable[[str, str], None]] = []
        self._start_slots = asyncio.Semaphore(START_CONCURRENCY)
        self.zygote: Zygote | None = None  # the fork server, once the namespace mode is known
        self._pids = Journal(self.pids_dir / PIDS_JOURNAL)
        self._sandbox_records = self._load_sandboxes()

    # --- setup ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Kill what a previous run left, and find out which mount-namespace mode works here."""
        await self.kill_leftovers()
        self.mode = await self._detect_mode()
        if self.mode == "none":
            log.warning("cannot create mount namespaces (unshare failed): volumes are not mounted at their mountPath")
        else:
            log.info("containers run in private mount namespaces (%s mode)", self.mode)
            self.zygote = Zygote(self.mode)

    async def _detect_mode(self) -> str:
        if not shutil.which("unshare"):
            return "none"
        candidates = ["root", "user"] if os.geteuid() == 0 else ["user"]
        for mode in candidates:
            argv = [*self._unshare(mode), "true"]
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
                )
                if await asyncio.wait_for(proc.wait(), 5) == 0:
                    return mode
            except (OSError, TimeoutError):
                continue
        return "none"

    @staticmethod
    def _unshare(mode: str) -> list[str]:
        if mode == "root":
            return ["unshare", "--mount", "--propagation", "private", "--"]
        return ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private", "--"]

    async def kill_leftovers(self) -> None:
        """SIGKILL the process groups a previous kubelet recorded (if they are still those processes)."""
        records = list(self._pids.entries.values())
        legacy = list(self.pids_dir.glob("*.json"))
        for f in legacy:
            with contextlib.suppress(OSError):
                records.append(f.read_text())
        for text in records:
            try:
                rec = json.loads(text)
                pid = int(rec["pid"])
            except (ValueError, KeyError, TypeError):
                continue
            if _proc_start_ticks(pid) == rec.get("start"):
                log.info("killing leftover container process group %d", pid)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        if records:
            self._pids.entries.clear()
            self._pids.compact()
        for f in legacy:
            f.unlink(missing_ok=True)

    def _load_sandboxes(self) -> Journal:
        """The sandboxes a previous kubelet made (those whose directory is still there), and their journal."""
        legacy: dict[str, str] = {}
        legacy_files = []
        for d in self.pods_dir.iterdir():
            f = d / "sandbox.json"
            try:
                legacy[d.name] = json.dumps(json.loads(f.read_text()))  # one line, whatever it was
            except (OSError, ValueError):
                continue
            legacy_files.append(f)
        records = Journal(self.root / SANDBOXES_JOURNAL, legacy)
        for uid, text in list(records.entries.items()):
            d = self.pods_dir / uid
            try:
                rec = json.loads(text)
                sb = Sandbox(uid, rec["namespace"], rec["name"], rec["ip"], d, rec.get("hostname", ""))
            except (ValueError, KeyError, TypeError):
                sb = None
            if sb is None or not d.is_dir():
                records.delete(uid)
                continue
            self._sandboxes[uid] = sb
        for f in legacy_files:  # folded into the journal, which the Journal rewrote with them
            f.unlink(missing_ok=True)
        return records

    def on_exit(self, callback: Callable[[str, str], None]) -> None:
        """Call `callback(pod_uid, container_id)` when a container exits."""
        self._callbacks.append(callback)

    async def image_present(self, image: str) -> bool:
        """Images are only recorded: every one counts as present."""
        return True

    async def pull_image(self, image: str) -> int:
        """Nothing to pull."""
        return 0

    # --- sandboxes -----------------------------------------------------------------------

    async def run_pod_sandbox(self, config: SandboxConfig) -> Sandbox:
        """Create (or return) the pod's sandbox: IP, volumes/, tmp/, logs/."""
        if sb := self._sandboxes.get(config.uid):
            return sb
        d = self.pods_dir / config.uid
        ip = config.host_ip or self.ipam.allocate(config.uid)
        rec = {"namespace": config.namespace, "name": config.name, "ip": ip, "hostname": config.hostname}
        # on the event loop: a few small file-system calls cost less than a trip through a thread (its hand-over
        # of the GIL was 5-10 % of the kubelet's CPU in a burst)
        _make_sandbox_dir(d)
        self._sandbox_records.set(config.uid, json.dumps(rec))
        sb = Sandbox(config.uid, config.namespace, config.name, ip, d, config.hostname)
        self._sandboxes[config.uid] = sb
        return sb

    def sandbox(self, uid: str) -> Sandbox | None:
        """The pod's sandbox, if it exists."""
        return self._sandboxes.get(uid)

    def sandbox_ready(self, uid: str) -> bool:
        """A sandbox here is a directory and an address: ready once made."""
        return uid in self._sandboxes

    def sandboxes(self) -> list[Sandbox]:
        """Every sandbox."""
        return list(self._sandboxes.values())

    async def stop_pod_sandbox(self, uid: str, grace: float) -> None:
        """Stop every container of the pod (in parallel)."""
        ids = [cid for cid, c in self._containers.items() if c.status.pod_uid == uid]
        await asyncio.gather(*(self.stop_container(cid, grace) for cid in ids))

    async def remove_pod_sandbox(self, uid: str) -> None:
        """Stop what still runs, free the IP and remove the pod's directories."""
        await self.stop_pod_sandbox(uid, 0)
        for cid in [cid for cid, c in self._containers.items() if c.status.pod_uid == uid]:
            self._containers.pop(cid, None)
        self.ipam.release(uid)
        self._sandboxes.pop(uid, None)
        self._sandbox_records.delete(uid)
        d = self.pods_dir / uid
        if d.exists():
            await asyncio.to_thread(_remove_tree, d)

    # --- containers ----------------------------------------------------------------------

    async def create_container(self, uid: str, config: ContainerConfig) -> str:
        """Register a container (its log file is `logs/<name>/<attempt>.log`); returns its id."""
        sb = self._sandboxes.get(uid)
        if sb is None:
            raise LookupError(f"no sandbox for pod {uid}")
        if not config.command and not config.args:
            # no image is pulled, so there is no ENTRYPOINT/CMD to fall back on; args alone run as they
            # would in an image without ENTRYPOINT (kubectl run x --image=busybox -- sleep 60)
            raise CreateContainerError(f"the process runtime needs a command for image {config.image}")
        cid = secrets.token_hex(32)
        log_dir = sb.dir / "logs" / config.name
        path = log_dir / f"{config.attempt}.log"
        if not _mkdir_new(log_dir):  # made now, it is empty: nothing to prune
            # keep the current and the previous instance's logs, as the kubelet does
            for old in sorted(log_dir.glob("*.log"), key=lambda p: _attempt_of(p)):
                if _attempt_of(old) < config.attempt - 1:
                    old.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        status = ContainerStatus(
            id=cid,
            pod_uid=uid,
            name=config.name,
            image=config.image,
            attempt=config.attempt,
            state=ContainerState.CREATED,
            created_at=time.time(),
            log_path=path,
        )
        self._containers[cid] = _Container(status, config)
        return cid

    def _spec(self, sb: Sandbox, config: ContainerConfig, ready_fd: int | None = None) -> dict[str, Any]:
        mounts = [Mount(sb.dir / "tmp", "/tmp"), *sorted(config.mounts, key=lambda m: m.target.count("/"))]
        return {
            "root": str(self.rootfs_dir),
            "mounts": [{"source": str(m.source), "target": m.target, "readOnly": m.read_only} for m in mounts],
            "workingDir": config.working_dir,
            "readyFd": ready_fd,
        }

    def _argv(self, sb: Sandbox, config: ContainerConfig, ready_fd: int | None = None) -> list[str]:
        if self.mode == "none":
            return list(config.argv)
        spec = json.dumps(self._spec(sb, config, ready_fd))
        return [*self._unshare(self.mode), sys.executable, "-I", "-S", "-c", PREAMBLE, spec, *config.argv]

    def _env(self, config: ContainerConfig, sb: Sandbox) -> dict[str, str]:
        # containers share the host's network: POD_IP tells a server which address is its own
        return {**self.base_env, "HOSTNAME": sb.hostname or sb.name, "POD_IP": sb.ip, **config.env}

    async def start_container(self, container_id: str) -> None:
        """Start the process group; a command that cannot run leaves the container exited with 128."""
        # starting is CPU work (a fork builds the container's root with its mounts): a few at a time, in order,
        # so that in a burst the first containers run early instead of every one of them late
        async with self._start_slots:
            await self._start_container(container_id)

    async def _start_container(self, container_id: str) -> None:
        c = self._containers[container_id]
        sb = self._sandboxes[c.status.pod_uid]
        log_file = _open_log(c.status.log_path)
        target = self._target(c)
        ready_r = ready_w = -1
        env = self._env(c.config, sb)
        try:
            proc: asyncio.subprocess.Process | TtyProcess | ZygoteProcess | None = None
            if self.zygote is not None and target is None and not c.config.tty:
                try:
                    # no ready pipe: the server answers once the container has exec'd in its root
                    spec = self._spec(sb, c.config)
                    proc = await self.zygote.spawn(spec, list(c.config.argv), env, c.config.stdin, None)
                except ZygoteUnavailable as e:
                    log.debug("starting container %s without the fork server: %s", c.config.name, e)
            if proc is None:
                if self.mode != "none" and target is None:
                    ready_r, ready_w = os.pipe()
                proc = await self._spawn_container(c, sb, target, env, ready_w)
        except OSError as e:
            for fd in (ready_r, ready_w):
                if fd >= 0:
                    os.close(fd)
            now = time.time()
            msg = f'exec: "{c.config.argv[0] if c.config.argv else ""}": {e.strerror}'
            log_file.write(cri_log_line("stderr", msg.encode()))
            log_file.close()
            c.status.state = ContainerState.EXITED
            c.status.started_at = c.status.finished_at = now
            c.status.exit_code, c.status.reason, c.status.message = 128, "StartError", msg
            c.exited.set()
            self._notify(c)
            return
        if ready_w >= 0:
            os.close(ready_w)
            await _wait_readable(ready_r, 10.0)
            os.close(ready_r)
        c.proc = proc
        c.status.pid = proc.pid
        c.status.state = ContainerState.RUNNING
        c.status.started_at = time.time()
        rec = {"pid": proc.pid, "start": _proc_start_ticks(proc.pid), "pod": c.status.pod_uid}
        self._pids.set(container_id, json.dumps(rec))
        c.waiter = asyncio.create_task(self._wait(container_id, c, proc, log_file), name=f"container {c.config.name}")

    async def _spawn_container(
        self, c: _Container, sb: Sandbox, target: _Container | None, env: dict[str, str], ready_w: int
    ) -> asyncio.subprocess.Process | TtyProcess:
        """Start the container with an interpreter of its own (or through nsenter into its target)."""
        if target is not None:
            # an ephemeral container with a target shares the target's mount namespace and root
            argv = [*self._enter(target), *c.config.argv]
        else:
            argv = self._argv(sb, c.config, ready_w if ready_w >= 0 else None)
        pass_fds = (ready_w,) if ready_w >= 0 else ()
        cwd = self._cwd(c)
        if c.config.tty:  # stdin, stdout and stderr are one terminal, in a session of its own
            return await spawn_tty(argv, env, cwd, pass_fds)
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if c.config.stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
            limit=_MAX_LINE,
            pass_fds=pass_fds,
        )

    async def _wait(
        self,
        container_id: str,
        c: _Container,
        proc: asyncio.subprocess.Process | TtyProcess | ZygoteProcess,
        log_file: object,
    ) -> None:
        assert proc.stdout is not None
        streams = [(proc.stdout, "stdout"), *([(proc.stderr, "stderr")] if proc.stderr is not None else [])]
        readers = [asyncio.create_task(_pump(stream, name, log_file)) for stream, name in streams]
        try:
            code = await proc.wait()
            if not isinstance(proc, TtyProcess) and proc.stdin is not None:
                proc.stdin.close()
            # the main process is gone: the rest of its group goes too (as when a pid namespace ends)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*readers, return_exceptions=True), 2.0)
        finally:
            for r in readers:
                r.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*readers, return_exceptions=True)
            if isinstance(proc, TtyProcess | ZygoteProcess):
                proc.close()  # the terminal or the pipes, once what they held is in the log
            log_file.close()  # type: ignore[attr-defined]
            self._pids.delete(container_id)
        c.status.state = ContainerState.EXITED
        c.status.finished_at = time.time()
        c.status.exit_code = code if code >= 0 else 128 - code
        c.status.reason = "Completed" if code == 0 else "Error"
        c.exited.set()
        self._notify(c)

    def _notify(self, c: _Container) -> None:
        notify_exit(self._callbacks, c.status.pod_uid, c.status.id)

    async def stop_container(self, container_id: str, grace: float) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds; returns once it has exited."""
        c = self._containers.get(container_id)
        if c is None or c.proc is None or c.exited.is_set():
            return
        pid = c.proc.pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        try:
            await asyncio.wait_for(c.exited.wait(), max(grace, 0.0) or 0.001)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(c.exited.wait(), 10)

    async def remove_container(self, container_id: str) -> None:
        """Forget an exited container."""
        await self.stop_container(container_id, 0)
        self._containers.pop(container_id, None)

    def container_status(self, container_id: str) -> ContainerStatus | None:
        """The container's status."""
        c = self._containers.get(container_id)
        return c.status if c else None

    def list_containers(self, uid: str) -> list[ContainerStatus]:
        """Every container of a pod, oldest first."""
        return sorted(
            (c.status for c in self._containers.values() if c.status.pod_uid == uid),
            key=lambda s: s.created_at,
        )

    def _target(self, c: _Container) -> _Container | None:
        """The running container an ephemeral container targets (None: none, or it is not running)."""
        if not c.config.target_container or self.mode == "none":
            return None
        for other in self._containers.values():
            same = other.status.pod_uid == c.status.pod_uid and other.status.name == c.config.target_container
            if same and other.status.state is ContainerState.RUNNING and other.proc is not None:
                return other
        return None

    # --- exec ------------------------------------------------------------------------------

    def _enter(self, c: _Container) -> list[str]:
        if self.mode == "none" or c.proc is None:
            return []
        pid = str(c.proc.pid)
        if self.mode == "root":
            return ["nsenter", "-t", pid, "-m", "-r", "-w", "--"]
        return ["nsenter", "-t", pid, "-U", "-m", "-r", "-w", "--preserve-credentials", "--"]

    def _cwd(self, c: _Container) -> str | None:
        wd = c.config.working_dir
        return wd if self.mode == "none" and wd and os.path.isdir(wd) else None

    async def _spawn(
        self, c: _Container, command: list[str], stdin: int | None, merge: bool
    ) -> asyncio.subprocess.Process:
        sb = self._sandboxes[c.status.pod_uid]
        cwd = self._cwd(c)
        return await asyncio.create_subprocess_exec(
            *self._enter(c),
            *command,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT if merge else asyncio.subprocess.PIPE,
            env=self._env(c.config, sb),
            cwd=cwd,
            start_new_session=True,
        )

    async def exec_sync(self, container_id: str, command: list[str], timeout: float) -> tuple[int, bytes]:
        """Run `command` in the container; (exit code, stdout+stderr). TimeoutError past `timeout`."""
        c = self._containers.get(container_id)
        if c is None or c.status.state is not ContainerState.RUNNING:
            raise LookupError("container is not running")
        try:
            proc = await self._spawn(c, command, asyncio.subprocess.DEVNULL, merge=True)
        except OSError as e:
            return 126, f"exec: {e.strerror}".encode()
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except (TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
            raise
        code = proc.returncode if proc.returncode is not None else 1
        return (code if code >= 0 else 128 - code), out

    # --- streaming (logs, exec) --------------------------------------------------------------

    def _find(self, namespace: str, pod: str, container: str) -> list[_Container]:
        uids = {sb.uid for sb in self._sandboxes.values() if sb.namespace == namespace and sb.name == pod}
        found = [c for c in self._containers.values() if c.status.pod_uid in uids and c.status.name == container]
        return sorted(found, key=lambda c: c.status.created_at)

    def log_path(self, namespace: str, pod: str, container: str, previous: bool = False) -> Path | None:
        """The CRI log file of the container's current (or previous) instance."""
        found = self._find(namespace, pod, container)
        if found:
            cur = found[-1].status.attempt
            want = cur - 1 if previous else cur
            path = found[-1].status.log_path
            if path is not None:
                p = path.parent / f"{want}.log"
                return p if want >= 0 and p.exists() else None
        return None

    async def exec_process(
        self, namespace: str, pod: str, container: str, command: list[str], tty: bool = False
    ) -> asyncio.subprocess.Process | TtyProcess:
        """Start `command` in the container's mount namespace with its env and workingDir; stdio = PIPE,
        or one pseudo-terminal with `tty`."""
        found = self._find(namespace, pod, container)
        if not found or found[-1].status.state is not ContainerState.RUNNING:
            raise LookupError(f"container {container} is not running in pod {namespace}/{pod}")
        c = found[-1]
        if tty:
            return await spawn_tty(
                [*self._enter(c), *command], self._env(c.config, self._sandboxes[c.status.pod_uid]), self._cwd(c)
            )
        return await self._spawn(c, command, asyncio.subprocess.PIPE, merge=False)

    async def attach_stdin(self, namespace: str, pod: str, container: str) -> PipeStdin | None:
        """A handle on the running container's stdin when it has `stdin: true` (None when not);
        LookupError when it is not running."""
        found = self._find(namespace, pod, container)
        if not found or found[-1].status.state is not ContainerState.RUNNING or found[-1].proc is None:
            raise LookupError(f"container {container} is not running in pod {namespace}/{pod}")
        c = found[-1]
        pipe = c.proc.stdin if c.proc is not None else None
        if not c.config.stdin or pipe is None:
            return None
        resize = c.proc.resize if isinstance(c.proc, TtyProcess) else None
        return PipeStdin(pipe, c.config.stdin_once, resize)

    # --- shutdown ----------------------------------------------------------------------------

    async def shutdown(self, grace: float) -> None:
        """Stop every container (the kubelet exits)."""
        await asyncio.gather(*(self.stop_container(cid, grace) for cid in list(self._containers)))
        if self.zygote is not None:
            await self.zygote.close()


async def _wait_readable(fd: int, timeout: float) -> None:
    """Wait until `fd` has data or EOF (the preamble's ready signal), at most `timeout` seconds."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    loop.add_reader(fd, lambda: done.done() or done.set_result(None))
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done, timeout)
    finally:
        loop.remove_reader(fd)


def _attempt_of(p: Path) -> int:
    try:
        return int(p.stem)
    except ValueError:
        return -1


async def _pump(stream: asyncio.StreamReader, name: str, out: object) -> None:
    """Copy a pipe into the CRI log, one record per line."""
    pending = b""
    while True:
        if pending:
            # a line without its newline yet: publish it as a partial (P) record once output pauses
            try:
                chunk = await asyncio.wait_for(stream.read(_READ_CHUNK), _PARTIAL_AFTER)
            except TimeoutError:
                out.write(cri_log_line(name, pending, tag="P"))  # type: ignore[attr-defined]
                out.flush()  # type: ignore[attr-defined]
                pending = b""
                continue
        else:
            chunk = await stream.read(_READ_CHUNK)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if len(pending) > _MAX_LINE:
            lines.append(pending)
            pending = b""
        if lines:
            out.write(b"".join(cri_log_line(name, line) for line in lines))  # type: ignore[attr-defined]
            out.flush()  # type: ignore[attr-defined]
    if pending:
        out.write(cri_log_line(name, pending))  # type: ignore[attr-defined]
        out.flush()  # type: ignore[attr-defined]


def _open_log(path: Path | None) -> Any:
    """The container's log file, opened for appending (closed by the exit waiter)."""
    return open(path or os.devnull, "ab")


def _remove_tree(d: Path) -> None:
    shutil.rmtree(d, ignore_errors=True)


def _default_base_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
    }
