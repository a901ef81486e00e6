"""Attack: another user changes someone's study limits — raising its parallelism or its trial count to spend
her compute, or resuming it — through UpdateStudy. A role that may not call UpdateStudy is refused at the
gateway; a data scientist who is not the owner is refused by run-svc, through the gateway and when the call
reaches run-svc directly with that user's signed caller. Nothing changes."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
import yaml
from google.protobuf.field_mask_pb2 import FieldMask

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.contracts.run.v1 import studies_pb2 as spb
from shipyard.contracts.run.v1 import studies_pb2_grpc
from shipyard.kit.assertions import CallerAssertions, load_internal_key
from shipyard.kit.caller import Caller
from shipyard.local.harness import Stack, wait_for
from tests.support.users import signed_in

WAITS = "import time\nprint('accuracy=0.5', flush=True)\ntime.sleep(120)\n"
TUNING = yaml.safe_dump({
    "objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
    "algorithm": {"algorithmName": "random"}, "parallelTrialCount": 1, "maxTrialCount": 2,
    "resumePolicy": "LongRunning",
    "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "0.2"}}],
}).encode()
RAISE = spb.UpdateStudyRequest(name="carol-study", parallel_trial_count=2, max_trial_count=50,
                               update_mask=FieldMask(paths=["parallel_trial_count", "max_trial_count"]))


@pytest.fixture(scope="module")
def carol(stack: Stack, admin: Client) -> Iterator[Client]:
    client = signed_in(stack, admin, "carol")
    yield client
    client.close()


def test_another_user_cannot_change_her_studys_limits(stack: Stack, admin: Client, carol: Client) -> None:
    carol.call(carol.runs.SubmitRun, pb.SubmitRunRequest(
        run=pb.Run(name="carol-study", command='python "$SHIPYARD_CONFIG"', config_file_name="train.py"),
        config_file=WAITS.encode(), tuning=TUNING))
    wait_for(lambda: carol.call(carol.studies.GetStudy, spb.GetStudyRequest(name="carol-study")).trials == 1,
             60, "carol's first trial")

    engineer = signed_in(stack, admin, "erin", gateway_pb2.ROLE_PRODUCTION_ENGINEER)
    with pytest.raises(ClientError) as at_gateway:
        engineer.call(engineer.studies.UpdateStudy, RAISE)
    assert at_gateway.value.code == "PERMISSION_DENIED"

    dave = signed_in(stack, admin, "dave")
    with pytest.raises(ClientError) as through_gateway:
        dave.call(dave.studies.UpdateStudy, RAISE)
    assert through_gateway.value.code == "PERMISSION_DENIED"
    assert "belongs to 'carol'" in str(through_gateway.value)

    state = stack.data.read_state()
    assert state is not None
    signed = CallerAssertions(load_internal_key("", stack.data.internal_key), "gateway").metadata(
        Caller("dave", frozenset({"data-scientist"})), "run-svc")
    with (grpc.insecure_channel(state["processes"]["run-svc"]["address"]) as channel,
          pytest.raises(grpc.RpcError) as at_run_svc):
        studies_pb2_grpc.StudyServiceStub(channel).UpdateStudy(RAISE, metadata=signed, timeout=10)
    assert at_run_svc.value.code() is grpc.StatusCode.PERMISSION_DENIED

    kept = carol.call(carol.studies.GetStudy, spb.GetStudyRequest(name="carol-study"))
    assert (kept.parallel_trial_count, kept.max_trial_count, kept.trials) == (1, 2, 1)
    carol.call(carol.studies.StopStudy, spb.StopStudyRequest(name="carol-study"))
