"""Attack (issue 14, item 13 and Low): fill the platform's disk, or freeze its NATS, and watch it
still say it is healthy — ``/healthz`` answered 200 on a full disk and on a SIGSTOPped NATS, and a
run that filled its disk ended with a made-up outcome. Now health reports the bus and the disks:
``/healthz`` answers 503 and GetStatus names NATS, or the service, the path and the room left; a
run that fills its disk ends saying so.

The stack's data directory is a small tmpfs (its run workspaces another), so its disks can be
filled for real; where mounting is not permitted (not root), the module is skipped.
"""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.local.harness import Stack, wait_for
from tests.support.tiny_disk import fill, tiny_disk

MiB = 1 << 20
MIN_FREE = 48 * MiB
SERVICES = ("repo-svc", "run-svc", "serving-svc", "lineage-svc")
ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_ERROR)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose data directory is a 192 MiB tmpfs and whose run workspaces are a 96 MiB one;
    services want 48 MiB free."""
    data = tmp_path_factory.mktemp("health") / "data"
    with tiny_disk(data, size="192m"), tiny_disk(data / "run-svc" / "workspaces", size="96m"):
        running = Stack(data, env={"SHIPYARD_PATH_IMPORT_ROOTS": "",
                                   "SHIPYARD_MIN_FREE_BYTES": str(MIN_FREE)}).start()
        try:
            yield running
        finally:
            running.stop()


def _healthz(stack: Stack) -> int:
    try:
        with urllib.request.urlopen(f"{stack.http_url}/healthz", timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as refused:
        assert json.loads(refused.read()) == {"healthy": False}  # nothing more before sign-in
        return int(refused.code)


def _unhealthy(admin: Client) -> dict[str, str]:
    """What GetStatus says of each unhealthy part."""
    reply: gateway_pb2.GetStatusResponse = admin.status()
    return {s.name: s.detail for s in reply.services if not s.healthy}


def test_a_frozen_nats_makes_the_platform_unhealthy_naming_it(stack: Stack, admin: Client) -> None:
    wait_for(lambda: _healthz(stack) == 200, 60, "/healthz to answer 200")
    stack.kill("nats", signal.SIGSTOP)
    try:
        wait_for(lambda: _healthz(stack) == 503, 30, "/healthz to answer 503 while NATS is frozen")
        # A service's report is asked for with a short deadline: under load one may first read only
        # NOT_SERVING, so wait until every part has said why.
        unhealthy = wait_for(lambda: (found := _unhealthy(admin)).keys() >= {"nats", *SERVICES}
                             and all("bus:" in found[name] for name in SERVICES) and found, 30,
                             "GetStatus to name NATS and every service, and why")
        assert unhealthy["nats"].startswith("NATS not answering within "), unhealthy
        assert all("bus: NATS not answering" in unhealthy[name] for name in SERVICES), unhealthy
    finally:
        stack.kill("nats", signal.SIGCONT)
    wait_for(lambda: _healthz(stack) == 200, 60, "/healthz to answer 200 again once NATS answers")


def test_a_nearly_full_disk_makes_the_platform_unhealthy_naming_the_disk(stack: Stack, admin: Client) -> None:
    filler = fill(stack.data_dir, leave=MIN_FREE // 2)
    try:
        wait_for(lambda: _healthz(stack) == 503, 30, "/healthz to answer 503 on a nearly full disk")
        # A report read with a short deadline under load may first say only NOT_SERVING: wait until
        # each one says why.
        unhealthy = wait_for(lambda: (found := _unhealthy(admin)).keys() >= {"gateway", *SERVICES}
                             and all("disk " in found[name] for name in ("gateway", *SERVICES)) and found,
                             30, "GetStatus to name the disk for the gateway and every service")
        for name in ("gateway", *SERVICES):
            detail = unhealthy[name]
            assert f"disk {stack.data_dir.resolve()}" in detail, unhealthy
            assert "MiB free of 192.0 MiB" in detail, unhealthy
            assert "below the 48.0 MiB minimum (SHIPYARD_MIN_FREE_BYTES)" in detail, unhealthy
        assert "nats" not in unhealthy
    finally:
        filler.unlink()
    wait_for(lambda: _healthz(stack) == 200, 60, "/healthz to answer 200 again once there is room")


def test_a_run_that_fills_its_disk_ends_saying_so(stack: Stack, admin: Client) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="filler", kind=pb.RUN_KIND_PREPROCESSING,
        command='head -c 200M /dev/zero > "$SHIPYARD_OUTPUT/fill"')))

    def ended() -> pb.Run | None:
        run: pb.Run = admin.call(admin.runs.GetRun, pb.GetRunRequest(name="filler"))
        return run if run.status in ENDED else None

    run = wait_for(ended, 120, "the run that fills its disk to end")
    assert run.status in (pb.RUN_STATUS_FAILED, pb.RUN_STATUS_ERROR), run
    assert run.status_reason.startswith("no space left on device: "), run.status_reason
    assert "exit code could not be recorded" in run.status_reason
    assert run.status == pb.RUN_STATUS_ERROR or run.exit_code != 0
    # Its workspace went, so the disk has room again.
    wait_for(lambda: not list(Path(stack.data_dir, "run-svc", "workspaces").glob("*/output/fill")), 30,
             "the run's files to be removed")
    wait_for(lambda: _healthz(stack) == 200, 60, "/healthz to answer 200 once the run's files are gone")
