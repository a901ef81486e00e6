"""requirements.lock is the whole, coherent set of packages that make test installs;
requirements-run.lock the part of it that running needs, which make up installs."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")
FULL_LOCK = ROOT / "requirements.lock"
RUNTIME_LOCK = ROOT / "requirements-run.lock"


def pins(text: str) -> dict[str, str]:
    """Package name (canonical) → pinned version; comments and blank lines skipped; anything else
    in the lock is an error (a range or a URL would make installs vary by the day)."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"requirements.lock line {number} is not an exact pin: {line!r}"
        found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def declared() -> list[Requirement]:
    """Every requirement of pyproject.toml: the platform's and each extra's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    specs = [*project["dependencies"], *(spec for extra in extras for spec in extra)]
    return [Requirement(spec) for spec in specs]


def unmet(requirements: list[Requirement], pinned: dict[str, str]) -> list[str]:
    """The requirements the lock leaves out or pins outside their range."""
    problems = []
    for req in requirements:
        version = pinned.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req.name} is not in requirements.lock")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}=={version} does not satisfy {req}")
    return problems


def test_the_lock_pins_every_declared_requirement_within_its_range() -> None:
    problems = unmet(declared(), pins((ROOT / "requirements.lock").read_text()))
    assert not problems, "run `make lock`:\n" + "\n".join(problems)


def test_what_is_installed_is_what_the_lock_says() -> None:
    pinned = pins((ROOT / "requirements.lock").read_text())
    wrong = [f"{name}: installed {installed}, locked {version}" for name, version in sorted(pinned.items())
             if (installed := importlib.metadata.version(name)) != version]
    assert not wrong, "the environment was not installed from requirements.lock:\n" + "\n".join(wrong)


def test_the_checks_can_fail() -> None:
    assert unmet([Requirement("grpcio>=1.70")], {}) == ["grpcio is not in requirements.lock"]
    assert unmet([Requirement("grpcio>=1.70")], {"grpcio": "1.60.0"}) == [
        "grpcio==1.60.0 does not satisfy grpcio>=1.70"]
    try:
        pins("grpcio>=1.70\n")
    except AssertionError as exc:
        assert "not an exact pin" in str(exc)
    else:
        raise AssertionError("a range was taken for a pin")


def runtime_lock_tool() -> ModuleType:
    """tools/runtime_lock.py, which writes requirements-run.lock (tools/ is no package)."""
    spec = importlib.util.spec_from_file_location("runtime_lock", ROOT / "tools" / "runtime_lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_runtime_lock_is_part_of_the_full_lock_with_the_same_versions() -> None:
    full, runtime = pins(FULL_LOCK.read_text()), pins(RUNTIME_LOCK.read_text())
    differ = [f"{name}: {version} (requirements.lock: {full.get(name, 'absent')})"
              for name, version in sorted(runtime.items()) if full.get(name) != version]
    assert not differ, "run `make lock`:\n" + "\n".join(differ)
    assert len(runtime) < len(full), "the runtime lock holds what the tests need too"


def test_the_runtime_lock_pins_the_platform_and_its_runtime_extras() -> None:
    tool = runtime_lock_tool()
    assert tool.RUNTIME_EXTRAS == ("model-server", "examples"), "shipyard demo needs the examples extra"
    problems = unmet(tool.runtime_requirements(), pins(RUNTIME_LOCK.read_text()))
    assert not problems, "run `make lock`:\n" + "\n".join(problems)


def test_the_runtime_lock_is_what_tools_lock_writes_from_this_resolution() -> None:
    """Every dependency of a package in it is in it too (make up's `pip check` relies on that): the
    environment here is installed from requirements.lock, so the tool's closure over its metadata is
    what `make lock` writes."""
    expected = runtime_lock_tool().render(FULL_LOCK.read_text())
    assert RUNTIME_LOCK.read_text() == expected, "run `make lock` (or .venv/bin/python tools/runtime_lock.py)"
