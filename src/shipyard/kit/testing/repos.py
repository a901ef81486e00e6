"""A fake of the kit's repo-svc client (:class:`shipyard.kit.clients.repos.RepoClient`) for the unit
tests of the services that read repo-svc: it holds the repos, versions and code snapshots a test
adds and answers as repo-svc would, with the same domain errors and messages."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.kit.caller import Caller
from shipyard.kit.clients.repos import KINDS, CodeSnapshot, ImageChoice, RepoVersion
from shipyard.kit.environments import environment_digest
from shipyard.kit.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

RepoCall = tuple[str, str, str, str, int]
"""One call the fake answered: (method, caller's user, repo kind, repo, version number)."""


# As repo-svc has them: the manifest of an empty version needs no upload; a digest is lowercase hex.
EMPTY_MANIFEST = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
_DIGEST = re.compile(r"[0-9a-f]{64}")
MESSAGE_MAX = 4096


def digest_of(repo: str, number: int) -> str:
    """The manifest digest the fake gives version (or code commit) ``number`` of ``repo``."""
    return f"sha256:{repo}-v{number}"


@dataclass
class FakeRepo:
    """A repo as the fake keeps it: its id, owner, whether it keeps versions, and its versions."""

    kind: str
    name: str
    id: str
    owner: str
    versioned: bool = True
    versions: dict[int, RepoVersion] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How repo-svc's messages name it: ``dataset 'digits'``."""
        return f"{self.kind} {self.name!r}"


@dataclass(frozen=True)
class StoredManifest:
    """A manifest the test "uploaded": what a version made from it counts."""

    file_count: int = 0
    size_bytes: int = 0


class FakeRepoClient:
    """repo-svc as the services read it: ``version``, ``snapshot_code``, ``check_write`` and
    ``create_version`` on repos the test added (``add``, ``add_version``, ``add_unversioned``,
    ``add_code``, ``add_snapshot``) and manifests it stored (``add_manifest``). Every call is kept in
    ``calls``, every version made in ``created``. Repos are owned by alice unless the test says
    otherwise."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], FakeRepo] = {}
        self.code: dict[str, list[CodeSnapshot]] = {}  # code repo → its snapshots, oldest first
        self.calls: list[RepoCall] = []
        # The catalog: name → image; "python" (no packages) is what a run that names nothing gets.
        self.images: dict[str, ImageChoice] = {}
        self.add_image("python", framework="custom")
        self.manifests: dict[str, StoredManifest] = {EMPTY_MANIFEST: StoredManifest()}
        self.created: list[repos_pb2.Version] = []
        self._requests: dict[tuple[str, str], repos_pb2.Version] = {}  # (user, request id) → version

    # What the test sets up.

    def add(self, repo_kind: str, repo: str, latest: int = 1, digest: str = "", owner: str = "alice",
            repo_id: str = "") -> FakeRepo:
        """A versioned repo with versions 1..latest (version n's manifest is ``digest_of(repo, n)``,
        the latest's ``digest`` when given); its id is ``repo_id`` (default ``id-<kind>-<repo>``)."""
        found = FakeRepo(repo_kind, repo, repo_id or f"id-{repo_kind}-{repo}", owner)
        self.repos[repo_kind, repo] = found
        for number in range(1, latest + 1):
            manifest = digest if digest and number == latest else digest_of(repo, number)
            found.versions[number] = RepoVersion(number, manifest, found.id)
        return found

    def add_version(self, repo_kind: str, repo: str, version: RepoVersion) -> None:
        """Add (or replace) one version of a repo added before."""
        self.repos[repo_kind, repo].versions[version.number] = version

    def add_unversioned(self, repo_kind: str, repo: str, owner: str = "alice") -> FakeRepo:
        """A repo that exists but keeps no versions (its source is referenced in place)."""
        found = FakeRepo(repo_kind, repo, f"id-{repo_kind}-{repo}", owner, versioned=False)
        self.repos[repo_kind, repo] = found
        return found

    def add_code(self, repo: str, *commits: str) -> None:
        """A code repo with these full commit shas, the last its latest; commit i (from 1) is stored
        as ``digest_of(repo, i)``."""
        for index, sha in enumerate(commits):
            self.add_snapshot(repo, CodeSnapshot(sha, digest_of(repo, index + 1)))

    def add_snapshot(self, repo: str, snapshot: CodeSnapshot) -> None:
        """One more commit of a code repo (made when missing), now its latest."""
        self.code.setdefault(repo, []).append(snapshot)

    def add_image(self, name: str, requirements: tuple[str, ...] = (), python: str = "", framework: str = "",
                  framework_version: str = "", url: str = "") -> ImageChoice:
        """An image in the catalog (the standard image of its framework and version, when given)."""
        image = ImageChoice(name, url or f"registry.example.org/{name}:latest", python, requirements,
                            environment_digest(python, requirements), framework, framework_version)
        self.images[name] = image
        return image

    def add_manifest(self, digest: str, file_count: int = 0, size_bytes: int = 0) -> None:
        """A manifest (and the files it names) stored in the blob store: a version may be made of it."""
        self.manifests[digest] = StoredManifest(file_count, size_bytes)

    def repo(self, repo_kind: str, repo: str) -> FakeRepo:
        """A repo added before (to change its owner, say)."""
        return self.repos[repo_kind, repo]

    # The client.

    async def version(self, caller: Caller, repo_kind: str, repo: str, number: int) -> RepoVersion:
        """That version (0: the latest); NotFound or FailedPrecondition as repo-svc says."""
        self.calls.append(("version", caller.user, repo_kind, repo, number))
        _check_kind(repo_kind)
        if number < 0:
            raise InvalidArgument("number",
                                  f"must be a version number ≥ 1, or 0 for the latest (got {number})")
        found = self._versioned(repo_kind, repo)
        wanted = number or max(found.versions, default=0)
        if wanted in found.versions:
            return found.versions[wanted]
        if number == 0:
            raise NotFound(f"{found.label} has no versions yet")
        raise NotFound(f"{found.label} has no version {number}")

    async def snapshot_code(self, caller: Caller, repo: str, commit: str) -> CodeSnapshot:
        """The code repo at ``commit`` (a full sha or its start; empty: the latest)."""
        self.calls.append(("snapshot_code", caller.user, "code", repo, 0))
        _check_name(repo)
        if repo not in self.code:
            raise NotFound(f"code {repo!r} not found")
        for snapshot in reversed(self.code[repo]):
            if snapshot.commit.startswith(commit):
                return snapshot
        # repo-svc clones and checks the commit out: git's refusal comes back as FailedPrecondition.
        raise FailedPrecondition(f"code {repo!r} at {commit}: the repository has no commit {commit!r}")

    async def check_write(self, caller: Caller, repo_kind: str, repo: str) -> str:
        """The repo's id, if ``caller`` may write its next version; PermissionDenied,
        FailedPrecondition or NotFound naming it otherwise."""
        self.calls.append(("check_write", caller.user, repo_kind, repo, 0))
        _check_kind(repo_kind)
        found = self._versioned(repo_kind, repo)
        _check_may_write(found, caller)
        return found.id

    async def create_version(self, caller: Caller, repo_kind: str, repo: str, manifest_digest: str, *,
                             produced_by_run: str = "", produced_by_run_name: str = "",
                             metrics: Mapping[str, float] | None = None,
                             params: Mapping[str, str] | None = None, message: str = "",
                             request_id: str = "", parent_version: int = 0) -> repos_pb2.Version:
        """The repo's next version, checked in repo-svc's order (the request, the manifest, the
        repo); a retried ``request_id`` returns the first. Kept in ``created``; ``version`` reads it.
        The call is kept with ``parent_version`` as its number."""
        self.calls.append(("create_version", caller.user, repo_kind, repo, parent_version))
        _check_kind(repo_kind)
        if not _DIGEST.fullmatch(manifest_digest):
            raise InvalidArgument("manifest_digest", "must be a lowercase hex sha256 (64 characters), "
                                                     f"not {manifest_digest[:80]!r}")
        if parent_version < 0:
            raise InvalidArgument("parent_version", "must be a version number ≥ 1, or 0 for the latest "
                                                    f"(got {parent_version})")
        _check_message(message)
        stored = self.manifests.get(manifest_digest)
        if stored is None:
            raise FailedPrecondition(f"manifest {manifest_digest} is not stored: upload it (and the files "
                                     "it names) first")
        if request_id and (caller.user, request_id) in self._requests:
            return self._requests[caller.user, request_id]
        found = self._versioned(repo_kind, repo)
        _check_may_write(found, caller)
        latest = max(found.versions, default=0)
        if parent_version and parent_version != latest:
            raise Aborted(f"{found.label} is at version {latest}, not {parent_version}: someone created a "
                          "version meanwhile; pull it, then push again")
        version = repos_pb2.Version(
            repo_id=found.id, kind=KINDS[repo_kind], repo=repo, number=latest + 1,
            manifest_digest=manifest_digest, size_bytes=stored.size_bytes, file_count=stored.file_count,
            message=message, produced_by_run=produced_by_run, owner=caller.user, metrics=dict(metrics or {}),
            params=dict(params or {}), stage="default" if repo_kind == "model" else "",
            run_names={produced_by_run: produced_by_run_name} if produced_by_run and produced_by_run_name
            else {})
        found.versions[version.number] = RepoVersion(version.number, manifest_digest, found.id,
                                                     dict(version.metrics))
        self.created.append(version)
        if request_id:
            self._requests[caller.user, request_id] = version
        return version

    async def resolve_image(self, caller: Caller, name: str, framework: str,
                            framework_version: str) -> ImageChoice:
        """The image named ``name``; else the (newest) image of ``framework`` and version; else, with
        neither, the "python" image. NotFound naming what was asked for otherwise."""
        self.calls.append(("resolve_image", caller.user, "image", name or framework, 0))
        if name:
            if name not in self.images:
                raise NotFound(f"image {name!r} not found")
            return self.images[name]
        if not framework:
            return self.images["python"]
        matches = sorted((i for i in self.images.values() if i.framework == framework
                          and _version_matches(framework_version, i.framework_version)),
                         key=lambda i: _version_key(i.framework_version))
        if not matches:
            raise NotFound(f"no standard image of framework {framework!r} {framework_version}".rstrip())
        return matches[-1]

    def _versioned(self, repo_kind: str, repo: str) -> FakeRepo:
        _check_name(repo)
        found = self.repos.get((repo_kind, repo))
        if found is None:
            raise NotFound(f"{repo_kind} {repo!r} not found")
        if not found.versioned:
            raise FailedPrecondition(f"{found.label} is not versioned: its source is referenced in place "
                                     "(create it with DVS versioning to keep versions)")
        return found


def _check_may_write(found: FakeRepo, caller: Caller) -> None:
    if caller.user != found.owner and not caller.is_operator:
        raise PermissionDenied(f"{found.label} belongs to {found.owner!r}; only its owner or an operator "
                               "may write its versions")


def _check_message(message: str) -> None:
    if len(message) > MESSAGE_MAX:
        raise InvalidArgument("message", f"must be at most {MESSAGE_MAX} characters (got {len(message)})")
    if any(ord(c) < 32 and c not in "\n\t" for c in message):
        raise InvalidArgument("message", "must not contain control characters")


def _check_kind(repo_kind: str) -> None:
    if repo_kind not in KINDS:  # the real client refuses it before asking repo-svc
        raise InvalidArgument("repo_kind", f"must be dataset, featureset or model, not {repo_kind!r}")


def _version_matches(asked: str, offered: str) -> bool:
    """As repo-svc matches them: the same version, a more precise one (1.5.2 is 1.5) or a less
    precise one (2 is 2.17)."""
    return not asked or asked == offered or asked.startswith(f"{offered}.") or offered.startswith(f"{asked}.")


def _version_key(version: str) -> tuple[int, ...]:
    """Versions in order: 2.17 after 2.9."""
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


def _check_name(repo: str) -> None:
    if not repo:
        raise InvalidArgument("name", "must not be empty")
