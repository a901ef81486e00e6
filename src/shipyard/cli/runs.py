"""``shipyard run …``: submit training, preprocessing and evaluation runs and follow them."""

from __future__ import annotations

import math
import re
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer
from google.protobuf.timestamp_pb2 import Timestamp
from rich.markup import escape
from rich.table import Table

from shipyard.cli import output
from shipyard.cli.compare import write_csv
from shipyard.cli.context import client, console
from shipyard.cli.logs import LogChunk, copy_log
from shipyard.cli.output import Format, OutputOpt
from shipyard.cli.run_artifacts import artifacts
from shipyard.client.connection import Client
from shipyard.contracts.run.v1 import runs_pb2 as pb

app = typer.Typer(help="Runs: training, preprocessing and evaluation jobs.", no_args_is_help=True)
app.command()(artifacts)
Opt = typer.Option

STATUSES: dict[str, pb.RunStatus] = {
    "queued": pb.RUN_STATUS_QUEUED,
    "waiting-for-gpus": pb.RUN_STATUS_WAITING_FOR_GPUS,
    "starting": pb.RUN_STATUS_STARTING,
    "running": pb.RUN_STATUS_RUNNING,
    "complete": pb.RUN_STATUS_COMPLETE,
    "failed": pb.RUN_STATUS_FAILED,
    "stopping": pb.RUN_STATUS_STOPPING,
    "stopped": pb.RUN_STATUS_STOPPED,
    "error": pb.RUN_STATUS_ERROR,
}
KINDS: dict[str, pb.RunKind] = {
    "training": pb.RUN_KIND_TRAINING,
    "preprocessing": pb.RUN_KIND_PREPROCESSING,
    "evaluation": pb.RUN_KIND_EVALUATION,
    "trial": pb.RUN_KIND_TRIAL,  # a study's trial (listed with --kind trial or --study; never submitted)
}
ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)
STYLES = {"complete": "green", "failed": "red", "error": "red", "running": "cyan", "stopped": "yellow",
          "stopping": "yellow"}
BARS = "▁▂▃▄▅▆▇█"
CONFIG_MAX = 1 << 20  # bytes: what SubmitRun accepts
LOG_CHUNK = 1 << 20
SYSTEM_TAG = "mlflow."  # MLflow's own tags' prefix

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_PATH = r"/\S+"
_INPUT = re.compile(rf"(?P<repo>{_NAME})(?:@(?P<version>[1-9][0-9]*))?:(?P<path>{_PATH})")
_OUTPUT = re.compile(rf"(?P<repo>{_NAME})(?::(?P<path>{_PATH}))?")


def status_name(status: int) -> str:
    """RUN_STATUS_WAITING_FOR_GPUS → ``waiting-for-gpus``; a value this client does not know → its number."""
    try:
        return pb.RunStatus.Name(status).removeprefix("RUN_STATUS_").lower().replace("_", "-")
    except ValueError:
        return str(status)


def kind_name(kind: int) -> str:
    """RUN_KIND_TRAINING → ``training``; a value this client does not know → its number."""
    try:
        return pb.RunKind.Name(kind).removeprefix("RUN_KIND_").lower()
    except ValueError:
        return str(kind)


def parse_status(name: str) -> pb.RunStatus:
    """``waiting-for-gpus`` → RUN_STATUS_WAITING_FOR_GPUS; an unknown name is a BadParameter."""
    if name not in STATUSES:
        raise typer.BadParameter(f"unknown status {name!r}; known: {', '.join(STATUSES)}",
                                 param_hint="--status")
    return STATUSES[name]


def parse_kind(name: str) -> pb.RunKind:
    """``training`` → RUN_KIND_TRAINING; an unknown name is a BadParameter."""
    if name not in KINDS:
        raise typer.BadParameter(f"unknown kind {name!r}; known: {', '.join(KINDS)}", param_hint="--kind")
    return KINDS[name]


