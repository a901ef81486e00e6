"""Run environments through the whole stack: a training script written for platforms of this kind
(pandas and an older scikit-learn pinned by its repo's requirements, data at /train-data, the model
at /model) runs unchanged in the image built from its repo — and would fail in another environment.

The packages come from the test wheelhouse (tools/install-test-deps.sh), offline."""

from __future__ import annotations

import runpy
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cli, git

from shipyard.client import transfer
from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import images_pb2, repos_pb2
from shipyard.contracts.run.v1 import builds_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.local.harness import Stack, wait_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "churn"
ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)
BUILD_ENDED = (builds_pb2.IMAGE_BUILD_STATUS_COMPLETE, builds_pb2.IMAGE_BUILD_STATUS_FAILED)
TRAIN = ("--command", "python train.py", "--dataset", "churn-data:/train-data", "--model-out",
         "churn-model:/model")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose repo sources may be local (file:// git URLs), as in a test lab."""
    running = Stack(tmp_path_factory.mktemp("stack") / "data", env={
        "SHIPYARD_ALLOW_PRIVATE_SOURCES": "true", "SHIPYARD_PATH_IMPORT_ROOTS": ""}).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def churn(admin: Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Code repo ``churn`` (examples/churn in a local git repository), dataset ``churn-data`` (its
    churn.csv) and model ``churn-model``; the code's commit."""
    root = tmp_path_factory.mktemp("git") / "churn.git"
    shutil.copytree(EXAMPLE, root)
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "churn")
    admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_CODE, name="churn",
        source=repos_pb2.Source(git=repos_pb2.GitSource(url=f"file://{root}", branch="main")))))
    data = tmp_path_factory.mktemp("churn-data")
    runpy.run_path(str(EXAMPLE / "make_data.py"), run_name="make_data")["main"](data)
    upload = repos_pb2.Source(upload=repos_pb2.UploadSource(filename="churn"))
    none = repos_pb2.Source(none=repos_pb2.NoSource())
    for kind, name, source in ((repos_pb2.REPO_KIND_DATASET, "churn-data", upload),
                               (repos_pb2.REPO_KIND_MODEL, "churn-model", none)):
        admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
            kind=kind, name=name, versioning=repos_pb2.VERSIONING_DVS, source=source)))
    transfer.push(admin, repos_pb2.REPO_KIND_DATASET, "churn-data", data, transfer.scan_tree(data))
    return git(root, "rev-parse", "HEAD")


def _ended(admin: Client, name: str, timeout: float = 300) -> pb.Run:
    def ended() -> bool:
        return admin.call(admin.runs.GetRun, pb.GetRunRequest(name=name)).status in ENDED

    wait_for(ended, timeout, f"run {name} to end")
    return admin.call(admin.runs.GetRun, pb.GetRunRequest(name=name))


def _logs(admin: Client, name: str) -> str:
    request = pb.ReadRunLogsRequest(name=name, max_bytes=1 << 20)
    return admin.call(admin.runs.ReadRunLogs, request).data.decode()


