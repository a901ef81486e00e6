"""The tables ``python -m bench.repos`` prints, and the JSON copy of its figures."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from rich import box
from rich.console import Console
from rich.table import Table

from bench.machine import Usage
from bench.repos_data import SLOW_CREATE_S
from bench.repos_push import CliRun, Pushed
from bench.repos_refs import Timing

FASTER_THAN_DVC = 3.0  # goal 1: dvc add takes at least 3x as long
WITHIN_COPY = 1.5  # goal 2: at most 1.5x sha256 + copy
RE_VERSION = 0.10  # goal 3: the next version costs under 10 % of the first
BUSY = 0.25  # cores used by other processes above which a figure is flagged
MIB = 1 << 20


class Run(Protocol):
    """Anything timed once: seconds and a ``time.monotonic()`` window."""

    @property
    def seconds(self) -> float: ...

    @property
    def window(self) -> tuple[float, float]: ...


T = TypeVar("T", bound=Run)


@dataclass
class Series(Generic[T]):
    """The runs of one measure (``--repeat``), the CPU use of each, and the error that stopped it."""

    runs: list[T] = field(default_factory=list)
    usages: list[Usage | None] = field(default_factory=list)
    probes: list[float] = field(default_factory=list)  # seconds to create a file, just before each run
    error: str = ""

    def _index(self) -> int | None:
        if not self.runs:
            return None
        times = [run.seconds for run in self.runs]
        low_median = statistics.median_low(times)
        return times.index(low_median)

    @property
    def run(self) -> T | None:
        """The median run (the lower median for an even count), or None."""
        index = self._index()
        return None if index is None else self.runs[index]

    @property
    def usage(self) -> Usage | None:
        """The CPU use during the median run."""
        index = self._index()
        return None if index is None else self.usages[index]

    @property
    def seconds(self) -> float | None:
        """The median time."""
        run = self.run
        return None if run is None else run.seconds

    @property
    def probe(self) -> float | None:
        """The file-creation probe before the median run."""
        index = self._index()
        return None if index is None else self.probes[index]

    def add(self, run: T, usage: Usage | None, probe: float) -> None:
        """Record one run."""
        self.runs.append(run)
        self.usages.append(usage)
        self.probes.append(probe)


@dataclass
class StoreResults:
    """The Shipyard figures of one blob store."""

    label: str  # "local" or "s3"
    title: str  # what the store is, in words
    letter: str  # of the measures: L1, L2 …
    via: str = "upload"  # "path": the platform reads the directory (CreateVersionFromPath)
    first: Series[Pushed] = field(default_factory=Series)
    next: Series[Pushed] = field(default_factory=Series)
    error: str = ""


@dataclass
class RepoResults:
    """Everything one run of ``python -m bench.repos`` measured."""

    settings: dict[str, Any]
    dataset: dict[str, Any] = field(default_factory=dict)
    sha_copy: Series[Timing] = field(default_factory=Series)
    sha_copy_sync: Series[Timing] = field(default_factory=Series)  # R1, then os.sync(): durable
    dvc: Series[Timing] = field(default_factory=Series)
    dvc_sync: Series[Timing] = field(default_factory=Series)  # R2, then os.sync(): durable
    dvc_version: str = ""
    stores: list[StoreResults] = field(default_factory=list)
    cli: Series[CliRun] = field(default_factory=Series)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def size_mib(self) -> float:
        """The dataset's size in MiB."""
        return float(self.dataset.get("bytes", 0)) / MIB


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def _mibps(size_bytes: float, seconds: float | None) -> str:
    return "—" if not seconds else f"{size_bytes / MIB / seconds:,.0f}"


def _others(usage: Usage | None) -> str:
    if usage is None:
        return "—"
    text = f"{usage.others:.2f}"
    return f"[yellow]{text}[/]" if usage.others >= BUSY else text


