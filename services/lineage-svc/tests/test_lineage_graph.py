"""The provenance graph: projector, walks, dashboard, OpenLineage export and digest — each test
runs lineage-svc as production composes it, on the kit's in-memory store and on SQLite (one suite,
every backend, so the in-memory store cannot drift from the real thing)."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from google.protobuf import json_format
from lineage_events import (
    received,
    repo_created,
    repo_renamed,
    run_failed,
    run_started,
    training_story,
    training_submitted,
    version_created,
    version_deleted,
)
from lineage_world import Units, composed, memory_units
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.serde import Serde
from shipyard_lineage.adapters.openlineage import run_uuid, uri_of_git
from shipyard_lineage.adapters.store import COLLECTIONS, LineageUnitOfWork
from shipyard_lineage.app.lineage import LineageGraph
from shipyard_lineage.bootstrap import Composed
from shipyard_lineage.domain.graph import Direction
from shipyard_lineage.entrypoints.grpc_api import dashboard_to_proto

from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.serving.v1 import serving_pb2
from shipyard.kit.errors import InvalidArgument, NotFound
from shipyard.kit.events import Event
from shipyard.kit.store.unit_of_work import StoreUnitOfWorkFactory
from shipyard.kit.testing import sqlite_store

SCIENTIST = frozenset({"data-scientist"})
ENGINEER = frozenset({"ml-engineer"})


@pytest.fixture(params=["memory", "sqlite"])
async def units(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Units]:
    if request.param == "memory":
        yield await memory_units()
        return
    async with sqlite_store(tmp_path / "lineage.db", COLLECTIONS) as store:
        yield StoreUnitOfWorkFactory(store, None, LineageUnitOfWork)


async def apply(world: Composed, *batches: list[Event]) -> None:
    for batch in batches:
        await world.projector.apply(batch)


def labels(graph: LineageGraph) -> set[str]:
    return {view.label for view in graph.nodes.values()}


def edges(graph: LineageGraph) -> set[tuple[str, str, str]]:
    names = {node_id: view.label for node_id, view in graph.nodes.items()}
    return {(names[e.source], e.relation, names[e.target]) for e in graph.edges}


# --- walks ---------------------------------------------------------------------------------

async def test_upstream_of_a_model_version_is_its_run_code_data_and_image(world: Composed) -> None:
    await apply(world, training_story())
    graph = await world.walks.lineage(SCIENTIST, "model", "mnist@1", Direction.UPSTREAM)
    assert edges(graph) == {("train-1", "produced", "mnist@1"), ("digits@1", "used", "train-1"),
                            ("train@1a2b3c4", "used", "train-1"), ("python:3.12", "used", "train-1")}
    run = graph.nodes["run:id-train-1"].node
    assert (run.status, run.fields["hp.lr"], run.fields["metric.accuracy"], run.gpus) == (
        "complete", "0.1", "0.97", 1)
    # What it logged through MLflow.
    logged = (run.fields["param.optimizer"], run.fields["tag.team"], run.fields["artifacts"])
    assert logged == ("adam", "cv", "2")
    image = graph.nodes["image:python:3.12"].node
    assert (image.fields["url"], image.fields["digest"]) == ("docker.io/library/python:3.12",
                                                            "sha256-of-python:3.12")
    assert not graph.truncated


async def test_a_model_version_made_by_a_study_shows_the_study_and_its_best_trial(world: Composed) -> None:
    study = [
        received(events_pb2.StudyStarted(study="train-1", run_id="id-train-1", project="vision",
                                         algorithm="tpe", objective_metric="accuracy",
                                         objective_type="maximize"), "studies/train-1", "vision", 10),
        received(events_pb2.TrialCompleted(study="train-1", name="train-1-t002", run_id="id-train-1-t002",
                                           project="vision", number=2, state="Succeeded"),
                 "studies/train-1", "vision", 11),
        received(events_pb2.StudyCompleted(study="train-1", run_id="id-train-1", project="vision",
                                           status="Succeeded", reason="ExperimentMaxTrialsReached",
                                           best_trial="train-1-t002", best_assignment={"lr": "0.02"},
                                           best_objective=0.97, trials=4), "studies/train-1", "vision", 12),
    ]
    await apply(world, training_story(), study)
    graph = await world.walks.lineage(SCIENTIST, "model", "mnist@1", Direction.UPSTREAM)
    fields = graph.nodes["run:id-train-1"].node.fields
    assert (fields["study"], fields["algorithm"], fields["objective"]) == (
        "train-1", "tpe", "maximize accuracy")
    assert (fields["study_status"], fields["best_trial"], fields["best.lr"]) == (
        "Succeeded", "train-1-t002", "0.02")
    # Raising its maxTrialCount resumes it: its run shows running again until the study ends anew.
    await apply(world, [received(events_pb2.StudyUpdated(
        study="train-1", run_id="id-train-1", project="vision", changed_fields=["max_trial_count"],
        parallel_trial_count=2, max_trial_count=8, max_failed_trial_count=3, resumed=True),
        "studies/train-1", "vision", 13)])
    graph = await world.walks.lineage(SCIENTIST, "model", "mnist@1", Direction.UPSTREAM)
    run = graph.nodes["run:id-train-1"]
    assert (run.node.status, run.node.fields["study_status"], run.node.fields["max_trial_count"]) == (
        "running", "Running", "8")


async def test_downstream_of_a_dataset_reaches_the_catalog_only_for_who_may_see_it(
        world: Composed) -> None:
    await apply(world, training_story())
    queries = world.walks
    engineer = await queries.lineage(ENGINEER, "dataset", "digits@1", Direction.DOWNSTREAM)
    assert edges(engineer) == {("digits@1", "used", "train-1"), ("train-1", "produced", "mnist@1"),
                               ("mnist@1", "published_as", "mnist-prod")}
    scientist = await queries.lineage(SCIENTIST, "dataset", "digits@1", Direction.DOWNSTREAM)
    assert "mnist-prod" not in labels(scientist)
    with pytest.raises(NotFound):
        await queries.lineage(SCIENTIST, "published", "mnist-prod", Direction.UPSTREAM)
    assert "train-1" in labels(await queries.lineage(ENGINEER, "published", "mnist-prod", Direction.UPSTREAM))


async def test_both_directions_do_not_wander_into_siblings(world: Composed) -> None:
    sibling = training_submitted("train-2", [("dataset", "digits", 1)], sequence=10)
    await apply(world, training_story(), [sibling])
    graph = await world.walks.lineage(SCIENTIST, "model", "mnist@1", Direction.BOTH)
    assert "train-2" not in labels(graph)  # a sibling: it used mnist@1's input, not mnist@1
    downstream = await world.walks.lineage(SCIENTIST, "dataset", "digits", Direction.DOWNSTREAM)
    assert "train-2" in labels(downstream)


async def test_a_chain_deeper_than_the_depth_is_cut_and_says_so(world: Composed) -> None:
    events = [repo_created("dataset", "stage", sequence=1),
              version_created("dataset", "stage", 1, sequence=2)]
    seq = 3
    for step in range(1, 6):  # stage@1 -> run-1 -> stage@2 -> run-2 -> ... -> stage@6
        events += [training_submitted(f"run-{step}", [("dataset", "stage", step)], sequence=seq),
                   version_created("dataset", "stage", step + 1, run=f"run-{step}", sequence=seq + 1)]
        seq += 2
    await apply(world, events)
    queries = world.walks
    deep = await queries.lineage(SCIENTIST, "dataset", "stage@6", Direction.UPSTREAM, depth=50)
    assert "stage@1" in labels(deep) and not deep.truncated
    shallow = await queries.lineage(SCIENTIST, "dataset", "stage@6", Direction.UPSTREAM, depth=2)
    assert labels(shallow) >= {"stage@6", "run-5", "stage@5"} and "run-4" not in labels(shallow)
    assert shallow.truncated


async def test_names_resolve_by_run_id_latest_version_and_commit_prefix(world: Composed) -> None:
    await apply(world, training_story(), [version_created("dataset", "digits", 2, sequence=10)])
    queries = world.walks
    by_id = await queries.lineage(SCIENTIST, "run", "id-train-1", Direction.UPSTREAM)
    assert by_id.root == "run:id-train-1"
    assert (await queries.lineage(SCIENTIST, "run", "train-1", Direction.UPSTREAM)).root == "run:id-train-1"
    latest = await queries.lineage(SCIENTIST, "dataset", "digits", Direction.UPSTREAM)
    assert latest.nodes[latest.root].label == "digits@2"
    code = await queries.lineage(SCIENTIST, "code", "train@1a2b", Direction.DOWNSTREAM)
    assert "mnist@1" in labels(code)


@pytest.mark.parametrize(("kind", "name", "error", "message"), [
    ("widget", "x", InvalidArgument, "kind"),
    ("run", "", InvalidArgument, "name"),
    ("model", "mnist@three", InvalidArgument, "number"),
    ("model", "mnist@9", NotFound, "mnist@9"),
    ("dataset", "nothing", NotFound, "nothing"),
    ("run", "never-ran", NotFound, "never-ran"),
])
async def test_bad_or_unknown_names_are_clear_errors(world: Composed, kind: str, name: str,
                                                     error: type[Exception], message: str) -> None:
    await apply(world, training_story())
    with pytest.raises(error, match=message):
        await world.walks.lineage(SCIENTIST, kind, name, Direction.UPSTREAM)


async def test_depth_out_of_range_is_invalid(world: Composed) -> None:
    await apply(world, training_story())
    with pytest.raises(InvalidArgument, match="depth"):
        await world.walks.lineage(SCIENTIST, "model", "mnist@1", Direction.UPSTREAM, depth=51)


async def test_a_renamed_repo_is_found_and_shown_by_its_new_name(world: Composed) -> None:
    await apply(world, training_story(), [repo_renamed("dataset", "digits", "numerals", sequence=10)])
    graph = await world.walks.lineage(SCIENTIST, "dataset", "numerals@1", Direction.DOWNSTREAM)
    assert graph.nodes[graph.root].label == "numerals@1"
    assert "numerals@1" in labels(await world.walks.lineage(SCIENTIST, "model", "mnist@1",
                                                            Direction.UPSTREAM))


async def test_a_deleted_version_stays_in_the_history_marked_deleted(world: Composed) -> None:
    await apply(world, training_story(), [version_deleted("dataset", "digits", 1, sequence=10)])
    graph = await world.walks.lineage(SCIENTIST, "model", "mnist@1", Direction.UPSTREAM)
    digits = next(v for v in graph.nodes.values() if v.label == "digits@1")
    assert digits.deleted


# --- order and duplicates -----------------------------------------------------------------

async def test_any_order_and_any_duplicates_make_the_same_graph(world: Composed) -> None:
    story = [*training_story(), run_failed("train-1", sequence=10, exit_code=3)]
    reference = composed(await memory_units())
    await apply(reference, story)
    expected = await reference.projections.digest()
    shuffled = [*story, *random.Random(7).sample(story, 4)]  # four duplicates
    random.Random(11).shuffle(shuffled)
    await apply(world, *[[event] for event in shuffled])
    assert await world.projections.digest() == expected
    run = await world.walks.lineage(SCIENTIST, "run", "train-1", Direction.UPSTREAM)
    assert run.nodes[run.root].node.status == "failed"  # the latest event wins, whatever the arrival order


async def test_a_version_produced_before_its_run_is_known_joins_the_run_later(
        world: Composed) -> None:
    await apply(world, [version_created("model", "mnist", 1, run="train-1", sequence=7)])
    early = await world.walks.lineage(SCIENTIST, "run", "id-train-1", Direction.DOWNSTREAM)
    assert early.nodes[early.root].node.status == ""
    await apply(world, [repo_created("model", "mnist", sequence=3),
                        training_submitted("train-1", [], sequence=4)])
    graph = await world.walks.lineage(SCIENTIST, "model", "mnist@1", Direction.UPSTREAM)
    assert graph.nodes["run:id-train-1"].node.status == "queued"
    assert graph.nodes["run:id-train-1"].label == "train-1"


async def test_rebuild_clears_and_the_replay_makes_the_same_digest(world: Composed, units: Units) -> None:
    story = training_story()
    await apply(world, story)
    before = await world.projections.status(with_digest=True)
    assert (before.last_sequence, before.nodes, before.activities) == (9, 6, 9)

    async def replay(reset: Any) -> None:
        await reset()
        emptied = await world.projections.status(with_digest=True)
        assert (emptied.nodes, emptied.edges, emptied.activities, emptied.last_sequence) == (0, 0, 0, 0)
        await apply(world, story[:4], story[4:])

    await composed(units, replay).projections.rebuild()
    after = await world.projections.status(with_digest=True)
    assert (after.digest, after.nodes, after.edges, after.activities) == (
        before.digest, before.nodes, before.edges, before.activities)


# --- dashboard ------------------------------------------------------------------------------

async def test_dashboard_counts_runs_gpus_repos_and_the_catalog(world: Composed) -> None:
    await apply(world, training_story(), [
        training_submitted("train-2", [], sequence=10, gpus=2),
        run_started("train-2", sequence=11),
        training_submitted("waiting", [], sequence=12, gpus=4),
        training_submitted("elsewhere", [], project="audio", sequence=13, gpus=1),
        run_started("elsewhere", project="audio", sequence=14),
        training_submitted("broken", [], sequence=15),
        run_failed("broken", sequence=16, exit_code=0),
    ])
    queries = world.dashboard
    everything = await queries.dashboard(ENGINEER, "")
    assert everything.runs_by_status == {"queued": 1, "running": 2, "complete": 1, "failed": 0, "error": 1,
                                         "stopped": 0}
    assert (everything.gpus_in_use, everything.gpus_queued) == (3, 4)
    assert everything.repos_by_kind == {"code": 1, "dataset": 1, "featureset": 0, "model": 1}
    assert [n.name for n in everything.recent_jobs][:3] == ["broken", "elsewhere", "waiting"]
    assert everything.published_models == 1
    vision = await queries.dashboard(SCIENTIST, "vision", recent=2)
    assert vision.runs_by_status["running"] == 1 and vision.gpus_in_use == 2
    assert [n.name for n in vision.recent_jobs] == ["broken", "waiting"]
    # A data scientist does not see the catalog: its figures are absent, not 0.
    assert vision.published_models is None and vision.deployments is None
    with pytest.raises(InvalidArgument, match="recent"):
        await queries.dashboard(SCIENTIST, "", recent=101)


def _deployment_event(name: str, status: int, sequence: int, created: bool = True) -> Event:
    deployment = serving_pb2.Deployment(name=name, project="vision", catalog_entry="mnist-prod",
                                        model=serving_pb2.ModelRef(model="mnist", version=1),
                                        status=status)  # type: ignore[arg-type]
    data = (events_pb2.DeploymentCreated(deployment=deployment) if created
            else events_pb2.DeploymentUpdated(deployment=deployment))
    return received(data, f"deployments/{name}", "vision", sequence)


async def test_dashboard_counts_live_deployments_whatever_their_status_after_a_replay_too(
        world: Composed, units: Units) -> None:
    events = [*training_story(),
              _deployment_event("live", serving_pb2.SERVING_STATUS_QUEUED, 10),
              _deployment_event("live", serving_pb2.SERVING_STATUS_RUNNING, 11, created=False),
              _deployment_event("canary", serving_pb2.SERVING_STATUS_UPDATING, 12),
              _deployment_event("old", serving_pb2.SERVING_STATUS_RUNNING, 13),
              received(events_pb2.DeploymentDeleted(name="old", project="vision"), "deployments/old",
                       "vision", 14)]
    await apply(world, events)
    for scope in ("", "vision"):
        view = await world.dashboard.dashboard(ENGINEER, scope)
        assert (view.deployments, view.published_models) == (2, 1), scope

    async def replay(reset: Any) -> None:  # what a restart with a rebuild does: the stream again
        await reset()
        await apply(world, events)

    await composed(units, replay).projections.rebuild()
    assert (await world.dashboard.dashboard(ENGINEER, "")).deployments == 2


async def test_dashboard_on_the_wire_lists_its_figures_in_a_fixed_order_and_leaves_out_hidden_ones(
        world: Composed) -> None:
    await apply(world, training_story())
    engineer = dashboard_to_proto(await world.dashboard.dashboard(ENGINEER, ""))
    assert [(c.name, c.count) for c in engineer.run_counts] == [
        ("queued", 0), ("running", 0), ("complete", 1), ("failed", 0), ("error", 0), ("stopped", 0)]
    assert [(c.name, c.count) for c in engineer.repo_counts] == [
        ("code", 1), ("dataset", 1), ("featureset", 0), ("model", 1)]
    assert engineer.HasField("deployments") and engineer.deployments == 0
    assert engineer.published_models == 1
    scientist = dashboard_to_proto(await world.dashboard.dashboard(SCIENTIST, ""))
    assert not scientist.HasField("deployments") and not scientist.HasField("published_models")
    assert "deployments" not in json_format.MessageToDict(scientist)


# --- OpenLineage ----------------------------------------------------------------------------

def _rebuilt(doc: dict[str, Any]) -> RunEvent:
    """The event rebuilt with the OpenLineage client's models (their validators run)."""
    def datasets(kind: type[Any], items: list[dict[str, Any]]) -> list[Any]:
        return [kind(d["namespace"], d["name"]) for d in items]

    return RunEvent(eventType=RunState(doc["eventType"]), eventTime=doc["eventTime"],
                    run=Run(runId=doc["run"]["runId"]),
                    job=Job(doc["job"]["namespace"], doc["job"]["name"]),
                    inputs=datasets(InputDataset, doc["inputs"]),
                    outputs=datasets(OutputDataset, doc["outputs"]), producer=doc["producer"])


