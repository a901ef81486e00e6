"""Repos (code, datasets, feature sets, models): lists with filters, details with the versions
table, version details with the runs that used them, compare, move to another project, delete."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import grpc
from aiohttp import web
from google.protobuf.field_mask_pb2 import FieldMask

from shipyard.contracts.repo.v1 import repos_pb2 as pb
from shipyard.kit.units import human_size
from shipyard_gateway.entrypoints.console.calls import ConsoleError, selected_project
from shipyard_gateway.entrypoints.console.edge import Console
from shipyard_gateway.entrypoints.console.run_names import run_names

SERVICE = "/shipyard.repo.v1.RepoService"
PAGE_SIZE = 50
FILES_PAGE = 200
KINDS = {  # URL segment → (kind, singular, plural)
    "code": (pb.REPO_KIND_CODE, "code repo", "Code"),
    "datasets": (pb.REPO_KIND_DATASET, "dataset", "Datasets"),
    "featuresets": (pb.REPO_KIND_FEATURESET, "feature set", "FeatureSets"),
    "models": (pb.REPO_KIND_MODEL, "model", "Models"),
}
LINEAGE_KIND = {"code": "code", "datasets": "dataset", "featuresets": "featureset", "models": "model"}


def source_of(repo: pb.Repo) -> str:
    """``git``, ``s3``, ``upload``, …"""
    return repo.source.WhichOneof("kind") or "—"


def access_of(repo: pb.Repo) -> str:
    """How the platform holds the repo's data (downloaded, referenced, …); "" for uploads, whose
    data the platform simply keeps."""
    return "" if repo.source.WhichOneof("kind") == "upload" else repo.access


def status_of(repo: pb.Repo) -> str:
    """``ready``, ``downloading``, …"""
    return pb.RepoStatus.Name(repo.status).removeprefix("REPO_STATUS_").lower() if repo.status else "—"


def with_run_names(message: str, names: dict[str, str]) -> str:
    """``message`` with the run ids it holds written as the runs' names."""
    for run_id, name in names.items():
        message = message.replace(run_id, name)
    return message


def _number(text: str | None, name: str) -> int:
    try:
        number = int(text or "0")
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name}: must be a whole number") from None
    if number < 0:
        raise web.HTTPBadRequest(text=f"{name}: must not be negative")
    return number


