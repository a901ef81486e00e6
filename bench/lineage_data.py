"""The events of a provenance graph for ``python -m bench.lineage``: seeded and deterministic, in
the shapes the producers emit them (repo-svc's RepoCreated and VersionCreated, run-svc's
RunSubmitted, RunStarted, RunCompleted and RunFailed), encoded as an outbox keeps them
(subject, headers, body) so they can be published as they are generated.

The story, on one clock (a step of ~1.7 s of event time per new upload or run):

* dataset repos receive uploaded versions (a new repo every ``versions_per_dataset_repo``
  uploads; an upload goes to one of the 20 newest repos);
* ~10 % of the runs are preprocessing runs: they read one or two dataset versions (the first
  one produced by an earlier preprocessing run half the time) and produce a version of a
  derived dataset repo, so upstream chains are several levels deep;
* the others are training runs: they read two dataset versions (one of them derived half the
  time), a code commit and an image, and produce a model version;
* each run goes submitted → started → completed (its output's VersionCreated, with
  ``produced_by_run``, right after) or failed (``failed`` of them, no output); ``in_flight``
  runs are under way at any moment, so the events of different runs interleave;
* repos that runs write to (model and derived dataset repos) get their empty version 1 when
  created, as repo-svc does for a versioned repo without a source.

Inputs are drawn from the newest ``window`` versions of their pool (people use recent data).
The number of uploads is what makes the versions add up to ``versions``: runs produce one
version each unless they fail.
"""

from __future__ import annotations

import math
import random
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from google.protobuf.message import Message

from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2 as ev
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.kit.events import Event, EventKind

# (NATS subject, headers, body): what EventBus.publish_encoded takes.
Encoded = tuple[str, dict[str, str], bytes]

PROJECTS = ("vision", "nlp", "speech", "recsys", "forecast", "fraud", "search", "ads", "robotics", "health")
IMAGES = (
    "python:3.12",
    "python:3.11",
    "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
    "nvcr.io/nvidia/pytorch:24.10-py3",
    "tensorflow/tensorflow:2.18.0-gpu",
    "registry.local/train:2026.1",
    "registry.local/train:2026.2",
    "registry.local/prep:3",
    "ghcr.io/example/jax:0.4.35",
    "registry.local/spark-prep:3.5",
)
USERS = tuple(f"user-{n:02d}" for n in range(40))
BASE_TIME = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # the kit's ids: Crockford base32, lowercase
_KINDS: dict[type[Message], EventKind] = {}
_REPO_KIND = {
    "code": repos_pb2.REPO_KIND_CODE,
    "dataset": repos_pb2.REPO_KIND_DATASET,
    "model": repos_pb2.REPO_KIND_MODEL,
}
_SUBJECT_AREA = {"code": "code", "dataset": "datasets", "model": "models"}


@dataclass(frozen=True)
class GraphShape:
    """How big the graph is and how it is made."""

    runs: int = 100_000
    versions: int = 300_000
    preprocessing: float = 0.10
    failed: float = 0.05
    versions_per_dataset_repo: int = 100
    runs_per_model_repo: int = 100
    runs_per_derived_repo: int = 50
    runs_per_code_repo: int = 2_000
    runs_per_commit: int = 20
    in_flight: int = 16
    window: int = 2_000


@dataclass
class _Repo:
    id: str
    name: str
    kind: str
    project: str
    owner: str
    latest: int = 0


@dataclass
class _Run:
    id: str
    name: str
    kind: str  # training or preprocessing
    project: str
    owner: str
    output: _Repo
    fails: bool
    stage: int = 0  # 0 submitted, 1 started


@dataclass
class GraphStats:
    """What the generator emitted (complete once the batches are exhausted)."""

    events: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    runs: Counter[str] = field(default_factory=Counter)  # training / preprocessing / failed
    versions: Counter[str] = field(default_factory=Counter)  # uploaded / derived / model / placeholder
    repos: Counter[str] = field(default_factory=Counter)  # by kind
    body_bytes: int = 0
    model_versions: list[str] = field(default_factory=list)  # "<model repo>@<n>" produced by a run

    @property
    def versions_total(self) -> int:
        """Every version created."""
        return sum(self.versions.values())


def _kind_of(message: Message) -> EventKind:
    cls = type(message)
    kind = _KINDS.get(cls)
    if kind is None:
        kind = _KINDS[cls] = EventKind.of(cls)
    return kind


