"""In-memory fakes of lineage-svc's ports (ActivityFeed and the projection unit of work),
plus helpers that build events the way producers do."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from google.protobuf.message import Message
from shipyard_lineage.app.ports import ActivityFeed, ActivityQuery, NodeQuery, ProvenanceGraph
from shipyard_lineage.domain.activity import Activity, about_catalog
from shipyard_lineage.domain.graph import Direction, EdgeFact, NodeState, RepoState

from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.repo.v1 import projects_pb2, repos_pb2
from shipyard.kit.events import Event, new_event


class StoreDown(Exception):
    """The fake store failing mid-batch."""


class FakeActivityFeed(ActivityFeed):
    """Activities in a list."""

    def __init__(self) -> None:
        self.rows: list[Activity] = []
        self.queries: list[ActivityQuery] = []
        self.fail_on: set[str] = set()  # event ids whose add() fails, to exercise rollback

    async def has(self, event_id: str) -> bool:
        return any(a.event_id == event_id for a in self.rows)

    async def add(self, activity: Activity) -> None:
        if activity.event_id in self.fail_on:
            raise StoreDown(f"cannot store activity {activity.event_id}")
        if await self.has(activity.event_id):
            raise AssertionError(f"activity {activity.event_id} added twice")  # a unique key in the store
        self.rows.append(activity)

    async def count(self) -> int:
        return len(self.rows)

    async def clear(self, limit: int) -> int:
        gone, self.rows = len(self.rows), []
        return gone

    async def list(self, query: ActivityQuery) -> list[Activity]:
        self.queries.append(query)
        found = [a for a in self.rows
                 if (not query.project or a.project == query.project)
                 and (not query.area or a.area == query.area)
                 and (not query.type or a.type == query.type)
                 and (not query.subject or a.subject == query.subject)
                 and (query.before_sequence is None or a.sequence < query.before_sequence)
                 and (query.since is None or a.time >= query.since)
                 and (query.catalog or not about_catalog(a.type))]
        found.sort(key=lambda a: (a.sequence, a.event_id), reverse=True)
        return found[:query.limit]


class FakeGraph(ProvenanceGraph):
    """The provenance graph in dicts; saved states are copies, as a store's documents are."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeState] = {}
        self.edge_set: dict[str, EdgeFact] = {}
        self.repos: dict[str, RepoState] = {}
        self.last = 0

    def snapshot(self) -> tuple[object, ...]:
        return copy.deepcopy((self.nodes, self.edge_set, self.repos, self.last))

    def restore(self, saved: tuple[object, ...]) -> None:
        self.nodes, self.edge_set, self.repos, self.last = saved  # type: ignore[assignment]

    async def node(self, node_id: str) -> NodeState | None:
        found = self.nodes.get(node_id)
        return copy.deepcopy(found) if found else None

    async def save_node(self, node: NodeState) -> None:
        node.rev += 1
        self.nodes[node.id] = copy.deepcopy(node)

    async def add_edge(self, edge: EdgeFact) -> bool:
        if edge.id in self.edge_set:
            return False
        self.edge_set[edge.id] = edge
        return True

    async def edges(self, node_id: str, direction: Direction) -> list[EdgeFact]:
        end = "target" if direction is Direction.UPSTREAM else "source"
        return sorted((e for e in self.edge_set.values() if getattr(e, end) == node_id), key=lambda e: e.id)

    async def repo(self, repo_id: str) -> RepoState | None:
        found = self.repos.get(repo_id)
        return copy.deepcopy(found) if found else None

    async def save_repo(self, repo: RepoState) -> None:
        repo.rev += 1
        self.repos[repo.id] = copy.deepcopy(repo)

    async def repos_named(self, kind: str, name: str) -> list[RepoState]:
        return sorted((copy.deepcopy(r) for r in self.repos.values() if r.kind == kind and r.name == name),
                      key=lambda r: r.first, reverse=True)

    async def find_nodes(self, query: NodeQuery) -> list[NodeState]:
        def key(n: NodeState) -> tuple[int, str]:
            return (getattr(n, query.order_by), n.id)

        found = [n for n in self.nodes.values() if n.kind == query.kind
                 and (query.project is None or n.project == query.project)
                 and (query.name is None or n.name == query.name)
                 and (query.ref is None or n.ref == query.ref)
                 and (query.status is None or (n.status == query.status and not n.deleted))]
        found.sort(key=key, reverse=query.descending)
        if query.after is not None:
            after = query.after
            found = [n for n in found if (key(n) < after if query.descending else key(n) > after)]
        return copy.deepcopy(found[:query.limit])

    async def count_nodes(self, kind: str, status: str = "", project: str | None = None) -> int:
        return sum(1 for n in self.nodes.values() if n.kind == kind and n.status == status and not n.deleted
                   and (project is None or n.project == project))

    async def count_repos(self, kind: str, project: str | None = None) -> int:
        return sum(1 for r in self.repos.values() if r.kind == kind and not r.deleted
                   and (project is None or r.project == project))

    async def sizes(self) -> tuple[int, int]:
        return len(self.nodes), len(self.edge_set)

    async def all_nodes(self, after: str, limit: int) -> list[NodeState]:
        return copy.deepcopy([self.nodes[k] for k in sorted(self.nodes) if k > after][:limit])

    async def all_edges(self, after: str, limit: int) -> list[EdgeFact]:
        return [self.edge_set[k] for k in sorted(self.edge_set) if k > after][:limit]

    async def cursor(self) -> int:
        return self.last

    async def set_cursor(self, sequence: int) -> None:
        self.last = max(self.last, sequence)

    async def clear(self, limit: int) -> int:
        gone = len(self.nodes) + len(self.edge_set) + len(self.repos) + (1 if self.last else 0)
        self.nodes, self.edge_set, self.repos, self.last = {}, {}, {}, 0
        return gone


