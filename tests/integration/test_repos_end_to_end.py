"""Repos and versions through the CLI, the gRPC API and the HTTP blob edge, on the real stack."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import socket
import tarfile
import urllib.error
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import activity_subjects, cli, tree_contents, write_tree

from shipyard.client import transfer
from shipyard.client.connection import Client, ClientError
from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.repo.v1 import repos_pb2 as pb
from shipyard.kit.events import new_event
from shipyard.kit.manifest import Manifest, ManifestEntry
from shipyard.local.harness import Stack, wait_for
from tests.support.nats import publish_as_owner


def test_push_pull_and_export_a_dataset(stack: Stack, home: Path, admin: Client, tmp_path: Path) -> None:
    files = {"train/a.csv": b"x,y\n1,2\n", "train/b.csv": b"x,y\n3,4\n" * 1000, "README": b"digits"}
    source = write_tree(tmp_path / "digits", files)
    out = cli(stack, home, "dataset", "create", "digits", "--upload", str(source), "--tag", "vision").stdout
    assert "Version 1 of digits: 3 files" in out and "uploaded 3 new blobs" in out

    (source / "train" / "a.csv").write_bytes(b"x,y\n9,9\n")
    out = cli(stack, home, "dataset", "push", "digits", str(source), "-m", "fix a").stdout
    assert "Version 2 of digits: 3 files" in out and "uploaded 1 new blob (" in out  # only the change travels

    listed = cli(stack, home, "dataset", "versions", "digits").stdout
    assert "fix a" in listed
    pulled = tmp_path / "pulled"
    cli(stack, home, "dataset", "pull", "digits@1", str(pulled))
    assert tree_contents(pulled) == files

    archive = tmp_path / "digits-v2.tar.gz"
    cli(stack, home, "dataset", "export", "digits@2", "-o", str(archive))
    with tarfile.open(archive) as tar:
        exported = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert exported == {**files, "train/a.csv": b"x,y\n9,9\n"}

    wait_for(
        lambda: activity_subjects(admin, "io.shipyard.version.created.v1")["datasets/digits"] == 2,
        30,
        "two VersionCreated events in lineage-svc's feed",
    )


def test_an_archive_is_extracted_on_request_and_a_zip_slip_is_refused(
    stack: Stack, home: Path, admin: Client, tmp_path: Path
) -> None:
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("images/1.png", b"png")
        z.writestr("labels.txt", b"1")
    cli(stack, home, "dataset", "create", "zipped", "--upload", str(good), "--extract")
    files = admin.call(
        admin.repos.ListVersionFiles,
        pb.ListVersionFilesRequest(kind=pb.REPO_KIND_DATASET, repo="zipped", number=1),
    )
    assert [f.path for f in files.files] == ["images/1.png", "labels.txt"]

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("ok.txt", b"fine")
        z.writestr("../../escaped.txt", b"gotcha")
    failed = cli(stack, home, "dataset", "push", "zipped", str(evil), "--extract", check=False)
    assert failed.returncode == 1
    assert "../../escaped.txt: entry escapes the extraction directory" in failed.stderr
    assert "nothing was uploaded" in failed.stderr
    latest = admin.call(admin.repos.GetRepo, pb.GetRepoRequest(kind=pb.REPO_KIND_DATASET, name="zipped"))
    assert latest.latest_version == 1


def test_sources_are_validated_and_referenced_ones_have_no_versions(
    stack: Stack, home: Path, tmp_path: Path
) -> None:
    loopback = cli(
        stack,
        home,
        "dataset",
        "create",
        "local",
        "--source",
        "url",
        "--url",
        "http://127.0.0.1:9/data.zip",
        check=False,
    )
    assert loopback.returncode == 1 and "INVALID_ARGUMENT" in loopback.stderr
    assert "127.0.0.1 is a loopback address" in loopback.stderr

    cli(
        stack,
        home,
        "dataset",
        "create",
        "logs",
        "--no-versioned",
        "--source",
        "hostpath",
        "--path",
        "/data/logs",
    )
    shown = cli(stack, home, "dataset", "get", "logs").stdout
    assert "hostpath (referenced)" in shown and "/data/logs" in shown
    tree = write_tree(tmp_path / "x", {"a": b"1"})
    pushed = cli(stack, home, "dataset", "push", "logs", str(tree), check=False)
    assert (
        pushed.returncode == 1 and "FAILED_PRECONDITION" in pushed.stderr and "not versioned" in pushed.stderr
    )

    code = cli(
        stack, home, "code", "create", "train", "--git", "https://github.com/acme/train/tree/main/src"
    ).stdout
    assert "Created code train" in code
    shown = cli(stack, home, "code", "get", "train").stdout
    assert "https://github.com/acme/train.git" in shown and "main" in shown and "src" in shown


def test_a_placeholder_model_compare_and_move(
    stack: Stack, home: Path, admin: Client, tmp_path: Path
) -> None:
    cli(stack, home, "project", "create", "vision-models")
    cli(stack, home, "model", "create", "mnist", "--source", "none")
    cli(stack, home, "model", "push", "mnist", str(write_tree(tmp_path / "m", {"model.pt": b"weights"})))
    compared = cli(stack, home, "model", "compare", "mnist@1", "mnist@2").stdout
    assert "model.pt" in compared and "added" in compared

    cli(stack, home, "repo", "move", "mnist", "--project", "vision-models")
    listed = cli(stack, home, "model", "list", "--project", "vision-models").stdout
    assert "mnist" in listed
    missing = cli(stack, home, "repo", "move", "mnist", "--project", "nope", check=False)
    assert missing.returncode == 1 and "project 'nope' not found" in missing.stderr


def test_two_writers_of_the_next_version_get_one_clean_conflict(admin: Client) -> None:
    admin.call(
        admin.repos.CreateRepo,
        pb.CreateRepoRequest(
            repo=pb.Repo(kind=pb.REPO_KIND_DATASET, name="contended", source=pb.Source(none=pb.NoSource()))
        ),
    )
    digests = [_put_manifest(admin, f"file-{i}".encode()) for i in range(2)]

    def create(digest: str) -> str:
        try:
            version = admin.call(
                admin.repos.CreateVersion,
                pb.CreateVersionRequest(
                    kind=pb.REPO_KIND_DATASET, repo="contended", manifest_digest=digest, parent_version=1
                ),
            )
        except ClientError as exc:
            return exc.code
        return f"v{version.number}"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(create, digests))
    assert outcomes == ["ABORTED", "v2"]


def _put_manifest(client: Client, data: bytes) -> str:
    base = transfer.blob_url(client)
    digest = hashlib.sha256(data).hexdigest()
    manifest = Manifest((ManifestEntry("f", len(data), digest, 0o644),))
    for body in (data, manifest.encode()):
        _put(base, client.credentials.token, hashlib.sha256(body).hexdigest(), body)
    return manifest.digest


def _put(base: str, token: str, digest: str, body: bytes) -> int:
    request = urllib.request.Request(
        f"{base}/{digest}", data=body, method="PUT", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_the_blob_edge_checks_tokens_and_digests(admin: Client) -> None:
    base = transfer.blob_url(admin)
    body = b"some bytes"
    right = hashlib.sha256(body).hexdigest()
    assert _put(base, "sy_nobody.nothing", right, body) == 401
    assert _put(base, admin.credentials.token, hashlib.sha256(b"other").hexdigest(), body) == 400
    assert _put(base, admin.credentials.token, "not-a-digest", body) == 400
    assert _put(base, admin.credentials.token, right, body) == 201
    request = urllib.request.Request(
        f"{base}/{right}", headers={"Authorization": f"Bearer {admin.credentials.token}", "Range": "bytes=5-"}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert (reply.status, reply.read()) == (206, b"bytes")


def test_repos_through_the_json_api(stack: Stack, admin: Client) -> None:
    admin.call(
        admin.repos.CreateRepo,
        pb.CreateRepoRequest(
            repo=pb.Repo(kind=pb.REPO_KIND_FEATURESET, name="fs1", source=pb.Source(none=pb.NoSource()))
        ),
    )
    request = urllib.request.Request(
        f"{stack.http_url}/api/shipyard.repo.v1.RepoService/ListRepos",
        data=json.dumps({"kind": "REPO_KIND_FEATURESET"}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {admin.credentials.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        repos = json.load(io.TextIOWrapper(reply))["repos"]
    assert [(r["name"], r["latestVersion"], r["access"]) for r in repos] == [("fs1", "1", "placeholder")]


def test_a_run_completed_event_makes_exactly_one_output_version(stack: Stack, admin: Client) -> None:
    admin.call(
        admin.repos.CreateRepo,
        pb.CreateRepoRequest(
            repo=pb.Repo(kind=pb.REPO_KIND_MODEL, name="run-output", source=pb.Source(none=pb.NoSource()))
        ),
    )
    digest = _put_manifest(admin, b"trained weights")
    completed = events_pb2.RunCompleted(
        run_id="run-42",
        name="train",
        outputs=[common_pb2.RunOutput(repo_kind="model", repo="run-output", manifest_digest=digest)],
        metrics={"accuracy": 0.9},
        actor=common_pb2.Actor(user="admin", roles=["operator"]),
    )
    first = new_event(completed, source="shipyard/test", subject="runs/run-42")
    second = new_event(
        completed, source="shipyard/test", subject="runs/run-42"
    )  # another id: not deduplicated

    for event in (first, first, second):
        asyncio.run(publish_as_owner(stack, event))

    def versions() -> list[pb.Version]:
        return list(
            admin.call(
                admin.repos.ListVersions, pb.ListVersionsRequest(kind=pb.REPO_KIND_MODEL, repo="run-output")
            ).versions
        )

    wait_for(lambda: len(versions()) >= 2, 30, "the run's output version")
    # A later event proves both copies were handled before it: the marker comes after them.
    marker = new_event(
        events_pb2.RunCompleted(run_id="run-43", outputs=completed.outputs, actor=completed.actor),
        source="shipyard/test",
        subject="runs/run-43",
    )
    asyncio.run(publish_as_owner(stack, marker))
    wait_for(lambda: len(versions()) == 3, 30, "the marker run's version")
    made = [(v.number, v.produced_by_run) for v in versions()]
    assert made == [(3, "run-43"), (2, "run-42"), (1, "")]
    assert versions()[1].metrics["accuracy"] == 0.9


def test_a_featureset_from_a_specification(stack: Stack, home: Path, admin: Client, tmp_path: Path) -> None:
    spec = tmp_path / "featurespec.yaml"
    spec.write_text(
        "features:\n  - {name: age, type: int64}\n  - {name: bmi, type: float64, derived: w / h}\n"
    )
    out = cli(stack, home, "featureset", "create", "fs-spec", "--spec", str(spec)).stdout
    assert "Version 1 of fs-spec: feature specification: 2 features, 2 selected" in out
    files = admin.call(
        admin.repos.ListVersionFiles,
        pb.ListVersionFilesRequest(kind=pb.REPO_KIND_FEATURESET, repo="fs-spec", number=1),
    )
    assert [f.path for f in files.files] == ["featurespec.yaml"]
    spec.write_text("features:\n  - {name: age, type: int128}\n")
    bad = cli(stack, home, "featureset", "set-spec", "fs-spec", str(spec), check=False)
    assert bad.returncode == 1 and "features[0].type: must be one of" in bad.stderr


def test_an_interrupted_upload_leaves_nothing_half_written_and_resumes(admin: Client, tmp_path: Path) -> None:
    admin.call(
        admin.repos.CreateRepo,
        pb.CreateRepoRequest(
            repo=pb.Repo(
                kind=pb.REPO_KIND_DATASET,
                name="resumed",
                source=pb.Source(upload=pb.UploadSource(filename="d")),
            )
        ),
    )
    root = write_tree(tmp_path / "d", {f"part-{i}.bin": bytes([i]) * (50_000 + i) for i in range(6)})
    manifest = transfer.scan_tree(root)
    base, token = transfer.blob_url(admin), admin.credentials.token

    # The connection drops half-way through one blob: nothing of it is kept.
    first = manifest.entries[0]
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port)) as raw:
        raw.sendall(
            (
                f"PUT {parts.path}/{first.sha256} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {token}\r\nContent-Length: {first.size}\r\n\r\n"
            ).encode()
            + (root / first.path).read_bytes()[: first.size // 2]
        )
    head = urllib.request.Request(
        f"{base}/{first.sha256}", method="HEAD", headers={"Authorization": f"Bearer {token}"}
    )
    with pytest.raises(urllib.error.HTTPError) as absent:
        urllib.request.urlopen(head, timeout=30)
    assert absent.value.code == 404

    # Half the files went up before the push was killed: no version exists yet.
    for entry in manifest.entries[:3]:
        assert _put(base, token, entry.sha256, (root / entry.path).read_bytes()) == 201
    repo = admin.call(admin.repos.GetRepo, pb.GetRepoRequest(kind=pb.REPO_KIND_DATASET, name="resumed"))
    assert repo.latest_version == 0

    # Pushing again sends only what is missing.
    pushed = transfer.push(admin, pb.REPO_KIND_DATASET, "resumed", root, manifest)
    assert (pushed.version.number, pushed.uploaded_blobs) == (1, 3)
