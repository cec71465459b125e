"""What starts every container process: its root, its mount namespace, the server that spawns it.

`setup_root` builds the container's root on a tmpfs (`<pod dir>/root`): every top-level entry of
the host's / is bind-mounted into it, /tmp is the pod's private tmp dir, and each volume is
bind-mounted at its mountPath. A mountPath whose directory does not exist is created in the tmpfs;
when its parent is a host directory, that directory is first "shadowed" (a tmpfs over it, with each
of the host entries bound back in), so nothing is ever created on the host and an unprivileged user
namespace works too. Then it chroots and changes directory; `exec_command` execs the command.
Volume sources are opened before anything is mounted, so a root dir under /tmp stays reachable.

This module runs outside the kubelet, in a fresh `python -I -S` (stdlib only, no package imports),
in one of two ways:

* `PREAMBLE` (`python -I -S -c PREAMBLE <json spec> <argv...>`, under `unshare --mount`, the module's
  source): one interpreter per container; it builds the root and execs.
* `ZYGOTE` (`python -I -S -c ZYGOTE <socket fd> <mode>`, which imports this module, from its cached
  bytecode, and runs `_zygote_main`): the container start server, one per kubelet runtime (the "fork
  server", though it no longer forks Python). It reads start requests (marshal, as are its answers:
  both ends are the same Python; the container's stdio and ready fds as SCM_RIGHTS) on a
  SOCK_SEQPACKET socket. For each, the server itself enters a new mount namespace
  (`unshare(CLONE_NEWNS)`), makes / private, builds the root there and chroots into it, spawns the
  command with posix_spawn (a vfork and an exec in a new session, every signal at its default, PATH
  searched as execvpe does), and goes back to its own namespace, root and working directory (`setns`
  and a saved root); the container keeps the namespace and the root. It then writes the ready fd and
  answers `{"id", "pid"}`. A start that fails (setup, or no such command) is answered with the pid of
  a child that writes why to the container's stderr and exits 128, as a container that failed on its
  own did. (Forking the server's Python for each container cost three times as much CPU: its pages
  copied on write in the child, the copy torn down again at exec.) In "user" mode the server first
  makes a user namespace (the kubelet's uid and gid mapped to root, as `unshare --map-root-user`) and
  a mount namespace of its own there, which its containers share. The server is the parent: it reaps
  and reports `{"exit": pid, "code"}` (a negative code: killed by that signal). It exits when the
  socket closes.
"""

from __future__ import annotations

import ctypes
import os
import stat
import sys

__all__ = ["PREAMBLE", "ZYGOTE", "exec_command", "setup_root"]

MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
_libc = ctypes.CDLL(None, use_errno=True)


def _mount(src: str | None, dst: str, flags: int, fstype: str | None = None, data: str | None = None) -> None:
    s = src.encode() if src else None
    ft = fstype.encode() if fstype else None
    dt = data.encode() if data else None
    _errno_check(_libc.mount(s, dst.encode(), ft, flags, dt), dst)


def _errno_check(rc: int, what: str) -> None:
    """A libc call's errno as an OSError when it returned non-zero."""
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), what)


def _bind_entry(src: str, dst: str) -> None:
    # bind one directory entry (dir, file or symlink) from src to a fresh dst in a tmpfs
    st = os.lstat(src)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISDIR(st.st_mode):
        os.mkdir(dst, 0o755)
        _mount(src, dst, MS_BIND | MS_REC)
    else:
        open(dst, "a").close()
        _mount(src, dst, MS_BIND | MS_REC)


def _fail(msg: str) -> None:
    # os._exit: in a fork of the server nothing of the server's may run (no atexit, no unwinding)
    os.write(2, msg.encode())
    os._exit(128)


def setup_root(spec: dict) -> None:  # type: ignore[type-arg]
    """Build the container's root as the module docstring says, chroot into it and enter workingDir."""
    root = spec["root"]
    opened = []
    try:
        for m in spec["mounts"]:
            is_dir = os.path.isdir(m["source"])
            opened.append((m, os.open(m["source"], os.O_PATH), is_dir))
        _build_root(spec, root, opened)
    finally:  # the fork server builds roots in its own process: it must not keep these
        for _m, fd, _is_dir in opened:
            os.close(fd)
    ready = spec.get("readyFd")
    if ready is not None:  # tell the kubelet the container's view is complete (exec and hooks may enter it)
        os.write(ready, b"1")
        os.close(ready)