async def test_openlineage_export_has_start_and_complete_with_inputs_and_outputs(
        world: Composed) -> None:
    await apply(world, training_story(), [training_submitted("queued-only", [], sequence=10)])
    events, token = await world.export.page("", 0, "", "")
    assert token == ""
    docs = [json.loads(e) for e in events]
    assert [d["eventType"] for d in docs] == ["START", "COMPLETE"]  # the queued run has not started
    start, complete = docs
    assert start["run"]["runId"] == complete["run"]["runId"] == run_uuid("id-train-1")
    assert start["job"] == complete["job"] | {"facets": start["job"]["facets"]}
    inputs = [(i["namespace"], i["name"], i["facets"]["version"]["datasetVersion"])
              for i in complete["inputs"]]
    assert inputs == [("shipyard", "datasets/digits", "1")]
    assert [(o["name"], o["facets"]["version"]["datasetVersion"]) for o in complete["outputs"]] == [
        ("models/mnist", "1")]
    location = complete["job"]["facets"]["sourceCodeLocation"]
    # The facet's schema: url and repoUrl are `format: uri` (absolute, with a scheme), the repo's URL.
    remote = "ssh://git@github.com/acme/train.git"
    assert location == {"_producer": location["_producer"], "_schemaURL": location["_schemaURL"],
                        "type": "git", "url": remote, "repoUrl": remote, "path": "src",
                        "version": "1a2b3c4d5e"}
    assert urlsplit(location["url"]).scheme and urlsplit(location["url"]).netloc
    assert complete["run"]["facets"]["executionParameters"]["parameters"] == [{"key": "lr", "value": "0.1"}]
    for doc in docs:
        rebuilt = _rebuilt(doc)
        assert json.loads(Serde.to_json(rebuilt))["run"]["runId"] == doc["run"]["runId"]