def parse_input(value: str, repo_kind: str) -> pb.RunInput:
    """``digits@3:/mnt/data`` → digits version 3 at /mnt/data; without ``@V``: version 0, the latest."""
    match = _INPUT.fullmatch(value)
    if match is None:
        raise typer.BadParameter(f"{value!r}: write REPO:/mount/path or REPO@VERSION:/mount/path "
                                 "(e.g. digits@3:/mnt/data)", param_hint=f"--{repo_kind}")
    version = match["version"]
    return pb.RunInput(repo_kind=repo_kind, repo=match["repo"], version=int(version) if version else 0,
                       mount_path=match["path"])


def parse_output(value: str, repo_kind: str) -> pb.RunOutputTarget:
    """``clf:/mnt/model`` → repo clf written at /mnt/model; ``clf`` alone: at SHIPYARD_OUTPUT."""
    match = _OUTPUT.fullmatch(value)
    if match is None:
        raise typer.BadParameter(f"{value!r}: write REPO or REPO:/mount/path (e.g. clf:/mnt/model)",
                                 param_hint=f"--{repo_kind}-out")
    return pb.RunOutputTarget(repo_kind=repo_kind, repo=match["repo"], mount_path=match["path"] or "")


def parse_hyperparameters(values: Sequence[str]) -> dict[str, str]:
    """``["lr=0.1", "opt=adam"]`` → {"lr": "0.1", "opt": "adam"}; the value may contain '='."""
    parsed: dict[str, str] = {}
    for value in values:
        key, equals, rest = value.partition("=")
        key = key.strip()
        if not equals or not key:
            raise typer.BadParameter(f"{value!r}: write KEY=VALUE (e.g. lr=0.01)", param_hint="--hp")
        if key in parsed:
            raise typer.BadParameter(f"{key!r} is given twice", param_hint="--hp")
        parsed[key] = rest
    return parsed



class Spread(StrEnum):
    """The GPU distributions ``--distributed`` takes."""

    automatic = "automatic"
    manual = "manual"


SPREADS = {Spread.automatic: pb.DISTRIBUTION_AUTOMATIC, Spread.manual: pb.DISTRIBUTION_MANUAL}

@dataclass
class SubmitOptions:
    """What ``run submit`` was told, parsed."""

    name: str
    command: str
    kind: pb.RunKind = pb.RUN_KIND_TRAINING
    inputs: list[pb.RunInput] = field(default_factory=list)
    outputs: list[pb.RunOutputTarget] = field(default_factory=list)
    hyperparameters: dict[str, str] = field(default_factory=dict)
    config_name: str = ""
    config_bytes: bytes = b""
    tuning: bytes = b""  # a hyperparameter study's tuning file (Katib v1beta1 YAML)
    keep_trial_outputs: bool = False
    gpus: int = 0
    start_with_available: bool = False
    tags: list[str] = field(default_factory=list)
    project: str = ""
    description: str = ""
    framework: str = ""
    framework_version: str = ""
    image: str = ""
    code: str = ""
    commit: str = ""
    priority: int = 0
    cluster: str = ""
    time_limit: str = ""
    account: str = ""
    distribution: pb.Distribution = pb.DISTRIBUTION_NONE
    workers: int = 0


def build_submit_request(options: SubmitOptions, request_id: str) -> pb.SubmitRunRequest:
    """The SubmitRun request for these options."""
    run = pb.Run(
        name=options.name, kind=options.kind, command=options.command, inputs=options.inputs,
        outputs=options.outputs, hyperparameters=options.hyperparameters,
        config_file_name=options.config_name, gpus=options.gpus,
        start_with_available=options.start_with_available, tags=options.tags, project=options.project,
        description=options.description, framework=options.framework,
        framework_version=options.framework_version, image=options.image, code=options.code,
        commit=options.commit, priority=options.priority, cluster=options.cluster,
        time_limit=options.time_limit, account=options.account, distribution=options.distribution,
        workers=options.workers,
    )
    return pb.SubmitRunRequest(run=run, config_file=options.config_bytes, request_id=request_id,
                               tuning=options.tuning, keep_trial_outputs=options.keep_trial_outputs)