def _plan(shape: GraphShape) -> tuple[int, int, int]:
    """(preprocessing runs, failed runs, uploads) for the shape."""
    preprocessing = round(shape.runs * shape.preprocessing)
    failed = round(shape.runs * shape.failed)
    training = shape.runs - preprocessing
    model_repos = math.ceil(training / shape.runs_per_model_repo) if training else 0
    derived_repos = math.ceil(preprocessing / shape.runs_per_derived_repo) if preprocessing else 0
    produced = shape.runs - failed
    uploads = max(shape.versions - produced - model_repos - derived_repos, 20)
    return preprocessing, failed, uploads


class GraphEvents:
    """Generates the story once, batch by batch; ``stats`` fills in as it goes."""

    def __init__(self, shape: GraphShape, seed: int) -> None:
        self.shape = shape
        self.stats = GraphStats()
        self._rng = random.Random(seed)
        self._step = 0
        self._out: list[Encoded] = []
        self._dataset_repos: list[_Repo] = []
        self._model_repos: list[_Repo] = []
        self._derived_repos: list[_Repo] = []
        self._code_repos: list[tuple[_Repo, list[str]]] = []
        # (repo, number) of each readable dataset version, oldest first
        self._uploaded: list[tuple[_Repo, int]] = []
        self._derived: list[tuple[_Repo, int]] = []
        self._active: deque[_Run] = deque()
        self._runs_started = Counter[str]()

    # --- identities and the clock ----------------------------------------------------------

    def _now(self) -> datetime:
        return BASE_TIME + timedelta(milliseconds=self._step * 1700 + self._rng.randrange(1000))

    def _id(self, at: datetime) -> str:
        """A ULID-style id as the kit makes them, from the event clock and the seeded generator."""
        value = int(at.timestamp() * 1000) << 80 | self._rng.getrandbits(80)
        chars = []
        for _ in range(26):
            value, digit = divmod(value, 32)
            chars.append(_ALPHABET[digit])
        return "".join(reversed(chars))

    def _actor(self, user: str) -> common_pb2.Actor:
        return common_pb2.Actor(user=user, roles=["data-scientist"])

    def _emit(self, data: Message, source: str, subject: str, project: str) -> None:
        at = self._now()
        kind = _kind_of(data)
        traceparent = f"00-{self._rng.getrandbits(128):032x}-{self._rng.getrandbits(64):016x}-01"
        event = Event(
            id=self._id(at),
            type=kind.ce_type,
            source=source,
            subject=subject,
            time=at,
            data=data,
            project=project,
            traceparent=traceparent,
        )
        body = event.payload()
        self._out.append((kind.subject, event.headers(), body))
        self.stats.events += 1
        self.stats.body_bytes += len(body)
        self.stats.by_type[kind.message.DESCRIPTOR.name] += 1

    # --- repos and versions (repo-svc) -----------------------------------------------------

    def _new_repo(self, kind: str, name: str, project: str, placeholder: bool) -> _Repo:
        owner = self._rng.choice(USERS)
        repo = _Repo(self._id(self._now()), name, kind, project, owner)
        proto = repos_pb2.Repo(id=repo.id, kind=_REPO_KIND[kind], name=name, project=project, owner=owner)
        self._emit(
            ev.RepoCreated(repo=proto, actor=self._actor(owner)),
            "shipyard/repo",
            f"{_SUBJECT_AREA[kind]}/{name}",
            project,
        )
        self.stats.repos[kind] += 1
        if placeholder:  # a versioned repo without a source gets its empty version 1 at once
            self._version(repo, "", owner, empty=True)
            self.stats.versions["placeholder"] += 1
        return repo

    def _version(self, repo: _Repo, run_id: str, user: str, empty: bool = False) -> int:
        repo.latest += 1
        files = 0 if empty else self._rng.randrange(1, 5000)
        data = ev.VersionCreated(
            repo_id=repo.id,
            repo=repo.name,
            repo_kind=repo.kind,
            version=repo.latest,
            manifest_digest=f"{self._rng.getrandbits(256):064x}",
            size_bytes=files * self._rng.randrange(1_000, 5_000_000),
            file_count=files,
            produced_by_run=run_id,
            project=repo.project,
            actor=self._actor(user),
        )
        self._emit(data, "shipyard/repo", f"{_SUBJECT_AREA[repo.kind]}/{repo.name}", repo.project)
        return repo.latest

    def _upload(self) -> None:
        per_repo = self.shape.versions_per_dataset_repo
        if not self._dataset_repos or self._rng.random() < 1 / per_repo:
            project = self._rng.choice(PROJECTS)
            name = f"{project}-data-{len(self._dataset_repos):05d}"
            self._dataset_repos.append(self._new_repo("dataset", name, project, placeholder=False))
        repo = self._rng.choice(self._dataset_repos[-20:])
        number = self._version(repo, "", self._rng.choice(USERS))
        self._uploaded.append((repo, number))
        self.stats.versions["uploaded"] += 1

    # --- runs (run-svc) --------------------------------------------------------------------

    def _pick(self, pool: list[tuple[_Repo, int]]) -> tuple[_Repo, int]:
        return pool[len(pool) - 1 - self._rng.randrange(min(len(pool), self.shape.window))]

    def _inputs(self, preprocessing: bool) -> list[tuple[_Repo, int]]:
        chosen = [
            self._pick(self._derived)
            if self._derived and self._rng.random() < 0.5
            else self._pick(self._uploaded)
        ]
        if not preprocessing or self._rng.random() < 0.5:
            for _ in range(5):  # a second, different version
                other = self._pick(self._uploaded)
                if other != chosen[0]:
                    chosen.append(other)
                    break
        return chosen

    def _output_repo(self, kind: str, project: str) -> _Repo:
        if kind == "training":
            repos, per_repo, word = self._model_repos, self.shape.runs_per_model_repo, "model"
        else:
            repos, per_repo, word = self._derived_repos, self.shape.runs_per_derived_repo, "features"
        if not repos or self._runs_started[kind] % per_repo == 0:
            repo_kind = "model" if kind == "training" else "dataset"
            repos.append(
                self._new_repo(repo_kind, f"{project}-{word}-{len(repos):05d}", project, placeholder=True)
            )
        return self._rng.choice(repos[-10:])

    def _code(self, kind: str) -> tuple[str, str]:
        started = sum(self._runs_started.values())
        if not self._code_repos or started % self.shape.runs_per_code_repo == 0:
            project = self._rng.choice(PROJECTS)
            name = f"{project}-{'train' if kind == 'training' else 'prep'}-{len(self._code_repos):03d}"
            self._code_repos.append((self._new_repo("code", name, project, placeholder=False), []))
        repo, commits = self._rng.choice(self._code_repos[-5:])
        if not commits or self._rng.random() < 1 / self.shape.runs_per_commit:
            commits.append(f"{self._rng.getrandbits(160):040x}")
        return repo.name, self._rng.choice(commits[-3:])

    def _submit(self, kind: str, fails: bool) -> None:
        rng, training = self._rng, kind == "training"
        project = rng.choice(PROJECTS)
        output = self._output_repo(kind, project)
        code, commit = self._code(kind)
        inputs = self._inputs(not training)
        self._runs_started[kind] += 1
        owner = rng.choice(USERS)
        name = f"{'train' if training else 'prep'}-{sum(self._runs_started.values()):07d}"
        run = _Run(self._id(self._now()), name, kind, output.project, owner, output, fails)
        refs = [
            common_pb2.VersionRef(
                repo=r.name, version=n, mount_path=f"/mnt/in{i}", repo_kind=r.kind, repo_id=r.id
            )
            for i, (r, n) in enumerate(inputs)
        ]
        if training:
            hyperparameters = {
                "lr": f"{rng.choice((1, 3, 10, 30))}e-4",
                "epochs": str(rng.randrange(1, 50)),
                "batch_size": str(rng.choice((32, 64, 128))),
            }
        else:
            hyperparameters = {"shards": str(rng.randrange(1, 64))}
        out = common_pb2.VersionRef(repo=output.name, mount_path="/mnt/out", repo_kind=output.kind)
        data = ev.RunSubmitted(
            run_id=run.id,
            name=run.name,
            project=run.project,
            kind=kind,
            code=common_pb2.CodeRef(repo=code, commit=commit),
            inputs=refs,
            outputs=[out],
            hyperparameters=hyperparameters,
            image=rng.choice(IMAGES),
            cluster="local",
            command="python train.py" if training else "python prep.py",
            actor=self._actor(owner),
            gpus=rng.choice((0, 1, 1, 2, 4)) if training else 0,
        )
        self._emit(data, "shipyard/run", f"runs/{run.name}", run.project)
        self.stats.runs[kind] += 1
        self._active.append(run)

    def _advance(self, run: _Run) -> bool:
        """Take ``run`` one stage on; whether it ended."""
        subject = f"runs/{run.name}"
        if run.stage == 0:
            run.stage = 1
            self._emit(
                ev.RunStarted(
                    run_id=run.id, name=run.name, project=run.project, kind=run.kind, executor="local"
                ),
                "shipyard/run",
                subject,
                run.project,
            )
            return False
        if run.fails:
            code = self._rng.choice((1, 1, 2, 137))
            self._emit(
                ev.RunFailed(
                    run_id=run.id,
                    name=run.name,
                    project=run.project,
                    kind=run.kind,
                    reason=f"the command exited with {code}",
                    exit_code=code,
                    last_log_lines="Traceback (most recent call last):\n  ...\nRuntimeError",
                    actor=self._actor(run.owner),
                    status="failed",
                ),
                "shipyard/run",
                subject,
                run.project,
            )
            self.stats.runs["failed"] += 1
            return True
        manifest = f"{self._rng.getrandbits(256):064x}"
        if run.kind == "training":
            metrics = {"accuracy": round(self._rng.random(), 4), "loss": round(self._rng.random() * 3, 4)}
        else:
            metrics = {"rows": float(self._rng.randrange(10_000, 10_000_000))}
        output = common_pb2.RunOutput(
            repo_kind=run.output.kind, repo=run.output.name, manifest_digest=manifest, mount_path="/mnt/out"
        )
        self._emit(
            ev.RunCompleted(
                run_id=run.id,
                name=run.name,
                project=run.project,
                kind=run.kind,
                outputs=[output],
                metrics=metrics,
                actor=self._actor(run.owner),
            ),
            "shipyard/run",
            subject,
            run.project,
        )
        number = self._version(run.output, run.id, run.owner)
        if run.kind == "training":
            self.stats.model_versions.append(f"{run.output.name}@{number}")
            self.stats.versions["model"] += 1
        else:
            self._derived.append((run.output, number))
            self.stats.versions["derived"] += 1
        return True

    def _tick(self) -> None:
        """After each new upload or run: one active run moves on; too many under way, the oldest ends."""
        if self._active:
            run = self._active[self._rng.randrange(len(self._active))]
            if self._advance(run):
                self._active.remove(run)
        while len(self._active) > self.shape.in_flight:
            run = self._active.popleft()
            while not self._advance(run):
                pass

    # --- the whole story -------------------------------------------------------------------

    def batches(self, size: int = 1000) -> Iterator[list[Encoded]]:
        """The encoded events in stream order, ``size`` at a time."""
        shape = self.shape
        preprocessing, failed, uploads = _plan(shape)
        kinds = ["preprocessing"] * preprocessing + ["training"] * (shape.runs - preprocessing)
        self._rng.shuffle(kinds)
        failing = set(self._rng.sample(range(shape.runs), failed))
        head = min(uploads, 20)  # something to read before the first run
        runs_left, uploads_left = shape.runs, uploads
        while runs_left or uploads_left:
            self._step += 1
            total = runs_left + uploads_left
            if uploads_left and (uploads - uploads_left < head or self._rng.randrange(total) < uploads_left):
                self._upload()
                uploads_left -= 1
            else:
                index = shape.runs - runs_left
                self._submit(kinds[index], index in failing)
                runs_left -= 1
            self._tick()
            if len(self._out) >= size:
                yield from self._flush(size)
        self._step += 1
        while self._active:
            run = self._active[0]
            if self._advance(run):
                self._active.popleft()
        yield from self._flush(size)
        if self._out:
            out, self._out = self._out, []
            yield out

    def _flush(self, size: int) -> Iterator[list[Encoded]]:
        while len(self._out) >= size:
            out, self._out = self._out[:size], self._out[size:]
            yield out


def expected_versions(shape: GraphShape) -> int:
    """The versions the shape asks for, as generated (uploads are never fewer than 20)."""
    preprocessing, failed, uploads = _plan(shape)
    training = shape.runs - preprocessing
    model_repos = math.ceil(training / shape.runs_per_model_repo) if training else 0
    derived_repos = math.ceil(preprocessing / shape.runs_per_derived_repo) if preprocessing else 0
    return uploads + shape.runs - failed + model_repos + derived_repos
