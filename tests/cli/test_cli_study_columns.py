"""``shipyard study download`` and the console's download (/studies/<name>/trials.csv|.json) give the same
columns and rows: each has its own code (a service may not import the CLI), this keeps them one."""

from __future__ import annotations

from shipyard_gateway.entrypoints.console.study_results import result_rows as console_rows

from shipyard.cli.study import result_rows as cli_rows
from shipyard.contracts.run.v1 import studies_pb2 as pb


def test_the_console_downloads_what_the_cli_downloads() -> None:
    first = pb.Trial(name="tune-t001", number=1, state=pb.TRIAL_STATE_SUCCEEDED, objective=0.9,
                     has_objective=True,
                     assignment={"lr": "0.01", "units": "32"},
                     metrics=[pb.TrialMetric(name="accuracy", min=0.5, max=0.9, latest=0.9)])
    second = pb.Trial(name="tune-t002", number=2, state=pb.TRIAL_STATE_METRICS_UNAVAILABLE,
                      assignment={"lr": "0.05", "units": "16", "--momentum": "0.9"},
                      metrics=[pb.TrialMetric(name="loss", min=0.1, max=0.4, latest=0.2)])
    trials = [first, second]
    assert console_rows(trials) == cli_rows(trials)
    assert list(console_rows(trials)[0]) == list(cli_rows(trials)[0])