@dataclass
class FakeProjections:
    """One unit of work over the fake projections."""

    activity: FakeActivityFeed
    graph: FakeGraph


@dataclass
class FakeProjectionsFactory:
    """Starts fake units of work; a block that raises leaves the projections as they were."""

    activity: FakeActivityFeed = field(default_factory=FakeActivityFeed)
    graph: FakeGraph = field(default_factory=FakeGraph)
    commits: int = 0
    rollbacks: int = 0

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[FakeProjections]:
        rows, saved = list(self.activity.rows), self.graph.snapshot()
        try:
            yield FakeProjections(self.activity, self.graph)
        except BaseException:
            self.activity.rows = rows
            self.graph.restore(saved)
            self.rollbacks += 1
            raise
        self.commits += 1


def actor(user: str, *roles: str) -> common_pb2.Actor:
    return common_pb2.Actor(user=user, roles=list(roles))


def project_created(name: str, user: str = "alice", sequence: int = 1) -> Event:
    """A ProjectCreated event as repo-svc emits it, received with stream ``sequence``."""
    data = events_pb2.ProjectCreated(project=projects_pb2.Project(id=f"id-{name}", name=name, owner=user),
                                     actor=actor(user, "data-scientist"))
    return received(data, f"projects/{name}", name, sequence)


def project_updated(name: str, changed: list[str], user: str = "alice", sequence: int = 1) -> Event:
    data = events_pb2.ProjectUpdated(project=projects_pb2.Project(id=f"id-{name}", name=name),
                                     changed_fields=changed, actor=actor(user, "data-scientist"))
    return received(data, f"projects/{name}", name, sequence)


def project_deleted(name: str, user: str = "alice", sequence: int = 1) -> Event:
    data = events_pb2.ProjectDeleted(project_id=f"id-{name}", name=name, actor=actor(user, "operator"))
    return received(data, f"projects/{name}", name, sequence)


def run_submitted(run: str, project: str, user: str = "alice", sequence: int = 1) -> Event:
    data = events_pb2.RunSubmitted(run_id=f"id-{run}", name=run, project=project, kind="training",
                                   actor=actor(user, "data-scientist"))
    return received(data, f"projects/{project}/runs/{run}", project, sequence)


def received(data: Message, subject: str, project: str, sequence: int) -> Event:
    """A new event as a consumer gets it: with its JetStream sequence set."""
    return replace(new_event(data, source="shipyard/test", subject=subject, project=project),
                   sequence=sequence)


# --- the events of a whole training story, as producers emit them ----------------------------

KIND_NUMBERS = {"code": 1, "dataset": 2, "featureset": 3, "model": 4}


def repo_created(kind: str, name: str, project: str = "vision", sequence: int = 1) -> Event:
    repo = repos_pb2.Repo(id=f"id-{kind}-{name}", kind=KIND_NUMBERS[kind], name=name, project=project)  # type: ignore[arg-type]
    return received(events_pb2.RepoCreated(repo=repo, actor=actor("alice", "data-scientist")),
                    f"repos/{kind}/{name}", project, sequence)


