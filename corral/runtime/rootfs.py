"""A container's root filesystem: overlayfs over the shared layer cache, or a private copy.

    bundle/
      rootfs/   overlay mountpoint: lowerdir = cached layers (top first), upper and work below
      upper/    the container's own writes (discarded by remove)
      work/     overlayfs' scratch directory
      etc/      hosts, hostname, resolv.conf: bind-mounted into the container by the runtime

When the overlay mount is refused (a filesystem that cannot hold an upper dir, a kernel
without overlayfs) the layers are copied into ``rootfs/`` with ``unpack.flatten`` instead:
slower and bigger, but the container sees the same tree.

Reading the image's ``/etc/passwd`` and ``/etc/group`` goes through :func:`read_confined`,
which refuses symlinks on the way, so a hostile image cannot point them at host files.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from corral.runtime.driver import RuntimeFailure

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
MNT_DETACH = 2


def _mount(source: str, target: str, fstype: str, data: str) -> None:
    if _libc.mount(source.encode(), target.encode(), fstype.encode(), 0, data.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def mount_overlay(layers_top_first: list[Path], bundle: Path) -> Path:
    """Mount the overlay at ``bundle/rootfs``; raises OSError when the kernel refuses."""
    rootfs, upper, work = bundle / "rootfs", bundle / "upper", bundle / "work"
    for d in (rootfs, upper, work):
        d.mkdir(exist_ok=True)
    lower = ":".join(str(p) for p in layers_top_first)
    _mount("overlay", str(rootfs), "overlay", f"lowerdir={lower},upperdir={upper},workdir={work}")
    return rootfs


def prepare(layers_lowest_first: list[Path], bundle: Path, *, copy: bool = False) -> str:
    """Give ``bundle/rootfs`` the image's tree; returns the mode used (overlay | copy)."""
    if not copy:
        try:
            mount_overlay(list(reversed(layers_lowest_first)), bundle)
            return "overlay"
        except OSError:
            pass  # fall through to the copy: the reason is not actionable for the user
    from corral.runtime.unpack import flatten  # lazily: a sibling module

    rootfs = bundle / "rootfs"
    rootfs.mkdir(exist_ok=True)
    flatten(layers_lowest_first, rootfs)
    return "copy"


def is_mounted(path: Path) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == target for line in f)


def release(bundle: Path) -> None:
    """Unmount the rootfs (lazily when busy) so the bundle can be deleted."""
    rootfs = bundle / "rootfs"
    if not is_mounted(rootfs):
        return
    target = str(rootfs).encode()
    if _libc.umount2(target, 0) != 0 and _libc.umount2(target, MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise RuntimeFailure(f"cannot unmount {rootfs}: {os.strerror(err)}",
                             "CannotRemoveContainerError")


def remove_bundle(bundle: Path) -> None:
    release(bundle)
    shutil.rmtree(bundle, ignore_errors=True)


# -- files of the image, read without following the image's symlinks -----------------------

def read_confined(rootfs: Path, relpath: str) -> str | None:
    """The text of ``rootfs/relpath``, or None when missing or reached through a symlink."""
    parts = [p for p in relpath.split("/") if p and p != "."]
    if ".." in parts:
        return None
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        leaf = os.open(parts[-1], flags, dir_fd=fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    with os.fdopen(leaf, encoding="utf-8", errors="replace") as f:
        return f.read(1 << 20)


def _entries(text: str | None) -> list[list[str]]:
    return [line.split(":") for line in (text or "").splitlines()
            if line and not line.startswith("#") and line.count(":") >= 2]


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


def resolve_user(rootfs: Path, user: str | None) -> User:
    """Docker's rules: ``name|uid[:group|gid]``; names come from the image's passwd/group,
    numeric ids are taken as given; a uid's primary group comes from passwd when listed."""
    name, _, group = (user or "0").partition(":")
    passwd = _entries(read_confined(rootfs, "etc/passwd"))
    row = next((e for e in passwd if e[0] == name or (name.isdigit() and e[2] == name)), None)
    if row is None and not name.isdigit():
        raise RuntimeFailure(f"unable to find user {name}: no matching entries in passwd file",
                             "CannotCreateContainerError")
    uid = int(name) if name.isdigit() else int(row[2])
    gid = int(row[3]) if row is not None and len(row) > 3 and row[3].isdigit() else 0
    home = row[5] if row is not None and len(row) > 5 and row[5] else "/"
    groups = _entries(read_confined(rootfs, "etc/group"))
    if group:
        grow = next((g for g in groups if g[0] == group or g[2] == group), None)
        if grow is None and not group.isdigit():
            raise RuntimeFailure(f"unable to find group {group}: no matching entries in group "
                                 "file", "CannotCreateContainerError")
        gid = int(group) if group.isdigit() else int(grow[2])
    member = row[0] if row is not None else None
    extra = tuple(sorted({int(g[2]) for g in groups if member and len(g) > 3 and g[2].isdigit()
                          and member in g[3].split(",") and int(g[2]) != gid}))
    return User(uid, gid, extra, home)


def write_etc(bundle: Path, hostname: str, ipv4: str | None) -> dict[str, Path]:
    """hosts, hostname and resolv.conf for the container, as files in the bundle."""
    etc = bundle / "etc"
    etc.mkdir(exist_ok=True)
    hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    hosts += f"{ipv4 or '127.0.1.1'}\t{hostname}\n"
    (etc / "hosts").write_text(hosts)
    (etc / "hostname").write_text(hostname + "\n")
    try:
        resolv = Path("/etc/resolv.conf").read_text()
    except OSError:
        resolv = ""
    (etc / "resolv.conf").write_text(resolv)
    return {f"/etc/{n}": etc / n for n in ("hosts", "hostname", "resolv.conf")}


def make_dirs_confined(rootfs: Path, path: str, uid: int, gid: int) -> None:
    """``mkdir -p`` of ``path`` inside the rootfs (Docker creates a missing working
    directory), never following the image's symlinks: a symlinked component stops the walk
    and leaves the runtime to report the missing directory."""
    fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in [p for p in path.split("/") if p and p != "."]:
            if part == "..":
                return
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
                os.chown(part, uid, gid, dir_fd=fd, follow_symlinks=False)
            except FileExistsError:
                pass
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError:
                return
            os.close(fd)
            fd = nxt
    finally:
        os.close(fd)