def _verdict(met: bool | None) -> str:
    if met is None:
        return "[yellow]not measured[/]"
    return "[green]met[/]" if met else "[red]not met[/]"


def _not_measured(series: Series[Any], fallback: str = "not measured") -> str:
    return f"[yellow]{series.error or fallback}[/]"


def table(results: RepoResults) -> Table:
    """The main table: figures, references, ratios and goals."""
    d, s = results.dataset, results.settings
    t = Table(
        title=f"Shipyard versions vs dvc add and sha256 + copy ({os.cpu_count()} CPUs; dataset "
        f"{d.get('files', 0):,} files, {results.size_mib:,.0f} MiB; median of {s['repeat']}; "
        "page cache warm)",
        box=box.SIMPLE_HEAVY,
        title_justify="left",
    )
    for name, justify in (
        ("measure", "left"),
        ("time (s)", "right"),
        ("MiB/s", "right"),
        ("reference", "right"),
        ("ratio", "right"),
        ("goal", "right"),
        ("verdict", "left"),
        ("others' CPU", "right"),
    ):
        t.add_column(name, justify="left" if justify == "left" else "right", no_wrap=name == "measure")
    size = float(d.get("bytes", 0))
    copy_s, dvc_s = results.sha_copy.seconds, results.dvc.seconds
    t.add_row(
        "R1 sha256 + copy of every file (copy_tree_reference, 1 thread)",
        _secs(copy_s),
        _mibps(size, copy_s),
        "",
        "",
        "",
        "reference of goal 2" if copy_s else _not_measured(results.sha_copy),
        _others(results.sha_copy.usage),
    )
    sync_s = results.sha_copy_sync.seconds
    t.add_row(
        "R1s the same, then os.sync() (durable, as the local blob store is)",
        _secs(sync_s),
        _mibps(size, sync_s),
        "",
        "",
        "",
        "for information" if sync_s else _not_measured(results.sha_copy_sync),
        _others(results.sha_copy_sync.usage),
    )
    dvc_name = f"R2 dvc add ({results.dvc_version or 'dvc'}, default cache type: copy)"
    t.add_row(
        dvc_name,
        _secs(dvc_s),
        _mibps(size, dvc_s),
        "",
        "",
        "",
        "reference of goal 1" if dvc_s else _not_measured(results.dvc),
        _others(results.dvc.usage),
    )
    dvc_sync_s = results.dvc_sync.seconds
    t.add_row(
        "R2s the same, then os.sync() (durable)",
        _secs(dvc_sync_s),
        _mibps(size, dvc_sync_s),
        "",
        "",
        "",
        "for information" if dvc_sync_s else _not_measured(results.dvc_sync),
        _others(results.dvc_sync.usage),
    )
    for store in results.stores:
        _store_rows(t, store, results, size)
    return t


_HOW = {
    "path": "path import (the platform reads the directory)",
    "upload": "scan + upload (as a remote client)",
}


