"""Attacks through what an image installs, aimed at run-svc, which builds environments outside any
sandbox:

- a package whose only distribution is a source archive with a build backend of its own: building it
  would run the user's code as run-svc. Environments install wheels only, so the build refuses the
  package by name and the backend never runs;
- a wheel that ships a ``.pth`` file: Python runs its ``import`` lines whenever an interpreter of the
  environment starts, and run-svc starts one to compile the environment's bytecode. It does so in
  isolated mode without site-packages (``-I -S``), so the line runs only in the runs themselves,
  sandboxed.

(Direct references — ``pkg @ file://`` or ``git+`` — are refused before anything is built:
tests/kit/test_environments.py.)"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from shipyard_run.adapters.environments import LocalEnvironments, PackageSources
from shipyard_run.app.ports import EnvironmentFailed, JobEnvironment

from shipyard.kit.environments import environment_digest

BACKEND = '''
import pathlib
MARKER = {marker!r}
def _attack():
    pathlib.Path(MARKER).write_text("ran as the platform")
def get_requires_for_build_wheel(config_settings=None):
    _attack()
    return []
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _attack()
    raise RuntimeError("no wheel")
def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _attack()
    raise RuntimeError("no metadata")
def build_sdist(sdist_directory, config_settings=None):
    _attack()
    raise RuntimeError("no sdist")
'''
PYPROJECT = '''[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]

[project]
name = "evil"
version = "0.1"
'''


def _sdist(folder: Path, marker: Path) -> None:
    """evil-0.1.tar.gz: a source archive whose in-tree build backend writes ``marker``."""
    files = {"evil-0.1/pyproject.toml": PYPROJECT, "evil-0.1/backend.py": BACKEND.format(marker=str(marker)),
             "evil-0.1/PKG-INFO": "Metadata-Version: 2.1\nName: evil\nVersion: 0.1\n"}
    with tarfile.open(folder / "evil-0.1.tar.gz", "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


async def test_a_package_that_must_be_built_from_source_is_refused_and_its_code_never_runs(
        tmp_path: Path) -> None:
    wheels, marker = tmp_path / "wheels", tmp_path / "platform-data" / "owned"
    wheels.mkdir()
    marker.parent.mkdir()
    _sdist(wheels, marker)
    environments = LocalEnvironments(tmp_path / "environments", PackageSources(find_links=str(wheels),
                                                                                offline=True))
    environment = JobEnvironment("evil-image", "", ("evil==0.1",), environment_digest("", ("evil==0.1",)))

    with pytest.raises(EnvironmentFailed) as refused:
        await environments.build(environment)

    assert "evil" in str(refused.value)
    assert not marker.exists(), "the package's build backend ran as the platform"
    assert not await environments.ready(environment)


def _wheel(folder: Path, marker: Path) -> None:
    """pthbomb-0.1: a pure wheel whose .pth file writes ``marker`` when an interpreter starts."""
    files = {
        "pthbomb.pth": f"import pathlib; pathlib.Path({str(marker)!r}).write_text('ran as the platform')\n",
        "pthbomb/__init__.py": "",
        "pthbomb-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: pthbomb\nVersion: 0.1\n",
        "pthbomb-0.1.dist-info/WHEEL": ("Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                        "Tag: py3-none-any\n"),
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append("pthbomb-0.1.dist-info/RECORD,,")
    files["pthbomb-0.1.dist-info/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(folder / "pthbomb-0.1-py3-none-any.whl", "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)


async def test_a_pth_file_in_a_wheel_does_not_run_as_the_platform(tmp_path: Path) -> None:
    wheels, marker = tmp_path / "wheels", tmp_path / "platform-data" / "owned"
    wheels.mkdir()
    marker.parent.mkdir()
    _wheel(wheels, marker)
    environments = LocalEnvironments(tmp_path / "environments", PackageSources(find_links=str(wheels),
                                                                                offline=True))
    wanted = ("pthbomb==0.1",)
    environment = JobEnvironment("pth-image", "", wanted, environment_digest("", wanted))

    built = await environments.build(environment)
    await environments.compiled()  # the bytecode compiled in the background, if any

    assert "pthbomb==0.1" in built.packages
    assert not marker.exists(), "the wheel's .pth file ran as the platform"
