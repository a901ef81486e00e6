"""MLflow's tracking endpoints over Shipyard's projects and runs.

Experiments are projects: an experiment's id is its project's name; the default experiment ``0``
(named ``Default``) holds the runs of no project. Runs keep their ids; a run's MLflow params are its
hyperparameters and logged params, its tags its logged key-value tags with ``mlflow.runName`` and
``mlflow.user``; its artifacts are at ``mlflow-artifacts:/<experiment>/<run id>/artifacts``.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from shipyard.contracts.repo.v1 import projects_pb2
from shipyard.contracts.run.v1 import runs_pb2
from shipyard.contracts.run.v1 import tracking_pb2 as tpb
from shipyard.kit.like import like_pattern
from shipyard_gateway.entrypoints.mlflow.wire import (
    MlflowError,
    Params,
    Platform,
    as_float,
    as_int,
    invalid,
    json_number,
    not_found,
    not_implemented,
    pairs,
)

PROJECTS = "/shipyard.repo.v1.ProjectService"
RUNS = "/shipyard.run.v1.RunService"
TRACKING = "/shipyard.run.v1.TrackingService"
DEFAULT_ID = "0"
DEFAULT_NAME = "Default"
STATUS = {
    runs_pb2.RUN_STATUS_QUEUED: "SCHEDULED",
    runs_pb2.RUN_STATUS_WAITING_FOR_GPUS: "SCHEDULED",
    runs_pb2.RUN_STATUS_STARTING: "SCHEDULED",
    runs_pb2.RUN_STATUS_RUNNING: "RUNNING",
    runs_pb2.RUN_STATUS_STOPPING: "RUNNING",
    runs_pb2.RUN_STATUS_COMPLETE: "FINISHED",
    runs_pb2.RUN_STATUS_FAILED: "FAILED",
    runs_pb2.RUN_STATUS_ERROR: "FAILED",
    runs_pb2.RUN_STATUS_STOPPED: "KILLED",
}
TRACKED_STATUS = {
    "RUNNING": tpb.TRACKED_RUN_STATUS_RUNNING,
    "SCHEDULED": tpb.TRACKED_RUN_STATUS_RUNNING,
    "FINISHED": tpb.TRACKED_RUN_STATUS_FINISHED,
    "FAILED": tpb.TRACKED_RUN_STATUS_FAILED,
    "KILLED": tpb.TRACKED_RUN_STATUS_KILLED,
}
DATASET_TAG = "mlflow.dataset."  # a logged dataset input, kept as a tag of the run


def millis(when: Timestamp) -> int | None:
    """A timestamp as MLflow's milliseconds (None when unset)."""
    return when.ToMilliseconds() if when.seconds or when.nanos else None


def experiment_of(project: str) -> str:
    """The experiment id of a project ("" = the default experiment)."""
    return project or DEFAULT_ID


def project_of(experiment_id: str) -> str:
    """The project of an experiment id."""
    return "" if experiment_id == DEFAULT_ID else experiment_id


def run_artifact_uri(run: runs_pb2.Run) -> str:
    """Where MLflow's client puts and finds the run's artifacts (the mlflow-artifacts proxy)."""
    return f"mlflow-artifacts:/{experiment_of(run.project)}/{run.id}/artifacts"