def sparkline(values: list[float], width: int = 40) -> str:
    """The values as at most ``width`` bars, lowest ▁ to highest █ (averaged when there are more);
    NaN and infinities are left out; a constant series is a flat line of ▄."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite or width <= 0:
        return ""
    if len(finite) > width:
        finite = _resample(finite, width)
    low, high = min(finite), max(finite)
    if high == low:
        return BARS[len(BARS) // 2 - 1] * len(finite)
    scale = (len(BARS) - 1) / (high - low)
    return "".join(BARS[round((v - low) * scale)] for v in finite)


def _resample(values: list[float], width: int) -> list[float]:
    """``width`` averages of consecutive, nearly equal slices of ``values`` (more values than width)."""
    n = len(values)
    buckets = (values[i * n // width:(i + 1) * n // width] for i in range(width))
    return [sum(b) / len(b) for b in buckets]


def format_metrics(metrics: Mapping[str, float]) -> str:
    """{"loss": 0.2, "acc": 0.91} → ``acc=0.91 loss=0.2`` (sorted by name)."""
    return " ".join(f"{name}={metrics[name]:.4g}" for name in sorted(metrics))


def format_duration(seconds: float) -> str:
    """3725 → ``1h02m``, 185 → ``3m05s``, 12 → ``12s``."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def run_duration(run: pb.Run, now: datetime) -> str:
    """How long a run ran (or has been running, up to ``now``, aware UTC); — before it started."""
    if not run.HasField("start_time"):
        return "—"
    start = run.start_time.ToDatetime(UTC)
    end = run.end_time.ToDatetime(UTC) if run.HasField("end_time") else now
    return format_duration((end - start).total_seconds())


def _time(run: pb.Run, name: str, form: str = "%Y-%m-%d %H:%M:%S") -> str:
    if not run.HasField(name):
        return "—"
    stamp: Timestamp = getattr(run, name)
    return stamp.ToDatetime().strftime(form)


def _status(run: pb.Run) -> str:
    name = status_name(run.status)
    style = STYLES.get(name)
    return f"[{style}]{name}[/]" if style else name


def _describe_input(i: pb.RunInput) -> str:
    return f"{i.repo_kind} {i.repo}@{i.version or 'latest'} → {i.mount_path}"


def _describe_output(o: pb.RunOutputTarget) -> str:
    return f"{o.repo_kind} {o.repo} ← {o.mount_path or '$SHIPYARD_OUTPUT'}"


def _read_config(path: Path | None) -> tuple[str, bytes]:
    if path is None:
        return "", b""
    data = path.read_bytes()
    if len(data) > CONFIG_MAX:
        raise typer.BadParameter(f"{path} is {len(data):,} bytes; at most {CONFIG_MAX:,} are accepted",
                                 param_hint="--config")
    return path.name, data


def _read_tuning(path: Path | None) -> bytes:
    if path is None:
        return b""
    data = path.read_bytes()
    if len(data) > CONFIG_MAX:
        raise typer.BadParameter(f"{path} is {len(data):,} bytes; at most {CONFIG_MAX:,} are accepted",
                                 param_hint="--tuning")
    return data


