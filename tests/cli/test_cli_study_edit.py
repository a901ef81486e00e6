"""``shipyard study edit``: the limits given are sent with their field mask, the new limits are shown, and
nothing given is a usage error (nothing is sent)."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.contracts.run.v1 import studies_pb2 as pb
from tests.cli.conftest import Replies


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_edit_sends_only_the_limits_given_and_prints_the_new_ones(replies: dict[str, Any]) -> None:
    replies["UpdateStudy"] = pb.Study(name="tune", status=pb.STUDY_STATUS_RUNNING, parallel_trial_count=2,
                                      max_trial_count=6, max_failed_trial_count=-1)
    code, out = invoke("study", "edit", "tune", "--max-trials", "6", "--parallel", "2")
    assert code == 0, out
    assert "Changed study tune" in out and "Running" in out
    assert "parallelTrialCount 2, maxTrialCount 6, maxFailedTrialCount no limit" in out
    (_, request), = Replies.calls
    assert isinstance(request, pb.UpdateStudyRequest)
    assert (request.name, request.parallel_trial_count, request.max_trial_count) == ("tune", 2, 6)
    assert sorted(request.update_mask.paths) == ["max_trial_count", "parallel_trial_count"]


def test_edit_can_set_a_limit_to_zero_failed_trials(replies: dict[str, Any]) -> None:
    replies["UpdateStudy"] = pb.Study(name="tune", parallel_trial_count=3, max_failed_trial_count=0)
    code, out = invoke("study", "edit", "tune", "--max-failed", "0")
    assert code == 0, out
    (_, request), = Replies.calls
    assert isinstance(request, pb.UpdateStudyRequest)
    assert list(request.update_mask.paths) == ["max_failed_trial_count"]
    assert "maxTrialCount no limit, maxFailedTrialCount 0" in out


def test_edit_without_a_limit_is_a_usage_error(replies: dict[str, Any]) -> None:
    code, out = invoke("study", "edit", "tune")
    assert code == 2
    assert "--max-trials" in out
    assert Replies.calls == []
