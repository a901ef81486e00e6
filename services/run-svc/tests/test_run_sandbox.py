"""The sandbox plan: a run sees the system and its Python read-only, its own files, its inputs
read-only and its outputs at their mount paths — nothing else of the host — in namespaces of its
own, as an unprivileged user."""

from __future__ import annotations

import os
import sys

import pytest
from shipyard_run.adapters import sandbox
from shipyard_run.adapters.sandbox import OWN, Bind, View, interpreter, plan

from shipyard.kit.bubblewrap import NOBODY, Bubblewrap, RunAs, find, system_view

AS_ROOT = Bubblewrap("/usr/bin/bwrap", NOBODY, "/usr/bin/setpriv")
AS_USER = Bubblewrap("/usr/bin/bwrap", None)
PYTHON = ("/opt/python", "/srv/venv")
WS = "/data/run/workspaces/0123456789abcdef"
CODE = Bind(f"{WS}/code", f"{OWN}/code", writable=True)
CONFIG = Bind(f"{WS}/config", f"{OWN}/config")
INPUT = Bind(f"{WS}/inputs/opt/dkube/input", "/opt/dkube/input")
OUTPUT = Bind(f"{WS}/outputs/model", "/model", writable=True)
TMP = f"{WS}/tmp"
VIEW = View((CODE, CONFIG, INPUT, OUTPUT), f"{OWN}/code", TMP)
BINDS = ("--bind", "--ro-bind", "--dev-bind")


def _pairs(args: list[str], *options: str) -> list[tuple[str, str]]:
    return [(args[i + 1], args[i + 2]) for i, a in enumerate(args) if a in options]


def _values(args: list[str], option: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == option]


def test_nothing_of_the_host_is_bound_but_the_system_the_python_and_the_runs_own_files() -> None:
    args = plan(VIEW, AS_ROOT, PYTHON)
    system = {source for source, _ in _pairs(system_view(), *BINDS)}
    sources = [source for source, _ in _pairs(args, *BINDS)]
    assert sorted(sources) == sorted(system | set(PYTHON) | {b.source for b in VIEW.binds} | {TMP})
    top_level = {f"/{name}" for name in os.listdir("/")} & set(sources)
    assert top_level <= {"/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}
    assert {"/", "/root", "/home", "/tmp", "/proc", "/run", "/var"}.isdisjoint(sources)


def test_the_system_and_the_python_are_read_only() -> None:
    args = plan(VIEW, AS_ROOT, PYTHON)
    read_only = _pairs(args, "--ro-bind")
    assert ("/usr", "/usr") in read_only and ("/etc", "/etc") in read_only
    assert all((p, p) in read_only for p in PYTHON)
    writable = {source for source, _ in _pairs(args, "--bind")}
    assert writable == {CODE.source, OUTPUT.source, TMP}


def test_inputs_are_read_only_and_outputs_writable_at_their_mount_paths() -> None:
    args = plan(VIEW, AS_ROOT, PYTHON)
    assert (INPUT.source, "/opt/dkube/input") in _pairs(args, "--ro-bind")
    assert (OUTPUT.source, "/model") in _pairs(args, "--bind")
    assert (CONFIG.source, f"{OWN}/config") in _pairs(args, "--ro-bind")
    assert _values(args, "--chdir") == [f"{OWN}/code"]


def test_a_mount_path_missing_on_the_host_is_made_in_the_sandbox_passable_by_the_run() -> None:
    args = plan(VIEW, AS_ROOT, PYTHON)
    made = _values(args, "--dir")
    assert "/opt" in made and "/opt/dkube" in made and OWN in made
    assert args.index("--dir", args.index("/opt/dkube") - 1) < args.index(INPUT.source)


def test_private_tmp_proc_dev_ipc_and_pids_but_the_hosts_network() -> None:
    args = plan(VIEW, AS_ROOT, PYTHON)
    assert "--unshare-pid" in args and "--unshare-ipc" in args
    assert (_values(args, "--proc"), _values(args, "--dev")) == (["/proc"], ["/dev"])
    assert _values(args, "--tmpfs") == ["/dev/shm"] and _values(args, "--perms") == ["1777"]
    assert (TMP, "/tmp") in _pairs(args, "--bind")  # on disk, the run's own
    assert _values(args, "--cap-drop") == ["ALL"]
    assert "--unshare-net" not in args and "--share-net" not in args
    # A run outlives run-svc, and stays in the wrapper's process group, which stopping it signals.
    assert "--die-with-parent" not in args and "--new-session" not in args


def test_as_root_the_command_runs_as_the_runs_user_with_no_capabilities() -> None:
    args = plan(VIEW, AS_ROOT, PYTHON)
    assert "--unshare-user" not in args
    assert _values(args, "--cap-add") == ["CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"]  # for setpriv only
    command = AS_ROOT.command(["/bin/sh", "-c", "train"])
    assert command[:3] == ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534"]
    assert {"--clear-groups", "--inh-caps=-all", "--bounding-set=-all"} <= set(command)
    assert command[-3:] == ["/bin/sh", "-c", "train"]


def test_as_another_user_the_run_gets_a_user_namespace_without_further_ones() -> None:
    args = plan(VIEW, AS_USER, PYTHON)
    assert "--unshare-user" in args and "--disable-userns" in args and "--cap-add" not in args
    assert AS_USER.command(["/bin/sh", "-c", "train"]) == ["/bin/sh", "-c", "train"]


def test_a_gpu_run_gets_its_gpus_devices_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _pairs(plan(VIEW, AS_ROOT, PYTHON), "--dev-bind") == []
    present = {"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia0", "/dev/nvidia1"}
    monkeypatch.setattr(sandbox.os.path, "exists", lambda path: path in present)
    gpu_view = View(VIEW.binds, VIEW.chdir, TMP, gpus=(1,))
    devices = [source for source, _ in _pairs(plan(gpu_view, AS_ROOT, PYTHON), "--dev-bind")]
    assert sorted(devices) == ["/dev/nvidia-uvm", "/dev/nvidia1", "/dev/nvidiactl"]


def test_a_python_under_the_system_directories_is_not_bound_again() -> None:
    args = plan(VIEW, AS_ROOT, ("/usr", "/srv/venv"))
    assert _pairs(args, "--ro-bind").count(("/usr", "/usr")) == 1


def test_the_python_runs_use_is_run_svcs_own_with_the_sdk() -> None:
    import shipyard

    shown = interpreter()
    for path in (sys.prefix, sys.base_prefix, os.path.dirname(shipyard.__file__)):
        assert any(os.path.realpath(path) == d or os.path.realpath(path).startswith(d + "/") for d in shown)


def test_a_runs_user_is_numbers_and_never_root() -> None:
    assert RunAs.parse("1001:1002") == RunAs(1001, 1002)
    assert RunAs.parse("1001") == RunAs(1001, 1001)
    for bad in ("0:0", "nobody", "1001:x", "-1"):
        with pytest.raises(ValueError, match="a run's user"):
            RunAs.parse(bad)


def test_bwrap_is_found_and_usable_here() -> None:
    # tools/install-test-deps.sh installs Debian's bubblewrap for the tests.
    found = find(NOBODY)
    assert isinstance(found, Bubblewrap), found
    assert os.access(found.program, os.X_OK)
    assert (found.run_as is None) == (os.geteuid() != 0)
