"""``python -m bench``: measure the references and the platform in one run, print the table.

The benchmark prints whether each goal is met; it never fails on a figure. It exits
non-zero only when a phase could not be measured at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from bench import grpc_load, nats_reference, profiling, stack_load
from bench.machine import CpuWatch, Usage
from bench.procs import REPO_ROOT
from bench.report import Results, as_json, print_report
from shipyard.kit.bus_access import OBSERVER
from shipyard.local.harness import Stack

OUT = REPO_ROOT / "bench" / "out"
T = TypeVar("T")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a short smoke run (few events, short phases); its figures are rough",
    )
    p.add_argument(
        "--events", type=int, help="creates (and events) of the whole path (default 3000, quick 300)"
    )
    p.add_argument("--concurrency", type=int, default=64, help="calls in flight for every gRPC load (64)")
    p.add_argument(
        "--batch",
        type=int,
        default=100,
        help="projects per BatchCreateProjects call of row 1b (100; 0: skip 1b)",
    )
    p.add_argument(
        "--batch-events", type=int, help="projects (and events) of row 1b (default 10000, quick 1000)"
    )
    p.add_argument("--batch-concurrency", type=int, default=4, help="BatchCreateProjects calls in flight (4)")
    p.add_argument("--duration", type=float, help="seconds of each timed gRPC rate (default 10, quick 2)")
    p.add_argument(
        "--warmup", type=float, help="seconds of warm-up before each gRPC rate (default 1, quick 0.5)"
    )
    p.add_argument(
        "--nats-awaited", type=int, help="messages of reference A, awaited (default 5000, quick 1000)"
    )
    p.add_argument(
        "--nats-pipelined", type=int, help="messages of reference A', pipelined (default 50000, quick 5000)"
    )
    p.add_argument(
        "--poll-ms", type=float, default=100.0, help="interval of the whole path's progress polls, ms (100)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds to wait for the projection after the last create (600)",
    )
    p.add_argument(
        "--profile",
        nargs="?",
        const="flamegraph",
        choices=["flamegraph", "speedscope", "raw"],
        help="record py-spy profiles of gateway, repo-svc and lineage-svc into bench/out/",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        help="before each measured phase, wait up to this many seconds for other processes "
        "to leave the CPUs alone (default 60, quick 10)",
    )
    p.add_argument(
        "--stack-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the stack's processes (repeatable), for experiments "
        "such as OTEL_SDK_DISABLED=true",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary data directory and logs")
    p.add_argument("--json", type=Path, default=OUT / "last-run.json", help="where to write the figures")
    args = p.parse_args(argv)
    quick = args.quick
    for name, full, short in (
        ("events", 3000, 300),
        ("batch_events", 10000, 1000),
        ("duration", 10.0, 2.0),
        ("warmup", 1.0, 0.5),
        ("nats_awaited", 5000, 1000),
        ("nats_pipelined", 50000, 5000),
        ("quiet_wait", 60.0, 10.0),
    ):
        if getattr(args, name) is None:
            setattr(args, name, short if quick else full)
    if args.batch > 1 and args.batch_events % args.batch:
        p.error(f"--batch-events ({args.batch_events}) must be a multiple of --batch ({args.batch})")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every phase, print the report."""
    args = parse_args(argv)
    with CpuWatch() as cpu:
        return run(args, cpu)


