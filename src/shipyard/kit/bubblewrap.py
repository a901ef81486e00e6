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
from dataclasses import dataclass

INSTALL = "apt-get install bubblewrap"
PROBE_TIMEOUT_S = 10
# bwrap as root keeps just what setpriv needs to switch to the run's user; setpriv drops them.
_SWITCH_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")


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
