"""The program that starts every container process inside the fresh mount namespace `unshare` made.

It builds the container's root on a tmpfs (`<pod dir>/root`): every top-level entry of the host's /
is bind-mounted into it, /tmp is the pod's private tmp dir, and each volume is bind-mounted at its
mountPath. A mountPath whose directory does not exist is created in the tmpfs; when its parent is a
host directory, that directory is first "shadowed" (a tmpfs over it, with each of the host entries
bound back in), so nothing is ever created on the host and an unprivileged user namespace works too.
Then it chroots, changes directory and execs the command.

It runs as `python -I -S -c PREAMBLE <json spec> <argv...>`; volume sources are opened before
anything is mounted, so a root dir under /tmp stays reachable."""

from __future__ import annotations

__all__ = ["PREAMBLE"]

PREAMBLE = r"""
import ctypes, json, os, stat, sys
spec = json.loads(sys.argv[1])
argv = sys.argv[2:]
libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC = 1, 32, 4096, 16384
def mount(src, dst, flags, fstype=None, data=None):
    ft = fstype.encode() if fstype else None
    dt = data.encode() if data else None
    if libc.mount(src.encode(), dst.encode(), ft, flags, dt) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), dst)
def bind_entry(src, dst):
    # bind one directory entry (dir, file or symlink) from src to a fresh dst in a tmpfs
    st = os.lstat(src)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISDIR(st.st_mode):
        os.mkdir(dst, 0o755)
        mount(src, dst, MS_BIND | MS_REC)
    else:
        open(dst, "a").close()
        mount(src, dst, MS_BIND | MS_REC)
try:
    root = spec["root"]
    opened = []
    for m in spec["mounts"]:
        is_dir = os.path.isdir(m["source"])
        opened.append((m, os.open(m["source"], os.O_PATH), is_dir))
    mount("tmpfs", root, 0, "tmpfs", "mode=755")
    owned = {"/"}
    for name in os.listdir("/"):
        if name == "tmp":
            os.mkdir(os.path.join(root, name), 0o1777)
        else:
            bind_entry("/" + name, os.path.join(root, name))
    def shadow(path):
        # replace host dir `path` (in the container's view) by a tmpfs holding binds of its entries
        fd = os.open(root + path, os.O_PATH)
        st = os.stat(root + path)
        mount("tmpfs", root + path, 0, "tmpfs", "mode=%o" % (st.st_mode & 0o7777))
        base = "/proc/self/fd/%d" % fd
        for name in os.listdir(base):
            bind_entry(base + "/" + name, root + path + "/" + name)
        owned.add(path)
    def ensure(target, is_dir):
        parts = [p for p in target.split("/") if p]
        cur = "/"
        for i, part in enumerate(parts):
            nxt = (cur.rstrip("/") + "/" + part)
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
                rest = "/".join(parts[i + 1:])
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
        mount("/proc/self/fd/%d" % fd, root + target, MS_BIND | MS_REC)
        if m.get("readOnly"):
            mount("none", root + target, MS_REMOUNT | MS_BIND | MS_RDONLY)
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
except OSError as e:
    sys.stderr.write("tinykube: container setup failed: %s\n" % e)
    sys.exit(128)
try:
    os.execvp(argv[0], argv)
except OSError as e:
    why = "executable file not found in $PATH" if e.errno == 2 else e.strerror
    sys.stderr.write('exec: "%s": %s\n' % (argv[0], why))
    sys.exit(128)
"""