def run_json(run: runs_pb2.Run) -> dict[str, Any]:
    """A run as MLflow's Run message in JSON."""
    start, end = millis(run.start_time) or millis(run.create_time), millis(run.end_time)
    info: dict[str, Any] = {
        "run_id": run.id,
        "run_uuid": run.id,
        "run_name": run.name,
        "experiment_id": experiment_of(run.project),
        "user_id": run.owner,
        "status": STATUS.get(run.status, "SCHEDULED"),
        "artifact_uri": run_artifact_uri(run),
        "lifecycle_stage": "active",
    }
    if start is not None:
        info["start_time"] = start
    if end is not None:
        info["end_time"] = end
    when = end or start or 0
    tags = {
        **{k: v for k, v in run.labels.items() if not k.startswith(DATASET_TAG)},
        "mlflow.runName": run.name,
        "mlflow.user": run.owner,
    }
    if run.description:
        tags["mlflow.note.content"] = run.description
    datasets = [dataset_input(k, v) for k, v in sorted(run.labels.items()) if k.startswith(DATASET_TAG)]
    return {
        "info": info,
        "data": {
            "metrics": [latest_metric(run, key, when) for key in sorted(run.metrics)],
            "params": [
                {"key": k, "value": v} for k, v in sorted({**run.hyperparameters, **run.params}.items())
            ],
            "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
        },
        "inputs": {"dataset_inputs": datasets},
    }


def latest_metric(run: runs_pb2.Run, key: str, when: int) -> dict[str, Any]:
    """A metric's latest value with its step and time (a run stored before they were kept: the
    run's time, step 0)."""
    value = json_number(run.metrics[key])
    if key in run.latest_metrics:
        point = run.latest_metrics[key]
        return {"key": key, "value": value, "timestamp": millis(point.time) or 0, "step": point.step}
    return {"key": key, "value": value, "timestamp": when, "step": 0}


def dataset_input(key: str, value: str) -> dict[str, Any]:
    """A dataset input kept as the tag ``mlflow.dataset.<name>`` = ``<digest> <context>``."""
    name = key.removeprefix(DATASET_TAG)
    digest, _, context = value.partition(" ")
    return {
        "dataset": {"name": name, "digest": digest, "source_type": "shipyard", "source": "{}"},
        "tags": [{"key": "mlflow.data.context", "value": context}] if context else [],
    }


def project_json(project: projects_pb2.Project) -> dict[str, Any]:
    """A project as MLflow's Experiment."""
    tags = [{"key": "mlflow.note.content", "value": project.description}] if project.description else []
    return {
        "experiment_id": project.name,
        "name": project.name,
        "artifact_location": f"mlflow-artifacts:/{project.name}",
        "lifecycle_stage": "active",
        "creation_time": millis(project.create_time) or 0,
        "last_update_time": millis(project.update_time) or millis(project.create_time) or 0,
        "tags": tags,
    }


DEFAULT_EXPERIMENT = {
    "experiment_id": DEFAULT_ID,
    "name": DEFAULT_NAME,
    "artifact_location": "mlflow-artifacts:/0",
    "lifecycle_stage": "active",
    "tags": [],
}


