"""``shipyard study download`` and the console's download (/studies/<name>/trials.csv|.json) give the same
columns and rows: both write ``shipyard.kit.study_results`` (a service may not import the CLI)."""

from __future__ import annotations

from shipyard.cli import study
from shipyard.contracts.run.v1 import studies_pb2 as pb
from shipyard.kit import study_results


def test_the_console_downloads_what_the_cli_downloads() -> None:
    first = pb.Trial(name="tune-t001", number=1, state=pb.TRIAL_STATE_SUCCEEDED, objective=0.9,
                     has_objective=True,
                     assignment={"lr": "0.01", "units": "32"},
                     metrics=[pb.TrialMetric(name="accuracy", min=0.5, max=0.9, latest=0.9)])
    second = pb.Trial(name="tune-t002", number=2, state=pb.TRIAL_STATE_METRICS_UNAVAILABLE,
                      assignment={"lr": "0.05", "units": "16", "--momentum": "0.9"},
                      metrics=[pb.TrialMetric(name="loss", min=0.1, max=0.4, latest=0.2)])
    assert study.result_rows is study_results.result_rows  # the CLI writes the console's rows
    spec = '{"parameters": [{"name": "units"}, {"name": "lr"}]}'
    rows = study_results.result_rows([first, second], pb.Study(spec_json=spec))
    assert list(rows[0]) == ["number", "name", "state", "units", "lr", "--momentum",
                             "accuracy.latest", "accuracy.min", "accuracy.max",
                             "loss.latest", "loss.min", "loss.max", "objective"]
    assert rows[1]["state"] == "MetricsUnavailable" and rows[1]["objective"] is None
    assert rows[0]["--momentum"] == "" and rows[0]["loss.latest"] is None
    second_line = study_results.results_csv(rows).splitlines()[2]
    assert second_line.startswith("2,tune-t002,MetricsUnavailable,16,0.05,0.9")


def test_parameters_the_tuning_file_does_not_name_come_after_its_own_sorted() -> None:
    """A trial's assignment is a protobuf map, whose order is not kept: the columns must not follow it."""
    trials = [pb.Trial(number=n, assignment={"zeta": "1", "alpha": "2", "mid": "3"}) for n in (1, 2)]
    assert study_results.parameter_names(None, trials) == ["alpha", "mid", "zeta"]
    spec = pb.Study(spec_json='{"parameters": [{"name": "zeta"}]}')
    assert study_results.parameter_names(spec, trials) == ["zeta", "alpha", "mid"]
    assert list(study_results.result_rows(trials, spec)[0])[3:6] == ["zeta", "alpha", "mid"]
