"""Attack: a data scientist's run reaches for the platform's own code. It imports Shipyard's
internals (shipyard_run, shipyard_repo, shipyard.kit …) and the packages the services run on
(grpc, nats, pydantic), puts run-svc's virtual environment and Shipyard's source on ``sys.path``
by hand, and lists them. Every attempt fails: the run has its environment's interpreter, with the
public SDK (``shipyard.sdk``) and nothing else of Shipyard, and sees neither run-svc's environment
nor Shipyard's source; its base interpreter's own site-packages look empty."""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Iterator

import pytest
import shipyard_run

import shipyard
from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.local.harness import Stack, wait_for

ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)
PLATFORM = ("shipyard_run", "shipyard_repo", "shipyard_gateway", "shipyard.kit", "shipyard.client", "grpc",
            "nats", "pydantic")
# What run-svc runs on: its virtual environment, its site-packages, Shipyard's source.
RUN_SVC = (os.path.realpath(sys.prefix), os.path.realpath(sysconfig.get_paths()["purelib"]),
           os.path.dirname(os.path.dirname(os.path.realpath(shipyard.__file__))),
           os.path.dirname(os.path.dirname(os.path.realpath(shipyard_run.__file__))))
ATTACK = f"""python - <<'EOF'
import importlib, os, sys, sysconfig
from shipyard.sdk import log_metrics
def attempt(name):
    try:
        importlib.import_module(name)
        print("IMPORTED", name)
    except ImportError:
        print("refused", name)
for name in {PLATFORM!r}:
    attempt(name)
sys.path[:0] = {list(RUN_SVC)!r}
for name in ("shipyard_run", "grpc"):
    attempt(name)
for path in {list(RUN_SVC)!r}:
    print("SEES" if os.path.exists(path) else "missing", path)
base_site = sysconfig.get_path("purelib", vars={{"base": sys.base_prefix}})
print("base site-packages holds", len(os.listdir(base_site)) if os.path.isdir(base_site) else 0)
print("executable", sys.executable)
EOF"""


@pytest.fixture(scope="module")
def dora(stack: Stack, admin: Client) -> Iterator[Client]:
    """Dora, a data scientist."""
    made = admin.call(admin.identity.CreateUser, gateway_pb2.CreateUserRequest(
        user=gateway_pb2.User(name="dora", roles=[gateway_pb2.ROLE_DATA_SCIENTIST])))
    client = stack.client(made.token)
    yield client
    client.close()


def _ended(client: Client, name: str) -> pb.Run:
    def ended() -> pb.Run | None:
        run = client.call(client.runs.GetRun, pb.GetRunRequest(name=name))
        return run if run.status in ENDED else None

    return wait_for(ended, 180, f"run {name} to end")  # its environment may be built first


def test_a_run_cannot_import_or_read_the_platforms_own_code(dora: Client) -> None:
    dora.call(dora.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name="reach-in", command=ATTACK)))
    run = _ended(dora, "reach-in")
    logs = dora.call(dora.runs.ReadRunLogs, pb.ReadRunLogsRequest(name="reach-in", max_bytes=1 << 20))
    log = logs.data.decode(errors="replace")

    assert run.status == pb.RUN_STATUS_COMPLETE, (run.status_reason, log)
    assert "IMPORTED" not in log and "SEES" not in log, log
    assert all(f"refused {name}" in log for name in PLATFORM)
    assert all(f"missing {path}" in log for path in RUN_SVC)
    assert "base site-packages holds 0" in log
    assert f"executable {os.environ['SHIPYARD_ENVIRONMENTS_DIR']}/" in log  # its environment's Python
    assert any(note.startswith("environment ") for note in run.notes), run.notes
