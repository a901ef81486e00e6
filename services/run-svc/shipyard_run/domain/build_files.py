"""What an image built from a code repo holds: read from the repo's build file and requirement files.

The build file is ``.shipyard-ci.yml`` (or the product's ``.dkube-ci.yml``, same keys) in the folder
the build names. Without one, the folder's ``requirements.txt``, ``pyproject.toml`` or
``environment.yml`` defines the environment. What a local Python environment cannot hold (a
Dockerfile's system packages, R packages) is refused here, naming the line, rather than built wrong.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from shipyard.kit.environments import check_python, check_requirements, platform_python
from shipyard.kit.errors import InvalidArgument

BUILD_FILES = (".shipyard-ci.yml", ".dkube-ci.yml")
REQUIREMENT_FILES = ("requirements.txt", "pyproject.toml", "environment.yml", "environment.yaml")
# The product's keys; components, pipelines and jobs are for pipelines, not images: accepted, unused here.
KEYS = ("conda_env", "Dockerfile", "docker_envs", "images", "components", "pipelines", "jobs", "python")
INCLUDE_DEPTH = 5
# Dockerfile instructions that change nothing a Python environment holds.
_QUIET = {"ENV", "WORKDIR", "COPY", "ADD", "LABEL", "ARG", "USER", "EXPOSE", "CMD", "ENTRYPOINT", "SHELL",
          "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD", "MAINTAINER"}
_PIP = re.compile(r"^(?:python3?(?:\.\d+)?\s+-m\s+)?pip3?\s+install\s+(.*)$")
_SYSTEM = re.compile(r"\b(apt-get|apt|apk|yum|dnf|microdnf|zypper|conda|mamba|micromamba)\b")
_CONDA_SPEC = re.compile(r"^([A-Za-z0-9_.\-\[\],]+)\s*(?:(==?|>=|<=|>|<|!=)\s*([^=\s]+))?(?:=\S+)?$")


@dataclass(frozen=True)
class BuildPlan:
    """The environment a build makes: its Python (empty: the platform's), its requirement lines, the
    base image a cluster would start from, and which file said so."""

    build_file: str
    python: str = ""
    requirements: tuple[str, ...] = ()
    base_image: str = ""
    notes: tuple[str, ...] = field(default=())


def plan_build(files: Mapping[str, str], folder: str = "", image: str = "") -> BuildPlan:
    """The build of ``image`` (a name the build file's ``images`` may list) from ``folder`` of a code
    repo whose text files are ``files`` (path → text); InvalidArgument naming the file and the key or
    line that is wrong, or FileNotFound-like InvalidArgument when there is nothing to build from."""
    base = PurePosixPath(folder.strip("/")) if folder.strip("/") else PurePosixPath()
    for name in BUILD_FILES:
        path = _join(base, name)
        if path in files:
            return _from_build_file(files, path, base, image)
    return _from_requirement_files(files, base, "")


def _join(base: PurePosixPath, name: str) -> str:
    return str(base / name) if str(base) != "." else name


def _from_build_file(files: Mapping[str, str], path: str, base: PurePosixPath, image: str) -> BuildPlan:
    try:
        document = yaml.safe_load(files[path]) or {}
    except yaml.YAMLError as exc:
        raise InvalidArgument(path, f"is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidArgument(path, "must be a mapping of keys (conda_env, Dockerfile, images, …)")
    unknown = sorted(str(k) for k in document if k not in KEYS)
    if unknown:
        raise InvalidArgument(f"{path}: {unknown[0]}",
                              f"is not a key of a build file; the keys are {', '.join(KEYS)}")
    notes = tuple(f"{path}: {key} is for pipelines and jobs, not images: not used by this build"
                  for key in ("components", "pipelines", "jobs") if key in document)
    python = check_python(str(document.get("python", "") or ""), f"{path}: python")
    if "images" in document:
        plan = _from_images(files, path, base, document["images"], image)
    elif "Dockerfile" in document:
        plan = _from_dockerfile(files, _path_value(path, "Dockerfile", document["Dockerfile"], base), path)
    elif "conda_env" in document:
        plan = _from_conda_key(files, path, base, document["conda_env"])
    else:
        plan = _from_requirement_files(files, base, path)
    if "docker_envs" in document:
        _check_images(path, document["docker_envs"])
        notes += (f"{path}: docker_envs are used by cluster builds, not by a local environment",)
    return BuildPlan(path, python or plan.python, plan.requirements, plan.base_image, notes + plan.notes)


def _path_value(build_file: str, key: str, value: Any, base: PurePosixPath) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"{build_file}: {key}", "must be a path in the repo")
    return _inside(build_file, key, base, value.strip())


def _inside(build_file: str, key: str, base: PurePosixPath, value: str) -> str:
    joined = PurePosixPath(_join(base, value.lstrip("/"))) if not value.startswith("/") else PurePosixPath(
        value.lstrip("/"))
    if ".." in joined.parts:
        raise InvalidArgument(f"{build_file}: {key}", f"{value!r} must stay inside the repo")
    return str(joined)


def _from_images(files: Mapping[str, str], path: str, base: PurePosixPath, value: Any,
                 image: str) -> BuildPlan:
    key = f"{path}: images"
    if not isinstance(value, dict) or not isinstance(value.get("images"), list) or not value["images"]:
        raise InvalidArgument(key, "must be {path: <folder>, images: [{name, base_image}, …]}")
    entries = value["images"]
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidArgument(f"{key}[{index}]", "must have a name (and a base_image)")
    names = [entry["name"] for entry in entries]
    chosen = next((e for e in entries if e["name"] == image), entries[0] if len(entries) == 1 else None)
    if chosen is None:
        raise InvalidArgument(key, f"lists {', '.join(names)}: build one of these names (got {image!r})")
    folder = PurePosixPath(_inside(path, "images.path", base, str(value.get("path") or ".")))
    dockerfile = _join(folder, "Dockerfile")
    plan = _from_dockerfile(files, dockerfile, path) if dockerfile in files else _from_requirement_files(
        files, folder, path)
    base_image = str(chosen.get("base_image") or plan.base_image)
    if base_image:
        _check_images(f"{key}.base_image", [base_image])
    return BuildPlan(plan.build_file, plan.python, plan.requirements, base_image, plan.notes)


def _from_conda_key(files: Mapping[str, str], path: str, base: PurePosixPath, value: Any) -> BuildPlan:
    key = f"{path}: conda_env"
    if not isinstance(value, dict) or not isinstance(value.get("path"), str):
        raise InvalidArgument(key, "must be {path: <environment.yml>}")
    if value.get("r_install_script"):
        raise InvalidArgument(f"{key}.r_install_script", "R packages cannot be installed in a local Python "
                                                         "environment: build this image on a cluster")
    return _from_environment_yml(files, _inside(path, "conda_env.path", base, value["path"]))


def _from_requirement_files(files: Mapping[str, str], base: PurePosixPath, said_by: str) -> BuildPlan:
    for name in REQUIREMENT_FILES:
        path = _join(base, name)
        if path not in files:
            continue
        if name == "requirements.txt":
            return BuildPlan(path, requirements=_requirement_lines(files, path, 0))
        if name == "pyproject.toml":
            return _from_pyproject(files[path], path)
        return _from_environment_yml(files, path)
    where = f"folder {base}" if str(base) != "." else "the repo's top folder"
    told = f" ({said_by} names none)" if said_by else ""
    raise InvalidArgument("build_file", f"{where} has no {', '.join(BUILD_FILES)} and no "
                                        f"{', '.join(REQUIREMENT_FILES)}{told}: nothing says what the "
                                        "image holds")


def _requirement_lines(files: Mapping[str, str], path: str, depth: int) -> tuple[str, ...]:
    """The lines of a requirements file, ``-r`` includes followed (inside the repo)."""
    if path not in files:
        raise InvalidArgument(path, "is not in the repo")
    lines: list[str] = []
    for number, raw in enumerate(files[path].splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if line.startswith(("-r ", "--requirement ", "--requirement=")):
            included = re.split(r"[ =]", line, maxsplit=1)[1].strip()
            if depth >= INCLUDE_DEPTH:
                raise InvalidArgument(f"{path}: line {number}", f"includes nest deeper than {INCLUDE_DEPTH}")
            folder = PurePosixPath(path).parent
            lines += _requirement_lines(files, _inside(path, f"line {number}", folder, included), depth + 1)
            continue
        if line.startswith("-"):
            raise InvalidArgument(f"{path}: line {number}", f"{line!r}: pip options are not allowed (the "
                                                            "operator's package index settings apply)")
        lines.append(line)
    return check_requirements(lines, path)


def _from_pyproject(text: str, path: str) -> BuildPlan:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument(path, f"is not valid TOML: {exc}") from None
    project = document.get("project")
    if not isinstance(project, dict):
        raise InvalidArgument(path, "has no [project] table: nothing says what the image holds")
    dependencies = project.get("dependencies", [])
    if not isinstance(dependencies, list):
        raise InvalidArgument(f"{path}: project.dependencies", "must be a list of requirements")
    python = ""
    if requires := project.get("requires-python"):
        python = _python_for(str(requires), f"{path}: project.requires-python")
    lines = check_requirements([str(d) for d in dependencies], f"{path}: project.dependencies")
    return BuildPlan(path, python, lines)


def _python_for(requires: str, key: str) -> str:
    """"" when the platform's Python satisfies ``requires``; InvalidArgument otherwise."""
    try:
        wanted = SpecifierSet(requires)
    except InvalidSpecifier:
        raise InvalidArgument(key, f"{requires!r} is not a version specifier") from None
    if wanted.contains(f"{platform_python()}.0"):
        return ""
    raise InvalidArgument(key, f"asks for Python {requires}; this platform's environments use Python "
                               f"{platform_python()}: pin `python` in the build file")


def _from_environment_yml(files: Mapping[str, str], path: str) -> BuildPlan:
    """A conda environment file: its Python, its pip section, and its other dependencies as
    requirements of the Python package index (where a conda-only package fails, by name)."""
    if path not in files:
        raise InvalidArgument(path, "is not in the repo")
    try:
        document = yaml.safe_load(files[path]) or {}
    except yaml.YAMLError as exc:
        raise InvalidArgument(path, f"is not valid YAML: {exc}") from None
    dependencies = document.get("dependencies", []) if isinstance(document, dict) else None
    if not isinstance(dependencies, list):
        raise InvalidArgument(f"{path}: dependencies", "must be a list")
    python, lines = "", []
    for index, item in enumerate(dependencies):
        key = f"{path}: dependencies[{index}]"
        if isinstance(item, dict) and isinstance(item.get("pip"), list):
            lines += [str(line) for line in item["pip"]]
            continue
        if not isinstance(item, str):
            raise InvalidArgument(key, "must be a package spec or {pip: [...]}")
        name, version = _conda_spec(item, key)
        if name == "python":
            python = check_python(".".join(version.split(".")[:2]), key) if version else ""
        elif name != "pip":
            lines.append(f"{name}=={version}.*" if version and not version.endswith("*") else
                         f"{name}=={version}" if version else name)
    notes = ("environment.yml's conda dependencies are installed from the Python package index; a "
             "package only conda has cannot be",) if lines else ()
    return BuildPlan(path, python, check_requirements(lines, f"{path}: dependencies"), notes=notes)


def _conda_spec(item: str, key: str) -> tuple[str, str]:
    spec = item.split("::")[-1].strip()  # a channel prefix (conda-forge::numpy)
    found = _CONDA_SPEC.match(spec)
    if found is None:
        raise InvalidArgument(key, f"{item!r} is not a conda package spec")
    name, operator, version = found.group(1), found.group(2) or "", found.group(3) or ""
    if operator and operator not in ("=", "=="):
        return f"{name}{operator}{version}", ""
    return name.lower(), version


def _from_dockerfile(files: Mapping[str, str], path: str, said_by: str) -> BuildPlan:
    """The pip installs of a Dockerfile (its FROM is the base image); any other RUN is refused."""
    if path not in files:
        raise InvalidArgument(f"{said_by}: Dockerfile", f"{path} is not in the repo")
    base_image, lines = "", []
    folder = PurePosixPath(path).parent
    for number, instruction, argument in _instructions(files[path]):
        where = f"{path}: line {number}"
        if instruction == "FROM":
            base_image = argument.split()[0] if argument else ""
        elif instruction == "RUN":
            for command in re.split(r"\s*&&\s*|\s*;\s*", argument):
                lines += _pip_install(files, command.strip(), where, folder)
        elif instruction not in _QUIET:
            raise InvalidArgument(where, f"{instruction} is not a Dockerfile instruction")
    return BuildPlan(path, requirements=check_requirements(lines, path), base_image=base_image)


def _instructions(text: str) -> list[tuple[int, str, str]]:
    """(line number, INSTRUCTION, argument), continuation lines joined, comments dropped."""
    found: list[tuple[int, str, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        instruction, _, argument = whole.partition(" ")
        found.append((start, instruction.upper(), argument.strip()))
    return found


def _pip_install(files: Mapping[str, str], command: str, where: str, folder: PurePosixPath) -> list[str]:
    if not command:
        return []
    match = _PIP.match(command)
    if match is None:
        system = _SYSTEM.search(command)
        what = (f"installs system packages with {system.group(1)}" if system
                else "runs a command")
        raise InvalidArgument(where, f"RUN {command!r} {what}, which a local Python environment cannot "
                                     "do: only pip installs are built here (build this image on a cluster "
                                     "for the rest)")
    lines: list[str] = []
    words = shlex.split(match.group(1))
    index = 0
    while index < len(words):
        word = words[index]
        if word in ("-r", "--requirement"):
            index += 1
            included = _inside(where, "pip install -r", folder, words[index] if index < len(words) else "")
            lines += _requirement_lines(files, included, 1)
        elif word in ("--no-cache-dir", "-U", "--upgrade", "-q", "--quiet", "--user", "--no-compile"):
            pass
        elif word.startswith("-"):
            raise InvalidArgument(where, f"pip install {word}: this option is not built here")
        else:
            lines.append(word)
        index += 1
    return lines


def _check_images(key: str, value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InvalidArgument(key, "must be a list of image references")
