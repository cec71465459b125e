"""What starts every container process: its root, its mount namespace, the fork server that forks it.

`setup_root` builds the container's root on a tmpfs (`<pod dir>/root`): every top-level entry of
the host's / is bind-mounted into it, /tmp is the pod's private tmp dir, and each volume is
bind-mounted at its mountPath. A mountPath whose directory does not exist is created in the tmpfs;
when its parent is a host directory, that directory is first "shadowed" (a tmpfs over it, with each
of the host entries bound back in), so nothing is ever created on the host and an unprivileged user
namespace works too. Then it chroots and changes directory; `exec_command` execs the command.
Volume sources are opened before anything is mounted, so a root dir under /tmp stays reachable.

This module runs outside the kubelet, as the source of a fresh `python -I -S -c` (stdlib only, no
package imports), in one of two ways:

* `PREAMBLE` (`python -I -S -c PREAMBLE <json spec> <argv...>`, under `unshare --mount`): one
  interpreter per container; it builds the root and execs.
* `ZYGOTE` (`python -I -S -c ZYGOTE <socket fd> <mode>`): the fork server, one per kubelet runtime.
  It reads start requests (a JSON message with the child's stdio and ready fds as SCM_RIGHTS) on a
  SOCK_SEQPACKET socket, forks, and answers `{"id", "pid"}`; the child makes a new session, its
  own mount namespace (`unshare(CLONE_NEWNS)`, with CLONE_NEWUSER and a root mapping of the
  server's uid/gid in "user" mode, as `unshare --map-root-user`), makes / private, builds the root
  and execs. The server is the parent: it reaps and reports `{"exit": pid, "code"}` (a negative
  code: killed by that signal). It exits when the socket closes.
"""

from __future__ import annotations

import ctypes
import json
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
    if _libc.mount(s, dst.encode(), ft, flags, dt) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), dst)


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


def enter_mount_namespace(user: bool) -> None:
    """A new mount namespace with / private (and a user namespace mapping us to root, when `user`)."""
    uid, gid = os.getuid(), os.getgid()
    if _libc.unshare(CLONE_NEWNS | (CLONE_NEWUSER if user else 0)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), "unshare")
    if user:
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open("/proc/self/" + name, "w") as f:
                f.write(text)
    _mount("none", "/", MS_REC | MS_PRIVATE)


def setup_root(spec: dict) -> None:  # type: ignore[type-arg]
    """Build the container's root as the module docstring says, chroot into it and enter workingDir."""
    root = spec["root"]
    opened = []
    for m in spec["mounts"]:
        is_dir = os.path.isdir(m["source"])
        opened.append((m, os.open(m["source"], os.O_PATH), is_dir))
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
        st = os.stat(root + path)
        _mount("tmpfs", root + path, 0, "tmpfs", f"mode={st.st_mode & 0o7777:o}")
        base = f"/proc/self/fd/{fd}"
        for name in os.listdir(base):
            _bind_entry(base + "/" + name, root + path + "/" + name)
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
        os.close(fd)
    wd = os.path.normpath("/" + (spec.get("workingDir") or "/"))
    if wd != "/":
        ensure(wd, True)
    os.chroot(root)
    os.chdir(wd)
    ready = spec.get("readyFd")
    if ready is not None:  # tell the kubelet the container's view is complete (exec and hooks may enter it)
        os.write(ready, b"1")
        os.close(ready)


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
        why = "executable file not found in $PATH" if e.errno == 2 else e.strerror
        _fail(f'exec: "{argv[0]}": {why}\n')


def _preamble_main() -> None:
    try:
        setup_root(json.loads(sys.argv[1]))
    except OSError as e:
        _fail(f"tinykube: container setup failed: {e}\n")
    exec_command(sys.argv[2:])


def _zygote_child(req: dict, fds: list[int], user: bool) -> None:  # type: ignore[type-arg]
    try:
        os.setsid()
        stdin = fds.pop(0) if req.get("stdin") else os.open("/dev/null", os.O_RDONLY)
        wanted = [stdin, *fds]  # stdin, stdout, stderr and maybe the ready fd, to become 0, 1, 2 (3)
        # received fds are all >= 3 (the server's own 0-2 are open): only the last dup2 can hit one
        for i, fd in enumerate(wanted):
            os.dup2(fd, i)
        os.closerange(len(wanted), 1 << 20)
        spec = req["spec"]
        spec["readyFd"] = 3 if len(wanted) > 3 else None
        try:
            enter_mount_namespace(user)
            setup_root(spec)
        except OSError as e:
            _fail(f"tinykube: container setup failed: {e}\n")
        exec_command(req["argv"], req["env"])
    except BaseException as e:  # the fork must never return into the server's loop
        os.write(2, (f"tinykube: container setup failed: {e!r}\n").encode())
    finally:
        os._exit(128)


def _zygote_main() -> None:
    import array
    import selectors
    import signal
    import socket

    sock = socket.socket(fileno=int(sys.argv[1]))
    user = sys.argv[2] == "user"
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    sock.send(json.dumps({"ready": os.getpid()}).encode())
    fd_space = socket.CMSG_SPACE(8 * array.array("i").itemsize)
    while True:
        for key, _ in sel.select():
            if key.fileobj is sock:
                try:
                    msg, anc, flags, _addr = sock.recvmsg(1 << 20, fd_space)
                except InterruptedError:
                    continue
                except OSError:
                    return
                if not msg:
                    return  # the kubelet is gone (or closed us)
                fds: list[int] = []
                for level, kind, data in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        arr = array.array("i")
                        arr.frombytes(data[: len(data) - len(data) % arr.itemsize])
                        fds.extend(arr)
                req = json.loads(msg)
                pid = -1
                if not flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                    pid = os.fork()
                    if pid == 0:
                        _zygote_child(req, fds, user)
                for fd in fds:
                    os.close(fd)
                sock.send(json.dumps({"id": req["id"], "pid": pid}).encode())
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
                    sock.send(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}).encode())


if __name__ != "__main__":  # imported by the kubelet (as `-c` source, this module has no __file__)
    with open(__file__) as _f:
        _SOURCE = _f.read()
    PREAMBLE = _SOURCE + "\n_preamble_main()\n"
    ZYGOTE = _SOURCE + "\n_zygote_main()\n"