class Tracking:
    """The tracking handlers: each takes the request's parameters and answers MLflow's JSON."""

    def __init__(self, platform: Platform) -> None:
        self.p = platform

    # --- experiments ---------------------------------------------------------------------------

    async def _project(self, name: str) -> projects_pb2.Project:
        try:
            return await self.p.call(
                f"{PROJECTS}/GetProject", projects_pb2.GetProjectRequest(name=name), projects_pb2.Project
            )
        except MlflowError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise not_found(
                    f"No experiment with id or name '{name}' (experiments are Shipyard's projects)"
                ) from None
            raise

    async def experiment(self, experiment_id: str) -> dict[str, Any]:
        """The experiment with that id."""
        if experiment_id == DEFAULT_ID:
            return DEFAULT_EXPERIMENT
        return project_json(await self._project(experiment_id))

    async def get_experiment(self, params: Params) -> dict[str, Any]:
        return {"experiment": await self.experiment(params.string("experiment_id", required=True))}

    async def get_experiment_by_name(self, params: Params) -> dict[str, Any]:
        name = params.string("experiment_name", required=True)
        if name == DEFAULT_NAME:
            return {"experiment": DEFAULT_EXPERIMENT}
        return {"experiment": project_json(await self._project(name))}

    async def create_experiment(self, params: Params) -> dict[str, Any]:
        name = params.string("name", required=True)
        if name == DEFAULT_NAME:
            raise MlflowError("RESOURCE_ALREADY_EXISTS", f"Experiment '{name}' already exists.", 400)
        if params.string("artifact_location"):
            raise not_implemented("an experiment's own artifact_location (artifacts are in Shipyard's store)")
        tags = params.key_values("tags")
        request = projects_pb2.CreateProjectRequest(
            project=projects_pb2.Project(name=name, description=tags.get("mlflow.note.content", ""))
        )
        project = await self.p.call(f"{PROJECTS}/CreateProject", request, projects_pb2.Project)
        return {"experiment_id": project.name}

    async def search_experiments(self, params: Params) -> dict[str, Any]:
        matcher = NameFilter.parse(params.string("filter"), "experiment")
        experiments = [DEFAULT_EXPERIMENT] if matcher.matches(DEFAULT_NAME) else []
        token = ""
        while True:
            page = await self.p.call(
                f"{PROJECTS}/ListProjects",
                projects_pb2.ListProjectsRequest(page_size=1000, page_token=token),
                projects_pb2.ListProjectsResponse,
            )
            experiments += [project_json(p) for p in page.projects if matcher.matches(p.name)]
            token = page.next_page_token
            if not token:
                break
        limit = params.integer("max_results", 1000)
        return {"experiments": experiments[:limit]}

    async def update_experiment(self, params: Params) -> dict[str, Any]:
        experiment_id = params.string("experiment_id", required=True)
        new_name = params.string("new_name", required=True)
        if experiment_id == DEFAULT_ID:
            raise invalid("the default experiment cannot be renamed")
        request = projects_pb2.UpdateProjectRequest(
            name=experiment_id,
            project=projects_pb2.Project(name=new_name),
            update_mask=FieldMask(paths=["name"]),
        )
        await self.p.call(f"{PROJECTS}/UpdateProject", request, projects_pb2.Project)
        return {}

    async def delete_experiment(self, params: Params) -> dict[str, Any]:
        experiment_id = params.string("experiment_id", required=True)
        if experiment_id == DEFAULT_ID:
            raise invalid("the default experiment cannot be deleted")
        await self.p.call(
            f"{PROJECTS}/DeleteProject",
            projects_pb2.DeleteProjectRequest(name=experiment_id),
            projects_pb2.DeleteProjectResponse,
        )
        return {}

    # --- runs ------------------------------------------------------------------------------------

    def _run_id(self, params: Params) -> str:
        run_id = params.string("run_id") or params.string("run_uuid")
        if not run_id:
            raise invalid("Missing value for required parameter 'run_id'")
        return run_id

    async def run(self, run_id: str) -> runs_pb2.Run:
        """The run with that id."""
        try:
            return await self.p.call(
                f"{TRACKING}/GetRunById", tpb.GetRunByIdRequest(run_id=run_id), runs_pb2.Run
            )
        except MlflowError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise not_found(f"Run '{run_id}' not found") from None
            raise

    async def create_run(self, params: Params) -> dict[str, Any]:
        experiment_id = params.string("experiment_id", default=DEFAULT_ID)
        if experiment_id != DEFAULT_ID:
            await self._project(experiment_id)
        request = tpb.CreateTrackedRunRequest(
            name=params.string("run_name"),
            project=project_of(experiment_id),
            tags=params.key_values("tags"),
            start_time_ms=params.integer("start_time"),
        )
        run = await self.p.call(f"{TRACKING}/CreateTrackedRun", request, runs_pb2.Run)
        return {"run": run_json(run)}

    async def get_run(self, params: Params) -> dict[str, Any]:
        return {"run": run_json(await self.run(self._run_id(params)))}

    async def update_run(self, params: Params) -> dict[str, Any]:
        status = params.string("status")
        if status and status not in TRACKED_STATUS:
            raise invalid(f"Invalid value {status!r} for parameter 'status'")
        request = tpb.UpdateTrackedRunRequest(
            run_id=self._run_id(params),
            status=TRACKED_STATUS.get(status, tpb.TRACKED_RUN_STATUS_UNSPECIFIED),
            end_time_ms=params.integer("end_time"),
        )
        run = await self.p.call(f"{TRACKING}/UpdateTrackedRun", request, runs_pb2.Run)
        return {"run_info": run_json(run)["info"]}

    async def delete_run(self, params: Params) -> dict[str, Any]:
        run = await self.run(self._run_id(params))
        await self.p.call(
            f"{RUNS}/DeleteRun", runs_pb2.DeleteRunRequest(name=run.name), runs_pb2.DeleteRunResponse
        )
        return {}

    async def _log(self, request: tpb.LogRunDataRequest) -> dict[str, Any]:
        try:
            await self.p.call(f"{TRACKING}/LogRunData", request, tpb.LogRunDataResponse)
        except MlflowError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise not_found(f"Run '{request.run_id}' not found") from None
            raise
        return {}

    async def log_metric(self, params: Params) -> dict[str, Any]:
        metric = tpb.LoggedMetric(
            key=params.string("key", required=True),
            value=params.number("value", required=True),
            step=params.integer("step"),
            timestamp_ms=params.integer("timestamp"),
            model_id=params.string("model_id"),
        )
        return await self._log(tpb.LogRunDataRequest(run_id=self._run_id(params), metrics=[metric]))

    async def log_param(self, params: Params) -> dict[str, Any]:
        key = params.string("key", required=True)
        return await self._log(
            tpb.LogRunDataRequest(run_id=self._run_id(params), params={key: params.string("value")})
        )

    async def set_tag(self, params: Params) -> dict[str, Any]:
        key = params.string("key", required=True)
        return await self._log(
            tpb.LogRunDataRequest(run_id=self._run_id(params), tags={key: params.string("value")})
        )

    async def delete_tag(self, params: Params) -> dict[str, Any]:
        request = tpb.DeleteRunTagRequest(
            run_id=self._run_id(params), key=params.string("key", required=True)
        )
        await self.p.call(f"{TRACKING}/DeleteRunTag", request, tpb.DeleteRunTagResponse)
        return {}

    async def log_batch(self, params: Params) -> dict[str, Any]:
        metrics = [
            tpb.LoggedMetric(
                key=_key(m),
                value=as_float("metrics.value", m.get("value")),
                step=as_int("metrics.step", m.get("step", 0)),
                timestamp_ms=as_int("metrics.timestamp", m.get("timestamp", 0)),
                model_id=_model_id(m),
            )
            for m in params.objects("metrics")
        ]
        logged = dict(pairs("params", params.objects("params")))
        tags = dict(pairs("tags", params.objects("tags")))
        return await self._log(
            tpb.LogRunDataRequest(run_id=self._run_id(params), metrics=metrics, params=logged, tags=tags)
        )

    async def log_inputs(self, params: Params) -> dict[str, Any]:
        tags: dict[str, str] = {}
        for item in params.objects("datasets"):
            dataset = item.get("dataset") or {}
            name, digest = dataset.get("name"), dataset.get("digest", "")
            if not isinstance(name, str) or not name or not isinstance(digest, str):
                raise invalid("Invalid value in 'datasets': each needs a dataset with a name and a digest")
            context = dict(pairs("datasets.tags", item.get("tags") or [])).get("mlflow.data.context", "")
            tags[f"{DATASET_TAG}{name}"] = f"{digest} {context}".strip()
        if params.objects("models"):
            raise not_implemented("log-inputs with models")
        return await self._log(tpb.LogRunDataRequest(run_id=self._run_id(params), tags=tags))

    async def log_outputs(self, params: Params) -> dict[str, Any]:
        run = await self.run(self._run_id(params))
        for output in params.objects("models"):
            model_id = output.get("model_id")
            model = await self.p.call(
                f"{TRACKING}/GetLoggedModel", tpb.GetLoggedModelRequest(model_id=model_id), tpb.LoggedModel
            )
            if model.run_id != run.id:
                raise invalid(f"logged model {model_id!r} was logged by another run")
        return {}

    async def metric_history(self, params: Params) -> dict[str, Any]:
        request = tpb.GetMetricHistoryRequest(
            run_id=self._run_id(params), key=params.string("metric_key", required=True)
        )
        history = await self.p.call(f"{TRACKING}/GetMetricHistory", request, tpb.GetMetricHistoryResponse)
        return {
            "metrics": [
                {"key": m.key, "value": json_number(m.value), "timestamp": m.timestamp_ms, "step": m.step}
                for m in history.metrics
            ]
        }

    async def search_runs(self, params: Params) -> dict[str, Any]:
        if params.string("run_view_type") == "DELETED_ONLY":
            return {"runs": []}  # deleted runs are gone for good here
        experiments = params.strings("experiment_ids")
        for experiment_id in experiments:
            if experiment_id != DEFAULT_ID:
                await self._project(experiment_id)
        request = tpb.SearchRunsRequest(
            projects=[project_of(e) for e in experiments],
            filter=params.string("filter"),
            order_by=params.strings("order_by"),
            page_size=params.integer("max_results", 1000),
            page_token=params.string("page_token"),
        )
        found = await self.p.call(f"{TRACKING}/SearchRuns", request, tpb.SearchRunsResponse)
        answer: dict[str, Any] = {"runs": [run_json(r) for r in found.runs]}
        if found.next_page_token:
            answer["next_page_token"] = found.next_page_token
        return answer


