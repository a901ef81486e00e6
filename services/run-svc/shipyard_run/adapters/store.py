"""Runs, metric points, configuration files, templates, request ids, artifacts and logged models in the
kit's document store."""

from __future__ import annotations

import base64
import builtins
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from shipyard.kit.outbox import OutboxRelay
from shipyard.kit.store.documents import DocumentRepository
from shipyard.kit.store.port import Collection, Contains, Document, DocumentStore, Page, Prefix, Transaction
from shipyard.kit.store.unit_of_work import REQUESTS, StoredRequests, StoreUnitOfWork, StoreUnitOfWorkFactory
from shipyard_run.app.events import translate
from shipyard_run.app.ports import RunFilter
from shipyard_run.domain.clusters import Cluster, ClusterKind
from shipyard_run.domain.image_builds import BuildRequest, BuildStatus, ImageBuild
from shipyard_run.domain.runs import (
    Distribution,
    Environment,
    Input,
    MetricPoint,
    OutputTarget,
    Run,
    RunKind,
    RunSpec,
    RunStatus,
    RunTemplate,
    TrialEnd,
    TrialOf,
)
from shipyard_run.domain.studies import Study, StudyEnd, StudyStatus
from shipyard_run.domain.tracking import ArtifactFile, LoggedModel, LoggedModelStatus
from shipyard_run.settings import SERVICE

RUNS = Collection("runs", unique=("name",), indexed=("status", "project", "sequence", "study"))
METRICS = Collection("metrics", indexed=("run_id",))
CONFIGS = Collection("configs")
TEMPLATES = Collection("templates", unique=("name",))
BUILDS = Collection("image_builds", indexed=("name", "status", "sequence"))
ARTIFACTS = Collection("artifacts", indexed=("owner",))
LOGGED_MODELS = Collection("logged_models", indexed=("run_id", "project"))
CLUSTERS = Collection("clusters")
STUDIES = Collection("studies", unique=("name",), indexed=("status", "project", "create_time"))
COLLECTIONS = (RUNS, METRICS, CONFIGS, REQUESTS, TEMPLATES, BUILDS, ARTIFACTS, LOGGED_MODELS, CLUSTERS,
               STUDIES)
SOURCE = f"shipyard/{SERVICE}"