def repo_renamed(kind: str, old: str, new: str, project: str = "vision", sequence: int = 1) -> Event:
    repo = repos_pb2.Repo(id=f"id-{kind}-{old}", kind=KIND_NUMBERS[kind], name=new, project=project)  # type: ignore[arg-type]
    return received(events_pb2.RepoUpdated(repo=repo, changed_fields=["name"], previous_name=old,
                                           actor=actor("alice", "data-scientist")),
                    f"repos/{kind}/{new}", project, sequence)


def version_created(kind: str, repo: str, number: int, run: str = "", project: str = "vision",
                    sequence: int = 1, repo_id: str = "") -> Event:
    data = events_pb2.VersionCreated(repo_id=repo_id or f"id-{kind}-{repo}", repo=repo, repo_kind=kind,
                                     version=number, manifest_digest=f"sha256:{repo}-{number}",
                                     size_bytes=1000 * number, file_count=number,
                                     produced_by_run=f"id-{run}" if run else "", project=project,
                                     actor=actor("alice", "data-scientist"))
    return received(data, f"repos/{kind}/{repo}/versions/{number}", project, sequence)


def version_deleted(kind: str, repo: str, number: int, project: str = "vision", sequence: int = 1) -> Event:
    data = events_pb2.VersionDeleted(repo_id=f"id-{kind}-{repo}", repo=repo, repo_kind=kind, version=number,
                                     project=project, actor=actor("alice", "data-scientist"))
    return received(data, f"repos/{kind}/{repo}/versions/{number}", project, sequence)


def training_submitted(run: str, inputs: list[tuple[str, str, int]], project: str = "vision",
                       sequence: int = 1, gpus: int = 0, code: tuple[str, str] = ("train", "1a2b3c4d5e"),
                       image: str = "python:3.12", hyperparameters: dict[str, str] | None = None) -> Event:
    refs = [common_pb2.VersionRef(repo=name, version=number, repo_kind=kind, repo_id=f"id-{kind}-{name}",
                                  mount_path=f"/mnt/{name}") for kind, name, number in inputs]
    data = events_pb2.RunSubmitted(run_id=f"id-{run}", name=run, project=project, kind="training",
                                   code=common_pb2.CodeRef(repo=code[0], commit=code[1]), inputs=refs,
                                   hyperparameters=hyperparameters or {"lr": "0.1"}, image=image,
                                   command="python train.py", cluster="local", gpus=gpus,
                                   actor=actor("alice", "data-scientist"))
    return received(data, f"runs/{run}", project, sequence)


def run_started(run: str, project: str = "vision", sequence: int = 1) -> Event:
    data = events_pb2.RunStarted(run_id=f"id-{run}", name=run, project=project, kind="training",
                                 executor="local")
    return received(data, f"runs/{run}", project, sequence)


def run_completed(run: str, project: str = "vision", sequence: int = 1,
                  metrics: dict[str, float] | None = None) -> Event:
    data = events_pb2.RunCompleted(run_id=f"id-{run}", name=run, project=project, kind="training",
                                   metrics=metrics or {"accuracy": 0.97})
    return received(data, f"runs/{run}", project, sequence)


def run_failed(run: str, project: str = "vision", sequence: int = 1, exit_code: int = 3) -> Event:
    data = events_pb2.RunFailed(run_id=f"id-{run}", name=run, project=project, kind="training",
                                reason=f"the command exited with {exit_code}", exit_code=exit_code,
                                status="failed" if exit_code else "error")
    return received(data, f"runs/{run}", project, sequence)


def model_published(model: str, number: int, catalog_name: str, project: str = "vision",
                    sequence: int = 1) -> Event:
    data = events_pb2.ModelPublished(model=model, version=number, catalog_name=catalog_name, project=project,
                                     model_id=f"id-model-{model}", actor=actor("erin", "ml-engineer"))
    return received(data, f"catalog/{catalog_name}", project, sequence)


def training_story() -> list[Event]:
    """digits@1 uploaded; train-1 reads it and produces mnist@1, which is published; sequences 1-9."""
    return [
        repo_created("dataset", "digits", sequence=1),
        version_created("dataset", "digits", 1, sequence=2),
        repo_created("model", "mnist", sequence=3),
        training_submitted("train-1", [("dataset", "digits", 1)], sequence=4, gpus=1),
        run_started("train-1", sequence=5),
        run_completed("train-1", sequence=6),
        version_created("model", "mnist", 1, run="train-1", sequence=7),
        model_published("mnist", 1, "mnist-prod", sequence=8),
        repo_created("code", "train", sequence=9),
    ]