def _store_rows(t: Table, store: StoreResults, results: RepoResults, size: float) -> None:
    letter = store.letter
    t.add_section()
    first, next_ = store.first.seconds, store.next.seconds
    copy_s, dvc_s = results.sha_copy.seconds, results.dvc.seconds
    if first is None:
        t.add_row(
            f"{letter}1 first version, {store.title}, {store.via}", "—", "", "", "", "",
            _not_measured(store.first), ""
        )
        return
    faster = dvc_s / first if dvc_s else None
    t.add_row(
        f"{letter}1 first version, {store.title}: {_HOW[store.via]}",
        _secs(first),
        _mibps(size, first),
        f"R2 {_secs(dvc_s)} s",
        "—" if faster is None else f"{faster:.2f}x faster",
        f"≥ {FASTER_THAN_DVC:.0f}x faster",
        _verdict(None if faster is None else faster >= FASTER_THAN_DVC),
        _others(store.first.usage),
    )
    within = first / copy_s if copy_s else None
    t.add_row(
        "   the same, against sha256 + copy",
        "",
        "",
        f"R1 {_secs(copy_s)} s",
        "—" if within is None else f"{within:.2f}x",
        f"≤ {WITHIN_COPY}x",
        _verdict(None if within is None else within <= WITHIN_COPY),
        "",
    )
    sync_s = results.sha_copy_sync.seconds
    if sync_s and store.label == "local" and store.letter != "N":
        t.add_row(
            "   the same, against sha256 + copy + sync",
            "",
            "",
            f"R1s {_secs(sync_s)} s",
            f"{first / sync_s:.2f}x",
            "",
            "for information",
            "",
        )
    dvc_sync_s = results.dvc_sync.seconds
    if dvc_sync_s and store.label == "local" and store.letter != "N":
        t.add_row(
            "   the same, against dvc add + sync (both durable)",
            "",
            "",
            f"R2s {_secs(dvc_sync_s)} s",
            f"{dvc_sync_s / first:.2f}x faster",
            "",
            "for information",
            "",
        )
    pushed = store.next.run
    if pushed is None or next_ is None:
        t.add_row(
            f"{letter}2 next version, 10 files changed", "—", "", "", "", "", _not_measured(store.next), ""
        )
    else:
        share = next_ / first
        t.add_row(
            f"{letter}2 next version, 10 files changed ({pushed.changed_bytes / MIB:,.1f} MiB; "
            f"MiB/s of those)",
            _secs(next_),
            _mibps(pushed.changed_bytes, next_),
            f"{letter}1 {_secs(first)} s",
            f"{share:.1%}",
            f"< {RE_VERSION:.0%}",
            _verdict(share < RE_VERSION),
            _others(store.next.usage),
        )
    if pushed is not None and next_ is not None and store.via == "upload":
        t.add_row(
            f"   bytes uploaded by {letter}2: {pushed.uploaded_bytes:,} = {pushed.uploaded_blobs} blobs + "
            f"manifest ({pushed.manifest_bytes:,})",
            "",
            "",
            f"changed {pushed.changed_bytes:,}",
            f"{pushed.uploaded_bytes / max(1, pushed.changed_bytes):.3f}x",
            "≈ changed + manifest",
            _verdict(pushed.uploaded_bytes == pushed.changed_bytes + pushed.manifest_bytes),
            "",
        )
    if store.letter == "L":
        cli = results.cli.run
        if cli is None:
            t.add_row(
                "   CLI: shipyard dataset create --upload (subprocess)",
                "—",
                "",
                "",
                "",
                "",
                _not_measured(results.cli),
                "",
            )
        else:
            t.add_row(
                f"   CLI: shipyard dataset create --upload (subprocess; start-up alone "
                f"{cli.startup_seconds:.2f} s)",
                _secs(cli.seconds),
                _mibps(size, cli.seconds),
                f"{letter}1 {_secs(first)} s",
                f"{cli.seconds / first:.2f}x",
                "",
                "for information",
                _others(results.cli.usage),
            )


def breakdown(results: RepoResults) -> Table | None:
    """Where the time of each Shipyard version went, step by step (median runs)."""
    columns = [
        (f"{store.letter}{n}", series.run)
        for store in results.stores
        for n, series in ((1, store.first), (2, store.next))
        if series.run is not None
    ]
    if not columns:
        return None
    t = Table(
        title="Where the time went: Shipyard versions (seconds; library calls in the benchmark's process)",
        box=box.SIMPLE,
        title_justify="left",
    )
    t.add_column("step", no_wrap=True)
    for name, _ in columns:
        t.add_column(name, justify="right")
    steps = list(dict.fromkeys(step for _, run in columns if run is not None for step in run.steps))
    for step in steps:
        t.add_row(step, *(f"{run.steps.get(step, 0.0):.3f}" if run else "—" for _, run in columns))
    t.add_row("[bold]total[/]", *(f"[bold]{run.seconds:.3f}[/]" if run else "—" for _, run in columns))
    for label, get in (
        ("files in the manifest", lambda r: f"{r.files:,}"),
        ("MiB hashed by the client's scan (rest: hash cache)",
         lambda r: "—" if r.hashed_bytes is None else f"{r.hashed_bytes / MIB:,.1f}"),
        ("blobs uploaded (+ the manifest)", lambda r: f"{r.uploaded_blobs:,}"),
        ("MiB uploaded", lambda r: f"{r.uploaded_bytes / MIB:,.2f}"),
        ("upload MiB/s (upload step)", lambda r: _mibps(r.uploaded_bytes, r.steps.get(_UPLOAD_STEP))),
        ("scan MiB/s (scan step)", lambda r: _mibps(r.hashed_bytes or 0, r.steps.get(_SCAN_STEP))),
    ):
        t.add_row(label, *(get(run) if run else "—" for _, run in columns))
    return t


