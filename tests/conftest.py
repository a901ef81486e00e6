"""Fixtures of a whole running stack, for the integration and browser tests (started on request only)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.client.connection import Client
from shipyard.local.harness import Stack, environment_settings

# loopback_slurm: a real single-node Slurm and sshd on loopback, for the Slurm executor's tests.
pytest_plugins = ["tests.support.slurm"]


@pytest.fixture(scope="session", autouse=True)
def _offline_environments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every stack of the session builds runs' environments in one folder, offline from the test
    wheelhouse (the variables reach the services through the environment the harness passes on)."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in environment_settings(tmp_path_factory.getbasetemp()).items():
            patch.setenv(key, value)
        yield


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One running stack per test module, started as `make up` starts it, except that the
    platform reads no directories itself: clients upload (path imports have their own tests)."""
    running = Stack(tmp_path_factory.mktemp("stack") / "data", env={"SHIPYARD_PATH_IMPORT_ROOTS": ""}).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def admin(stack: Stack) -> Iterator[Client]:
    """A gRPC client signed in as the first admin."""
    client = stack.client()
    yield client
    client.close()