def _build_root(spec: dict, root: str, opened: list) -> None:  # type: ignore[type-arg]
    _mount("tmpfs", root, 0, "tmpfs", "mode=755")
    owned = {"/"}
    for name in os.listdir("/"):
        if name == "tmp":
            os.mkdir(os.path.join(root, name), 0o1777)
        else:
            _bind_entry("/" + name, os.path.join(root, name))

    def shadow(path: str) -> None:
        # replace host dir `path` (in the container's view) by a tmpfs holding binds of its entries
        fd = os.open(root + path, os.O_PATH)
        try:
            st = os.stat(root + path)
            _mount("tmpfs", root + path, 0, "tmpfs", f"mode={st.st_mode & 0o7777:o}")
            base = f"/proc/self/fd/{fd}"
            for name in os.listdir(base):
                _bind_entry(base + "/" + name, root + path + "/" + name)
        finally:
            os.close(fd)
        owned.add(path)

    def ensure(target: str, is_dir: bool) -> str:
        parts = [p for p in target.split("/") if p]
        cur = "/"
        for i, part in enumerate(parts):
            nxt = cur.rstrip("/") + "/" + part
            last = i == len(parts) - 1
            if not os.path.lexists(root + nxt):
                if cur not in owned:
                    shadow(cur)
                if last and not is_dir:
                    open(root + nxt, "a").close()
                else:
                    os.mkdir(root + nxt, 0o755)
                owned.add(nxt)
            elif os.path.islink(root + nxt):
                dest = os.readlink(root + nxt)
                rest = "/".join(parts[i + 1 :])
                base = dest if dest.startswith("/") else os.path.normpath(cur + "/" + dest)
                return ensure(base.rstrip("/") + ("/" + rest if rest else ""), is_dir)
            cur = nxt
        return cur

    mounts = []
    for m, fd, is_dir in opened:
        mounts.append((ensure(os.path.normpath("/" + m["target"]), is_dir), m, fd, is_dir))
    for target, m, fd, is_dir in mounts:
        if not os.path.lexists(root + target):
            # an earlier mount (a volume at a parent path) hid the mount point: make it there, as runc does
            if is_dir:
                os.makedirs(root + target, 0o755, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(root + target), 0o755, exist_ok=True)
                open(root + target, "a").close()
        _mount(f"/proc/self/fd/{fd}", root + target, MS_BIND | MS_REC)
        if m.get("readOnly"):
            _mount("none", root + target, MS_REMOUNT | MS_BIND | MS_RDONLY)
    wd = os.path.normpath("/" + (spec.get("workingDir") or "/"))
    if wd != "/":
        ensure(wd, True)
    os.chroot(root)
    os.chdir(wd)


def exec_command(argv: list[str], env: dict[str, str] | None = None) -> None:
    """Exec `argv` (searched on the env's PATH) with default signal dispositions; exit 128 when it cannot."""
    import signal

    # Python ignores these at start-up, and ignored signals survive exec
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    try:
        if env is None:
            os.execvp(argv[0], argv)
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        _fail(_exec_failure(argv[0], e))


def _exec_failure(command: str, e: OSError) -> str:
    """What a container that could not exec its command writes to its stderr."""
    why = "executable file not found in $PATH" if e.errno == 2 else e.strerror
    return f'exec: "{command}": {why}\n'


def _preamble_main() -> None:
    try:
        import json

        setup_root(json.loads(sys.argv[1]))
    except OSError as e:
        _fail(f"tinykube: container setup failed: {e}\n")
    exec_command(sys.argv[2:])


