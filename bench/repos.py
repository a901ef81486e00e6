"""``python -m bench.repos``: creating dataset versions, beside ``dvc add`` and sha256 + copy.

Measures, in one run on one machine: the first version of a generated dataset (1 GiB in 2,000
files by default) pushed through a whole Shipyard stack (scan + upload through the gateway +
CreateVersion, what ``shipyard dataset create NAME --upload DIR`` does), the next version after
10 files changed, against the local blob store and then against S3 (a SeaweedFS server started
here); and, as references, ``dvc add`` of the same directory and a plain sha256 + copy of every
file. Prints the figures, ratios and goal verdicts; never fails on a figure (exit 1 only when a
Shipyard figure could not be measured at all).

File creation is part of every figure (2,000 copies, blobs or cache entries), so the benchmark
keeps it honest: its work directory defaults to /var/tmp rather than the shared /tmp, and it
deletes nothing until the end (outputs of earlier runs stay; a blob store is "emptied" by moving
its directory aside). On ext4 without a journal (this machine's disk) the inode allocator skips
inodes freed in the last seconds to minutes, scanning past each one: after mass deletions
nearby (another test run's temp dirs in /tmp, or an earlier phase's cleanup) creating a file
cost ~1 ms of kernel time instead of ~50 us, which slowed every measure here by seconds. So
before each run the benchmark times the creation of 500 empty files and, while that is slow,
waits (``--fs-wait``); the probe's figure is printed with the run's.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import profiling, repos_refs
from bench.machine import CpuWatch
from bench.procs import REPO_ROOT
from bench.repos_data import DIRECTORIES, SLOW_CREATE_S, Dataset, creation_cost, generate, rewrite
from bench.repos_push import (
    S3_BUCKET,
    Pushed,
    StoreRun,
    cli_create,
    hash_cache_home,
    local_wipe,
    push_version,
    s3_wipe,
)
from bench.repos_report import RepoResults, Series, StoreResults, as_json, print_report
from shipyard.local.harness import Stack
from tests.support.seaweed import SeaweedS3

OUT = REPO_ROOT / "bench" / "out"
CHANGED_FILES = 10
FS_POLL_S = 15.0
GIB = 1 << 30


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python -m bench.repos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="a smoke run: 200 files, 64 MiB (rough figures)")
    p.add_argument("--files", type=int, help="files in the dataset (default 2000, quick 200)")
    p.add_argument("--size-mib", type=int, help="the dataset's size in MiB (default 1024, quick 64)")
    p.add_argument("--seed", type=int, default=1, help="seed of the dataset's sizes, names and bytes (1)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each measure; the median is shown (1)")
    p.add_argument("--no-dvc", action="store_true", help="skip the dvc reference (and its install)")
    p.add_argument("--no-s3", action="store_true", help="skip the S3 blob store")
    p.add_argument("--no-cli", action="store_true", help="skip the CLI run (for information)")
    p.add_argument(
        "--quiet-wait",
        type=float,
        help="before each run, wait up to this many seconds for "
        "other processes to leave the CPUs alone (default 30, quick 5)",
    )
    p.add_argument(
        "--fs-wait",
        type=float,
        help="before each run, wait up to this many seconds while creating a file costs over "
        f"{SLOW_CREATE_S * 1e6:.0f} us (default 360, quick 0; see above)",
    )
    p.add_argument(
        "--profile",
        nargs="?",
        const="flamegraph",
        choices=["flamegraph", "speedscope", "raw"],
        help="py-spy profiles of the gateway and of this process during first versions, "
        "into bench/out/profiles/",
    )
    p.add_argument(
        "--stack-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the stacks' processes (repeatable)",
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        help="where the temporary data goes (default /var/tmp, see above; keep it on one disk)",
    )
    p.add_argument("--keep", action="store_true", help="keep the dataset, dvc repository and stacks' data")
    p.add_argument(
        "--json", type=Path, default=OUT / "repos-last-run.json", help="where to write the figures"
    )
    args = p.parse_args(argv)
    for name, full, short in (
        ("files", 2000, 200),
        ("size_mib", 1024, 64),
        ("quiet_wait", 30.0, 5.0),
        ("fs_wait", 360.0, 0.0),
    ):
        if getattr(args, name) is None:
            setattr(args, name, short if args.quick else full)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def work_parent() -> Path:
    """Where the work directory goes by default: /var/tmp, not /tmp (see the module's docstring)."""
    var_tmp = Path("/var/tmp")
    if var_tmp.is_dir() and os.access(var_tmp, os.W_OK | os.X_OK):
        return var_tmp
    return Path(tempfile.gettempdir())


class Bench:
    """One run: the work directory, the console, the CPU watch and what was measured."""

    def __init__(self, args: argparse.Namespace, cpu: CpuWatch) -> None:
        self.args = args
        self.cpu = cpu
        self.say = Console(stderr=True)
        self.work = Path(tempfile.mkdtemp(prefix="shipyard-bench-repos-", dir=args.work_dir or work_parent()))
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        self.results = RepoResults({**settings, "run_id": secrets.token_hex(3), "work": str(self.work)})
        self.env = {name: value for name, _, value in (item.partition("=") for item in args.stack_env)}

    def stack_env(self, name: str) -> dict[str, str]:
        """The environment of a stack's processes: ``--stack-env``, and a TMPDIR of its own in the
        work directory (the S3 blob store spools uploads there), away from the shared /tmp."""
        tmp = self.work / f"tmp-{name}"
        tmp.mkdir(parents=True, exist_ok=True)
        return {"TMPDIR": str(tmp), **self.env}

    def log(self, text: str) -> None:
        """A progress line on stderr."""
        self.say.log(text)

    def settle(self) -> float:
        """Before a timed run: write back dirty pages (untimed), wait (bounded) until creating files
        costs what it should and the others are quiet; the last file-creation probe, in seconds."""
        os.sync()
        cost = self.files_ready()
        if self.args.quiet_wait > 0:
            others = self.cpu.wait_quiet(self.args.quiet_wait)
            if others >= 0.25:
                self.log(f"[yellow]other processes still use {others:.2f} cores; measuring anyway[/]")
        return cost

    def files_ready(self) -> float:
        """Probe the cost of creating a file here; while it is abnormal, wait up to ``--fs-wait``."""
        deadline = time.monotonic() + self.args.fs_wait
        while True:
            cost = creation_cost(self.work / "fs-probes")
            if cost <= SLOW_CREATE_S or time.monotonic() >= deadline:
                break
            self.log(
                f"[yellow]creating a file costs {cost * 1e6:,.0f} us here now (normal: under "
                f"{SLOW_CREATE_S * 1e6:.0f}; files were deleted nearby lately); waiting …[/]"
            )
            time.sleep(FS_POLL_S)
        if cost > SLOW_CREATE_S:
            self.log(f"[yellow]file creation still slow ({cost * 1e6:,.0f} us); measuring anyway[/]")
        return cost

    def measure(self, series: Series[Any], what: str, run: Callable[[], Any]) -> Any:
        """Settle, run once, record the run and its CPU use in ``series``; None on failure."""
        probe = self.settle()
        self.log(f"{what} …")
        try:
            done = run()
        except Exception as exc:
            series.error = f"{type(exc).__name__}: {exc}"
            self.results.errors[what] = series.error
            self.log(f"[red]{what} failed:[/] {series.error}")
            return None
        series.add(done, self.cpu.usage(*done.window), probe)
        self.log(f"{what}: {done.seconds:.2f}s")
        return done


def dataset_facts(dataset: Dataset) -> dict[str, Any]:
    """What the report says about the dataset."""
    sizes = sorted(dataset.sizes.values())
    return {
        "files": dataset.files,
        "bytes": dataset.total,
        "directories": DIRECTORIES,
        "min": sizes[0],
        "median": int(statistics.median(sizes)),
        "max": sizes[-1],
    }


def references(bench: Bench, dataset: Dataset) -> None:
    """R1 (sha256 + copy) and R2 (dvc add), ``--repeat`` times each."""
    results = bench.results
    for n in range(bench.args.repeat):
        dest = bench.work / f"sha256-copy-{n}"
        bench.measure(
            results.sha_copy,
            f"R1 sha256 + copy (run {n + 1})",
            partial(repos_refs.sha256_and_copy, dataset.root, dest),
        )
        durable = bench.work / f"sha256-copy-sync-{n}"
        bench.measure(
            results.sha_copy_sync,
            f"R1s sha256 + copy + sync (run {n + 1})",
            partial(repos_refs.sha256_copy_and_sync, dataset.root, durable),
        )
    if bench.args.no_dvc:
        results.dvc.error = "skipped (--no-dvc)"
        return
    version, why = repos_refs.ensure_dvc(bench.log)
    if version is None:
        results.dvc.error = f"not measured: {why}"
        bench.log(f"[yellow]dvc reference not measured: {why}[/]")
        return
    results.dvc_version = version if version.startswith("dvc") else f"dvc {version}"
    for n in range(bench.args.repeat):
        repo = bench.work / f"dvc-{n}"
        try:
            env = repos_refs.prepare_dvc_repo(dataset.root, repo)
        except Exception as exc:
            results.dvc.error = f"not measured: {exc}"
            bench.log(f"[yellow]dvc reference not measured: {exc}[/]")
            return
        bench.measure(results.dvc, f"R2 dvc add (run {n + 1})", partial(repos_refs.dvc_add, repo, env))
        durable = bench.work / f"dvc-sync-{n}"
        env = repos_refs.prepare_dvc_repo(dataset.root, durable)
        bench.measure(results.dvc_sync, f"R2s dvc add + sync (run {n + 1})",
                      partial(repos_refs.dvc_add_and_sync, durable, env))


def profiled(bench: Bench, store: StoreRun, name: str) -> AbstractContextManager[Any]:
    """py-spy recorders on the gateway and this process for a first version, with ``--profile``."""
    if not bench.args.profile:
        return nullcontext()
    pids = {"gateway": store.stack.pid("gateway"), "client": os.getpid()}
    return profiling.Profiles(OUT / "profiles", f"repos-{name}", pids, bench.args.profile)


def versions(bench: Bench, store: StoreRun, results: StoreResults, dataset: Dataset) -> None:
    """First and next version of a fresh dataset repo, ``--repeat`` times, each from an empty blob
    store and an empty hash cache, the way ``results.via`` says."""
    letter = results.letter
    client = store.client()
    try:
        for n in range(bench.args.repeat):
            removed = store.wipe()
            if removed:
                bench.log(f"emptied the {results.label} blob store ({removed:,} blobs)")
            name = f"bench-{results.label}-{results.via}-{n}"
            with hash_cache_home(bench.work / f"hash-cache-{results.label}-{results.via}-{n}"):
                with profiled(bench, store, f"{results.label}-{results.via}-{n}"):
                    first = bench.measure(
                        results.first,
                        f"{letter}1 first version, {results.title}, {results.via} (run {n + 1})",
                        partial(push_version, client, name, dataset.root, 1, via=results.via),
                    )
                if first is None:
                    return
                _check_cold(bench, first)
                changed = rewrite(dataset, CHANGED_FILES, bench.args.seed, f"{letter}-{n}")
                bench.measure(
                    results.next,
                    f"{letter}2 next version, {CHANGED_FILES} files changed (run {n + 1})",
                    partial(push_version, client, name, dataset.root, 2, sum(changed.values()), results.via),
                )
    finally:
        client.close()


def _check_cold(bench: Bench, first: Pushed) -> None:
    if first.via != "upload":
        return  # the platform read the files: nothing to count here
    if first.uploaded_blobs != first.files or first.hashed_bytes != first.total_bytes:
        bench.log(
            f"[yellow]the first version was not cold: {first.uploaded_blobs} of {first.files} blobs "
            f"uploaded, {first.hashed_bytes:,} of {first.total_bytes:,} bytes hashed[/]"
        )


def cli_run(bench: Bench, store: StoreRun, dataset: Dataset) -> None:
    """One ``shipyard dataset create --upload`` from an empty blob store and hash cache."""
    store.wipe()
    cache = bench.work / "hash-cache-cli"

    def run() -> Any:
        done = cli_create(store.stack, "bench-cli", dataset.root, cache)
        # The CPU watch labels processes by command line, and it reads like any Python script's;
        # the process has exited, so this label stays.
        bench.cpu._labels[done.pid] = "shipyard CLI (subprocess)"
        return done

    bench.measure(bench.results.cli, "CLI shipyard dataset create --upload", run)


@contextmanager
def running(bench: Bench, stack: Stack) -> Iterator[Stack]:
    """A started stack, stopped at the end."""
    bench.log(f"starting a stack in {stack.data_dir} …")
    try:
        yield stack.start()
    finally:
        if stack.process is not None:
            bench.log("stopping the stack …")
            try:
                stack.stop()
            except Exception as exc:  # killed after the timeout; say so and go on
                bench.log(f"[yellow]the stack did not stop cleanly: {exc}[/]")


def local_store(bench: Bench, dataset: Dataset) -> None:
    """L1, L2 (path import), U1, U2 (upload) and the CLI run against the local blob store
    (``file://<data dir>/blobs``)."""
    path = StoreResults("local", "local blob store", "L", "path")
    upload = StoreResults("local", "local blob store", "U", "upload")
    bench.results.stores += [path, upload]
    env = {**bench.stack_env("local"), "SHIPYARD_PATH_IMPORT_ROOTS": str(bench.work)}
    try:
        with running(bench, Stack(bench.work / "stack-local", env=env)) as stack:
            store = StoreRun("local", stack, local_wipe(stack, bench.work / "wiped-blobs"))
            for results in (path, upload):
                versions(bench, store, results, dataset)
            if not bench.args.no_cli:
                cli_run(bench, store, dataset)
    except Exception as exc:
        _store_failed(bench, path, exc)
    os_sync(bench, dataset)


def os_sync(bench: Bench, dataset: Dataset) -> None:
    """N1, N2: path imports into a local blob store that leaves write-back to the OS
    (``file://…?sync=off``), as dvc add and sha256 + copy do: the like-for-like comparison."""
    results = StoreResults("local", "local blob store, sync=off", "N", "path")
    bench.results.stores.append(results)
    data = bench.work / "stack-nosync" / "data"
    env = {**bench.stack_env("nosync"), "SHIPYARD_PATH_IMPORT_ROOTS": str(bench.work),
           "SHIPYARD_BLOB_URL": f"file://{data / 'blobs'}?sync=off"}
    try:
        with running(bench, Stack(data, env=env)) as stack:
            store = StoreRun("local", stack, local_wipe(stack, bench.work / "wiped-nosync"))
            versions(bench, store, results, dataset)
    except Exception as exc:
        _store_failed(bench, results, exc)


def s3_store(bench: Bench, dataset: Dataset) -> None:
    """S1, S2 (path import) and T1, T2 (upload) against an S3 blob store: SeaweedFS (``weed server
    -s3``) on loopback."""
    path = StoreResults("s3", "S3 blob store (SeaweedFS)", "S", "path")
    upload = StoreResults("s3", "S3 blob store (SeaweedFS)", "T", "upload")
    bench.results.stores += [path, upload]
    weed = SeaweedS3(bench.work / "seaweed")
    try:
        bench.log("starting SeaweedFS (weed server -s3) …")
        server = weed.start()
        url = f"s3://{server.access_key}:{server.secret_key}@{server.endpoint}/{S3_BUCKET}?secure=false"
        env = {**bench.stack_env("s3"), "SHIPYARD_BLOB_URL": url,
               "SHIPYARD_PATH_IMPORT_ROOTS": str(bench.work)}
        for results in (path, upload):
            # A stack of its own for each: its processes remember which digests S3 holds, and
            # emptying the bucket behind their backs would make them skip the next uploads.
            try:
                with running(bench, Stack(bench.work / f"stack-s3-{results.via}", env=env)) as stack:
                    store = StoreRun("s3", stack, s3_wipe(server.client(), S3_BUCKET))
                    versions(bench, store, results, dataset)
            except Exception as exc:
                _store_failed(bench, results, exc)
    except Exception as exc:
        _store_failed(bench, path, exc)
    finally:
        weed.stop()


def _store_failed(bench: Bench, results: StoreResults, exc: Exception) -> None:
    results.error = f"{type(exc).__name__}: {exc}"
    bench.results.errors[f"{results.title}"] = results.error
    bench.log(f"[red]{results.title} failed:[/] {results.error}")


def disk_needed(args: argparse.Namespace) -> int:
    """Bytes a run keeps until its end: the dataset, then per repeat the copies of R1 and R1s, dvc's copy and
    cache, and each blob store's blobs (plus the CLI run's), with a margin."""
    per_repeat = 2 + 4 * (not args.no_dvc) + 3 + 2 * (not args.no_s3)
    return int((args.size_mib << 20) * (1 + (not args.no_cli) + per_repeat * args.repeat) * 1.2)


def run(args: argparse.Namespace, cpu: CpuWatch) -> int:
    """Generate the dataset, measure the references, then each blob store; print the report."""
    bench = Bench(args, cpu)
    out = Console(width=None if sys.stdout.isatty() else 170)
    needed, free = disk_needed(args), shutil.disk_usage(bench.work).free
    if free < needed:
        bench.log(
            f"[red]{bench.work} has {free / GIB:,.1f} GiB free; this run keeps ~{needed / GIB:,.1f} GiB "
            "until its end (use --work-dir, fewer --repeat or a smaller --size-mib)[/]"
        )
        bench.work.rmdir()
        return 1
    try:
        bench.log(f"writing the dataset: {args.files:,} files, {args.size_mib:,} MiB, in {bench.work} …")
        started = time.monotonic()
        dataset = generate(bench.work / "data", args.files, args.size_mib << 20, args.seed)
        bench.log(f"dataset written in {time.monotonic() - started:.1f}s")
        bench.results.dataset = dataset_facts(dataset)
        references(bench, dataset)
        local_store(bench, dataset)
        if not args.no_s3:
            s3_store(bench, dataset)
    finally:
        if args.keep:
            bench.log(f"data kept in {bench.work}")
        else:
            shutil.rmtree(bench.work, ignore_errors=True)
    print_report(out, bench.results)
    if args.profile:
        out.print(f"Profiles: {OUT / 'profiles'}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(as_json(bench.results), indent=2, default=str))
    failed = [s for s in bench.results.stores if s.first.seconds is None or s.next.seconds is None]
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Run every phase, print the report."""
    args = parse_args(argv)
    with CpuWatch(interval=0.25) as cpu:
        return run(args, cpu)


if __name__ == "__main__":
    sys.exit(main())