def _model_id(metric: dict[str, Any]) -> str:
    model_id = metric.get("model_id") or ""
    if not isinstance(model_id, str):
        raise invalid(f"Invalid value {metric!r} in 'metrics': model_id must be a string")
    return model_id


def _key(metric: dict[str, Any]) -> str:
    key = metric.get("key")
    if not isinstance(key, str):
        raise invalid(f"Invalid value {metric!r} in 'metrics': each needs a key")
    return key


class NameFilter:
    """The filters MLflow's clients send to list experiments, models and versions by name:
    ``name = 'x'`` / ``name LIKE 'x%'`` (ILIKE too), joined by AND."""

    def __init__(self, clauses: list[tuple[str, str, str]]) -> None:
        self.clauses = clauses
        self._patterns = {(op, expected): like_pattern(expected, ignore_case=op == "ILIKE")
                          for _, op, expected in clauses if op in ("LIKE", "ILIKE")}

    @classmethod
    def parse(cls, text: str, noun: str, keys: tuple[str, ...] = ("name",)) -> NameFilter:
        """The filter; INVALID_PARAMETER_VALUE naming what is not supported."""
        clauses = []
        for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE) if text.strip() else []:
            match = re.fullmatch(
                r"\s*`?([\w.]+)`?\s*(=|!=|LIKE|ILIKE)\s*(['\"])(.*)\3\s*", part, re.IGNORECASE
            )
            if match is None or match.group(1).lower() not in keys:
                raise invalid(
                    f"Invalid filter {part!r} for {noun}s: Shipyard takes "
                    f"{' / '.join(keys)} = '…' or LIKE '…', joined by AND"
                )
            clauses.append((match.group(1).lower(), match.group(2).upper(), match.group(4)))
        return cls(clauses)

    def matches(self, value: str, **others: str) -> bool:
        """Whether the named value (and the others, by key) pass every clause."""
        values = {"name": value, **others}
        for key, op, expected in self.clauses:
            actual = values.get(key, "")
            if op in ("LIKE", "ILIKE"):
                if self._patterns[op, expected].fullmatch(actual) is None:
                    return False
            elif (actual == expected) != (op == "="):
                return False
        return True