def _zygote_start(req: dict, fds: list[int], home: tuple[int, int, int], devnull: int, spawner: _Spawner) -> int:  # type: ignore[type-arg]
    """Start one container from the server itself; its pid (a child that reports the failure, when it fails).

    The server enters a new mount namespace, builds the root there, chroots, spawns the command with
    posix_spawn (vfork + exec: no copy of the server's memory, none of its pages to fault in) and goes
    back home; the container keeps the namespace and the root.
    """
    n_in = 1 if req.get("stdin") else 0
    stdio = [fds[0] if n_in else devnull, fds[n_in], fds[n_in + 1]]
    ready = fds[n_in + 2] if len(fds) > n_in + 2 else None
    argv = req["argv"]
    try:
        try:
            _unshare(CLONE_NEWNS)
            _mount("none", "/", MS_REC | MS_PRIVATE)
            setup_root({**req["spec"], "readyFd": None})
        except OSError as e:
            return _failed(stdio[2], f"tinykube: container setup failed: {e}\n")
        try:
            pid = _spawn(spawner, argv, req["env"], stdio)
        except OSError as e:
            return _failed(stdio[2], _exec_failure(argv[0], e))
    except Exception as e:  # a bad request: reported by its container, the server goes on
        return _failed(stdio[2], f"tinykube: container setup failed: {e!r}\n")
    finally:
        _go_home(home)
    if ready is not None:  # the container has exec'd in its root: exec and hooks may enter it
        os.write(ready, b"1")
    return pid