class RepoPages:
    """``/repos/<kind>…``."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def add_routes(self, app: web.Application) -> None:
        guarded = self._console.guarded
        base = "/repos/{kind:code|datasets|featuresets|models}"
        app.router.add_get(base, guarded(self.list))
        app.router.add_get(base + "/{name}", guarded(self.detail))
        app.router.add_get(base + "/{name}/versions/{number:\\d+}", guarded(self.version))
        app.router.add_get(base + "/{name}/compare", guarded(self.compare))
        app.router.add_post(base + "/{name}/move", guarded(self.move))
        app.router.add_post(base + "/{name}/delete", guarded(self.delete))

    def _kind(self, request: web.Request) -> tuple[str, Any, str, str]:
        segment = request.match_info["kind"]
        kind, singular, plural = KINDS[segment]
        return segment, kind, singular, plural

    def _common(self, request: web.Request) -> dict[str, Any]:
        segment, _, singular, plural = self._kind(request)
        return {
            "segment": segment,
            "singular": singular,
            "plural": plural,
            "source_of": source_of,
            "access_of": access_of,
            "status_of": status_of,
            "size_of": human_size,
            "lineage_kind": LINEAGE_KIND[segment],
        }

    async def list(self, request: web.Request) -> web.Response:
        segment, kind, _, _ = self._kind(request)
        query = request.query
        filters = {"q": query.get("q", "").strip()[:100], "tag": query.get("tag", "").strip()[:100]}
        page = await self._console.call(
            request,
            f"{SERVICE}/ListRepos",
            pb.ListReposRequest(
                kind=kind,
                project=selected_project(request),
                name_prefix=filters["q"],
                tag=filters["tag"],
                page_size=PAGE_SIZE,
                page_token=query.get("page", ""),
            ),
            pb.ListReposResponse,
        )
        shown = {k: v for k, v in filters.items() if v}
        return await self._console.page(
            request,
            "repos/list.html.j2",
            segment,
            repos=page.repos,
            filters=filters,
            next_url=f"/repos/{segment}?" + urlencode({**shown, "page": page.next_page_token})
            if page.next_page_token
            else "",
            **self._common(request),
        )

    async def detail(self, request: web.Request, error: ConsoleError | None = None) -> web.Response:
        segment, kind, _, _ = self._kind(request)
        name = request.match_info["name"]
        repo = await self._console.call(
            request, f"{SERVICE}/GetRepo", pb.GetRepoRequest(kind=kind, name=name), pb.Repo
        )
        versions = await self._console.call(
            request,
            f"{SERVICE}/ListVersions",
            pb.ListVersionsRequest(
                kind=kind, repo=name, page_size=PAGE_SIZE, page_token=request.query.get("page", "")
            ),
            pb.ListVersionsResponse,
        )
        # A refused delete names the runs that read the repo's versions: by name, with links.
        refused = error is not None and error.code is grpc.StatusCode.FAILED_PRECONDITION
        read_by = sorted({r for v in versions.versions for r in v.used_by_runs}) if refused else []
        names = await run_names(
            self._console, request, [*(v.produced_by_run for v in versions.versions), *read_by],
            known={k: v for version in versions.versions for k, v in version.run_names.items()},
        )
        return await self._console.page(
            request,
            "repos/detail.html.j2",
            segment,
            status=400 if error else 200,
            repo=repo,
            versions=versions.versions,
            run_names=names,
            read_by=read_by,
            next_page=versions.next_page_token,
            error=with_run_names(error.message, names) if error else "",
            **self._common(request),
        )

    async def version(self, request: web.Request) -> web.Response:
        segment, kind, _, _ = self._kind(request)
        name = request.match_info["name"]
        number = _number(request.match_info["number"], "version")
        version = await self._console.call(
            request,
            f"{SERVICE}/GetVersion",
            pb.GetVersionRequest(kind=kind, repo=name, number=number),
            pb.Version,
        )
        files = await self._console.call(
            request,
            f"{SERVICE}/ListVersionFiles",
            pb.ListVersionFilesRequest(
                kind=kind,
                repo=name,
                number=number,
                page_size=FILES_PAGE,
                page_token=request.query.get("page", ""),
            ),
            pb.ListVersionFilesResponse,
        )
        return await self._console.page(
            request,
            "repos/version.html.j2",
            segment,
            repo_name=name,
            version=version,
            run_names=await run_names(
                self._console, request, [version.produced_by_run, *version.used_by_runs],
                known=version.run_names,
            ),
            files=files.files,
            next_page=files.next_page_token,
            **self._common(request),
        )

    async def compare(self, request: web.Request) -> web.Response:
        segment, kind, _, _ = self._kind(request)
        name = request.match_info["name"]
        left = _number(request.query.get("left"), "left")
        right = _number(request.query.get("right"), "right")
        result = None
        if left and right:
            result = await self._console.call(
                request,
                f"{SERVICE}/CompareVersions",
                pb.CompareVersionsRequest(kind=kind, repo=name, number=left, other_number=right),
                pb.CompareVersionsResponse,
            )
        metric_names = sorted({*result.left.metrics, *result.right.metrics}) if result else []
        param_names = sorted({*result.left.params, *result.right.params}) if result else []
        makers = [result.left.produced_by_run, result.right.produced_by_run] if result else []
        return await self._console.page(
            request,
            "repos/compare.html.j2",
            segment,
            repo_name=name,
            left=left,
            right=right,
            result=result,
            run_names=await run_names(
                self._console, request, makers,
                known={**result.left.run_names, **result.right.run_names} if result else None,
            ),
            metric_names=metric_names,
            param_names=param_names,
            **self._common(request),
        )

    async def move(self, request: web.Request) -> web.Response:
        segment, kind, _, _ = self._kind(request)
        name = request.match_info["name"]
        form = await request.post()
        try:
            await self._console.call(
                request,
                f"{SERVICE}/UpdateRepo",
                pb.UpdateRepoRequest(
                    kind=kind,
                    name=name,
                    repo=pb.Repo(project=str(form.get("project", ""))),
                    update_mask=FieldMask(paths=["project"]),
                ),
                pb.Repo,
            )
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self.detail(request, exc)
        raise web.HTTPSeeOther(f"/repos/{segment}/{name}")

    async def delete(self, request: web.Request) -> web.Response:
        segment, kind, _, _ = self._kind(request)
        name = request.match_info["name"]
        form = await request.post()
        if form.get("confirm") != name:
            return await self.detail(
                request,
                ConsoleError.invalid("confirm", f"type the name {name!r} to delete it"),
            )
        try:
            await self._console.call(
                request,
                f"{SERVICE}/DeleteRepo",
                pb.DeleteRepoRequest(kind=kind, name=name, force=form.get("force") == "on"),
                pb.DeleteRepoResponse,
            )
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self.detail(request, exc)
        raise web.HTTPSeeOther(f"/repos/{segment}")
