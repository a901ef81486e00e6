"""``shipyard study …``: hyperparameter studies (runs submitted with ``--tuning``) and their trials."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from google.protobuf.field_mask_pb2 import FieldMask
from rich.markup import escape

from shipyard.cli import output
from shipyard.cli.context import client, console
from shipyard.cli.output import Format, OutputOpt
from shipyard.cli.runs import status_name
from shipyard.client.connection import Client
from shipyard.contracts.run.v1 import studies_pb2 as pb
from shipyard.kit.study_results import result_rows, results_csv, study_status, trial_state

app = typer.Typer(help="Hyperparameter studies: runs submitted with --tuning, and their trials.",
                  no_args_is_help=True)
Opt = typer.Option
PAGE = 1000
STYLES = {"Succeeded": "green", "Failed": "red", "Running": "cyan", "Stopped": "yellow",
          "Killed": "yellow", "EarlyStopped": "yellow", "MetricsUnavailable": "red"}


def _styled(text: str) -> str:
    style = STYLES.get(text)
    return f"[{style}]{text}[/]" if style else text


def _number(value: float) -> str:
    return f"{value:.6g}"


def _objective(trial: pb.Trial) -> str:
    return _number(trial.objective) if trial.has_objective else "-"


def _assignment(trial: pb.Trial) -> str:
    return ", ".join(f"{name}={value}" for name, value in sorted(trial.assignment.items()))


def all_trials(c: Client, study: str, order_by: str = "", descending: bool = False) -> list[pb.Trial]:
    """Every trial of the study, in the order asked for."""
    found: list[pb.Trial] = []
    token = ""
    while True:
        reply = c.call(c.studies.ListTrials, pb.ListTrialsRequest(
            study=study, order_by=order_by, descending=descending, page_size=PAGE, page_token=token))
        found.extend(reply.trials)
        token = reply.next_page_token
        if not token:
            return found


def _trial_table(trials: Sequence[pb.Trial], metrics: Sequence[str]) -> output.Listing:
    table = output.table("Trial", "Name", "State", "Parameters", "Objective", *metrics)
    for trial in trials:
        latest = {m.name: m.latest for m in trial.metrics}
        table.add_row(str(trial.number), escape(trial.name), _styled(trial_state(trial.state)),
                      escape(_assignment(trial)), _objective(trial),
                      *(_number(latest[m]) if m in latest else "-" for m in metrics))
    return table


def _watched(study: pb.Study) -> list[str]:
    spec = json.loads(study.spec_json or "{}")
    return [study.objective_metric, *spec.get("objective", {}).get("additionalMetricNames", [])]


def _counts(study: pb.Study) -> str:
    counts = study.counts
    parts = [("created", counts.created), ("running", counts.running), ("succeeded", counts.succeeded),
             ("failed", counts.failed), ("metrics unavailable", counts.metrics_unavailable),
             ("killed", counts.killed), ("early stopped", counts.early_stopped)]
    return ", ".join(f"{number} {label}" for label, number in parts if number) or "none yet"


@app.command()
def get(name: str, fmt: OutputOpt = Format.table) -> None:
    """A study: its status, its trials counted by state, the best so far and its latest trials."""
    with client() as c:
        study = c.call(c.studies.GetStudy, pb.GetStudyRequest(name=name))
        trials = all_trials(c, name) if fmt is Format.table else []
    if output.emit(study, fmt):
        return
    limit = f" of {study.max_trial_count}" if study.max_trial_count else ""
    best = study.best_trial
    rows = [
        ("name", escape(study.name)), ("status", _styled(study_status(study.status))),
        ("reason", escape(study.reason)), ("message", escape(study.message)),
        ("objective", f"{study.objective_type} {escape(study.objective_metric)}"),
        ("algorithm", escape(study.algorithm)),
        ("trials", f"{study.trials}{limit} started, {study.parallel_trial_count} at a time: "
                   f"{_counts(study)}"),
        ("best trial", f"{escape(best.name)}: {_objective(best)} ({escape(_assignment(best))})"
         if best.name else "none yet"),
        ("owner", escape(study.owner)), ("project", escape(study.project) or "(none)"),
    ]
    console.print(output.fields(rows))
    if trials:
        console.print(_trial_table(trials[-10:], _watched(study)))


@app.command("list")
def list_(project: Annotated[str, Opt(help="Only this project's.")] = "",
          fmt: OutputOpt = Format.table) -> None:
    """Studies, newest first."""
    found: list[pb.Study] = []
    with client() as c:
        token = ""
        while True:
            reply = c.call(c.studies.ListStudies, pb.ListStudiesRequest(project=project, page_size=PAGE,
                                                                       page_token=token))
            found.extend(reply.studies)
            token = reply.next_page_token
            if not token:
                break
    if output.emit(found, fmt):
        return
    table = output.table("Name", "Status", "Objective", "Trials", "Best")
    for study in found:
        best = study.best_trial
        table.add_row(escape(study.name), _styled(study_status(study.status)),
                      f"{study.objective_type} {escape(study.objective_metric)}", str(study.trials),
                      f"{escape(best.name)} {_objective(best)}" if best.name else "-")
    console.print(table if found else "[dim]No studies.[/]")


@app.command()
def trials(
    name: str,
    sort: Annotated[str, Opt(help="number (default), objective, or a metric the study watches.")] = "",
    desc: Annotated[bool, Opt("--desc", help="Highest first.")] = False,
    fmt: OutputOpt = Format.table,
) -> None:
    """A study's trials: each one's state, parameters, objective and metrics."""
    with client() as c:
        study = c.call(c.studies.GetStudy, pb.GetStudyRequest(name=name))
        found = all_trials(c, name, sort, desc)
    if output.emit(found, fmt):
        return
    console.print(_trial_table(found, _watched(study)) if found else "[dim]No trials yet.[/]")


@app.command()
def best(name: str, top: Annotated[int, Opt(min=1, help="How many of the best trials.")] = 1,
         fmt: OutputOpt = Format.table) -> None:
    """The best trial(s): parameters and metrics, by the study's objective."""
    with client() as c:
        study = c.call(c.studies.GetStudy, pb.GetStudyRequest(name=name))
        ranked = all_trials(c, name, "objective", study.objective_type == "maximize")
    found = [t for t in ranked if t.state == pb.TRIAL_STATE_SUCCEEDED][:top]
    if output.emit(found, fmt):
        return
    if not found:
        console.print("[dim]No trial has succeeded yet.[/]")
        return
    for trial in found:
        rows = [("trial", f"{escape(trial.name)} (#{trial.number})"),
                ("objective", f"{escape(study.objective_metric)} = {_objective(trial)}"),
                *((f"--{k}" if not k.startswith("-") else k, escape(v))
                  for k, v in sorted(trial.assignment.items())),
                *((m.name, f"latest {_number(m.latest)}, min {_number(m.min)}, max {_number(m.max)}")
                  for m in trial.metrics),
                ("run", status_name(trial.run_status))]
        console.print(output.fields(rows))