class _Spawner:
    """posix_spawn through libc: a vfork and an exec, in a session of its own, every signal at its default.

    Not os.posix_spawn: glibc leaves its two internal signals (32, 33) ignored in the child, and an
    ignored signal survives exec; only a default-signals set that names them undoes that, and
    sigaddset (so os.posix_spawn's setsigdef) refuses them. The set here is built by hand.
    """

    SETSIGDEF, SETSID = 0x04, 0x80

    def __init__(self) -> None:
        self.attr = ctypes.create_string_buffer(1024)  # posix_spawnattr_t (336 bytes in glibc)
        _check(_libc.posix_spawnattr_init(self.attr), "posix_spawnattr_init")
        every = ctypes.create_string_buffer(b"\xff" * 8, 128)  # a sigset_t of signals 1-64
        _check(_libc.posix_spawnattr_setsigdefault(self.attr, every), "posix_spawnattr_setsigdefault")
        _check(_libc.posix_spawnattr_setflags(self.attr, ctypes.c_short(self.SETSIGDEF | self.SETSID)), "setflags")

    def spawn(self, path: bytes, argv: list[bytes], envp: list[bytes], stdio: list[int]) -> int:
        """Spawn `path` with `stdio` as its fds 0-2; OSError when it cannot be executed."""
        actions = ctypes.create_string_buffer(256)  # posix_spawn_file_actions_t (80 bytes in glibc)
        _check(_libc.posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init")
        try:
            for i, fd in enumerate(stdio):
                _check(_libc.posix_spawn_file_actions_adddup2(actions, fd, i), "adddup2")
            pid = ctypes.c_int()
            argv_c = (ctypes.c_char_p * (len(argv) + 1))(*argv, None)
            envp_c = (ctypes.c_char_p * (len(envp) + 1))(*envp, None)
            err = _libc.posix_spawn(ctypes.byref(pid), path, actions, self.attr, argv_c, envp_c)
        finally:
            _libc.posix_spawn_file_actions_destroy(actions)
        if err:
            raise OSError(err, os.strerror(err), os.fsdecode(path))
        return pid.value


def _check(err: int, what: str) -> None:
    if err:
        raise OSError(err, os.strerror(err), what)


def _spawn(spawner: _Spawner, argv: list[str], env: dict[str, str], stdio: list[int]) -> int:
    """Spawn `argv`, searching the env's PATH as os.execvpe does."""
    args = [os.fsencode(a) for a in argv]
    envp = [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()]
    if any(b"\0" in a for a in (*args, *envp)) or any("=" in k for k in env):
        raise ValueError("embedded null byte, or '=' in a variable's name")
    file = args[0]
    if b"/" in file:
        return spawner.spawn(file, args, envp, stdio)
    path = env.get("PATH")
    saved: OSError | None = None
    last: OSError = FileNotFoundError(2, "No such file or directory", argv[0])
    for d in os.fsencode(os.defpath if path is None else path).split(b":"):
        full = os.path.join(d, file)
        try:  # skip what is not there without a spawn (a failed one is a vfork)
            os.stat(full)
        except (FileNotFoundError, NotADirectoryError) as e:
            last = e
            continue
        except OSError:
            pass
        try:
            return spawner.spawn(full, args, envp, stdio)
        except (FileNotFoundError, NotADirectoryError) as e:
            last = e
        except OSError as e:
            last = e
            saved = saved or e
    raise saved or last


def _failed(err: int, msg: str) -> int:
    """A child that writes `msg` to the container's stderr and exits 128, as a failed start did in its own fork."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            os.write(err, msg.encode())
        finally:
            os._exit(128)
    return pid


def _unshare(flags: int) -> None:
    _errno_check(_libc.unshare(flags), "unshare")


def _go_home(home: tuple[int, int, int]) -> None:
    """Back to the server's own mount namespace, root and working directory."""
    ns, root, cwd = home
    _errno_check(_libc.setns(ns, CLONE_NEWNS), "setns")
    os.fchdir(root)
    os.chroot(".")
    os.fchdir(cwd)


def _zygote_main() -> None:
    # the C modules, not socket, selectors, signal and json: their imports were half the server's start
    import _signal
    import _socket
    import array
    import marshal
    import select

    sock = _socket.socket(fileno=int(sys.argv[1]))
    os.set_inheritable(sock.fileno(), False)  # passed to us; no container may get it
    if sys.argv[2] == "user":
        # one user namespace for the server and its containers, where it is root (the kubelet's uid
        # mapped to 0, as `unshare --map-root-user`), and a mount namespace of its own there (the
        # host's shared mounts become slaves of it, so later host mounts still reach it)
        uid, gid = os.getuid(), os.getgid()
        _unshare(CLONE_NEWNS | CLONE_NEWUSER)
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            fd = os.open("/proc/self/" + name, os.O_WRONLY)
            try:
                os.write(fd, text.encode())
            finally:
                os.close(fd)
    home = (
        os.open("/proc/self/ns/mnt", os.O_RDONLY),
        os.open("/", os.O_RDONLY | os.O_DIRECTORY),
        os.open(".", os.O_RDONLY | os.O_DIRECTORY),
    )
    devnull = os.open("/dev/null", os.O_RDONLY)
    spawner = _Spawner()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    _signal.set_wakeup_fd(wake_w)
    _signal.signal(_signal.SIGCHLD, lambda *_: None)
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    poll = select.poll()
    poll.register(sock.fileno(), select.POLLIN)
    poll.register(wake_r, select.POLLIN)
    sock.send(marshal.dumps({"ready": os.getpid()}))
    fd_space = _socket.CMSG_SPACE(8 * array.array("i").itemsize)
    while True:
        for fd_ready, _ in poll.poll():
            if fd_ready != wake_r:
                try:
                    # close-on-exec: only what a start's file actions dup2 reaches a container
                    msg, anc, flags, _addr = sock.recvmsg(1 << 20, fd_space, _socket.MSG_CMSG_CLOEXEC)
                except InterruptedError:
                    continue
                except OSError:
                    return
                if not msg:
                    return  # the kubelet is gone (or closed us)
                fds: list[int] = []
                for level, kind, data in anc:
                    if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                        arr = array.array("i")
                        arr.frombytes(data[: len(data) - len(data) % arr.itemsize])
                        fds.extend(arr)
                req = marshal.loads(msg)
                pid = -1
                try:
                    if not flags & (_socket.MSG_TRUNC | _socket.MSG_CTRUNC):
                        pid = _zygote_start(req, fds, home, devnull, spawner)
                finally:
                    for fd in fds:
                        os.close(fd)
                sock.send(marshal.dumps({"id": req["id"], "pid": pid}))
            else:
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                while True:
                    try:
                        pid, status = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        break
                    sock.send(marshal.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}))


if __name__ != "__main__":  # imported by the kubelet, or by the server (as `-c` source, it has no __file__)
    with open(__file__) as _f:
        _SOURCE = _f.read()
    PREAMBLE = _SOURCE + "\n_preamble_main()\n"
    # the server imports this module (its bytecode is cached) rather than compile its source each time
    _ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ZYGOTE = f"import sys; sys.path.append({_ROOT!r}); from kubelet.preamble import _zygote_main; _zygote_main()"