def test_an_image_built_from_the_repo_runs_the_script_unchanged(stack: Stack, home: Path, admin: Client,
                                                                   churn: str) -> None:
    out = cli(stack, home, "image", "build", "churn-env", "--code", "churn")
    assert "churn-env" in out.stdout

    def built() -> bool:
        build = admin.call(admin.builds.GetImageBuild, builds_pb2.GetImageBuildRequest(name="churn-env"))
        return build.status in BUILD_ENDED

    wait_for(built, 300, "the image build to end")
    build = admin.call(admin.builds.GetImageBuild, builds_pb2.GetImageBuildRequest(name="churn-env"))
    assert (build.status, build.commit, build.build_file) == (
        builds_pb2.IMAGE_BUILD_STATUS_COMPLETE, churn, ".shipyard-ci.yml"), build.status_reason

    def in_catalog() -> bool:
        try:
            admin.call(admin.images.GetImage, images_pb2.GetImageRequest(name="churn-env"))
        except ClientError:
            return False
        return True

    wait_for(in_catalog, 30, "the built image to enter the catalog")
    image = admin.call(admin.images.GetImage, images_pb2.GetImageRequest(name="churn-env"))
    assert (image.source, image.code, image.commit, image.digest) == (
        images_pb2.IMAGE_SOURCE_CODE_REPO, "churn", churn, build.digest)

    cli(stack, home, "run", "submit", "t2", "--code", "churn", "--image", "churn-env", *TRAIN)
    run = _ended(admin, "t2")
    assert run.status == pb.RUN_STATUS_COMPLETE, (run.status_reason, _logs(admin, "t2"))
    assert "scikit-learn 1.3." in _logs(admin, "t2")
    assert run.environment.image == "churn-env"
    assert "accuracy" in run.metrics
    def latest_model() -> repos_pb2.Version:
        return admin.call(admin.repos.GetVersion, repos_pb2.GetVersionRequest(
            kind=repos_pb2.REPO_KIND_MODEL, repo="churn-model", number=0))

    # repo-svc makes the version from RunCompleted, a moment after the run ended.
    wait_for(lambda: latest_model().produced_by_run == run.id, 30, "the run's model version")
    files = transfer.read_manifest(admin, latest_model().manifest_digest).entries
    assert [f.path for f in files] == ["model.joblib"]


def test_build_from_code_repo_builds_first_then_runs(stack: Stack, home: Path, admin: Client,
                                                      churn: str) -> None:
    cli(stack, home, "run", "submit", "t3", "--code", "churn", "--image", "build-from-code-repo", *TRAIN)
    run = _ended(admin, "t3")
    assert run.status == pb.RUN_STATUS_COMPLETE, (run.status_reason, _logs(admin, "t3"))
    assert run.environment.image == f"churn-{churn[:12]}"


def test_the_same_script_fails_in_another_environment(stack: Stack, home: Path, admin: Client,
                                                      churn: str) -> None:
    cli(stack, home, "run", "submit", "plain", "--code", "churn", *TRAIN)  # the python image: no pandas
    run = _ended(admin, "plain")
    assert run.status == pb.RUN_STATUS_FAILED
    assert "ModuleNotFoundError: No module named" in _logs(admin, "plain")


def test_unknown_images_and_system_mount_paths_are_refused(stack: Stack, home: Path, churn: str) -> None:
    unknown = cli(stack, home, "run", "submit", "u", "--code", "churn", "--image", "nope", *TRAIN,
                  check=False)
    assert unknown.returncode != 0
    assert "run.image" in unknown.stderr and "nope" in unknown.stderr
    system = cli(stack, home, "run", "submit", "s", "--command", "true", "--dataset",
                 "churn-data:/etc/data", check=False)
    assert system.returncode != 0 and "must not be /etc or inside it" in system.stderr


def test_inputs_take_new_files_beside_them_and_their_version_never_changes(
        stack: Stack, home: Path, admin: Client, churn: str) -> None:
    unpack = ("cd /train-data && echo unpacked > extra.txt && mv churn.csv renamed.csv && "
              "({ echo more >> renamed.csv; } 2>/dev/null && echo wrote-in-place || echo refused-in-place) "
              "&& ls")
    cli(stack, home, "run", "submit", "unpack", "--command", unpack, "--dataset", "churn-data:/train-data")
    run = _ended(admin, "unpack")
    assert run.status == pb.RUN_STATUS_COMPLETE, (run.status_reason, _logs(admin, "unpack"))
    # In place: refused where the files are the store's (run-svc as root), allowed on copies.
    said, *listed = _logs(admin, "unpack").split()
    assert said in ("refused-in-place", "wrote-in-place") and listed == ["extra.txt", "renamed.csv"]

    show = "ls /train-data && tail -c 40 /train-data/churn.csv"
    cli(stack, home, "run", "submit", "after", "--command", show,
        "--dataset", f"churn-data@{run.inputs[0].version}:/train-data")  # the same version
    after = _ended(admin, "after")
    assert after.status == pb.RUN_STATUS_COMPLETE, _logs(admin, "after")
    listed, *tail = _logs(admin, "after").split("\n", 1)
    assert listed == "churn.csv" and "more" not in "".join(tail)
