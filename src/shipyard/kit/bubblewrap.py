"""Whether this machine can isolate a run with bubblewrap (``bwrap``), and the options that do it.

run-svc starts every run in namespaces of its own (mount, PID, IPC) as an unprivileged user: a
dedicated uid when the platform runs as root (bwrap keeps the capabilities to change user,
``setpriv`` inside the sandbox drops to that uid, all capabilities and the bounding set), and
otherwise a user namespace of the platform's own user, with no capabilities and no further user
namespaces. ``shipyard up`` asks the same question to tell the operator what is missing.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from shipyard.kit.settings import Settings

INSTALL = "apt-get install bubblewrap"
PROBE_TIMEOUT_S = 10
# bwrap as root keeps just what setpriv needs to switch to the run's user; setpriv drops them.
_SWITCH_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")
# A GPU sandbox's devices besides /dev/nvidia<N>: the driver's control and memory devices.
GPU_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")


@dataclass(frozen=True)
class RunAs:
    """The user (uid, gid) a run runs as when the platform is root."""

    uid: int
    gid: int

    @classmethod
    def parse(cls, text: str) -> RunAs:
        """``"uid:gid"`` (or one number for both); ValueError naming what is wrong."""
        uid, _, gid = text.strip().partition(":")
        try:
            found = cls(int(uid), int(gid or uid))
        except ValueError:
            raise ValueError(f"a run's user must be uid:gid in numbers, e.g. 65534:65534 "
                             f"(got {text!r})") from None
        if found.uid <= 0 or found.gid <= 0:
            raise ValueError(f"a run's user must not be root (got {text!r})")
        return found


NOBODY = RunAs(65534, 65534)


@dataclass(frozen=True)
class Bubblewrap:
    """A usable bwrap, and who the run is inside it."""

    program: str
    run_as: RunAs | None  # the platform is root: the uid setpriv switches to; None: a user namespace
    setpriv: str = ""

    def namespaces(self) -> list[str]:
        """bwrap and the options that make the run's own namespaces and take its privileges."""
        args = [self.program, "--unshare-pid", "--unshare-ipc", "--cap-drop", "ALL"]
        if self.run_as is None:
            return [*args, "--unshare-user", "--disable-userns"]
        return [*args, *[a for cap in _SWITCH_CAPS for a in ("--cap-add", cap)]]

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` as run inside the sandbox: as the run's user when the platform is root."""
        if self.run_as is None:
            return argv
        return [self.setpriv, f"--reuid={self.run_as.uid}", f"--regid={self.run_as.gid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--", *argv]


def system_view() -> list[str]:
    """bwrap options showing the system read-only: /usr, /etc, and the top-level /bin, /sbin and
    /lib* as the host has them (links into /usr, or directories)."""
    args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    return args


@functools.cache
def find(run_as: RunAs) -> Bubblewrap | str:
    """The bubblewrap to isolate runs with (as ``run_as`` when this process is root), or why
    there is none, in words an operator can act on."""
    program = shutil.which("bwrap")
    if program is None:
        return f"bubblewrap is not installed ({INSTALL})"
    found = Bubblewrap(program, None)
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            return "setpriv (util-linux) is not installed; it switches a run to its own user"
        found = Bubblewrap(program, run_as, setpriv)
    probe = [*found.namespaces(), *system_view(), "--proc", "/proc", "--dev", "/dev",
             *found.command(["true"])]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap cannot be started here ({exc})"
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        return (f"bubblewrap cannot make namespaces here ({said[-1] if said else f'exit {done.returncode}'}; "
                "unprivileged user namespaces may be turned off)")
    return found


@dataclass(frozen=True)
class Bind:
    """A host path the sandbox sees at ``target``."""

    source: str
    target: str
    writable: bool = False


def python_directories(*packages: str) -> tuple[str, ...]:
    """The directories of this process's Python (its prefixes, the real executable's directory) and
    of ``packages`` (package directories, e.g. ``os.path.dirname(shipyard.__file__)``), outermost
    first, none inside another: what a sandbox binds so that it runs the platform's Python."""
    found = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix,
                                           os.path.dirname(os.path.realpath(sys.executable)), *packages)}
    ordered = sorted(found, key=lambda p: (p.count("/"), p))
    return tuple(p for p in ordered if not any(p != q and inside(p, q) for q in ordered))


def compose(sandbox: Bubblewrap, binds: Sequence[Bind], chdir: str, python: Sequence[str],
            tmp: str | None = None, gpus: Sequence[int] = (), hidden: Sequence[str] = ()) -> list[str]:
    """bwrap and its options (up to the command, which ``sandbox.command`` wraps): the sandbox's own
    namespaces; the system and ``python`` read-only, ``hidden`` directories in them shown empty and
    read-only (e.g. a base interpreter's site-packages, which a virtual environment does not use);
    its own /proc, a minimal /dev, an in-memory /dev/shm; ``tmp`` (a host directory) as /tmp, or an
    in-memory /tmp when None; ``binds`` in order; the GPUs ``gpus`` (and /sys, where CUDA reads
    their topology); ``chdir`` as the working directory."""
    args = [*sandbox.namespaces(), *system_view(), "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--tmpfs", "/dev/shm"]
    args += ["--bind", tmp, "/tmp"] if tmp is not None else ["--perms", "1777", "--tmpfs", "/tmp"]
    tree = Tree(made={"/", "/tmp", "/dev/shm"}, bound=["/usr", "/etc", "/proc", "/dev"])
    for directory in python:
        if not tree.shows(directory):  # e.g. a system Python, under /usr
            args += [*tree.parents(directory), "--ro-bind", directory, directory]
    for directory in hidden:
        args += ["--tmpfs", directory, "--remount-ro", directory]
    for bind in binds:
        option = "--bind" if bind.writable else "--ro-bind"
        args += [*tree.parents(bind.target), option, bind.source, bind.target]
    if gpus:
        devices = [*GPU_DEVICES, *(f"/dev/nvidia{n}" for n in gpus)]
        args += [a for d in devices if os.path.exists(d) for a in ("--dev-bind", d, d)]
        args += ["--ro-bind", "/sys", "/sys"]
    return [*args, "--chdir", chdir]


@dataclass
class Tree:
    """A sandbox's directories as ``compose`` makes them: ``made`` in its in-memory file systems,
    ``bound`` from the host (nothing can be made inside those)."""

    made: set[str]
    bound: list[str]

    def shows(self, path: str) -> bool:
        """Whether ``path`` is inside what is bound already."""
        return any(inside(path, b) for b in self.bound)

    def parents(self, path: str) -> list[str]:
        """``--dir`` for each missing directory above ``path``, so that it is 0755 (bwrap makes
        those it is not told about 0700, which an unprivileged user could not pass); then ``path``
        counts as bound."""
        args: list[str] = []
        for parent in map(str, reversed(Path(path).parents)):
            if parent not in self.made and not self.shows(parent):
                args += ["--dir", parent]
                self.made.add(parent)
        self.bound.append(path)
        return args


def inside(path: str, directory: str) -> bool:
    """Whether ``path`` is ``directory`` or under it (both absolute and normalized)."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def sandboxed_pid(bwrap_pid: int) -> int | None:
    """The host pid of the command a bwrap with ``--unshare-pid`` started (process 2 of its PID
    namespace, under bwrap's own init), or None while there is none (not started yet, or ended).

    bwrap forwards no signals: whoever wants the command to stop gracefully signals it here."""
    seen = [bwrap_pid]
    for _ in range(4):  # bwrap → its init in the namespace → the command
        seen = [child for pid in seen for child in _children(pid)]
        for pid in seen:
            if _namespace_pid(pid) == 2:
                return pid
    return None


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _namespace_pid(pid: int) -> int | None:
    """The pid of ``pid`` in its innermost PID namespace, if it is in one below this process's."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            found = line.split()[1:]
            return int(found[-1]) if len(found) > 1 else None
    return None


def isolation(settings: Settings, failpoint: str) -> Bubblewrap | str:
    """The bubblewrap that isolates a service's users' code here (as ``SHIPYARD_RUN_USER`` when the
    platform is root), or why there is none. ``SHIPYARD_FAILPOINTS=<failpoint>=unavailable`` makes
    the service act as on a machine without bubblewrap: the tests of what happens there use it (it
    isolates nothing, so it is no operator's setting)."""
    if settings.failpoint(failpoint) == "unavailable":
        return f"turned off for a test (SHIPYARD_FAILPOINTS={failpoint}=unavailable)"
    return find(RunAs.parse(settings.run_user))


def unisolated_refusal(missing: str, roles: Iterable[str], single_user: bool, *, what: str, danger: str,
                       start: str, whose: str) -> str:
    """Why someone holding ``roles`` may not start users' code here now ("" if they may), where
    ``missing`` says why that code cannot be isolated ("" when it can). Code that is not isolated
    acts as the platform: only operators may start it, unless the operator chose single-user mode.
    The words name the code: ``what`` cannot be isolated, ``danger`` says what it would do, only
    operators may start ``start``, and single-user mode lets everyone's ``whose`` share the machine."""
    if not missing or single_user or "operator" in roles:
        return ""
    return (f"{what} cannot be isolated on this machine ({missing}), and {danger}, so only operators "
            f"may start {start}; an operator can install bubblewrap, or start Shipyard in single-user "
            f"mode (shipyard up --single-user, SHIPYARD_SINGLE_USER=true) to let everyone's {whose} "
            "share the machine")
