"""``python -m bench.serving``: requests per second and latency of a served scikit-learn model, beside
MLServer serving the same model in the same run.

One fitted model (LogisticRegression on iris, saved with joblib), one request shape (a V2 JSON infer
request of 1 row of 4 FP32), one load generator for every row (an aiohttp client in this process,
``--concurrency`` requests in flight for ``--duration`` seconds after ``--warmup`` seconds):

* **M** rows: MLServer (``mlserver`` + ``mlserver-sklearn``, in ``.venv-mlserver``) serving the same
  file, its V2 REST endpoint directly: its defaults, ``parallel_workers: 0``, and ``parallel_workers: 0``
  without access log and metrics. **The reference is the fastest of them** (MLServer at its best here).
* **D**: Shipyard's model server directly (``python -m shipyard_model_server``, the process
  serving-svc runs per replica), started by the benchmark on a free port. **Goal: ≥ 1.0x the reference.**
* **G** rows: through the gateway: a whole stack (``shipyard up``), the model pushed as a model version,
  a test inference (1 replica; and 2), requests to ``/serving/<name>/v2/models/iris/infer`` with the
  admin's bearer token. **Goal: ≥ 0.7x the reference.**

Before each row every distinct request is sent once and checked; during the row every
``--check-every``-th answer is checked (its predicted class). Prints Rich tables (figures, ratios, goal
verdicts, CPU by process) and writes ``bench/out/serving.json``; never fails on a figure (exit 1 only
when a Shipyard row could not be measured at all).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from bench import profiling
from bench.machine import CpuWatch, Usage
from bench.procs import REPO_ROOT, free_port, python, spawn, stop, wait_port
from bench.serving_load import HttpRate, Model, fit_model, measure, run, verify
from bench.serving_mlserver import (
    DEFAULT_VARIANTS,
    MLSERVER_VENV,
    VARIANTS,
    MLServer,
    ensure_mlserver,
    write_model_settings,
)
from shipyard.client import transfer
from shipyard.client.connection import Client
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.serving.v1 import serving_pb2 as pb
from shipyard.local.harness import Stack, wait_for

OUT = REPO_ROOT / "bench" / "out"
MODEL = "iris"
DIRECT_GOAL = 1.0
GATEWAY_GOAL = 0.7
BUSY = 0.25  # cores used by other processes above which a figure is flagged


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a short smoke run; its figures are rough")
    p.add_argument("--concurrency", type=int, default=64, help="requests in flight for every row (64)")
    p.add_argument("--duration", type=float, help="seconds of each measured row (default 10, quick 3)")
    p.add_argument("--warmup", type=float, help="seconds of warm-up before each row (default 2, quick 1)")
    p.add_argument("--check-every", type=int, default=10,
                   help="check the predicted class of every N-th answer during a row (10)")
    p.add_argument("--mlserver", default=",".join(DEFAULT_VARIANTS),
                   help="MLServer configurations to measure, comma-separated: "
                   + "; ".join(f"{v.key} = {v.title}" for v in VARIANTS)
                   + f" ({','.join(DEFAULT_VARIANTS)}; '' for none)")
    p.add_argument("--replicas", default="1,2", help="gateway rows: replicas of the test inference (1,2)")
    p.add_argument("--quiet-wait", type=float,
                   help="before each row, wait up to this many seconds for other processes to leave the "
                   "CPUs alone (default 60, quick 10)")
    p.add_argument("--profile", nargs="?", const="flamegraph", choices=["flamegraph", "speedscope", "raw"],
                   help="py-spy profiles of the model server (D) and of the gateway and its replicas (G) "
                   "into bench/out/profiles/")
    p.add_argument("--keep", action="store_true", help="keep the temporary data directory and logs")
    p.add_argument("--json", type=Path, default=OUT / "serving.json", help="where the figures go")
    args = p.parse_args(argv)
    for name, full, short in (("duration", 10.0, 3.0), ("warmup", 2.0, 1.0), ("quiet_wait", 60.0, 10.0)):
        if getattr(args, name) is None:
            setattr(args, name, short if args.quick else full)
    known = {v.key for v in VARIANTS}
    args.mlserver = [k.strip() for k in args.mlserver.split(",") if k.strip()]
    if unknown := set(args.mlserver) - known:
        p.error(f"unknown MLServer variants: {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(known))})")
    args.replicas = [int(n) for n in args.replicas.split(",") if n.strip()]
    if any(n < 1 for n in args.replicas):
        p.error("--replicas: each at least 1")
    return args


# --- CPU by process, with this benchmark's processes named ---------------------------------------


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
        return int(text[text.rindex(")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def serving_label(pid: int) -> str | None:
    """Our name for the model servers and MLServer's processes; None for the rest."""
    args = _cmdline(pid)
    if "shipyard_model_server" in args:
        return "Shipyard model server(s)"
    if not any(str(MLSERVER_VENV) in a for a in args[:2]):
        return None
    joined = " ".join(args)
    if "resource_tracker" in joined:
        return "MLServer resource tracker"
    parent = _cmdline(_parent(pid))
    if any(str(MLSERVER_VENV) in a for a in parent[:2]):
        return "MLServer inference worker"
    return "MLServer main process"


