"""Attack: a data scientist's run acts as the platform. It reads the admin token and the secret
key from the data directory, other runs' workspaces and logs, the services' environments under
/proc, signals the gateway, writes a shared blob through its hard-linked input, and reads the
operator's home. Every attempt fails: the run sees only what is its own, as an unprivileged
user. Its own work still goes through: inputs at their mount paths, outputs, metrics, logs.

Where runs cannot be isolated (SHIPYARD_FAILPOINTS=run.sandbox=unavailable acts as a machine
without bubblewrap), a data scientist's run is refused, naming why; an operator's runs start, and
in single-user mode (SHIPYARD_SINGLE_USER=true) anyone's do.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import shipyard
from shipyard.client import transfer
from shipyard.client.connection import Client, ClientError
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.kit.blob.local import LocalBlobStore
from shipyard.local.harness import Stack, wait_for

DATASET, MODEL = repos_pb2.REPO_KIND_DATASET, repos_pb2.REPO_KIND_MODEL
ROWS = b"1,2\n3,4\n5,6\n"
ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)
SERVICES = ("nats", "repo-svc", "run-svc", "serving-svc", "lineage-svc", "gateway")
READ_INPUT = [pb.RunInput(repo_kind="dataset", repo="dora-data", mount_path="/mnt/data")]
UNAVAILABLE = {"SHIPYARD_FAILPOINTS": "run.sandbox=unavailable", "SHIPYARD_PATH_IMPORT_ROOTS": ""}


def _scientist(stack: Stack, admin: Client, name: str) -> Client:
    made = admin.call(admin.identity.CreateUser, gateway_pb2.CreateUserRequest(
        user=gateway_pb2.User(name=name, roles=[gateway_pb2.ROLE_DATA_SCIENTIST])))
    return stack.client(made.token)


@pytest.fixture(scope="module")
def dora(stack: Stack, admin: Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """Dora, a data scientist, with her dataset dora-data (train.csv) and her model dora-model."""
    client = _scientist(stack, admin, "dora")
    for kind, name in ((DATASET, "dora-data"), (MODEL, "dora-model")):
        client.call(client.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
            kind=kind, name=name, versioning=repos_pb2.VERSIONING_DVS,
            source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    data = tmp_path_factory.mktemp("dora-data")
    (data / "train.csv").write_bytes(ROWS)
    transfer.push(client, DATASET, "dora-data", data, transfer.scan_tree(data))
    yield client
    client.close()


@pytest.fixture(scope="module")
def victim(admin: Client) -> pb.Run:
    """The operator's ended run, whose log holds a secret."""
    return _ended(admin, admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="victim", command="echo the-victims-secret"))).name)


def _ended(client: Client, name: str) -> pb.Run:
    def ended() -> pb.Run | None:
        run = client.call(client.runs.GetRun, pb.GetRunRequest(name=name))
        return run if run.status in ENDED else None

    return wait_for(ended, 60, f"run {name} to end")


def _attack(client: Client, name: str, command: str, **fields: object) -> tuple[pb.Run, str]:
    """Run ``command`` as ``client``; the ended run and its log."""
    client.call(client.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name=name, command=command, **fields)))
    run = _ended(client, name)
    log = client.call(client.runs.ReadRunLogs, pb.ReadRunLogsRequest(name=name, max_bytes=1 << 20)).data
    return run, log.decode(errors="replace")


def test_a_run_cannot_read_the_admin_token_or_the_secret_key(stack: Stack, dora: Client) -> None:
    data = stack.data_dir.resolve()
    secrets = [path for path in (data / "admin-token", data / "secret.key") if path.exists()]
    assert secrets, "the data directory has neither file: this test would prove nothing"
    _, log = _attack(dora, "steal-secrets", " ; ".join(f"cat {path}" for path in secrets) + f"; ls -a {data}")
    for path in secrets:
        assert path.read_text().strip() not in log
    assert "No such file" in log and "blobs" not in log


def test_a_run_cannot_list_or_read_another_runs_workspace(stack: Stack, dora: Client, victim: pb.Run) -> None:
    workspaces = stack.data_dir.resolve() / "run-svc" / "workspaces"
    assert "the-victims-secret" in (workspaces / victim.id / "log").read_text()
    _, log = _attack(dora, "steal-workspace", f"ls {workspaces}; cat {workspaces / victim.id / 'log'}; "
                                              f"cat {workspaces}/*/log")
    assert "the-victims-secret" not in log and victim.id + "\n" not in log


def test_a_run_sees_no_service_process_and_cannot_signal_the_gateway(stack: Stack, dora: Client) -> None:
    pids = {name: stack.pid(name) for name in SERVICES}
    environ = " ; ".join(f"cat /proc/{pid}/environ" for pid in pids.values())
    # (What the run prints must not be in its command: /proc/1/cmdline, bwrap's, holds that.)
    _, log = _attack(dora, "steal-environ", f"{environ}; cat /proc/*/cmdline | tr '\\0' ' '; echo; "
                                            f'kill -0 {pids["gateway"]}; echo "kill=$?"; '
                                            "ls /proc | grep -c '^[0-9]'")
    assert "SHIPYARD_DATA_DIR" not in log and "SHIPYARD_SECRET" not in log
    assert "-m shipyard_" not in log and "nats-server -c" not in log  # no service's command line
    assert "kill=1" in log and "kill=0" not in log
    assert int(log.split()[-1]) <= 6  # bwrap's init and the run's own processes, nothing else
    assert stack.serving()