@app.command()
def submit(
    name: Annotated[str | None, typer.Argument(
        help="The run's name (with --template it may be left out: TEMPLATE-xxxxxx).")] = None,
    command: Annotated[str, Opt(help='The start-up command, e.g. "python train.py --epochs 3".')] = "",
    template: Annotated[str, Opt(help="Start from this run template; the options given here win.")] = "",
    code: Annotated[str, Opt(help="A code repo, checked out as the working directory.")] = "",
    commit: Annotated[str, Opt(help="Its commit (default: the latest, pinned now).")] = "",
    kind: Annotated[str, Opt(help=f"One of {', '.join(KINDS)}.")] = "training",
    dataset: Annotated[list[str] | None, Opt(metavar="REPO[@V]:/PATH",
                                             help="A dataset to read (repeatable).")] = None,
    featureset: Annotated[list[str] | None, Opt(metavar="REPO[@V]:/PATH",
                                                help="A feature set to read (repeatable).")] = None,
    model: Annotated[list[str] | None, Opt(metavar="REPO[@V]:/PATH",
                                           help="A model to read (repeatable).")] = None,
    model_out: Annotated[str | None, Opt(metavar="REPO[:/PATH]",
                                         help="The model repo the output becomes a version of.")] = None,
    dataset_out: Annotated[str | None, Opt(metavar="REPO[:/PATH]",
                                           help="The dataset repo the output becomes a version of.")] = None,
    featureset_out: Annotated[str | None, Opt(
        metavar="REPO[:/PATH]", help="The feature set repo the output becomes a version of.")] = None,
    hp: Annotated[list[str] | None, Opt(metavar="KEY=VALUE", help="A hyperparameter (repeatable).")] = None,
    config: Annotated[Path | None, Opt(exists=True, dir_okay=False, readable=True,
                                       help="A configuration file (at most 1 MiB): SHIPYARD_CONFIG.")] = None,
    gpus: Annotated[int, Opt(min=0, help="GPUs to run with.")] = 0,
    priority: Annotated[int, Opt(min=-100, max=100,
                                 help="Queued runs start by priority (higher first).")] = 0,
    start_with_available: Annotated[bool, Opt(help="Start with the GPUs free now rather than wait.")] = False,
    tag: Annotated[list[str] | None, Opt(help="A tag (repeatable).")] = None,
    project: Annotated[str, Opt(help='The project it belongs to (default: none, "All Projects").')] = "",
    description: Annotated[str, Opt()] = "",
    framework: Annotated[str, Opt(help="tensorflow, pytorch, sklearn, xgboost or custom: the run executes in "
                                       "that framework's standard image (see `shipyard image list`).")] = "",
    framework_version: Annotated[str, Opt(help="e.g. 1.5: the standard image of that version "
                                               "(default: the newest).")] = "",
    image: Annotated[str, Opt(help="An image of the catalog to execute in (`shipyard image list`); wins over "
                                   "--framework. Neither: the `python` image.")] = "",
    cluster: Annotated[str, Opt(help="The cluster to run on (`shipyard cluster list`; default: this "
                                     "machine, `local`).")] = "",
    time_limit: Annotated[str, Opt("--time-limit", "--slurm-time", metavar="[D-]HH:MM:SS",
                                   help="On a Slurm or LSF cluster: the job's wall-clock limit (Slurm's "
                                        "forms: MM, HH:MM:SS, D-HH …).")] = "",
    account: Annotated[str, Opt("--account", "--slurm-account",
                                help="On a Slurm or LSF cluster: the account the job is charged to.")] = "",
    distributed: Annotated[Spread | None, Opt(help="On a cluster, GPU distribution: automatic (the --gpus in "
                                                   "all, placed by the cluster) or manual (--workers workers "
                                                   "beside the master, each with --gpus).")] = None,
    workers: Annotated[int, Opt(min=0, help="Manual distribution: workers beside the master.")] = 0,
    tuning: Annotated[Path | None, Opt(exists=True, dir_okay=False, readable=True, metavar="FILE",
                                       help="A tuning file (Katib v1beta1 YAML, at most 1 MiB): the run "
                                            "becomes a hyperparameter study whose trials explore its "
                                            "parameters (`shipyard study get NAME`).")] = None,
    keep_trial_outputs: Annotated[bool, Opt(help="A study: every trial's outputs become versions, not only "
                                                 "the best trial's.")] = False,
) -> None:
    """Submit a run: it is queued, then runs --command with its inputs mounted read-only. With --tuning it
    is a hyperparameter study: its trials run --command with each trial's parameters as flags."""
    inputs = [parse_input(v, k) for k, values in (("dataset", dataset), ("featureset", featureset),
                                                   ("model", model)) for v in values or []]
    outputs = [parse_output(v, k) for k, v in (("model", model_out), ("dataset", dataset_out),
                                                ("featureset", featureset_out)) if v is not None]
    config_name, config_bytes = _read_config(config)
    if name is None:
        if not template:
            raise typer.BadParameter("name the run (only a run from a --template may go without)",
                                     param_hint="NAME")
        name = f"{template}-{uuid.uuid4().hex[:6]}"
    options = SubmitOptions(
        name=name, command=command, kind=parse_kind(kind), inputs=inputs, outputs=outputs,
        hyperparameters=parse_hyperparameters(hp or []), config_name=config_name, config_bytes=config_bytes,
        gpus=gpus, start_with_available=start_with_available, tags=tag or [], project=project,
        description=description, framework=framework, framework_version=framework_version, image=image,
        code=code, commit=commit, priority=priority, cluster=cluster, time_limit=time_limit, account=account,
        distribution=SPREADS[distributed] if distributed else pb.DISTRIBUTION_NONE, workers=workers,
        tuning=_read_tuning(tuning), keep_trial_outputs=keep_trial_outputs,
    )
    if not command and not template:
        raise typer.BadParameter("give the start-up command (or a --template that has one)",
                                 param_hint="--command")
    request = build_submit_request(options, str(uuid.uuid4()))
    request.template = template
    with client() as c:
        run = c.call(c.runs.SubmitRun, request)
    what = "study" if run.tuning else "run"
    console.print(f"[green]Submitted {what}[/] [bold]{escape(run.name)}[/] ({_status(run)})")
    if run.tuning:
        console.print(f"[dim]Follow its trials with: shipyard study get {escape(run.name)}[/]")
    for note in run.notes:
        console.print(f"[dim]{escape(note)}[/]")