async def test_openlineage_export_pages_and_reports_failures(world: Composed) -> None:
    events: list[Event] = []
    for n in range(5):
        events += [training_submitted(f"run-{n}", [], sequence=3 * n + 1),
                   run_started(f"run-{n}", sequence=3 * n + 2), run_failed(f"run-{n}", sequence=3 * n + 3)]
    await apply(world, events)
    export = world.export
    seen: list[dict[str, Any]] = []
    token = ""
    while True:
        page, token = await export.page("vision", 2, token, "lab")
        seen += [json.loads(e) for e in page]
        if not token:
            break
    assert [d["job"]["name"] for d in seen if d["eventType"] == "FAIL"] == [f"run-{n}" for n in range(5)]
    assert {d["job"]["namespace"] for d in seen} == {"lab"}
    assert all(d["run"]["facets"]["errorMessage"]["message"] == "the command exited with 3"
               for d in seen if d["eventType"] == "FAIL")
    with pytest.raises(InvalidArgument, match="page_token"):
        await export.page("", 0, "not-a-token", "")


async def test_a_deployment_is_downstream_of_the_model_version_it_serves(world: Composed) -> None:
    deployment = serving_pb2.Deployment(name="mnist-live", project="vision", catalog_entry="mnist-prod",
                                        model=serving_pb2.ModelRef(model="mnist", version=1),
                                        status=serving_pb2.SERVING_STATUS_RUNNING)
    created = received(events_pb2.DeploymentCreated(deployment=deployment), "deployments/mnist-live",
                       "vision", 20)
    await apply(world, training_story(), [created])
    graph = await world.walks.lineage(ENGINEER, "dataset", "digits@1", Direction.DOWNSTREAM)
    assert ("mnist-prod", "deployed_as", "mnist-live") in edges(graph)
    assert graph.nodes["deployment:mnist-live"].node.status == "running"
    scientist = await world.walks.lineage(SCIENTIST, "model", "mnist@1", Direction.DOWNSTREAM)
    assert "mnist-live" not in labels(scientist)
    gone = received(events_pb2.DeploymentDeleted(name="mnist-live", project="vision"),
                    "deployments/mnist-live", "vision", 21)
    await apply(world, [gone])
    again = await world.walks.lineage(ENGINEER, "deployment", "mnist-live", Direction.UPSTREAM)
    assert again.nodes[again.root].deleted and "mnist@1" in labels(again)


@pytest.mark.parametrize(("remote", "uri"), [
    ("git@github.com:acme/train.git", "ssh://git@github.com/acme/train.git"),
    ("github.com:acme/train", "ssh://github.com/acme/train"),
    ("https://github.com/acme/train", "https://github.com/acme/train"),
    ("ssh://git@host:2222/x.git", "ssh://git@host:2222/x.git"),
    ("file:///srv/git/train", "file:///srv/git/train"),
])
def test_a_git_remote_becomes_a_uri_for_openlineage(remote: str, uri: str) -> None:
    assert uri_of_git(remote) == uri