@app.command()
def download(
    name: str,
    out: Annotated[Path, Opt("--output", "-o", metavar="FILE", help="results.csv or results.json.")],
) -> None:
    """Write every trial's parameters and metrics to a CSV or JSON file (by its extension)."""
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise typer.BadParameter("name a .csv or .json file", param_hint="--output")
    with client() as c:
        study = c.call(c.studies.GetStudy, pb.GetStudyRequest(name=name))
        rows = result_rows(all_trials(c, name), study)
    out.write_text(json.dumps(rows, indent=2) + "\n" if suffix == ".json" else results_csv(rows))
    console.print(f"[green]Wrote {output.count(len(rows), 'trial')}[/] to {escape(str(out))}")


@app.command()
def stop(name: str) -> None:
    """Stop a study: its running trials are killed; the best trial so far gives its outputs."""
    with client() as c:
        study = c.call(c.studies.StopStudy, pb.StopStudyRequest(name=name))
    console.print(f"[green]Stopping study[/] [bold]{escape(study.name)}[/] "
                  f"({study_status(study.status)}); its running trials are killed")


def _limits(study: pb.Study) -> str:
    most = str(study.max_trial_count) if study.max_trial_count else "no limit"
    failed = str(study.max_failed_trial_count) if study.max_failed_trial_count >= 0 else "no limit"
    return (f"parallelTrialCount {study.parallel_trial_count}, maxTrialCount {most}, "
            f"maxFailedTrialCount {failed}")


@app.command()
def edit(
    name: str,
    parallel: Annotated[int | None, Opt(help="Trials run at once (parallelTrialCount).")] = None,
    max_trials: Annotated[int | None, Opt(help="Trials in all (maxTrialCount): more than those started; "
                                               "raising it resumes a Succeeded study whose resumePolicy "
                                               "is LongRunning or FromVolume.")] = None,
    max_failed: Annotated[int | None, Opt(help="Failed trials that fail the study "
                                               "(maxFailedTrialCount).")] = None,
    fmt: OutputOpt = Format.table,
) -> None:
    """Change a study's limits (its owner or an operator), as Katib lets an Experiment's be changed: only
    the options given change; the running study honours them at once."""
    given = {"parallel_trial_count": parallel, "max_trial_count": max_trials,
             "max_failed_trial_count": max_failed}
    changes = {field: value for field, value in given.items() if value is not None}
    if not changes:
        raise typer.BadParameter("give at least one of --parallel, --max-trials, --max-failed",
                                 param_hint="NAME")
    request = pb.UpdateStudyRequest(name=name, update_mask=FieldMask(paths=list(changes)), **changes)
    with client() as c:
        study = c.call(c.studies.UpdateStudy, request)
    if output.emit(study, fmt):
        return
    console.print(f"[green]Changed study[/] [bold]{escape(study.name)}[/] "
                  f"({_styled(study_status(study.status))}): {_limits(study)}")