@app.command()
def get(name: str, fmt: OutputOpt = Format.table) -> None:
    """Show one run: its command, inputs, outputs, status, times, params, tags and last metric values."""
    with client() as c:
        run = c.call(c.runs.GetRun, pb.GetRunRequest(name=name))
    if not output.emit(run, fmt):
        console.print(output.fields(_fields(run)))


def _exit_code(run: pb.Run) -> str:
    """The process's exit code once the run ended, if its process ever started (here: an external
    run's ran elsewhere)."""
    ran_here = run.HasField("start_time") and not run.external
    return str(run.exit_code) if run.status in ENDED and ran_here else "—"


def _environment(environment: pb.RunEnvironment) -> str:
    """``sklearn-1.5 (Python 3.11, 6 packages, sha256 1a2b3c4d…)``."""
    python = f"Python {environment.python}" if environment.python else "the platform's Python"
    count = len(environment.requirements)
    return (f"{environment.image} ({python}, {count} package{'' if count == 1 else 's'}, "
            f"sha256 {environment.digest[:8]}…)")


def shown_labels(run: pb.Run) -> dict[str, str]:
    """The run's key-value tags people read: MLflow's own ``mlflow.*`` tags (source, user, …) left
    out, as MLflow's UI leaves them out (``-o json`` has them all)."""
    return {k: v for k, v in run.labels.items() if not k.startswith(SYSTEM_TAG)}


def _pairs(values: Mapping[str, str]) -> str:
    """{"lr": "0.1", "opt": "adam"} → ``lr=0.1 opt=adam`` (sorted by key)."""
    return " ".join(f"{k}={v}" for k, v in sorted(values.items()))