class ServingCpuWatch(CpuWatch):
    """bench.machine's CpuWatch, naming model servers and MLServer's processes."""

    def _sample(self) -> None:
        super()._sample()
        for pid in self._last_ours:
            label = serving_label(pid)
            if label is not None:
                self._labels[pid] = label


# --- rows ---------------------------------------------------------------------------------------


@dataclass
class Row:
    """One measured row."""

    key: str
    title: str
    kind: str  # mlserver | direct | gateway
    rate: HttpRate | None = None
    usage: Usage | None = None
    verified: int = 0
    error: str = ""
    profiles: tuple[str, ...] = ()
    # Threads of each Shipyard model server before the warm-up and after the row: more after means its
    # "auto" mode moved predicts off the event loop into its thread pool during the row.
    threads: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def per_s(self) -> float:
        return self.rate.load.rate if self.rate else 0.0


class Bench:
    """The phases of one run, and what they measured."""

    def __init__(self, args: argparse.Namespace, cpu: ServingCpuWatch, work: Path) -> None:
        self.args = args
        self.cpu = cpu
        self.work = work
        self.say = Console(stderr=True)
        self.rows: list[Row] = []
        self.notes: list[str] = []

    def measure_row(self, row: Row, url: str, model: Model, token: str | None,
                    pids: Callable[[], dict[str, int]] | None = None) -> Row:
        """Check every distinct request once, wait for quiet, measure; the row, filled in. ``pids``: the
        processes to profile (``--profile``), model servers named ``model-server-<port>``."""
        self.rows.append(row)
        args = self.args
        try:
            row.verified = run(verify(url, model, token))
        except Exception as exc:
            row.error = f"the answers are wrong or missing: {type(exc).__name__}: {exc}"
            self.say.log(f"[red]{row.key} {row.title}: {row.error}[/]")
            return row
        if args.quiet_wait > 0:
            others = self.cpu.wait_quiet(args.quiet_wait)
            if others >= BUSY:
                self.say.log(f"[yellow]other processes still use {others:.2f} cores; measuring anyway[/]")
        self.say.log(f"{row.key} {row.title}: {args.concurrency} in flight for {args.duration:.0f}s …")
        recording: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        servers = {k: v for k, v in (pids() if pids else {}).items() if k.startswith("model-server")}
        before = {name: _threads(pid) for name, pid in servers.items()}
        if args.profile and pids is not None:
            recording = profiling.Profiles(OUT / "profiles", f"serving-{row.key}", pids(), args.profile)
        started = time.monotonic()
        try:
            with recording as recorder:
                row.rate = run(measure(url, model, token, args.concurrency, args.duration, args.warmup,
                                       args.check_every))
            if recorder is not None:
                row.profiles = tuple(str(f) for f in recorder.files)
        except Exception as exc:
            row.error = f"{type(exc).__name__}: {exc}"
            self.say.log(f"[red]{row.key} failed: {row.error}[/]")
            row.usage = self.cpu.usage(started, time.monotonic())
            return row
        row.usage = self.cpu.usage(*row.rate.load.window)
        row.threads = {name: (before[name], _threads(pid)) for name, pid in servers.items()}
        load = row.rate.load
        self.say.log(f"{row.key}: {load.rate:,.0f} req/s, p50 {load.percentile(50) * 1e3:.1f} ms, "
                     f"p99 {load.percentile(99) * 1e3:.1f} ms, {load.errors} errors")
        return row


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def _pids_of_model_servers(ports: set[int]) -> dict[str, int]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        args = _cmdline(int(entry.name))
        if "shipyard_model_server" in args and "--port" in args:
            port = int(args[args.index("--port") + 1])
            if port in ports:
                found[f"model-server-{port}"] = int(entry.name)
    return found