def _time(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _parse(when: str | None) -> datetime | None:
    return None if when is None else datetime.fromisoformat(when)


def _run_doc(run: Run) -> Document:
    spec = _spec_doc(run.spec)
    return {
        "_id": run.id, "name": run.name, "sequence": run.sequence, "status": run.status.value,
        "kind": run.spec.kind.value, "project": run.spec.project, "tags": list(run.spec.tags),
        "owner": run.owner, "owner_roles": list(run.owner_roles), "spec": spec,
        "create_time": _time(run.create_time),
        "status_reason": run.status_reason, "exit_code": run.exit_code, "start_time": _time(run.start_time),
        "end_time": _time(run.end_time), "metrics": run.metrics, "notes": list(run.notes),
        "gpu_ids": list(run.gpu_ids), "token_hash": run.token_hash, "params": run.params,
        "labels": run.labels, "artifact_count": run.artifact_count, "external": run.external,
        "metric_marks": {name: list(mark) for name, mark in run.metric_marks.items()},
        "tuning": run.tuning, "study": run.study, "trial": _trial_doc(run.trial),
    }


def _trial_doc(trial: TrialOf | None) -> dict[str, Any] | None:
    if trial is None:
        return None
    doc = asdict(trial)
    doc["stopped_by_study"] = trial.stopped_by_study.value if trial.stopped_by_study else None
    return doc


def _trial_from(doc: dict[str, Any] | None) -> TrialOf | None:
    if doc is None:
        return None
    stopped = doc.get("stopped_by_study")
    collected = tuple((name, value) for name, value in doc.get("collected", ()))
    return TrialOf(**{**doc, "assignment": dict(doc["assignment"]), "outputs": dict(doc["outputs"]),
                      "stopped_by_study": TrialEnd(stopped) if stopped else None, "collected": collected})


def _spec_doc(spec: RunSpec) -> dict[str, Any]:
    doc = asdict(spec)
    doc["kind"] = spec.kind.value
    doc["distribution"] = spec.distribution.value
    return doc


def _spec_from(doc: dict[str, Any]) -> RunSpec:
    fields = dict(doc)
    fields["kind"] = RunKind(fields["kind"])
    fields["distribution"] = Distribution(fields.get("distribution", Distribution.NONE.value))
    fields["tags"] = tuple(fields["tags"])
    fields["inputs"] = tuple(Input(**i) for i in fields["inputs"])
    fields["outputs"] = tuple(OutputTarget(**o) for o in fields["outputs"])
    if environment := fields.get("environment"):
        fields["environment"] = Environment(**{**environment,
                                                "requirements": tuple(environment["requirements"])})
    return RunSpec(**fields)


def _run_from(doc: Document) -> Run:
    created = _parse(doc["create_time"])
    assert created is not None
    return Run(
        id=doc["_id"], spec=_spec_from(doc["spec"]), owner=doc["owner"], create_time=created,
        owner_roles=tuple(doc.get("owner_roles", ())),
        sequence=doc["sequence"], status=RunStatus(doc["status"]), status_reason=doc["status_reason"],
        exit_code=doc["exit_code"], start_time=_parse(doc["start_time"]), end_time=_parse(doc["end_time"]),
        metrics=dict(doc["metrics"]), notes=tuple(doc["notes"]), gpu_ids=tuple(doc["gpu_ids"]),
        token_hash=doc.get("token_hash", ""), params=dict(doc.get("params", {})),
        labels=dict(doc.get("labels", {})), artifact_count=doc.get("artifact_count", 0),
        external=doc.get("external", False),
        metric_marks={name: (mark[0], mark[1]) for name, mark in doc.get("metric_marks", {}).items()},
        tuning=doc.get("tuning", False), trial=_trial_from(doc.get("trial")),
        revision=doc["_rev"],
    )


def _template_doc(template: RunTemplate) -> Document:
    return {"_id": template.id, "name": template.name, "owner": template.owner,
            "create_time": template.create_time.isoformat(), "description": template.description,
            "spec": _spec_doc(template.spec)}


def _template_from(doc: Document) -> RunTemplate:
    return RunTemplate(id=doc["_id"], name=doc["name"], owner=doc["owner"],
                       create_time=datetime.fromisoformat(doc["create_time"]), spec=_spec_from(doc["spec"]),
                       description=doc["description"], revision=doc["_rev"])


class StoredRuns(DocumentRepository[Run]):
    """Runs in the ``runs`` collection, unique by name."""

    collection = RUNS
    noun = "run"

    def to_document(self, item: Run) -> Document:
        return _run_doc(item)

    def from_document(self, doc: Document) -> Run:
        return _run_from(doc)


    async def get(self, name: str) -> Run | None:
        """The run with that name."""
        return await self.find_one(name=name)

    async def list(self, where: RunFilter, after: tuple[int, str] | None, limit: int) -> builtins.list[Run]:
        """Runs newest first (by sequence) after the one with this (sequence, id)."""
        match: dict[str, Any] = {}
        if where.project is not None:
            match["project"] = where.project
        if where.status is not None:
            match["status"] = where.status.value
        if where.kind is not None:
            match["kind"] = where.kind.value
        if where.name_prefix:
            match["name"] = Prefix(where.name_prefix)
        if where.tag:
            match["tags"] = Contains(where.tag)
        if where.study:
            match["study"] = where.study
        page = Page(order_by="sequence", descending=True, after=after, limit=limit)
        if not where.exclude_trials:
            return await self.find(match, page)
        if where.study:
            return []  # a study's trials, less every trial
        # Not a trial: no study, "" since studies exist and missing (None) on runs stored before. Both
        # pages run from the same cursor in the same order, so the first `limit` of the two are the page's.
        found = [run for study in ("", None) for run in await self.find({**match, "study": study}, page)]
        return sorted(found, key=lambda run: (run.sequence, run.id), reverse=True)[:limit]

    async def of_projects(self, projects: tuple[str, ...]) -> builtins.list[Run]:
        """Every run of these projects ("" = of no project), newest first."""
        found: builtins.list[Run] = []
        for project in dict.fromkeys(projects):
            found += await self.find({"project": project})
        return sorted(found, key=lambda run: (-run.sequence, run.id))

    async def in_status(self, statuses: tuple[RunStatus, ...], limit: int) -> builtins.list[Run]:
        """Runs this platform executes in any of these statuses, oldest first (the scheduler's queue):
        external runs (MLflow's, from laptops) are left in the store, however many are running."""
        found: builtins.list[Run] = []
        for status in statuses:
            # `external` is None on runs stored before it existed.
            for external in (False, None):
                where = {"status": status.value, "external": external}
                found += await self.find(where, Page(order_by="sequence", limit=limit))
        # A study's own run executes nothing: its trials do.
        executed = (run for run in found if not run.tuning)
        return sorted(executed, key=lambda run: (run.sequence, run.id))[:limit]

    async def of_study(self, study: str) -> builtins.list[Run]:
        """The study's trials, in the order they were started."""
        trials = await self.find({"study": study})
        return sorted(trials, key=lambda run: run.trial.number if run.trial else 0)


class StoredTemplates(DocumentRepository[RunTemplate]):
    """Templates in the ``templates`` collection, unique by name."""

    collection = TEMPLATES
    noun = "template"

    def to_document(self, item: RunTemplate) -> Document:
        return _template_doc(item)

    def from_document(self, doc: Document) -> RunTemplate:
        return _template_from(doc)


    async def get(self, name: str) -> RunTemplate | None:
        """The template with that name."""
        return await self.find_one(name=name)

    async def list(self) -> builtins.list[RunTemplate]:
        """Every template, by name."""
        return await self.find(page=Page(order_by="name"))


class StoredBuilds(DocumentRepository[ImageBuild]):
    """Image builds in the ``image_builds`` collection (several per image name: its history)."""

    collection = BUILDS
    noun = "image build"

    def to_document(self, item: ImageBuild) -> Document:
        return {"_id": item.id, "name": item.name, "sequence": item.sequence, "status": item.status.value,
                "request": asdict(item.request), "owner": item.owner, "owner_roles": list(item.owner_roles),
                "create_time": _time(item.create_time), "end_time": _time(item.end_time),
                "status_reason": item.status_reason, "code_manifest": item.code_manifest,
                "build_file": item.build_file, "python": item.python, "requirements": list(item.requirements),
                "base_image": item.base_image, "digest": item.digest, "reused": item.reused,
                "notes": list(item.notes)}

    def from_document(self, doc: Document) -> ImageBuild:
        created = _parse(doc["create_time"])
        assert created is not None
        return ImageBuild(
            id=doc["_id"], request=BuildRequest(**doc["request"]), owner=doc["owner"], create_time=created,
            sequence=doc["sequence"], owner_roles=tuple(doc["owner_roles"]),
            status=BuildStatus(doc["status"]), status_reason=doc["status_reason"],
            code_manifest=doc["code_manifest"], build_file=doc["build_file"], python=doc["python"],
            requirements=tuple(doc["requirements"]), base_image=doc["base_image"],
            digest=doc["digest"], reused=doc["reused"], notes=tuple(doc["notes"]),
            end_time=_parse(doc["end_time"]), revision=doc["_rev"])

    async def latest(self, name: str) -> ImageBuild | None:
        """The newest build of the image ``name``."""
        found = await self.find({"name": name}, Page(order_by="sequence", descending=True, limit=1))
        return found[0] if found else None

    async def list(self, name: str = "", limit: int = 1000) -> builtins.list[ImageBuild]:
        """Builds newest first (of one image, when ``name`` is given)."""
        match: dict[str, Any] = {"name": name} if name else {}
        return await self.find(match, Page(order_by="sequence", descending=True, limit=limit))

    async def building(self) -> builtins.list[ImageBuild]:
        """Builds not ended yet, oldest first."""
        return await self.find({"status": BuildStatus.BUILDING.value},
                               Page(order_by="sequence", limit=10_000))


@dataclass(frozen=True)
class MetricBatch:
    """The points of a run one append logged: one document."""

    id: str
    run_id: str
    points: tuple[MetricPoint, ...]
    revision: int = 0


class StoredMetrics(DocumentRepository[MetricBatch]):
    """Metric points, one document per batch of a run."""

    collection = METRICS
    noun = "metric batch"

    def to_document(self, item: MetricBatch) -> Document:
        times = {when: when.isoformat() for when in {p.time for p in item.points}}  # mostly shared
        return {"_id": item.id, "run_id": item.run_id, "at": times[item.points[0].time],
                "points": [[p.name, p.value, p.step, times[p.time]] for p in item.points]}

    def from_document(self, doc: Document) -> MetricBatch:
        points = tuple(MetricPoint(name, value, step, datetime.fromisoformat(at))
                       for name, value, step, at in doc["points"])
        return MetricBatch(doc["_id"], doc["run_id"], points, doc["_rev"])

    async def append(self, run_id: str, points: builtins.list[MetricPoint]) -> None:
        """Add points to the run's series (a new document: the batch is not read back)."""
        batch = MetricBatch(f"{run_id}:{uuid.uuid4().hex}", run_id, tuple(points))
        await self.txn.insert(METRICS.name, self.to_document(batch))

    async def forget(self, run_id: str) -> None:
        """Forget the run's points."""
        docs = await self.txn.find(METRICS.name, {"run_id": run_id})
        await self.txn.delete_many(METRICS.name, [d["_id"] for d in docs])

    async def series(self, run_id: str) -> builtins.list[MetricPoint]:
        """The run's points in the order they were logged."""
        batches = await self.find({"run_id": run_id}, Page(order_by="at"))
        return [point for batch in batches for point in batch.points]


@dataclass(frozen=True)
class ConfigFile:
    """A run's (or template's) configuration file, under its id."""

    id: str
    data: bytes
    revision: int = 0


class StoredConfigs(DocumentRepository[ConfigFile]):
    """Configuration files, base64 in one document per run or template."""

    collection = CONFIGS
    noun = "configuration file"

    def to_document(self, item: ConfigFile) -> Document:
        return {"_id": item.id, "data": base64.b64encode(item.data).decode()}

    def from_document(self, doc: Document) -> ConfigFile:
        return ConfigFile(doc["_id"], base64.b64decode(doc["data"]), doc["_rev"])

    def label(self, item: ConfigFile) -> str:
        return f"the configuration file of {item.id}"

    async def put(self, owner_id: str, data: bytes) -> None:
        """Keep the run's (or template's) file."""
        await self.add(ConfigFile(owner_id, data))

    async def get(self, owner_id: str) -> bytes:
        """The file (empty when there is none)."""
        found = await self.by_id(owner_id)
        return found.data if found else b""

    async def forget(self, owner_id: str) -> None:
        """Forget the file, if there is one."""
        await self.txn.delete(CONFIGS.name, owner_id)


class StoredArtifacts(DocumentRepository[ArtifactFile]):
    """Artifact files, one document per (owner, path); their contents are blobs."""

    collection = ARTIFACTS
    noun = "artifact"

    def to_document(self, item: ArtifactFile) -> Document:
        return {"_id": item.id, "owner": item.owner, "path": item.path,
                "digest": item.digest, "size": item.size}

    def from_document(self, doc: Document) -> ArtifactFile:
        return ArtifactFile(doc["owner"], doc["path"], doc["digest"], doc["size"], doc["_rev"])

    def label(self, item: ArtifactFile) -> str:
        return f"artifact {item.path!r}"

    async def put(self, item: ArtifactFile) -> bool:
        """Store the file, replacing one at the same path; whether it is new."""
        found = await self.by_id(f"{item.owner}:{item.path}")
        if found is None:
            await self.add(item)
            return True
        await self.save(ArtifactFile(item.owner, item.path, item.digest, item.size, found.revision))
        return False

    async def get(self, owner: str, path: str) -> ArtifactFile | None:
        """The file at ``path`` of ``owner``."""
        return await self.by_id(f"{owner}:{path}")

    async def of_owner(self, owner: str) -> builtins.list[ArtifactFile]:
        """Every file of ``owner``."""
        return await self.find({"owner": owner})

    async def forget(self, owner: str) -> None:
        """Forget every file of ``owner``."""
        docs = await self.txn.find(ARTIFACTS.name, {"owner": owner})
        await self.txn.delete_many(ARTIFACTS.name, [d["_id"] for d in docs])


class StoredLoggedModels(DocumentRepository[LoggedModel]):
    """Models runs logged, in the ``logged_models`` collection."""

    collection = LOGGED_MODELS
    noun = "logged model"

    def to_document(self, item: LoggedModel) -> Document:
        return {"_id": item.id, "name": item.name, "run_id": item.run_id, "project": item.project,
                "owner": item.owner, "create_time": _time(item.create_time),
                "update_time": _time(item.update_time), "status": item.status.value, "tags": item.tags,
                "params": item.params, "model_type": item.model_type}

    def from_document(self, doc: Document) -> LoggedModel:
        return LoggedModel(
            id=doc["_id"], name=doc["name"], run_id=doc["run_id"], project=doc["project"], owner=doc["owner"],
            create_time=datetime.fromisoformat(doc["create_time"]),
            update_time=datetime.fromisoformat(doc["update_time"]), status=LoggedModelStatus(doc["status"]),
            tags=dict(doc["tags"]), params=dict(doc["params"]), model_type=doc["model_type"],
            revision=doc["_rev"])

    async def of_run(self, run_id: str) -> builtins.list[LoggedModel]:
        """The models the run logged."""
        return await self.find({"run_id": run_id})

    async def of_projects(self, projects: tuple[str, ...]) -> builtins.list[LoggedModel]:
        """The models logged by runs of these projects."""
        found: builtins.list[LoggedModel] = []
        for project in dict.fromkeys(projects):
            found += await self.find({"project": project})
        return found


class StoredClusters(DocumentRepository[Cluster]):
    """Clusters in the ``clusters`` collection, by name."""

    collection = CLUSTERS
    noun = "cluster"

    def to_document(self, item: Cluster) -> Document:
        doc = {k: v for k, v in asdict(item).items() if k not in ("name", "revision")}
        return {**doc, "_id": item.name, "kind": item.kind.value, "create_time": _time(item.create_time)}

    def from_document(self, doc: Document) -> Cluster:
        fields = {k: v for k, v in doc.items() if k not in ("_id", "_rev")}
        return Cluster(**{**fields, "name": doc["_id"], "kind": ClusterKind(doc["kind"]),
                          "create_time": _parse(doc["create_time"]), "revision": doc["_rev"]})


class StoredStudies(DocumentRepository[Study]):
    """Hyperparameter studies in the ``studies`` collection, unique by name (their run's)."""

    collection = STUDIES
    noun = "study"

    def to_document(self, item: Study) -> Document:
        ending = None if item.ending is None else {
            "status": item.ending.status.value, "reason": item.ending.reason, "message": item.ending.message}
        return {"_id": item.id, "name": item.name, "owner": item.owner, "project": item.project,
                "tuning": item.tuning, "spec": item.spec, "seed": item.seed,
                "create_time": _time(item.create_time), "keep_trial_outputs": item.keep_trial_outputs,
                "status": item.status.value, "reason": item.reason, "message": item.message,
                "next_trial": item.next_trial, "ending": ending, "best_trial": item.best_trial,
                "completion_time": _time(item.completion_time)}

    def from_document(self, doc: Document) -> Study:
        created = _parse(doc["create_time"])
        assert created is not None
        ending = doc["ending"]
        return Study(
            id=doc["_id"], name=doc["name"], owner=doc["owner"], project=doc["project"], tuning=doc["tuning"],
            spec=dict(doc["spec"]), seed=doc["seed"], create_time=created,
            keep_trial_outputs=doc["keep_trial_outputs"], status=StudyStatus(doc["status"]),
            reason=doc["reason"], message=doc["message"], next_trial=doc["next_trial"],
            ending=None if ending is None else StudyEnd(StudyStatus(ending["status"]), ending["reason"],
                                                        ending["message"]),
            best_trial=doc["best_trial"], completion_time=_parse(doc["completion_time"]),
            revision=doc["_rev"])

    async def get(self, name: str) -> Study | None:
        """The study with that name."""
        return await self.find_one(name=name)

    async def active(self) -> builtins.list[Study]:
        """Studies not ended yet."""
        found: builtins.list[Study] = []
        for status in (StudyStatus.CREATED, StudyStatus.RUNNING):
            found += await self.find({"status": status.value})
        return sorted(found, key=lambda study: (study.create_time, study.id))

    async def list(self, project: str | None, after: tuple[str, str] | None,
                   limit: int) -> builtins.list[Study]:
        """Studies newest first, after the one with this (create time, id)."""
        match: dict[str, Any] = {} if project is None else {"project": project}
        return await self.find(match, Page(order_by="create_time", descending=True, after=after, limit=limit))


class RunUnitOfWork(StoreUnitOfWork):
    """A transaction over run-svc's collections; its domain events are translated by
    ``shipyard_run.app.events``."""

    def __init__(self, txn: Transaction) -> None:
        super().__init__(txn, SOURCE, translate)
        self.runs = StoredRuns(txn)
        self.metrics = StoredMetrics(txn)
        self.configs = StoredConfigs(txn)
        self.templates = StoredTemplates(txn)
        self.requests = StoredRequests(txn)
        self.builds = StoredBuilds(txn)
        self.artifacts = StoredArtifacts(txn)
        self.logged_models = StoredLoggedModels(txn)
        self.clusters = StoredClusters(txn)
        self.studies = StoredStudies(txn)


def unit_of_work_factory(
    store: DocumentStore, relay: OutboxRelay | None
) -> StoreUnitOfWorkFactory[RunUnitOfWork]:
    """run-svc's units of work on ``store``."""
    return StoreUnitOfWorkFactory(store, relay, RunUnitOfWork)