def _cluster(run: pb.Run) -> str:
    """Where the run executes, with its job's limits and GPU distribution there."""
    limits = [f"time limit {run.time_limit}"] if run.time_limit else []
    limits += [f"account {run.account}"] if run.account else []
    if run.distribution == pb.DISTRIBUTION_AUTOMATIC:
        limits.append("distributed automatically")
    elif run.distribution == pb.DISTRIBUTION_MANUAL:
        limits.append(f"distributed: master + {output.count(run.workers, 'worker')}")
    return (run.cluster or "local") + (f" ({', '.join(limits)})" if limits else "")


def _fields(run: pb.Run) -> list[tuple[str, str]]:
    """The rows ``run get`` shows, user text escaped."""
    status = _status(run) + (f" ({escape(run.status_reason)})" if run.status_reason else "")
    return [
        ("name", escape(run.name)),
        ("kind", kind_name(run.kind)),
        ("status", status),
        ("exit code", _exit_code(run)),
        ("owner", escape(run.owner)),
        ("project", escape(run.project) or "—"),
        ("cluster", escape(_cluster(run))),
        ("command", escape(run.command) or "—"),
        ("code", escape(f"{run.code}@{run.commit[:12]}") if run.code else "—"),
        ("environment", escape(_environment(run.environment)) if run.HasField("environment") else "—"),
        ("inputs", escape("\n".join(_describe_input(i) for i in run.inputs)) or "—"),
        ("outputs", escape("\n".join(_describe_output(o) for o in run.outputs)) or "—"),
        ("hyperparameters", escape(_pairs(run.hyperparameters)) or "—"),
        ("params", escape(_pairs(run.params)) or "—"),
        ("tags", escape(" ".join([*run.tags, _pairs(shown_labels(run))]).strip()) or "—"),
        *([("external", "yes: started outside the platform (MLflow's start_run), not executed here")]
          if run.external else []),
        *([("study", f"yes: a hyperparameter study (shipyard study get {escape(run.name)})")]
          if run.tuning else []),
        *([("trial of", escape(run.study))] if run.study else []),
        ("artifacts", output.count(run.artifact_count, "file") if run.artifact_count else "—"),
        ("config file", escape(run.config_file_name) or "—"),
        ("gpus", str(run.gpus) + (" (start with available)" if run.start_with_available else "")),
        ("created", _time(run, "create_time")),
        ("started", _time(run, "start_time")),
        ("ended", _time(run, "end_time")),
        ("metrics", escape(format_metrics(run.metrics)) or "—"),
        ("notes", escape("\n".join(run.notes)) or "—"),
    ]


@app.command("list")
def list_(
    status: Annotated[str | None, Opt(help=f"Only runs with this status: {', '.join(STATUSES)}.")] = None,
    kind: Annotated[str | None, Opt(help=f"Only runs of this kind: {', '.join(KINDS)}.")] = None,
    project: Annotated[str, Opt(help="Only this project's.")] = "",
    prefix: Annotated[str, Opt(help="Only names starting with this.")] = "",
    tag: Annotated[str, Opt(help="Only those with this tag.")] = "",
    study: Annotated[str, Opt(help="Only this hyperparameter study's trials.")] = "",
    fmt: OutputOpt = Format.table,
) -> None:
    """List runs in a table, newest first; a study's trials only with --kind trial or --study."""
    wanted_status = parse_status(status) if status else pb.RUN_STATUS_UNSPECIFIED
    wanted_kind = parse_kind(kind) if kind else pb.RUN_KIND_UNSPECIFIED
    found: list[pb.Run] = []
    shown = wanted_kind != pb.RUN_KIND_UNSPECIFIED or study  # trials are shown when asked for
    with client() as c:
        token = ""
        while True:
            reply = c.call(c.runs.ListRuns, pb.ListRunsRequest(
                project=project, status=wanted_status, kind=wanted_kind, name_prefix=prefix, tag=tag,
                study=study, exclude_trials=not shown, page_size=500, page_token=token))
            found.extend(reply.runs)
            token = reply.next_page_token
            if not token:
                break
    if output.emit(found, fmt):
        return
    table = output.table("Name", "Kind", "Status", "Owner", "Created", "Duration", "Metrics")
    now = datetime.now(UTC)
    for r in found:
        table.add_row(escape(r.name), kind_name(r.kind) + (" (study)" if r.tuning else ""), _status(r),
                      escape(r.owner),
                      _time(r, "create_time", "%Y-%m-%d %H:%M"), run_duration(r, now),
                      escape(format_metrics(r.metrics)))
    console.print(table if found else "[dim]No runs.[/]")


