"""The mount namespace plan: the host seen as it is, mount points made in private layers."""

from __future__ import annotations

import os
from pathlib import Path

from shipyard_run.adapters.sandbox import Mount, bwrap, plan

INPUT = Mount("/mnt/shipyard-test-absent/data", "/ws/inputs/data", writable=False)
OUTPUT = Mount("/model-shipyard-test", "/ws/outputs/model", writable=True)


def _pairs(args: list[str], option: str) -> list[tuple[str, str]]:
    return [(args[i + 1], args[i + 2]) for i, a in enumerate(args) if a == option]


def _tmpfs(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == "--tmpfs"]


def test_without_bwrap_everything_stays_under_the_workspace() -> None:
    planned = plan([INPUT, OUTPUT], None)
    assert planned.args == []
    assert planned.seen_at == {INPUT.path: INPUT.source, OUTPUT.path: OUTPUT.source}
    assert planned.unplaced == [INPUT.path, OUTPUT.path]


def test_the_host_is_seen_as_it_is_and_mounts_at_their_paths() -> None:
    planned = plan([INPUT, OUTPUT], "/usr/bin/bwrap")
    args = planned.args
    assert args[0] == "/usr/bin/bwrap" and "--proc" in args
    assert ("/usr", "/usr") in _pairs(args, "--bind") or ("usr/bin", "/bin") in _pairs(args, "--symlink")
    assert _pairs(args, "--ro-bind") == [(INPUT.source, INPUT.path)]
    assert (OUTPUT.source, OUTPUT.path) in _pairs(args, "--bind")
    assert planned.seen_at == {INPUT.path: INPUT.path, OUTPUT.path: OUTPUT.path}
    assert planned.unplaced == []


def test_a_missing_mount_point_is_made_in_a_private_copy_of_its_host_directory(tmp_path: Path) -> None:
    (tmp_path / "kept.txt").write_text("the host's")
    (tmp_path / "link").symlink_to("kept.txt")
    mount = Mount(str(tmp_path / "dkube" / "input"), "/ws/inputs/x", writable=False)
    args = plan([mount], "/usr/bin/bwrap").args
    assert _tmpfs(args) == [str(tmp_path)]
    after = args[args.index("--tmpfs"):]
    assert (str(tmp_path / "kept.txt"), str(tmp_path / "kept.txt")) in _pairs(after, "--bind")
    assert ("kept.txt", str(tmp_path / "link")) in _pairs(after, "--symlink")
    assert not (tmp_path / "dkube").exists()  # nothing made on the host


def test_a_mount_point_that_exists_is_bound_over_without_a_layer(tmp_path: Path) -> None:
    mount = Mount(str(tmp_path), "/ws/outputs/y", writable=True)
    args = plan([mount], "/usr/bin/bwrap").args
    assert _tmpfs(args) == []
    assert (mount.source, mount.path) in _pairs(args, "--bind")


def test_layers_are_made_outermost_first(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    outer = Mount(str(tmp_path / "a" / "x"), "/ws/1", writable=False)
    inner = Mount(str(tmp_path / "b" / "y"), "/ws/2", writable=False)
    assert _tmpfs(plan([inner, outer], "/usr/bin/bwrap").args) == [str(tmp_path), str(tmp_path / "b")]


def test_bwrap_is_found_and_usable_here() -> None:
    # tools/install-test-deps.sh installs Debian's bubblewrap for the tests.
    assert bwrap() is not None
    assert os.access(str(bwrap()), os.X_OK)
