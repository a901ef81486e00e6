"""The reader of a job's files on a cluster's login node (adapters.job_files), here on this machine: only the
account's regular files under the job's working directory, newest first up to the limit — nothing through
a link (to a file, to a directory), no FIFO, nothing above the directory — and as the node runs it (its
source on python3's stdin, the files as JSON)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from shipyard_run.adapters import job_files
from shipyard_run.adapters.job_files import read_job_files


def _code(tmp_path: Path) -> tuple[Path, Path]:
    secret = tmp_path / "home" / "secret.log"
    secret.parent.mkdir()
    secret.write_text("accuracy=0.91\n")
    code = tmp_path / "run" / "code"
    (code / "log").mkdir(parents=True)
    return code, secret


def test_a_file_and_a_folders_tree_are_read_by_their_paths_newest_first(tmp_path: Path) -> None:
    code, _ = _code(tmp_path)
    (code / "log" / "old.log").write_text("o" * 10)
    (code / "log" / "new.log").write_text("n" * 10)
    os.utime(code / "log" / "old.log", (1, 1))
    assert read_job_files(str(code), "/log/new.log", 100) == {"/log/new.log": b"n" * 10}
    assert read_job_files(str(code), "/log", 15) == {"/log/new.log": b"n" * 10, "/log/old.log": b"o" * 5}
    assert read_job_files(str(code), "/missing", 100) == {}
    assert read_job_files(str(tmp_path / "gone"), "/log", 100) == {}


def test_links_fifos_others_files_and_climbing_out_read_nothing(tmp_path: Path) -> None:
    code, secret = _code(tmp_path)
    (code / "log" / "linked.log").symlink_to(secret)
    (code / "linked-dir").symlink_to(secret.parent)
    (code / "zero.log").symlink_to("/dev/zero")
    os.mkfifo(code / "log" / "fifo.log")
    (code / "log" / "nobodys.log").write_text("accuracy=0.93\n")
    os.chown(code / "log" / "nobodys.log", 65534, 65534)  # not the account's own (the tests run as root)
    account = os.getuid()
    assert read_job_files(str(code), "/log", 1 << 20, account) == {}
    # On the local executor a run's files are its own user's: any owner is read, nothing else changes.
    assert read_job_files(str(code), "/log", 1 << 20) == {"/log/nobodys.log": b"accuracy=0.93\n"}
    for owner in (account, None):
        for path in ("/log/linked.log", "/linked-dir/secret.log", "/linked-dir", "/zero.log", "/log/fifo.log",
                     "/../../home/secret.log", "/log/../../../home/secret.log"):
            assert read_job_files(str(code), path, 1 << 20, owner) == {}, path
    os.symlink(secret.parent, code.parent / "linked-code")
    assert read_job_files(str(code.parent / "linked-code"), "/secret.log", 1 << 20) == {}


def test_the_node_runs_its_source_from_stdin_and_prints_the_files_as_json(tmp_path: Path) -> None:
    code, _ = _code(tmp_path)
    (code / "log" / "metrics.log").write_bytes(b"accuracy=0.5\n\xff")
    source = Path(job_files.__file__).read_bytes()
    done = subprocess.run([sys.executable, "-", str(code), "/log", "100"], input=source, capture_output=True,
                          check=True, timeout=60)
    found = {name: base64.b64decode(data) for name, data in json.loads(done.stdout).items()}
    assert found == {"/log/metrics.log": b"accuracy=0.5\n\xff"}
