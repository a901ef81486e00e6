"""The mount namespace plan: which roots are hidden, what is bound where, what stays put."""

from __future__ import annotations

import os

from shipyard_run.adapters.sandbox import Mount, bwrap, plan

INPUT = Mount("/mnt/data", "/ws/inputs/mnt/data", writable=False)
OUTPUT = Mount("/model", "/ws/outputs/model", writable=True)


def _pairs(args: list[str], option: str) -> list[tuple[str, str]]:
    return [(args[i + 1], args[i + 2]) for i, a in enumerate(args) if a == option]


def test_without_bwrap_everything_stays_under_the_workspace() -> None:
    planned = plan([INPUT, OUTPUT], None, ["/ws"])
    assert planned.args == []
    assert planned.seen_at == {"/mnt/data": "/ws/inputs/mnt/data", "/model": "/ws/outputs/model"}
    assert planned.unplaced == ["/mnt/data", "/model"]


def test_mount_roots_become_private_and_hold_only_the_runs_mounts() -> None:
    planned = plan([INPUT, OUTPUT], "/usr/bin/bwrap", ["/ws"])
    args = planned.args
    assert args[0] == "/usr/bin/bwrap"
    assert [args[i + 1] for i, a in enumerate(args) if a == "--tmpfs"] == ["/mnt", "/model"]
    assert _pairs(args, "--ro-bind") == [("/ws/inputs/mnt/data", "/mnt/data")]
    assert ("/ws/outputs/model", "/model") in _pairs(args, "--bind")
    assert ("/mnt", "/mnt") not in _pairs(args, "--bind")  # the host's /mnt is hidden, not shown
    assert ("/usr", "/usr") in _pairs(args, "--bind") or ("usr/bin", "/bin") in _pairs(args, "--symlink")
    assert "--proc" in args and planned.unplaced == []
    assert planned.seen_at == {"/mnt/data": "/mnt/data", "/model": "/model"}


def test_roots_users_need_are_never_hidden() -> None:
    missing = Mount("/home/nobody-here-xyz/data", "/ws/inputs/home/x", writable=False)
    planned = plan([missing], "/usr/bin/bwrap", ["/ws"])
    assert "/home" not in [planned.args[i + 1] for i, a in enumerate(planned.args) if a == "--tmpfs"]
    assert planned.unplaced == ["/home/nobody-here-xyz/data"]
    assert planned.seen_at["/home/nobody-here-xyz/data"] == "/ws/inputs/home/x"


def test_the_root_of_the_workspace_is_never_hidden() -> None:
    inside = Mount("/data/in", "/data/shipyard/ws/inputs/data/in", writable=False)
    planned = plan([inside], "/usr/bin/bwrap", ["/data/shipyard/ws"])
    assert "--tmpfs" not in planned.args
    assert planned.unplaced == ([] if os.path.isdir("/data/in") else ["/data/in"])


def test_bwrap_is_found_and_usable_here() -> None:
    # tools/install-test-deps.sh installs Debian's bubblewrap for the tests.
    assert bwrap() is not None
