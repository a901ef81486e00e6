"""Run events in repo-svc: outputs become versions exactly once; inputs remember their runs."""

from __future__ import annotations

import hashlib

from repo_fakes import ALICE, fake_repos
from shipyard_repo.app.run_events import RunEvents
from shipyard_repo.domain.repos import RepoFields
from shipyard_repo.domain.sources import NoSource, RepoKind

from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.events import new_event
from shipyard.kit.manifest import Manifest, ManifestEntry


def _completed(run_id: str, digest: str, repo: str = "mnist") -> events_pb2.RunCompleted:
    return events_pb2.RunCompleted(
        run_id=run_id,
        name="train-1",
        outputs=[common_pb2.RunOutput(repo_kind="model", repo=repo, manifest_digest=digest)],
        metrics={"accuracy": 0.93},
        hyperparameters={"lr": "0.01"},
        actor=common_pb2.Actor(user="alice", roles=["data-scientist"]),
    )


async def test_a_completed_run_makes_one_version_however_often_it_arrives() -> None:
    repos, versions, uow, manifests = fake_repos()
    await repos.create(ALICE, RepoFields(kind=RepoKind.MODEL, name="mnist", source=NoSource()))
    data = b"weights"
    digest = manifests.upload(
        Manifest((ManifestEntry("model.pt", 7, hashlib.sha256(data).hexdigest(), 0o644),))
    )
    handler = RunEvents(uow, versions)
    event = new_event(_completed("run-1", digest), source="test", subject="runs/run-1")
    again = new_event(_completed("run-1", digest), source="test", subject="runs/run-1")  # a new event id

    await handler.apply([event])
    await handler.apply([event, again])

    _, latest = await versions.get(RepoKind.MODEL, "mnist", 0)
    assert (latest.number, latest.produced_by_run, latest.metrics, latest.params) == (
        2,
        "run-1",
        {"accuracy": 0.93},
        {"lr": "0.01"},
    )
    created = [e for e in uow.published if isinstance(e.data, events_pb2.VersionCreated)]
    assert [e.data.version for e in created] == [1, 2]  # the placeholder, then the run's one


async def test_an_output_that_cannot_become_a_version_is_skipped_not_retried_forever() -> None:
    _, versions, uow, _ = fake_repos()
    handler = RunEvents(uow, versions)
    await handler.apply([new_event(_completed("run-2", "a" * 64, repo="missing"), source="t", subject="s")])
    assert uow.versions.rows == {}


async def test_a_submitted_run_is_listed_on_the_versions_it_reads() -> None:
    repos, versions, uow, _ = fake_repos()
    await repos.create(ALICE, RepoFields(kind=RepoKind.DATASET, name="digits", source=NoSource()))
    submitted = events_pb2.RunSubmitted(
        run_id="run-9", inputs=[common_pb2.VersionRef(repo="digits", version=1, repo_kind="dataset")]
    )
    handler = RunEvents(uow, versions)
    for _ in range(2):
        await handler.apply([new_event(submitted, source="t", subject="runs/run-9")])
    _, version = await versions.get(RepoKind.DATASET, "digits", 1)
    assert version.used_by_runs == ("run-9",)