@app.command()
def logs(name: str, follow: Annotated[bool, Opt("--follow", "-f", help="Keep reading until the run ends.")]
         = False) -> None:
    """Print a run's output (stdout and stderr); with -f, follow it until the run ends."""
    with client() as c:
        try:
            copy_logs(c, name, follow, sys.stdout)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


def copy_logs(c: Client, name: str, follow: bool, out: TextIO) -> None:
    """Write the run's log to ``out`` from the start (with follow: until the run has ended)."""
    def read(offset: int) -> LogChunk:
        request = pb.ReadRunLogsRequest(name=name, offset=offset, max_bytes=LOG_CHUNK)
        reply = c.call(c.runs.ReadRunLogs, request)
        return reply.data, reply.next_offset, reply.finished

    copy_log(read, follow, out)


@app.command()
def clone(
    name: str,
    new_name: Annotated[str, Opt("--name", help="The new run's name.")],
    hp: Annotated[list[str] | None,
                  Opt(metavar="KEY=VALUE", help="A changed hyperparameter (repeatable).")] = None,
) -> None:
    """Run again with the same settings, inputs (same versions), code and config; some
    hyperparameters changed."""
    request = pb.CloneRunRequest(name=name, new_name=new_name, request_id=str(uuid.uuid4()),
                                 hyperparameters=parse_hyperparameters(hp or []))
    with client() as c:
        run = c.call(c.runs.CloneRun, request)
    console.print(f"[green]Submitted run[/] [bold]{escape(run.name)}[/] ({_status(run)}), "
                  f"a clone of {escape(name)}")


@app.command()
def compare(names: Annotated[list[str], typer.Argument(help="Two or more runs.")],
            csv_path: Annotated[Path | None, Opt("--csv", help="Also write the table as CSV.")] = None,
            series_csv: Annotated[Path | None, Opt("--series-csv", help="Also write every metric "
                                                   "point (run, metric, step, value) as CSV.")] = None,
            ) -> None:
    """Runs side by side: status, code, inputs, hyperparameters, params, the last value of each metric
    and its curve; differences in bold."""
    if len(names) < 2:
        raise typer.BadParameter("name at least two runs")
    with client() as c:
        runs = [c.call(c.runs.GetRun, pb.GetRunRequest(name=name)) for name in names]
        series = [c.call(c.runs.GetRunMetrics, pb.GetRunMetricsRequest(name=name)).series for name in names]
    rows = comparison_rows(runs, series)
    console.print(comparison(runs, rows))
    if csv_path is not None:
        write_csv(csv_path, ["", *(r.name for r in runs)], [[label, *values] for label, values in rows
                                                              if not label.startswith("curve ")])
        console.print(f"[dim]Table written to {csv_path}[/]")
    if series_csv is not None:
        write_csv(series_csv, ["run", "metric", "step", "value"],
                  [[run.name, s.name, str(p.step), repr(p.value)]
                   for run, run_series in zip(runs, series, strict=True)
                   for s in run_series for p in s.points])
        console.print(f"[dim]Metric points written to {series_csv}[/]")


