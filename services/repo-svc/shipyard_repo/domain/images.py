"""Images: the environments runs execute in.

An image is a container image reference (``url``: what a cluster executor runs) and the Python
environment the local executor builds for it (``python`` and ``requirements``, identified by
their ``digest``). Standard images come with the platform (``standard_images``); users add images
of their own from a registry, or build them from a code repo.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from datetime import datetime

from shipyard.kit.environments import check_python, check_requirements, environment_digest
from shipyard.kit.errors import InvalidArgument

from .names import check_name, check_text

DESCRIPTION_MAX = 1000
URL_MAX = 512
FRAMEWORK_VERSION_MAX = 32
FRAMEWORKS = ("tensorflow", "pytorch", "sklearn", "xgboost", "custom")
# What users also call the frameworks (the product's words and the packages' names).
FRAMEWORK_ALIASES = {"tf": "tensorflow", "torch": "pytorch", "scikit-learn": "sklearn"}

# A container image reference as registries know it: [registry[:port]/]path[:tag][@sha256:digest].
# Path components are lower case (the distribution spec's grammar); the registry is a host name.
_HOST_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_REGISTRY = rf"{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]{{1,5}})?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
IMAGE_REFERENCE = re.compile(
    rf"(?:(?P<registry>{_REGISTRY})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@sha256:[a-f0-9]{{64}})?")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]*")


class ImageSource(enum.Enum):
    """Where an image comes from."""

    STANDARD = "standard"  # with the platform: read-only
    REGISTRY = "registry"  # a user's, at a registry URL
    CODE_REPO = "code-repo"  # a user's, built from a code repo


class ImageStatus(enum.Enum):
    """Whether runs can use an image yet."""

    READY = "ready"
    BUILDING = "building"
    FAILED = "failed"


@dataclass(frozen=True)
class Image:
    """An image of the catalog: its name is unique among standard and users' images."""

    name: str
    url: str
    description: str = ""
    private: bool = False
    credential: str = ""  # the owner's stored credential that pulls a private image
    framework: str = ""
    framework_version: str = ""
    python: str = ""  # major.minor; empty: the platform's
    requirements: tuple[str, ...] = ()
    source: ImageSource = ImageSource.REGISTRY
    status: ImageStatus = ImageStatus.READY
    status_reason: str = ""
    owner: str = ""  # empty for standard images
    create_time: datetime | None = None  # None for standard images
    code: str = ""  # built from this code repo (source CODE_REPO)
    commit: str = ""
    build_file: str = ""
    revision: int = 0

    @property
    def id(self) -> str:
        """Unique in the catalog: the name."""
        return self.name

    @property
    def digest(self) -> str:
        """The identity of the local environment this image resolves to."""
        return environment_digest(self.python, self.requirements)

    @property
    def standard(self) -> bool:
        """Whether it comes with the platform (and cannot be deleted)."""
        return self.source is ImageSource.STANDARD

    def checked(self) -> Image:
        """This image as a user gives it, normalised (requirement lines stripped, the framework's
        usual name); InvalidArgument naming the first bad field otherwise."""
        check_name("image.name", self.name)
        check_image_url("image.url", self.url)
        check_text("image.description", self.description, DESCRIPTION_MAX)
        framework = check_framework("image.framework", self.framework)
        _check_framework_version(framework, self.framework_version)
        _check_credential(self.private, self.credential)
        return replace(self, framework=framework,
                       python=check_python(self.python, "image.python"),
                       requirements=check_requirements(self.requirements, "image.requirements"))


def check_image_url(field: str, url: str) -> str:
    """A container image reference, ``[registry[:port]/]path[:tag][@sha256:digest]``."""
    if not url:
        raise InvalidArgument(field, "must not be empty: a container image reference such as "
                                     "registry.example.org/team/image:tag")
    check_text(field, url, URL_MAX, multiline=False)
    if any(c.isspace() for c in url):
        raise InvalidArgument(field, "must not contain spaces")
    if "://" in url:
        raise InvalidArgument(field, f"is an image reference, without a scheme (got {url!r}; "
                                     "write registry.example.org/team/image:tag)")
    if IMAGE_REFERENCE.fullmatch(url):
        return url
    path = url.split("/", 1)[1] if "/" in url and _looks_like_registry(url.split("/", 1)[0]) else url
    if any(c.isupper() for c in path.split(":", 1)[0].split("@", 1)[0]):
        raise InvalidArgument(field, f"an image's path must be lower case (got {url!r})")
    raise InvalidArgument(field, f"{url!r} is not a container image reference: "
                                 "[registry[:port]/]path[:tag][@sha256:digest], e.g. "
                                 "registry.example.org/team/image:1.0")


def _looks_like_registry(first: str) -> bool:
    """Whether a reference's first component is a registry host (as container tools decide)."""
    return "." in first or ":" in first or first == "localhost"


def check_framework(field: str, framework: str) -> str:
    """One of FRAMEWORKS (or an alias of one), or empty."""
    framework = FRAMEWORK_ALIASES.get(framework, framework)
    if framework and framework not in FRAMEWORKS:
        raise InvalidArgument(field, f"must be one of {', '.join(FRAMEWORKS)} (got {framework!r})")
    return framework


def _check_framework_version(framework: str, version: str) -> None:
    if not version:
        return
    if not framework:
        raise InvalidArgument("image.framework_version", "a framework version needs a framework "
                                                         f"({', '.join(FRAMEWORKS)})")
    if len(version) > FRAMEWORK_VERSION_MAX or not _VERSION.fullmatch(version):
        raise InvalidArgument("image.framework_version",
                              f"must be a version such as 2.17 or 1.5.2 (got {version!r})")


def _check_credential(private: bool, credential: str) -> None:
    if private and not credential:
        raise InvalidArgument("image.credential",
                              "a private image needs --credential: the stored credential that pulls it")
    if credential and not private:
        raise InvalidArgument("image.credential",
                              "only a private image is pulled with a credential (add --private)")
    if credential:
        check_name("image.credential", credential)


def version_key(version: str) -> tuple[int, ...]:
    """A framework version for ordering: 2.17 after 2.9 (parts that are not numbers count as 0)."""
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


def version_matches(asked: str, offered: str) -> bool:
    """Whether the version a user asked for is the offered one: the same, more precise
    (1.5.2 is 1.5), or less precise (2 is 2.17)."""
    return not asked or asked == offered or asked.startswith(f"{offered}.") or offered.startswith(f"{asked}.")
