"""``python -m bench.mlflow``: MLflow tracking through Shipyard's MLflow API beside a real ``mlflow server``
(SQLite backend store, on this machine, started by the benchmark), in one run, with the real client.

Both targets are driven by the same code, ``mlflow.MlflowClient(tracking_uri=...)`` in this process:

* **logging**: ``log_batch`` of ``--batch`` metrics (1,000: 10 names x 100 steps) into one run,
  ``--calls`` times (100), one call after the other after one untimed call into another run; metrics
  per second from the first call to the last answer. **Goal: Shipyard >= 3x the MLflow server.**
* **search**: ``--runs`` runs (10,000) in one experiment, each with 3 params and 3 metrics (created
  beforehand from ``--threads`` threads, create_run + log_batch + set_terminated per run; not
  measured), then
  ``search_runs([exp], filter_string="metrics.acc > 0.5", order_by=["metrics.acc DESC"],
  max_results=1000)`` paging through every result with the page tokens, ``--searches`` times (3) after
  one untimed scan; full scans per second. **Goal: Shipyard >= 2x the MLflow server.** The same
  without a filter, ``--scans-all`` times (1), for information. Every scan's answer is checked (the
  seeded runs, in order).

Prints Rich tables (figures, ratios, goals; CPU by process) and writes ``bench/out/mlflow-last-run.json``;
never fails on a figure (exit 1 only when a Shipyard figure could not be measured at all).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from rich.console import Console

from bench.machine import CpuWatch, Usage
from bench.mlflow_report import BUSY, FILTER, ORDER, PAGE, TITLES, Figures, Phase, as_json, print_report
from bench.procs import REPO_ROOT, free_port
from shipyard.local.harness import Stack, wait_for

OUT = REPO_ROOT / "bench" / "out"
MLFLOW = Path(sys.executable).parent / "mlflow"
SETTLED = 0.1  # cores the target's processes may use while it is idle
LOAD = "load generator (bench)"  # bench.machine's label of this process
KEYS = 10  # distinct metric names in each logged batch
SEED = 18
TARGETS = ("mlflow", "shipyard")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bench.mlflow", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=100, help="log_batch calls into the logging run (100)")
    p.add_argument("--batch", type=int, default=1000,
                   help="metrics per log_batch call (1000, MLflow's limit; a multiple of 10)")
    p.add_argument("--runs", type=int, default=10_000, help="runs in the searched experiment (10000)")
    p.add_argument("--searches", type=int, default=3, help=f"timed full scans of {FILTER!r} (3)")
    p.add_argument("--scans-all", type=int, default=1, help="timed full scans without a filter (1)")
    p.add_argument("--threads", type=int, default=8, help="threads creating the searched runs (8)")
    p.add_argument("--targets", default=",".join(TARGETS),
                   help=f"what to measure, comma-separated, in this order ({','.join(TARGETS)})")
    p.add_argument("--stack-env", action="append", default=[], metavar="KEY=VALUE",
                   help="an environment variable for the Shipyard stack (repeatable)")
    p.add_argument("--quiet-wait", type=float, default=30.0,
                   help="before each measured phase, wait up to this many seconds for other processes "
                   "to leave the CPUs alone (30)")
    p.add_argument("--leave-running", action="store_true",
                   help="leave the searched runs running (by default each is ended, as a finished "
                   "experiment's runs are)")
    p.add_argument("--settle-wait", type=float, default=120.0,
                   help="before each measured phase, wait up to this many seconds for the target's own "
                   "processes to be idle (120)")
    p.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    p.add_argument("--json", type=Path, default=OUT / "mlflow-last-run.json", help="where the figures go")
    args = p.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if unknown := set(args.targets) - set(TARGETS):
        p.error(f"--targets: unknown {', '.join(sorted(unknown))} (known: {', '.join(TARGETS)})")
    if not KEYS <= args.batch <= 1000 or args.batch % KEYS:
        p.error(f"--batch: a multiple of {KEYS} (the metric names of a batch) up to 1000 (MLflow's limit)")
    for name in ("calls", "runs", "searches", "scans_all", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: at least 1")
    if bad := [item for item in args.stack_env if "=" not in item]:
        p.error(f"--stack-env: KEY=VALUE expected, got {', '.join(bad)}")
    return args


# --- the two servers -----------------------------------------------------------------------------


@dataclass
class Target:
    """A tracking server the client is pointed at."""

    key: str
    uri: str
    token: str | None  # MLFLOW_TRACKING_TOKEN, sent by the client as a bearer token

    def client(self) -> MlflowClient:
        """A client of this server. The token goes in the environment, where the client reads it at every
        request: the targets are measured one after the other, never together."""
        if self.token is None:
            os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        else:
            os.environ["MLFLOW_TRACKING_TOKEN"] = self.token
        return MlflowClient(tracking_uri=self.uri)


def _answers(url: str, token: str | None = None) -> bool:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def mlflow_server(work: Path) -> Iterator[Target]:
    """``mlflow server`` with a SQLite backend store in ``work``, one worker, on a free port."""
    port = free_port()
    log = open(work / "mlflow-server.log", "ab")  # noqa: SIM115 - owned by the child
    # A session of its own: the CLI starts uvicorn and a job runner (with its consumers) as children,
    # and the whole group is stopped at the end.
    process = subprocess.Popen(
        [str(MLFLOW), "server", "--backend-store-uri", f"sqlite:///{work}/mlflow.db",
         "--default-artifact-root", str(work / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        cwd=work, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    try:
        wait_for(lambda: process.poll() is not None or _answers(f"http://127.0.0.1:{port}/health"), 120,
                 "mlflow server to answer GET /health", interval=0.2)
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {process.returncode}: "
                               f"{(work / 'mlflow-server.log').read_text()[-2000:]}")
        yield Target("mlflow", f"http://127.0.0.1:{port}", None)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(15)


@contextlib.contextmanager
def shipyard(work: Path, env: dict[str, str]) -> Iterator[Target]:
    """A stack as ``make up`` runs it; its MLflow API is the gateway's HTTP address + ``/mlflow``."""
    stack = Stack(work / "stack", env=env)
    try:
        stack.start()
        uri, token = f"{stack.http_url}/mlflow", stack.admin_token()
        wait_for(lambda: _answers(f"{uri}/health", token), 30, f"GET {uri}/health to answer 200",
                 interval=0.2)
        yield Target("shipyard", uri, token)
    finally:
        stack.stop()