def comparison_rows(runs: Sequence[pb.Run], series: Sequence[Sequence[pb.MetricSeries]] = ()
                    ) -> list[tuple[str, list[str]]]:
    """The rows of ``run compare``: a label and one value per run."""
    rows: list[tuple[str, list[str]]] = [
        ("status", [status_name(r.status) for r in runs]),
        ("code", [f"{r.code}@{r.commit[:12]}" if r.code else "—" for r in runs]),
        ("inputs", [", ".join(_describe_input(i) for i in r.inputs) or "—" for r in runs]),
    ]
    for key in sorted({k for r in runs for k in r.hyperparameters}):
        rows.append((f"hp {key}", [r.hyperparameters.get(key, "—") for r in runs]))
    for key in sorted({k for r in runs for k in r.params}):
        rows.append((f"param {key}", [r.params.get(key, "—") for r in runs]))
    for key in sorted({k for r in runs for k in r.metrics}):
        rows.append((key, [f"{r.metrics[key]:.6g}" if key in r.metrics else "—" for r in runs]))
    curves = [{s.name: [p.value for p in s.points] for s in run_series} for run_series in series]
    for key in sorted({k for c in curves for k in c}):
        rows.append((f"curve {key}",
                     [sparkline(c[key], 24) if len(c.get(key, [])) > 1 else "—" for c in curves]))
    return rows


def comparison(runs: Sequence[pb.Run], rows: list[tuple[str, list[str]]] | None = None) -> Table:
    """The table ``run compare`` prints: one column per run, rows that differ in bold."""
    table = output.table("", *(escape(r.name) for r in runs), title="Runs compared", title_justify="left")
    for label, values in rows if rows is not None else comparison_rows(runs):
        differs = len(set(values)) > 1
        table.add_row(f"[bold]{label}[/]" if differs else label,
                      *(f"[bold]{escape(v)}[/]" if differs else escape(v) for v in values))
    return table


@app.command()
def delete(name: str, yes: Annotated[bool, Opt("--yes", help="Do not ask.")] = False) -> None:
    """Delete an ended run: its record, metrics, logs and workspace (the versions it made stay)."""
    if not yes:
        typer.confirm(f"Delete run {name!r}, its metrics and logs?", abort=True)
    with client() as c:
        c.call(c.runs.DeleteRun, pb.DeleteRunRequest(name=name))
    console.print(f"[green]Deleted run[/] [bold]{escape(name)}[/]")


@app.command()
def stop(name: str) -> None:
    """Stop a run: a queued one at once, a running one with SIGTERM, then SIGKILL."""
    with client() as c:
        run = c.call(c.runs.StopRun, pb.StopRunRequest(name=name))
    if run.status == pb.RUN_STATUS_STOPPING:
        console.print(f"[yellow]Stopping run[/] [bold]{escape(run.name)}[/]")
    else:
        console.print(f"Run [bold]{escape(run.name)}[/] is {_status(run)}")


@app.command()
def metrics(name: str, fmt: OutputOpt = Format.table) -> None:
    """A run's metrics: steps, last, lowest and highest value, and a sparkline when there is room."""
    with client() as c:
        reply = c.call(c.runs.GetRunMetrics, pb.GetRunMetricsRequest(name=name))
    if output.emit(reply, fmt):
        return
    if not reply.series:
        console.print(f"[dim]No metrics for run {escape(name)}.[/]")
        return
    spark = min(40, console.width - 60)
    table = output.table("Metric", "Steps", "Last", "Min", "Max", *(["Trend"] if spark >= 10 else []))
    for series in reply.series:
        table.add_row(*_metric_row(series, spark if spark >= 10 else 0))
    console.print(table)


def _metric_row(series: pb.MetricSeries, spark: int) -> list[str]:
    """Name, steps, last, min and max of one metric (in step order), and its sparkline when spark > 0."""
    values = [p.value for p in sorted(series.points, key=lambda p: p.step)]
    numbers = [f"{v:.6g}" for v in (values[-1], min(values), max(values))] if values else ["—"] * 3
    return [escape(series.name), str(len(values)), *numbers, *([sparkline(values, spark)] if spark else [])]
