"""Image use cases: add, get, list, delete, and resolve the image a run asks for."""

from __future__ import annotations

from dataclasses import dataclass, replace

from shipyard.kit.caller import Caller
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from shipyard_repo.app.ports import UnitOfWork, Units
from shipyard_repo.domain.credentials import CredentialType
from shipyard_repo.domain.events import ImageAdded, ImageDeleted
from shipyard_repo.domain.images import (
    FRAMEWORK_ALIASES,
    FRAMEWORKS,
    Image,
    ImageSource,
    ImageStatus,
    check_framework,
    version_matches,
)
from shipyard_repo.domain.standard_images import (
    DEFAULT_IMAGE,
    STANDARD_IMAGES,
    standard_image,
    standard_versions,
)

# A registry signs in with a user name and a password or token.
REGISTRY_CREDENTIALS = (CredentialType.PASSWORD, CredentialType.TOKEN)


@dataclass
class Images:
    """The image catalog: the standard images (the domain's table) and users' own (the store)."""

    uow: Units
    clock: Clock = utc_now

    async def add(self, caller: Caller, given: Image) -> Image:
        """Add a registry image owned by the caller; its name must be new, and a private one's
        credential one of the caller's stored ones. With a framework (not custom) and no requirements,
        its local environment is the standard set of that framework and version."""
        image = replace(given.checked(), source=ImageSource.REGISTRY, status=ImageStatus.READY,
                        status_reason="", owner=caller.user, create_time=self.clock(), code="", commit="",
                        build_file="", revision=0)
        if not image.requirements and image.framework not in ("", "custom"):
            try:
                standard = _standard_of(image.framework, image.framework_version)
            except NotFound as exc:
                raise InvalidArgument("image.framework_version", f"{exc.message}: give the image's own "
                                      "requirements for its local environment") from None
            image = replace(image, requirements=standard.requirements, python=image.python or standard.python)
        if standard_image(image.name) is not None:
            raise AlreadyExists(f"{image.name!r} is a standard image's name: choose another")
        async with self.uow() as uow:
            if image.credential:
                await _must_pull_with(uow, caller, image.credential)
            if await uow.images.get(image.name) is not None:
                raise AlreadyExists(f"an image named {image.name!r} exists already")
            added = await uow.images.add(image)
            uow.record(ImageAdded(added, caller))
            return added

    async def add_built(self, owner: Caller, built: Image) -> Image:
        """Add the image a build from a code repo made (source CODE_REPO), or replace the one an earlier
        build of the owner's made under that name; the same image again changes nothing. A name held by
        a standard image or by anyone else's image is refused (AlreadyExists)."""
        image = replace(built.checked(), source=ImageSource.CODE_REPO, status=ImageStatus.READY,
                        status_reason="", owner=owner.user, create_time=self.clock(), revision=0)
        if standard_image(image.name) is not None:
            raise AlreadyExists(f"{image.name!r} is a standard image's name")
        async with self.uow() as uow:
            found = await uow.images.get(image.name)
            if found is None:
                added = await uow.images.add(image)
            elif found.source is not ImageSource.CODE_REPO or found.owner != owner.user:
                raise AlreadyExists(f"an image named {image.name!r} is {found.owner or 'the platform'}'s")
            elif (found.code, found.commit, found.digest, found.build_file) == (
                    image.code, image.commit, image.digest, image.build_file):
                return found
            else:
                added = await uow.images.save(replace(image, revision=found.revision))
            uow.record(ImageAdded(added, owner))
            return added

    async def get(self, name: str) -> Image:
        """The image of that name, standard or a user's; NotFound otherwise."""
        if not name:
            raise InvalidArgument("name", "must not be empty")
        found = standard_image(name)
        if found is not None:
            return found
        async with self.uow() as uow:
            return await _must_get(uow, name)

    async def list(self, framework: str = "") -> list[Image]:
        """Every image (of one framework, when given): the standard ones first, then users' by name."""
        framework = check_framework("framework", framework)
        async with self.uow() as uow:
            users = await uow.images.list(framework)
        return [*(i for i in STANDARD_IMAGES if not framework or i.framework == framework), *users]

    async def delete(self, caller: Caller, name: str) -> None:
        """Delete a user's image (its owner or an operator); standard images stay."""
        if standard_image(name) is not None:
            raise FailedPrecondition("standard images come with the platform and cannot be deleted")
        async with self.uow() as uow:
            image = await _must_get(uow, name)
            if caller.user != image.owner and not caller.is_operator:
                raise PermissionDenied(f"image {name!r} belongs to {image.owner!r}; only its owner or an "
                                       "operator may delete it")
            await uow.images.remove(image)
            uow.record(ImageDeleted(image, caller))

    async def resolve(self, name: str, framework: str, framework_version: str) -> Image:
        """The image a run executes in: the one named ``name``; else the newest standard image of
        ``framework`` matching ``framework_version`` (1.5.2 picks the 1.5 image); with neither, the
        default ``python`` image. It must be ready."""
        if name:
            image = await self.get(name)
        elif framework or framework_version:
            image = _standard_of(framework, framework_version)
        else:
            image = DEFAULT_IMAGE
        if image.status is not ImageStatus.READY:
            reason = f": {image.status_reason}" if image.status_reason else ""
            raise FailedPrecondition(f"image {image.name!r} is not ready "
                                     f"(it is {image.status.value}{reason})")
        return image


def _standard_of(framework: str, version: str) -> Image:
    if not framework:
        raise InvalidArgument("framework", f"a framework version needs a framework ({', '.join(FRAMEWORKS)})")
    framework = FRAMEWORK_ALIASES.get(framework, framework)
    if framework not in FRAMEWORKS:
        raise NotFound(f"no standard image of framework {framework!r} (frameworks there are: "
                       f"{', '.join(FRAMEWORKS)})")
    offered = standard_versions(framework)
    for image in offered:
        if version_matches(version, image.framework_version):
            return image
    versions = ", ".join(i.framework_version for i in offered if i.framework_version) or "none"
    raise NotFound(f"no standard image of framework {framework!r} {version}".rstrip()
                   + f" (versions there are: {versions})")


async def _must_get(uow: UnitOfWork, name: str) -> Image:
    found = await uow.images.get(name)
    if found is None:
        raise NotFound(f"image {name!r} not found")
    return found


async def _must_pull_with(uow: UnitOfWork, caller: Caller, name: str) -> None:
    """The caller's stored credential ``name`` exists and can sign in to a registry."""
    found = await uow.credentials.get(caller.user, name)
    if found is None:
        raise NotFound(f"credential {name!r} not found: save it first (shipyard credential save)")
    kind = found[0].type
    if kind not in REGISTRY_CREDENTIALS:
        raise InvalidArgument("image.credential", f"credential {name!r} holds a {kind.value}; a registry "
                                                  "needs a password or token credential")
