"""MLflow's model registry over model repos: a registered model is a model repo, a model version one
of its versions, tags and aliases are the repo's and version's labels and aliases. A version made
with ``create_model_version`` is the run's artifacts (or a logged model's) under the source path,
registered by run-svc as produced by that run; its files are served at
``mlflow-artifacts:/_registry/<model>/<version>``."""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask

from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import tracking_pb2 as tpb
from shipyard_gateway.entrypoints.mlflow.artifacts import locate
from shipyard_gateway.entrypoints.mlflow.tracking import NameFilter, millis
from shipyard_gateway.entrypoints.mlflow.wire import MlflowError, Params, Platform, invalid, not_implemented

REPOS = "/shipyard.repo.v1.RepoService"
TRACKING = "/shipyard.run.v1.TrackingService"
MODEL = repos_pb2.REPO_KIND_MODEL
_RUNS_URI = re.compile(r"runs:/([0-9a-f]+)/?(.*)")
ARTIFACTS_SCHEME = "mlflow-artifacts:"
_LOGGED_MODEL = re.compile(r"models:/(m-[0-9a-f]+)/?(.*)")


def download_uri(name: str, version: int) -> str:
    """Where MLflow's client downloads a model version's files."""
    return f"mlflow-artifacts:/_registry/{name}/{version}"


