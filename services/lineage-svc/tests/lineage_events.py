"""Events as lineage-svc receives them: built the way their producers build them, with the stream
sequence a consumer sees."""

from __future__ import annotations

from dataclasses import replace

from google.protobuf.message import Message

from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.repo.v1 import projects_pb2, repos_pb2
from shipyard.kit.caller import OPERATOR
from shipyard.kit.events import Event, actor_of, new_event

SCIENTIST = ("data-scientist",)
ENGINEER = ("ml-engineer",)


def project_created(name: str, user: str = "alice", sequence: int = 1) -> Event:
    """A ProjectCreated event as repo-svc emits it, received with stream ``sequence``."""
    data = events_pb2.ProjectCreated(project=projects_pb2.Project(id=f"id-{name}", name=name, owner=user),
                                     actor=actor_of(user, SCIENTIST))
    return received(data, f"projects/{name}", name, sequence)


def project_updated(name: str, changed: list[str], user: str = "alice", sequence: int = 1) -> Event:
    data = events_pb2.ProjectUpdated(project=projects_pb2.Project(id=f"id-{name}", name=name),
                                     changed_fields=changed, actor=actor_of(user, SCIENTIST))
    return received(data, f"projects/{name}", name, sequence)


def project_deleted(name: str, user: str = "alice", sequence: int = 1) -> Event:
    data = events_pb2.ProjectDeleted(project_id=f"id-{name}", name=name, actor=actor_of(user, (OPERATOR,)))
    return received(data, f"projects/{name}", name, sequence)


def run_submitted(run: str, project: str, user: str = "alice", sequence: int = 1) -> Event:
    data = events_pb2.RunSubmitted(run_id=f"id-{run}", name=run, project=project, kind="training",
                                   actor=actor_of(user, SCIENTIST))
    return received(data, f"projects/{project}/runs/{run}", project, sequence)


def received(data: Message, subject: str, project: str, sequence: int) -> Event:
    """A new event as a consumer gets it: with its JetStream sequence set."""
    return replace(new_event(data, source="shipyard/test", subject=subject, project=project),
                   sequence=sequence)


# --- the events of a whole training story, as producers emit them ----------------------------

KIND_NUMBERS = {"code": 1, "dataset": 2, "featureset": 3, "model": 4}


def repo_created(kind: str, name: str, project: str = "vision", sequence: int = 1,
                 git: repos_pb2.GitSource | None = None) -> Event:
    repo = repos_pb2.Repo(id=f"id-{kind}-{name}", kind=KIND_NUMBERS[kind], name=name, project=project,  # type: ignore[arg-type]
                          source=repos_pb2.Source(git=git) if git else None)
    return received(events_pb2.RepoCreated(repo=repo, actor=actor_of("alice", SCIENTIST)),
                    f"repos/{kind}/{name}", project, sequence)


def repo_renamed(kind: str, old: str, new: str, project: str = "vision", sequence: int = 1) -> Event:
    repo = repos_pb2.Repo(id=f"id-{kind}-{old}", kind=KIND_NUMBERS[kind], name=new, project=project)  # type: ignore[arg-type]
    return received(events_pb2.RepoUpdated(repo=repo, changed_fields=["name"], previous_name=old,
                                           actor=actor_of("alice", SCIENTIST)),
                    f"repos/{kind}/{new}", project, sequence)


def version_created(kind: str, repo: str, number: int, run: str = "", project: str = "vision",
                    sequence: int = 1, repo_id: str = "") -> Event:
    data = events_pb2.VersionCreated(repo_id=repo_id or f"id-{kind}-{repo}", repo=repo, repo_kind=kind,
                                     version=number, manifest_digest=f"sha256:{repo}-{number}",
                                     size_bytes=1000 * number, file_count=number,
                                     produced_by_run=f"id-{run}" if run else "", project=project,
                                     actor=actor_of("alice", SCIENTIST))
    return received(data, f"repos/{kind}/{repo}/versions/{number}", project, sequence)


def version_deleted(kind: str, repo: str, number: int, project: str = "vision", sequence: int = 1) -> Event:
    data = events_pb2.VersionDeleted(repo_id=f"id-{kind}-{repo}", repo=repo, repo_kind=kind, version=number,
                                     project=project, actor=actor_of("alice", SCIENTIST))
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
                                   actor=actor_of("alice", SCIENTIST), image_url=f"docker.io/library/{image}",
                                   environment_digest="sha256-of-" + image)
    return received(data, f"runs/{run}", project, sequence)


def run_started(run: str, project: str = "vision", sequence: int = 1) -> Event:
    data = events_pb2.RunStarted(run_id=f"id-{run}", name=run, project=project, kind="training",
                                 executor="local")
    return received(data, f"runs/{run}", project, sequence)


def run_completed(run: str, project: str = "vision", sequence: int = 1,
                  metrics: dict[str, float] | None = None) -> Event:
    data = events_pb2.RunCompleted(run_id=f"id-{run}", name=run, project=project, kind="training",
                                   metrics=metrics or {"accuracy": 0.97}, params={"optimizer": "adam"},
                                   labels={"team": "cv"}, artifact_count=2)
    return received(data, f"runs/{run}", project, sequence)


def run_failed(run: str, project: str = "vision", sequence: int = 1, exit_code: int = 3) -> Event:
    data = events_pb2.RunFailed(run_id=f"id-{run}", name=run, project=project, kind="training",
                                reason=f"the command exited with {exit_code}", exit_code=exit_code,
                                status="failed" if exit_code else "error")
    return received(data, f"runs/{run}", project, sequence)


def model_published(model: str, number: int, catalog_name: str, project: str = "vision",
                    sequence: int = 1) -> Event:
    data = events_pb2.ModelPublished(model=model, version=number, catalog_name=catalog_name, project=project,
                                     model_id=f"id-model-{model}", actor=actor_of("erin", ENGINEER))
    return received(data, f"catalog/{catalog_name}", project, sequence)


TRAIN_GIT = repos_pb2.GitSource(url="git@github.com:acme/train.git", path="src")


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
        repo_created("code", "train", sequence=9, git=TRAIN_GIT),
    ]