def test_a_run_cannot_write_a_shared_blob_through_its_input(stack: Stack, dora: Client) -> None:
    replace = "cp /mnt/data/train.csv /tmp/x && mv /tmp/x /mnt/data/train.csv"
    run, log = _attack(dora, "corrupt-blob", "chmod u+w /mnt/data/train.csv; "
                                             f"echo corrupted >> /mnt/data/train.csv; {replace}; "
                                             "cat /mnt/data/train.csv", inputs=READ_INPUT)
    assert "corrupted" not in log and log.endswith(ROWS.decode())
    manifest = transfer.read_manifest(dora, dora.call(dora.repos.GetVersion, repos_pb2.GetVersionRequest(
        kind=DATASET, repo="dora-data", number=run.inputs[0].version)).manifest_digest)
    blob = LocalBlobStore(stack.data_dir / "blobs").path_of(manifest.entries[0].sha256)
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == manifest.entries[0].sha256
    assert blob.read_bytes() == ROWS


def test_a_run_cannot_read_the_operators_home(dora: Client) -> None:
    home = Path.home().resolve()
    # The only way into the home: the Python runs use, when it lives there (pyenv, a venv).
    python = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, os.path.dirname(shipyard.__file__))}
    way_in = {Path(p).relative_to(home).parts[0] for p in python if Path(p).is_relative_to(home)}
    hidden = sorted(set(os.listdir(home)) - way_in)
    _, log = _attack(dora, "read-home", f"ls -a {home}; ls -a /home; echo --; "
                                        + " ; ".join(f"cat {home / name}" for name in hidden[:20]))
    listing = log.split("--")[0].split()
    assert not set(hidden) & set(listing), set(hidden) & set(listing)


def test_a_runs_own_work_goes_through(stack: Stack, dora: Client) -> None:
    script = ("import os, pathlib; from shipyard.sdk import log_metrics; "
              "rows = pathlib.Path('/mnt/data/train.csv').read_text().splitlines(); "
              "pathlib.Path('/model/rows.txt').write_text(str(len(rows))); "
              "pathlib.Path(os.environ['HOME'], 'cache').write_text('mine'); "
              "print('loss=0.5', flush=True); log_metrics(accuracy=0.9)")
    output = pb.RunOutputTarget(repo_kind="model", repo="dora-model", mount_path="/model")
    run, log = _attack(dora, "honest", f'python -c "{script}"', inputs=READ_INPUT, outputs=[output])
    assert run.status == pb.RUN_STATUS_COMPLETE, (run.status_reason, log)
    assert "loss=0.5" in log and run.metrics["accuracy"] == pytest.approx(0.9)
    assert any("isolated (bubblewrap" in note for note in run.notes)

    def made() -> repos_pb2.Version | None:
        found = dora.call(dora.repos.ListVersions, repos_pb2.ListVersionsRequest(
            kind=MODEL, repo="dora-model", page_size=100)).versions
        return next((v for v in found if v.produced_by_run == run.id), None)

    version = wait_for(made, 30, "the run's model version")
    manifest = transfer.read_manifest(dora, version.manifest_digest)
    assert [(e.path, e.size) for e in manifest.entries] == [("rows.txt", 1)]


def _unisolated_stack(tmp_path: Path, **env: str) -> Stack:
    return Stack(tmp_path / "data", env={**UNAVAILABLE, **env}).start()


def test_without_isolation_only_an_operators_run_starts(tmp_path: Path) -> None:
    stack = _unisolated_stack(tmp_path)
    try:
        admin = stack.client()
        eve = _scientist(stack, admin, "eve")
        with pytest.raises(ClientError) as refused:
            eve.call(eve.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name="eve-1", command="true")))
        assert refused.value.code == "FAILED_PRECONDITION"
        assert "cannot be isolated" in refused.value.message
        assert "only operators" in refused.value.message and "SHIPYARD_SINGLE_USER" in refused.value.message
        run, _ = _attack(admin, "operators-1", "echo fine")
        assert run.status == pb.RUN_STATUS_COMPLETE, run.status_reason
        assert any(note.startswith("not isolated") for note in run.notes)
    finally:
        stack.stop()


def test_in_single_user_mode_anyones_run_starts_without_isolation(tmp_path: Path) -> None:
    stack = _unisolated_stack(tmp_path, SHIPYARD_SINGLE_USER="true")
    try:
        eve = _scientist(stack, stack.client(), "eve")
        run, log = _attack(eve, "eve-1", "echo fine")
        assert run.status == pb.RUN_STATUS_COMPLETE and log == "fine\n", run.status_reason
        assert any(note.startswith("not isolated") for note in run.notes)
    finally:
        stack.stop()