@contextlib.contextmanager
def direct_server(work: Path, model_dir: Path) -> Iterator[int]:
    """Shipyard's model server as serving-svc starts it (same argv, less the drain timeout), on a free
    port; its port while the block runs."""
    port = free_port()
    argv = [python(), "-m", "shipyard_model_server", "--model-dir", str(model_dir),
            "--model-name", MODEL, "--model-version", "1", "--host", "127.0.0.1", "--port", str(port),
            "--framework", "auto", "--max-concurrency", "0"]
    process = spawn(argv, work / "model-server.log")
    try:
        wait_port(port, 60, process)

        def ready() -> bool:
            with contextlib.suppress(OSError):
                import urllib.request

                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2) as reply:
                    return bool(reply.status == 200)
            return False

        wait_for(ready, 60, "the model server to be ready", interval=0.1)
        yield port
    finally:
        stop(process)


def push_model(client: Client, model_dir: Path) -> None:
    """The model repo and its version (the fitted model's folder)."""
    client.call(client.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_MODEL, name=MODEL, versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    transfer.push(client, repos_pb2.REPO_KIND_MODEL, MODEL, model_dir, transfer.scan_tree(model_dir))


def create_inference(client: Client, name: str, replicas: int) -> pb.Inference:
    """A test inference of the latest version with ``replicas`` model servers; once it runs."""
    client.call(client.serving.CreateInference, pb.CreateInferenceRequest(inference=pb.Inference(
        name=name, model=pb.ModelRef(model=MODEL, version=0),
        spec=pb.ServingSpec(min_replicas=replicas, max_replicas=replicas))))

    def running() -> pb.Inference | None:
        found = client.call(client.serving.GetInference, pb.GetInferenceRequest(name=name))
        if found.status == pb.SERVING_STATUS_FAILED:
            raise RuntimeError(f"{name} failed: {found.status_reason}")
        ready = sum(r.ready for r in found.replicas)
        return found if found.status == pb.SERVING_STATUS_RUNNING and ready == replicas else None

    inference: pb.Inference = wait_for(running, 120, f"{name} to run with {replicas} replicas", interval=0.2)
    return inference


# --- the report ---------------------------------------------------------------------------------


def _ms(rate: HttpRate | None, q: float) -> float | None:
    if rate is None or not rate.load.latencies:
        return None
    return rate.load.percentile(q) * 1e3


def reference(rows: list[Row]) -> Row | None:
    """The fastest MLServer row."""
    measured = [r for r in rows if r.kind == "mlserver" and r.rate is not None and r.per_s > 0]
    return max(measured, key=lambda r: r.per_s) if measured else None


def goal_of(row: Row) -> float | None:
    return {"direct": DIRECT_GOAL, "gateway": GATEWAY_GOAL}.get(row.kind)


def main_table(rows: list[Row], ref: Row | None, args: argparse.Namespace) -> Table:
    """Figures, ratios to the reference, goal verdicts."""
    t = Table(title=f"Serving a scikit-learn model ({os.cpu_count()} CPUs, {args.concurrency} requests in "
                    f"flight, {args.duration:.0f} s per row after {args.warmup:.0f} s of warm-up)",
              box=box.SIMPLE_HEAVY, title_justify="left")
    for name, justify in (("row", "left"), ("req/s", "right"), ("p50 / p99 ms", "right"),
                          ("errors", "right"), ("checked/wrong", "right"), ("ratio", "right"),
                          ("goal", "right"), ("verdict", "left"), ("others' CPU", "right")):
        t.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        label = f"{row.key}  {row.title}"
        if row.rate is None:
            t.add_row(label, "—", "—", "—", "—", "—", "", f"[yellow]not measured[/]: {row.error[:60]}", "—")
            continue
        load = row.rate.load
        p50, p99 = _ms(row.rate, 50), _ms(row.rate, 99)
        latency = "—" if p50 is None or p99 is None else f"{p50:.1f} / {p99:.1f}"
        ratio = row.per_s / ref.per_s if ref is not None and ref.per_s else None
        goal = goal_of(row)
        if row is ref:
            verdict = "[bold]reference[/]"
        elif goal is None:
            verdict = "for info"
        elif ratio is None:
            verdict = "[yellow]no reference[/]"
        else:
            verdict = "[green]met[/]" if ratio >= goal else "[red]not met[/]"
        errors = f"{load.errors:,}" if not load.errors else f"[red]{load.errors:,}[/]"
        wrong = f"{row.rate.checked:,} / {row.rate.wrong}"
        others = "—" if row.usage is None else f"{row.usage.others:.2f}"
        if row.usage is not None and row.usage.others >= BUSY:
            others = f"[yellow]{others}[/]"
        t.add_row(label, f"{row.per_s:,.0f}", latency, errors, wrong,
                  "—" if ratio is None else f"{ratio:.2f}x", "" if goal is None else f"≥ {goal:.1f}x",
                  verdict, others)
    return t


def cpu_table(rows: list[Row]) -> Table | None:
    """CPU by process over each row's measured window: cores busy (ms of CPU per request)."""
    used = [r for r in rows if r.usage is not None and r.rate is not None]
    if not used:
        return None
    t = Table(title="CPU by process over each row's measured window: cores busy (ms of CPU per request)",
              box=box.SIMPLE, title_justify="left")
    t.add_column("process", no_wrap=True)
    for row in used:
        t.add_column(row.key, justify="right")

    def cell(row: Row, cores: float) -> str:
        assert row.usage is not None and row.rate is not None
        calls = row.rate.load.calls + row.rate.load.errors
        per = f"{cores * row.usage.seconds / calls * 1e3:.2f}" if calls else "—"
        return f"{cores:.2f} ({per})" if cores >= 0.005 else "·"

    labels = {label for r in used for label in (r.usage.by_process if r.usage else {})}
    ordered = sorted(labels, key=lambda lb: -max((r.usage.by_process.get(lb, 0.0) if r.usage else 0.0)
                                                 for r in used))
    for label in ordered:
        cores = [r.usage.by_process.get(label, 0.0) if r.usage else 0.0 for r in used]
        if max(cores) >= 0.01:
            t.add_row(label, *(cell(r, c) for r, c in zip(used, cores, strict=True)))
    t.add_row("all of the benchmark's processes", *(cell(r, r.usage.ours if r.usage else 0.0) for r in used))
    t.add_row("other processes on the machine", *(cell(r, r.usage.others if r.usage else 0.0) for r in used))
    return t


def as_json(rows: list[Row], ref: Row | None, settings: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """The figures as plain data."""

    def one(row: Row) -> dict[str, Any]:
        data: dict[str, Any] = {"key": row.key, "title": row.title, "kind": row.kind,
                                "error": row.error or None, "verified_requests": row.verified,
                                "profiles": list(row.profiles),
                                "model_server_threads_before_after": row.threads}
        if row.rate is not None:
            load = row.rate.load
            p50, p99 = _ms(row.rate, 50), _ms(row.rate, 99)
            goal = goal_of(row)
            ratio = row.per_s / ref.per_s if ref is not None and ref.per_s else None
            data.update({
                "requests": load.calls, "errors": load.errors, "first_error": load.first_error or None,
                "error_statuses": row.rate.statuses, "seconds": load.elapsed, "requests_per_s": load.rate,
                "p50_ms": p50, "p99_ms": p99, "checked": row.rate.checked, "wrong": row.rate.wrong,
                "ratio_to_reference": ratio, "goal": goal,
                "goal_met": None if goal is None or ratio is None else ratio >= goal,
            })
        if row.usage is not None:
            data["cpu"] = {"seconds": row.usage.seconds, "ours_cores": row.usage.ours,
                           "others_cores": row.usage.others, "by_process_cores": row.usage.by_process}
        return data

    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "settings": settings,
            "reference": ref.key if ref else None, "rows": [one(r) for r in rows], "notes": notes}


def print_report(console: Console, rows: list[Row], ref: Row | None, args: argparse.Namespace,
                 notes: list[str]) -> None:
    console.print(main_table(rows, ref, args))
    cpu = cpu_table(rows)
    if cpu is not None:
        console.print(cpu)
    busy = [r.key for r in rows if r.usage is not None and r.usage.others >= BUSY]
    if busy:
        console.print(f"[yellow]Other processes used ≥ {BUSY} cores during: {', '.join(busy)}; those figures "
                      "are low by about that share of the machine.[/]")
    for row in rows:
        if row.error:
            console.print(f"[red]{row.key} {row.title}:[/] {row.error}")
        elif row.rate is not None and row.rate.load.first_error:
            console.print(f"[yellow]{row.key}: first error: {row.rate.load.first_error}[/]")
        moved = [name for name, (before, after) in row.threads.items() if after > before]
        if moved:
            console.print(f"{row.key}: {', '.join(moved)} started predict threads during the row (its 'auto' "
                          "mode moved predicts off the event loop)")
    for note in notes:
        console.print(note)
    if ref is not None:
        console.print(f"Reference: {ref.key} ({ref.title}), the fastest MLServer configuration measured "
                      "in this run. Latencies are client-side, of successful requests; every row is driven "
                      "by the same aiohttp client in the benchmark's process, whose CPU is in the table.")


# --- the run ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Fit the model, run every row, print the report."""
    args = parse_args(argv)
    cpu = ServingCpuWatch()
    with cpu:
        return _run(args, cpu)


def _run(args: argparse.Namespace, cpu: ServingCpuWatch) -> int:
    out = Console(width=None if sys.stdout.isatty() else 160)
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-serving-", dir="/var/tmp"))
    bench = Bench(args, cpu, work)
    say = bench.say
    settings: dict[str, Any] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    model = fit_model(work / "model")
    settings["requests_distinct"] = len(model.bodies)
    mlserver_models = work / "mlserver-models"
    write_model_settings(mlserver_models, MODEL, model.artifact)
    stack: Stack | None = None
    try:
        versions, why = ensure_mlserver(say.log) if args.mlserver else (None, "not asked for")
        settings["mlserver_versions"] = versions
        if versions is None:
            bench.notes.append(f"[yellow]MLServer not measured: {why}[/]")
        say.log("starting the stack (shipyard up) and serving the model through it …")
        stack = Stack(work / "stack").start()
        token = stack.admin_token()
        client = stack.client()
        try:
            push_model(client, model.artifact.parent)
            first = args.replicas[0] if args.replicas else 1
            inference = create_inference(client, f"{MODEL}-bench-{first}", first)
        finally:
            client.close()
        # Every row runs with the stack up and idle (its first test inference ready), so all share the
        # machine alike.
        for variant in VARIANTS:
            if variant.key not in args.mlserver or versions is None:
                continue
            row = Row(variant.key, f"MLServer {variant.title}", "mlserver")
            server = MLServer(work, mlserver_models, MODEL, variant)
            try:
                say.log(f"starting MLServer ({variant.title}) …")
                server.start()
            except Exception as exc:
                row.error = f"MLServer did not start: {exc}"
                bench.rows.append(row)
                continue
            try:
                bench.measure_row(row, server.url, model, None)
            finally:
                server.stop()
        with direct_server(work, model.artifact.parent) as port:
            bench.measure_row(Row("D", "Shipyard model server, direct", "direct"),
                              f"http://127.0.0.1:{port}/v2/models/{MODEL}/infer", model, None,
                              lambda: _pids_of_model_servers({port}))
        for n, replicas in enumerate(args.replicas):
            name = f"{MODEL}-bench-{replicas}"
            client = stack.client()
            try:
                if n > 0:
                    client.call(client.serving.DeleteInference,
                                pb.DeleteInferenceRequest(name=inference.name))
                    inference = create_inference(client, name, replicas)
            finally:
                client.close()
            ports = {int(r.address.rsplit(":", 1)[1]) for r in inference.replicas}
            running = stack

            def pids(ports: set[int] = ports, running: Stack = running) -> dict[str, int]:
                return {"gateway": running.pid("gateway"), **_pids_of_model_servers(ports)}

            plural = "s" if replicas > 1 else ""
            row = Row(f"G{replicas}", f"via the gateway, {replicas} replica{plural}", "gateway")
            bench.measure_row(row, f"{stack.http_url}/serving/{name}/v2/models/{MODEL}/infer", model, token,
                              pids)
    except Exception as exc:
        say.log(f"[red]the run stopped: {type(exc).__name__}: {exc}[/]")
        bench.notes.append(f"[red]the run stopped early: {type(exc).__name__}: {exc}[/]")
    finally:
        if stack is not None and stack.process is not None:
            say.log("stopping the stack …")
            try:
                stack.stop()
            except Exception as exc:
                say.log(f"[yellow]the stack did not stop cleanly: {exc}[/]")
        if args.keep:
            say.log(f"data and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    ref = reference(bench.rows)
    print_report(out, bench.rows, ref, args, bench.notes)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(as_json(bench.rows, ref, settings, bench.notes), indent=2, default=str))
    ours = [r for r in bench.rows if r.kind != "mlserver"]
    failed = not ours or any(r.rate is None for r in ours)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