# --- what is measured ----------------------------------------------------------------------------


def _batch(call: int, size: int, rng: random.Random, base_ms: int) -> list[Metric]:
    """Call ``call``'s metrics: KEYS names, each at the next steps of its series."""
    first = call * (size // KEYS)
    return [Metric(f"m{j % KEYS}", rng.random(), base_ms + first + j // KEYS, first + j // KEYS)
            for j in range(size)]


def measure_logging(client: MlflowClient, experiment: str, calls: int, size: int, phase: Phase,
                    watch: Callable[[float, float], Usage | None]) -> None:
    """``calls`` log_batch calls into one run, one after the other; checks one series afterwards."""
    rng, base_ms = random.Random(SEED), int(time.time() * 1000)
    batches = [_batch(call, size, rng, base_ms) for call in range(calls)]
    warm = client.create_run(experiment, run_name="log-batch-warm-up").info.run_id
    client.log_batch(warm, metrics=_batch(0, size, rng, base_ms))
    run = client.create_run(experiment, run_name="log-batch").info.run_id
    start = time.monotonic()
    for batch in batches:
        before = time.perf_counter()
        client.log_batch(run, metrics=batch)
        phase.seconds.append(time.perf_counter() - before)
    phase.total_s = time.monotonic() - start
    phase.usage = watch(start, start + phase.total_s)
    points = len(client.get_metric_history(run, "m0"))
    if points != calls * (size // KEYS):
        phase.wrong = f"the run's metric m0 has {points} points, {calls * (size // KEYS)} logged"


def _run_data(n: int) -> tuple[list[Param], list[Metric]]:
    rng = random.Random(SEED * 1_000_003 + n)
    now = int(time.time() * 1000)
    params = [Param("lr", f"{10 ** -rng.randint(1, 5):g}"), Param("batch_size", str(2 ** rng.randint(4, 9))),
              Param("optimizer", rng.choice(("adam", "sgd", "adamw")))]
    metrics = [Metric(name, rng.random(), now, 0) for name in ("acc", "loss", "f1")]
    return params, metrics


def seed_runs(client: MlflowClient, experiment: str, runs: int, threads: int, end: bool) -> float:
    """``runs`` runs with 3 params and 3 metrics each, ended (FINISHED) if ``end``, as fast as the server
    takes them; seconds."""
    def one(n: int) -> None:
        params, metrics = _run_data(n)
        run = client.create_run(experiment, run_name=f"run-{n:05d}").info.run_id
        client.log_batch(run, metrics=metrics, params=params)
        if end:
            client.set_terminated(run)

    start = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(runs)))
    return time.monotonic() - start


def scan(client: MlflowClient, experiment: str, filter_string: str) -> list[float]:
    """Every page of one search, in order; each run's ``acc``."""
    found: list[float] = []
    token: str | None = None
    while True:
        page = client.search_runs([experiment], filter_string=filter_string, order_by=ORDER,
                                  max_results=PAGE, page_token=token)
        found.extend(run.data.metrics.get("acc", math.nan) for run in page)
        token = page.token
        if not token:
            return found


def expected_scan(runs: int, filter_string: str) -> list[float]:
    """What a scan must answer: the seeded ``acc`` values, filtered, in descending order."""
    values = [metric.value for n in range(runs) for metric in _run_data(n)[1] if metric.key == "acc"]
    return sorted((v for v in values if v > 0.5 or not filter_string), reverse=True)


def _same(found: list[float], expected: list[float]) -> bool:
    return len(found) == len(expected) and all(map(math.isclose, found, expected))


def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def check_scan(client: MlflowClient, experiment: str, filter_string: str, runs: int) -> str:
    """Scan until the answer is the seeded runs in order (a server's search may lag its writes, for a
    while); what is wrong with it if it never is, else ""."""
    expected = expected_scan(runs, filter_string)
    last: list[float] = []
    failed: list[str] = []

    def right() -> bool:
        try:
            last[:] = scan(client, experiment, filter_string)
        except Exception as exc:
            failed[:] = [_failure(exc)]
            return False
        failed.clear()
        return _same(last, expected)

    what = f"search {filter_string or '(no filter)'!r}"
    try:
        wait_for(right, 120, "the search to answer every seeded run in order", interval=1.0)
    except TimeoutError:
        if failed:
            return f"{what} failed: {failed[0]}"
        return f"{what}: {len(last)} runs answered, {len(expected)} seeded" + (
            "" if len(last) != len(expected) else ", not in the expected order")
    return ""


def measure_search(client: MlflowClient, experiment: str, filter_string: str, runs: int, repeat: int,
                   phase: Phase, watch: Callable[[float, float], Usage | None]) -> None:
    """``repeat`` timed full scans of one search, one after the other, each answer checked afterwards."""
    expected = expected_scan(runs, filter_string)
    answers = []
    start = time.monotonic()
    for _ in range(repeat):
        before = time.perf_counter()
        answers.append(scan(client, experiment, filter_string))
        phase.seconds.append(time.perf_counter() - before)
    phase.total_s = time.monotonic() - start
    phase.usage = watch(start, start + phase.total_s)
    if wrong := sum(not _same(answer, expected) for answer in answers):
        phase.wrong = f"{wrong} of {repeat} scans did not answer the seeded runs in order"


class Bench:
    """The phases of one benchmark run against the targets, one after the other."""

    def __init__(self, args: argparse.Namespace, cpu: CpuWatch) -> None:
        self.args = args
        self.cpu = cpu
        self.say = Console(stderr=True)
        self.figures: dict[str, Figures] = {}  # by target, filled in as the phases end

    def quiet(self) -> None:
        """Wait (a bounded time) for the other processes on the machine to leave the CPUs alone."""
        if self.args.quiet_wait > 0:
            others = self.cpu.wait_quiet(self.args.quiet_wait)
            if others >= BUSY:
                self.say.log(f"[yellow]other processes still use {others:.2f} cores; measuring anyway[/]")

    def settle(self) -> None:
        """Wait (a bounded time) until the target's own processes are idle: a server that has just started
        is still importing and starting its helpers (mlflow server's job runner), and one that has just
        been written to may still be working through it in the background."""
        start, window = time.monotonic(), 2.0
        time.sleep(window)
        while True:
            now = time.monotonic()
            use = self.cpu.usage(now - window, now)
            busy = {label: cores for label, cores in (use.by_process if use else {}).items()
                    if label != LOAD and cores >= 0.01}
            if sum(busy.values()) < SETTLED or now >= start + self.args.settle_wait:
                break
            time.sleep(0.5)
        if sum(busy.values()) >= SETTLED:
            self.say.log(f"[yellow]the target still uses {sum(busy.values()):.2f} cores after "
                         f"{now - start:.0f} s ("
                         + ", ".join(f"{label} {cores:.2f}" for label, cores in sorted(busy.items()))
                         + "); measuring anyway[/]")
        elif now - start > 2 * window:
            self.say.log(f"the target settled in {now - start:.0f} s")

    def phase(self, what: str, phase: Phase, measure: Callable[[], None]) -> None:
        """Measure one phase after the target settled and the machine is quiet; its failure is recorded,
        not raised."""
        self.say.log(what)
        self.settle()
        self.quiet()
        try:
            measure()
        except Exception as exc:
            phase.error = _failure(exc)
            self.say.log(f"[red]{what}: {phase.error}[/]")

    def measure(self, target: Target) -> None:
        """Every phase against one started target."""
        args, figures = self.args, self.figures[target.key]
        client = target.client()
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        try:
            log_experiment = client.create_experiment(f"bench-log-{stamp}")
            search_experiment = client.create_experiment(f"bench-search-{stamp}")
        except Exception as exc:
            figures.error = f"creating the experiments: {_failure(exc)}"
            return
        name = TITLES[target.key]
        self.phase(f"{name}: {args.calls} x log_batch of {args.batch} metrics …", figures.log,
                   partial(measure_logging, client, log_experiment, args.calls, args.batch, figures.log,
                           self.cpu.usage))
        self.say.log(f"{name}: creating {args.runs:,} runs from {args.threads} threads (not measured) …")
        try:
            figures.seed_s = seed_runs(client, search_experiment, args.runs, args.threads,
                                       end=not args.leave_running)
        except Exception as exc:
            figures.seed_error = _failure(exc)
            self.say.log(f"[red]{name}: creating the runs: {figures.seed_error}[/]")
            return
        # Once, untimed: waits until the search answers every run (a server may index its writes later).
        if wrong := check_scan(client, search_experiment, FILTER, args.runs):
            figures.notes.append(wrong)
            self.say.log(f"[red]{name}: {wrong}[/]")
        for phase, filter_string, repeat in ((figures.search, FILTER, args.searches),
                                             (figures.scan_all, "", args.scans_all)):
            self.phase(f"{name}: {repeat} x search_runs {filter_string or '(no filter)'!r} …", phase,
                       partial(measure_search, client, search_experiment, filter_string, args.runs, repeat,
                               phase, self.cpu.usage))

    def target(self, key: str, work: Path) -> None:
        """Start one target, measure it, stop it."""
        self.say.log(f"starting {TITLES[key]} …")
        figures = self.figures[key] = Figures(key)
        started = mlflow_server(work) if key == "mlflow" else shipyard(work, dict(
            item.partition("=")[::2] for item in self.args.stack_env))
        try:
            with started as target:
                self.measure(target)
        except Exception as exc:
            figures.error = _failure(exc)
            self.say.log(f"[red]{TITLES[key]}: {figures.error}[/]")


# --- the run -------------------------------------------------------------------------------------


def _label(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            joined = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    for needle, label in (("mlflow.server.fastapi_app", "mlflow server (uvicorn worker)"),
                          ("huey_consumer", "mlflow job consumers"), ("_job_runner", "mlflow job runner"),
                          ("bin/mlflow server", "mlflow server (CLI)")):
        if needle in joined:
            return label
    return None


class MlflowCpuWatch(CpuWatch):
    """bench.machine's CpuWatch, naming the processes of ``mlflow server``."""

    def _sample(self) -> None:
        super()._sample()
        for pid in self._last_ours:
            if (label := _label(pid)) is not None:
                self._labels[pid] = label


def _terminated(signum: int, _: object) -> None:
    raise SystemExit(128 + signum)  # so that the servers are stopped and what was measured is reported


def main(argv: list[str] | None = None) -> int:
    """Start each target in turn, measure it, stop it; print and save the figures (also those measured
    before an interruption)."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)
    # Else set_terminated reads the run back (one more request) to print its URL.
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-mlflow-", dir="/var/tmp"))
    console = Console()
    with MlflowCpuWatch() as cpu:
        bench = Bench(args, cpu)
        try:
            for key in args.targets:
                (work / key).mkdir()
                bench.target(key, work / key)
        finally:
            if args.keep:
                console.log(f"kept {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
            print_report(console, bench.figures, args)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(as_json(bench.figures, args), indent=2))
            console.log(f"figures written to {args.json}")
    ours = bench.figures.get("shipyard")
    return 1 if ours is not None and (ours.error or (ours.log.error and ours.search.error)) else 0


if __name__ == "__main__":
    sys.exit(main())