_UPLOAD_STEP = "upload (GetStatus + PUT blobs, manifest)"
_SCAN_STEP = "scan (walk + sha256, hash cache)"


def cpu_table(results: RepoResults) -> Table | None:
    """CPU seconds by process during each measured run (median runs), and the file-creation probe."""
    measured: list[tuple[str, Series[Any]]] = [
        ("R1", results.sha_copy),
        ("R1s", results.sha_copy_sync),
        ("R2", results.dvc),
        ("R2s", results.dvc_sync),
    ]
    for store in results.stores:
        letter = store.letter
        measured += [(f"{letter}1", store.first), (f"{letter}2", store.next)]
    measured.append(("CLI", results.cli))
    runs = {name: series for name, series in measured if series.run is not None}
    if not runs:
        return None
    t = Table(
        title="CPU seconds by process during each run (from /proc, sampled every 0.25 s; "
        "'bench' is the client: scan + upload, or the reference's own work)",
        box=box.SIMPLE,
        title_justify="left",
    )
    t.add_column("process", no_wrap=True)
    for name in runs:
        t.add_column(name, justify="right")
    uses = {name: series.usage for name, series in runs.items()}

    def cells(value: Callable[[Usage], float]) -> list[str]:
        return [("—" if use is None else f"{value(use):.2f}") for use in uses.values()]

    labels = {label for use in uses.values() if use is not None for label in use.by_process}
    for label in sorted(labels, key=lambda label: -max(_cpu_s(u, label) for u in uses.values())):
        if max(_cpu_s(u, label) for u in uses.values()) >= 0.05:
            t.add_row(
                _short(label), *(("—" if u is None else f"{_cpu_s(u, label):.2f}") for u in uses.values())
            )
    t.add_row("all of the benchmark's processes", *cells(lambda u: u.ours * u.seconds))
    t.add_row("  as cores busy over the run", *cells(lambda u: u.ours))
    t.add_row("other processes on the machine", *cells(lambda u: u.others * u.seconds))
    t.add_row(
        f"file-creation probe just before (us per file; slow > {SLOW_CREATE_S * 1e6:.0f})",
        *(_probe(series.probe) for series in runs.values()),
    )
    return t


def _cpu_s(use: Usage | None, label: str) -> float:
    return 0.0 if use is None else use.by_process.get(label, 0.0) * use.seconds