def run(args: argparse.Namespace, cpu: CpuWatch) -> int:
    """The phases, in order: A, the stack, B, the whole path, the gateway calls."""
    out = Console(width=None if sys.stdout.isatty() else 150)
    say = Console(stderr=True)
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-"))
    run_id = secrets.token_hex(3)
    errors: dict[str, str] = {}
    usage: dict[str, Usage | None] = {}
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings["run_id"] = run_id

    def phase(name: str, measure: Callable[[], T], key: str = "") -> T | None:
        if key and args.quiet_wait > 0:
            others = cpu.wait_quiet(args.quiet_wait)
            if others >= 0.25:
                say.log(f"[yellow]other processes still use {others:.2f} cores; measuring anyway[/]")
        say.log(f"{name} …")
        started = time.monotonic()
        try:
            result = measure()
        except Exception as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
            say.log(f"[red]{name} failed:[/] {errors[name]}")
            return None
        finally:
            if key:
                usage[key] = cpu.usage(started, time.monotonic())
        window = getattr(result, "window", None)
        if key and window is not None:
            usage[key] = cpu.usage(*window) or usage[key]
        say.log(f"{name} done in {time.monotonic() - started:.1f}s")
        return result

    nats = phase(
        "reference A (nats-py JetStream publish)",
        lambda: nats_reference.measure(work, args.nats_awaited, args.nats_pipelined),
        "nats",
    )
    metadata: tuple[tuple[str, str], ...] = (("authorization", "Bearer none"),)
    whole = batched = gateway = echo = None
    env = {name: value for name, _, value in (item.partition("=") for item in args.stack_env)}
    stack = Stack(work / "stack", env=env)
    try:
        stack_up = phase("starting the stack (shipyard up)", stack.start) is not None
        if not stack_up and (work / "stack" / "up.out").exists():
            say.log(f"[red]the stack's output:[/] {(work / 'stack' / 'up.out').read_text()[-2000:]}")
        if stack_up:
            metadata = (("authorization", f"Bearer {stack.admin_token()}"),)
        # The echo reference runs while the stack idles, so both gRPC figures share the machine alike.
        echo = phase(
            "reference B (grpcio aio echo)",
            lambda: grpc_load.echo_reference(work, args.concurrency, args.duration, args.warmup, metadata),
            "echo",
        )
        if stack_up:

            def profiled(name: str) -> AbstractContextManager[Any]:
                if not args.profile:
                    return nullcontext()
                pids = {svc: stack.pid(svc) for svc in ("gateway", "repo-svc", "lineage-svc")}
                return profiling.Profiles(OUT / "profiles", name, pids, args.profile)

            def whole_path(n: int, concurrency: int, batch: int) -> stack_load.WholePath:
                with profiled("whole-path" if batch == 1 else "whole-path-batched"):
                    return asyncio.run(
                        stack_load.whole_path(
                            stack.grpc_address,
                            stack.nats_url,
                            metadata,
                            run_id,
                            n,
                            concurrency,
                            args.poll_ms / 1000,
                            args.timeout,
                            batch,
                            stack.bus_password(OBSERVER),
                        )
                    )

            def gateway_calls() -> grpc_load.GrpcRate:
                with profiled("gateway-calls"):
                    return asyncio.run(
                        stack_load.gateway_calls(
                            stack.grpc_address,
                            metadata,
                            f"bench-{run_id}-b1-warm-0",
                            args.concurrency,
                            args.duration,
                            args.warmup,
                        )
                    )

            def timed_path(
                title: str, key: str, n: int, concurrency: int, batch: int
            ) -> stack_load.WholePath | None:
                done = phase(title, lambda: whole_path(n, concurrency, batch), key)
                if done is None:
                    return None
                usage[f"{key}-creates"] = cpu.usage(*done.creates.window)
                if done.creates.errors:
                    errors[title] = (
                        f"{done.creates.errors:,} create calls failed, e.g. {done.creates.first_error}"
                    )
                if done.t_projected is None:
                    errors[title] = (
                        f"lineage-svc had not projected all {done.events:,} events "
                        f"{args.timeout:.0f}s after the last create"
                    )
                return done

            whole = timed_path(
                f"whole path ({args.events:,} creates → projected)", "whole", args.events, args.concurrency, 1
            )
            if args.batch > 1:
                batched = timed_path(
                    f"whole path ({args.batch_events:,} projects, {args.batch} per call → projected)",
                    "batched",
                    args.batch_events,
                    args.batch_concurrency,
                    args.batch,
                )
            gateway = phase("gateway calls (GetProject)", gateway_calls, "gateway")
    finally:
        if stack.process is not None:
            say.log("stopping the stack …")
            try:
                stack.stop()
            except Exception as exc:  # it was killed after the timeout; say so and go on
                say.log(f"[yellow]the stack did not stop cleanly: {exc}[/]")
        if args.keep:
            say.log(f"data and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    results = Results(nats, echo, whole, batched, gateway, errors, settings, usage)
    print_report(out, results)
    if args.profile:
        out.print(f"Profiles: {OUT / 'profiles'}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(as_json(results), indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