def model_json(repo: repos_pb2.Repo, latest: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A model repo as MLflow's RegisteredModel."""
    answer: dict[str, Any] = {
        "name": repo.name,
        "creation_timestamp": millis(repo.create_time) or 0,
        "last_updated_timestamp": millis(repo.update_time) or millis(repo.create_time) or 0,
        "user_id": repo.owner,
        "description": repo.description,
        "tags": [{"key": k, "value": v} for k, v in sorted(repo.labels.items())],
        "aliases": [{"alias": a, "version": str(v)} for a, v in sorted(repo.aliases.items())],
    }
    if latest:
        answer["latest_versions"] = latest
    return answer


def version_json(version: repos_pb2.Version, aliases: dict[str, int] | None = None) -> dict[str, Any]:
    """A version as MLflow's ModelVersion."""
    created = millis(version.create_time) or 0
    return {
        "name": version.repo,
        "version": str(version.number),
        "creation_timestamp": created,
        "last_updated_timestamp": created,
        "user_id": version.owner,
        "current_stage": "None",
        "description": version.message,
        "source": download_uri(version.repo, version.number),
        "run_id": version.produced_by_run,
        "status": "READY",
        "tags": [{"key": k, "value": v} for k, v in sorted(version.labels.items())],
        "aliases": sorted(a for a, n in (aliases or {}).items() if n == version.number),
    }


def source_of(source: str, model_id: str) -> tuple[tpb.ArtifactOwner, str]:
    """What a model version's source names: a run's artifacts, or a logged model's, and the path."""
    if source.startswith(ARTIFACTS_SCHEME):
        where = locate(source.removeprefix(ARTIFACTS_SCHEME).lstrip("/"))
        if where.owner is not None:
            return where.owner, where.path
    for pattern, owner_of in ((_LOGGED_MODEL, _model_owner), (_RUNS_URI, _run_owner)):
        if match := pattern.fullmatch(source):
            return owner_of(match.group(1)), match.group(2).strip("/")
    if model_id:
        return tpb.ArtifactOwner(model_id=model_id), ""
    raise invalid(
        f"Invalid source {source!r}: Shipyard registers what runs logged (runs:/<run id>/<path>, "
        "models:/<model id>, or their mlflow-artifacts: locations)"
    )


def _model_owner(model_id: str) -> tpb.ArtifactOwner:
    return tpb.ArtifactOwner(model_id=model_id)


def _run_owner(run_id: str) -> tpb.ArtifactOwner:
    return tpb.ArtifactOwner(run_id=run_id)


class Registry:
    """The registry handlers."""

    def __init__(self, platform: Platform) -> None:
        self.p = platform

    async def _repo(self, name: str) -> repos_pb2.Repo:
        return await self.p.call(
            f"{REPOS}/GetRepo", repos_pb2.GetRepoRequest(kind=MODEL, name=name), repos_pb2.Repo
        )

    async def _version(self, name: str, number: int) -> repos_pb2.Version:
        if number <= 0:
            raise invalid(f"Invalid version {number}: versions are numbered from 1")
        return await self.p.call(
            f"{REPOS}/GetVersion",
            repos_pb2.GetVersionRequest(kind=MODEL, repo=name, number=number),
            repos_pb2.Version,
        )

    async def _latest(self, repo: repos_pb2.Repo) -> list[dict[str, Any]]:
        if not repo.latest_version:
            return []
        return [version_json(await self._version(repo.name, repo.latest_version), dict(repo.aliases))]

    # --- registered models ------------------------------------------------------------------------

    async def create_model(self, params: Params) -> dict[str, Any]:
        name = params.string("name", required=True)
        request = repos_pb2.CreateRepoRequest(
            repo=repos_pb2.Repo(
                kind=MODEL,
                name=name,
                description=params.string("description"),
                versioning=repos_pb2.VERSIONING_DVS,
                # Its content comes from registrations: no empty placeholder version 1, so MLflow's
                # numbering (the first registered version is 1) holds.
                source=repos_pb2.Source(upload=repos_pb2.UploadSource(filename="mlflow")),
            )
        )
        try:
            await self.p.call(f"{REPOS}/CreateRepo", request, repos_pb2.Repo)
        except MlflowError as exc:
            if exc.error_code == "RESOURCE_ALREADY_EXISTS":
                raise MlflowError(
                    "RESOURCE_ALREADY_EXISTS", f"Registered Model (name={name}) already exists.", 400
                ) from None
            raise
        tags = params.key_values("tags")
        repo = await self._label(name, tags, []) if tags else await self._repo(name)
        return {"registered_model": model_json(repo)}

    async def _label(self, name: str, set_: dict[str, str], remove: list[str]) -> repos_pb2.Repo:
        return await self.p.call(
            f"{REPOS}/LabelRepo",
            repos_pb2.LabelRepoRequest(kind=MODEL, name=name, set=set_, remove=remove),
            repos_pb2.Repo,
        )

    async def get_model(self, params: Params) -> dict[str, Any]:
        repo = await self._repo(params.string("name", required=True))
        return {"registered_model": model_json(repo, await self._latest(repo))}

    async def search_models(self, params: Params) -> dict[str, Any]:
        matcher = NameFilter.parse(params.string("filter"), "registered model")
        models = [model_json(r) for r in await self._all_models() if matcher.matches(r.name)]
        return {"registered_models": models[: params.integer("max_results", 1000)]}

    async def update_model(self, params: Params) -> dict[str, Any]:
        name = params.string("name", required=True)
        request = repos_pb2.UpdateRepoRequest(
            kind=MODEL,
            name=name,
            repo=repos_pb2.Repo(description=params.string("description")),
            update_mask=FieldMask(paths=["description"]),
        )
        return {
            "registered_model": model_json(await self.p.call(f"{REPOS}/UpdateRepo", request, repos_pb2.Repo))
        }

    async def rename_model(self, params: Params) -> dict[str, Any]:
        request = repos_pb2.UpdateRepoRequest(
            kind=MODEL,
            name=params.string("name", required=True),
            repo=repos_pb2.Repo(name=params.string("new_name", required=True)),
            update_mask=FieldMask(paths=["name"]),
        )
        return {
            "registered_model": model_json(await self.p.call(f"{REPOS}/UpdateRepo", request, repos_pb2.Repo))
        }

    async def delete_model(self, params: Params) -> dict[str, Any]:
        request = repos_pb2.DeleteRepoRequest(kind=MODEL, name=params.string("name", required=True))
        await self.p.call(f"{REPOS}/DeleteRepo", request, repos_pb2.DeleteRepoResponse)
        return {}

    async def set_model_tag(self, params: Params) -> dict[str, Any]:
        key = params.string("key", required=True)
        await self._label(params.string("name", required=True), {key: params.string("value")}, [])
        return {}

    async def delete_model_tag(self, params: Params) -> dict[str, Any]:
        await self._label(params.string("name", required=True), {}, [params.string("key", required=True)])
        return {}

    async def set_alias(self, params: Params) -> dict[str, Any]:
        request = repos_pb2.SetAliasRequest(
            kind=MODEL,
            repo=params.string("name", required=True),
            alias=params.string("alias", required=True),
            version=params.integer("version"),
        )
        if request.version <= 0:
            raise invalid("Missing value for required parameter 'version'")
        await self.p.call(f"{REPOS}/SetAlias", request, repos_pb2.Repo)
        return {}

    async def delete_alias(self, params: Params) -> dict[str, Any]:
        request = repos_pb2.SetAliasRequest(
            kind=MODEL,
            repo=params.string("name", required=True),
            alias=params.string("alias", required=True),
            version=0,
        )
        await self.p.call(f"{REPOS}/SetAlias", request, repos_pb2.Repo)
        return {}

    async def version_by_alias(self, params: Params) -> dict[str, Any]:
        name, alias = params.string("name", required=True), params.string("alias", required=True)
        repo = await self._repo(name)
        if alias not in repo.aliases:
            raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Registered model alias {alias} not found.", 404)
        version = await self._version(name, repo.aliases[alias])
        return {"model_version": version_json(version, dict(repo.aliases))}

    async def latest_versions(self, params: Params) -> dict[str, Any]:
        if params.strings("stages"):
            raise not_implemented("model version stages (deprecated by MLflow; use aliases)")
        return {"model_versions": await self._latest(await self._repo(params.string("name", required=True)))}

    # --- model versions ------------------------------------------------------------------------------

    async def create_version(self, params: Params) -> dict[str, Any]:
        name = params.string("name", required=True)
        owner, path = source_of(
            params.string("source", required=True), params.string("model_id")
        )
        request = tpb.RegisterModelVersionRequest(
            source=owner, path=path, repo=name, message=params.string("description")
        )
        version = await self.p.call(f"{TRACKING}/RegisterModelVersion", request, repos_pb2.Version)
        tags = params.key_values("tags")
        if tags:
            version = await self._label_version(name, version.number, tags, [])
        return {"model_version": version_json(version)}

    async def _label_version(
        self, name: str, number: int, set_: dict[str, str], remove: list[str]
    ) -> repos_pb2.Version:
        request = repos_pb2.LabelVersionRequest(kind=MODEL, repo=name, number=number, set=set_, remove=remove)
        return await self.p.call(f"{REPOS}/LabelVersion", request, repos_pb2.Version)

    async def get_version(self, params: Params) -> dict[str, Any]:
        name = params.string("name", required=True)
        repo = await self._repo(name)
        version = await self._version(name, params.integer("version"))
        return {"model_version": version_json(version, dict(repo.aliases))}

    async def download_uri(self, params: Params) -> dict[str, Any]:
        version = await self._version(params.string("name", required=True), params.integer("version"))
        return {"artifact_uri": download_uri(version.repo, version.number)}

    async def search_versions(self, params: Params) -> dict[str, Any]:
        matcher = NameFilter.parse(params.string("filter"), "model version", keys=("name", "run_id"))
        names = [v for k, op, v in matcher.clauses if k == "name" and op == "="]
        repos = [await self._repo(n) for n in names[:1]] or await self._all_models()
        found: list[dict[str, Any]] = []
        for repo in repos:
            token = ""
            while True:
                request = repos_pb2.ListVersionsRequest(
                    kind=MODEL, repo=repo.name, page_size=1000, page_token=token
                )
                page = await self.p.call(f"{REPOS}/ListVersions", request, repos_pb2.ListVersionsResponse)
                found += [
                    version_json(v, dict(repo.aliases))
                    for v in page.versions
                    if matcher.matches(v.repo, run_id=v.produced_by_run)
                ]
                token = page.next_page_token
                if not token:
                    break
        return {"model_versions": found[: params.integer("max_results", 10_000)]}

    async def _all_models(self) -> list[repos_pb2.Repo]:
        repos: list[repos_pb2.Repo] = []
        token = ""
        while True:
            page = await self.p.call(
                f"{REPOS}/ListRepos",
                repos_pb2.ListReposRequest(kind=MODEL, page_size=1000, page_token=token),
                repos_pb2.ListReposResponse,
            )
            repos += page.repos
            token = page.next_page_token
            if not token:
                return repos

    async def delete_version(self, params: Params) -> dict[str, Any]:
        request = repos_pb2.DeleteVersionRequest(
            kind=MODEL, repo=params.string("name", required=True), number=params.integer("version")
        )
        await self.p.call(f"{REPOS}/DeleteVersion", request, repos_pb2.DeleteVersionResponse)
        return {}

    async def set_version_tag(self, params: Params) -> dict[str, Any]:
        key = params.string("key", required=True)
        await self._label_version(
            params.string("name", required=True), params.integer("version"), {key: params.string("value")}, []
        )
        return {}

    async def delete_version_tag(self, params: Params) -> dict[str, Any]:
        await self._label_version(
            params.string("name", required=True),
            params.integer("version"),
            {},
            [params.string("key", required=True)],
        )
        return {}