def _probe(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    text = f"{seconds * 1e6:,.0f}"
    return f"[yellow]{text}[/]" if seconds > SLOW_CREATE_S else text


def _short(label: str) -> str:
    if label == "load generator (bench)":
        return "bench (client / reference)"
    if "dvc" in label:
        return "dvc"
    if "weed" in label:
        return "weed (SeaweedFS S3)"
    if "-m shipyard dataset" in label or "shipyard dataset" in label:
        return "shipyard CLI"
    return label


def print_report(console: Console, results: RepoResults) -> None:
    """Print the tables and the notes."""
    console.print(table(results))
    for extra in (breakdown(results), cpu_table(results)):
        if extra is not None:
            console.print(extra)
    for phase, error in results.errors.items():
        console.print(f"[red]{phase} could not be measured:[/] {error}")
    d = results.dataset
    console.print(
        f"Dataset: {d.get('files', 0):,} files of seeded AES-CTR bytes (incompressible, all distinct), "
        f"{d.get('bytes', 0):,} bytes in {d.get('directories', 0)} directories, sizes log-normal "
        f"(min {d.get('min', 0):,} B, median {d.get('median', 0):,} B, max {d.get('max', 0):,} B), "
        "on the same disk as the stacks, dvc's repository and the copies. Page cache warm for every run: "
        "the dataset (and dvc's copy of it) had just been written and the machine has RAM to spare; dirty "
        "pages were synced (os.sync) before each run, so no run pays for an earlier one's writeback. "
        "Every first version (L1, U1, S1, T1 and the CLI run) starts with an empty blob store and no "
        "hash cache that could spare a read (the client's is fresh; the platform's names only blobs "
        "that are gone). Durability differs: the local blob store syncs its file system before a "
        "version commits (the version never outlives its files); sha256 + copy (R1) and dvc add (R2) "
        "do not: R1s and R2s are the same followed by os.sync(), for a like-for-like comparison. "
        "L and S rows: the platform reads the directory itself (CreateVersionFromPath), what the CLI "
        "does when the platform runs on this machine and the directory is under its import roots; "
        "U and T rows: the client scans and uploads (transfer.scan_tree + transfer.push), what it does "
        "for a remote platform. Both are library calls in the benchmark's process; the CLI row runs "
        "`shipyard dataset create --upload` as a subprocess (a path import here). "
        "The references R1 and R2 are measured once per run and serve both blob stores. "
        f"Work directory: {results.settings.get('work', '?')} (nothing deleted in it until the end)."
    )


def _series_json(series: Series[Any]) -> dict[str, Any]:
    return {
        "median_seconds": series.seconds,
        "seconds": [run.seconds for run in series.runs],
        "median_run": None
        if series.run is None
        else {k: v for k, v in series.run.__dict__.items() if k != "window"},
        "our_cpu_seconds": None if series.usage is None else series.usage.ours * series.usage.seconds,
        "others_cpu_cores": None if series.usage is None else series.usage.others,
        "cpu_seconds_by_process": None
        if series.usage is None
        else {k: v * series.usage.seconds for k, v in series.usage.by_process.items()},
        "file_creation_probe_us": [p * 1e6 for p in series.probes],
        "error": series.error or None,
    }


def as_json(results: RepoResults) -> dict[str, Any]:
    """The figures as plain data."""
    stores: dict[str, Any] = {}
    for store in results.stores:
        first, next_ = store.first.seconds, store.next.seconds
        copy_s, dvc_s = results.sha_copy.seconds, results.dvc.seconds
        stores[f"{store.letter}: {store.title}, {store.via}"] = {
            "title": store.title,
            "first_version": _series_json(store.first),
            "next_version": _series_json(store.next),
            "dvc_over_shipyard": dvc_s / first if dvc_s and first else None,
            "shipyard_over_sha256_copy": first / copy_s if copy_s and first else None,
            "next_over_first": next_ / first if next_ and first else None,
            "error": store.error or None,
        }
    return {
        "settings": results.settings,
        "dataset": results.dataset,
        "goals": {
            "faster_than_dvc": FASTER_THAN_DVC,
            "within_sha256_copy": WITHIN_COPY,
            "next_over_first_below": RE_VERSION,
        },
        "sha256_copy": _series_json(results.sha_copy),
        "sha256_copy_sync": _series_json(results.sha_copy_sync),
        "dvc_add": {**_series_json(results.dvc), "version": results.dvc_version or None},
        "dvc_add_sync": _series_json(results.dvc_sync),
        "stores": stores,
        "cli_create_upload": _series_json(results.cli),
        "errors": results.errors,
    }
