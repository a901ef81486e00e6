"""``python -m bench.console``: how fast the console's pages render in a real browser with a big
platform behind them — 10,000 runs with 1,000 metric points each — beside the same pages served
as static files in the same run.

* **Figure**: time to first render (First Contentful Paint, from the browser's own paint timing)
  of the runs list (``/runs``: the newest 50 of 10,000) and of a run's detail page (its metric
  charts from 1,000 points, its log), in Debian's headless Chromium driven by Playwright, signed
  in, from navigation start. Also printed: the server's part (navigation start to the response's
  first byte) and, for the detail page, when its charts were drawn. **Goal: under 300 ms each.**
* **Reference**: the very HTML each page rendered to, saved with the console's static files and
  served by Python's ``http.server`` on loopback: what the browser alone needs to show that page.

The runs and points are written into run-svc's store before the stack starts (bench/console_data.py).
Prints a table and writes ``bench/out/console-last-run.json``; never fails on a figure.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import statistics
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright
from rich import box
from rich.console import Console
from rich.table import Table

from bench.console_data import run_name, seed_blocking
from bench.procs import REPO_ROOT
from shipyard.local.harness import Stack

OUT = REPO_ROOT / "bench" / "out"
GOAL_MS = 300.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STATIC = REPO_ROOT / "services" / "gateway" / "shipyard_gateway" / "entrypoints" / "console" / "static"
FCP = "first-contentful-paint"
CHARTS = "shipyard:charts"
TIMINGS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  const charts = performance.getEntriesByName("shipyard:charts")[0];
  return {fcp: paint ? paint.startTime : null, ttfb: nav.responseStart, bytes: nav.transferSize,
          charts: charts ? charts.startTime : null};
}"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python -m bench.console",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--runs", type=int, default=10_000, help="runs in the store (10,000)")
    p.add_argument("--points", type=int, default=1_000, help="metric points per run (1,000)")
    p.add_argument("--samples", type=int, default=20, help="page loads measured per page (20)")
    p.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="keep the seeded store here and reuse it on the next run (default: a fresh one)",
    )
    p.add_argument("--json", type=Path, default=OUT / "console-last-run.json", help="where the figures go")
    return p.parse_args(argv)


def _measure(page: Page, url: str, samples: int, charts: bool) -> list[dict[str, Any]]:
    """Load ``url`` ``samples`` times (after two loads that warm caches); the browser's timings.
    The first paint can come after the load event: each load waits for its paint entry."""
    found = []
    for index in range(samples + 2):
        page.goto(url, wait_until="load")
        page.wait_for_function(f"performance.getEntriesByName({FCP!r}).length > 0")
        if charts:
            page.wait_for_function(f"performance.getEntriesByName({CHARTS!r}).length > 0")
        timing = page.evaluate(TIMINGS)
        if index >= 2:
            found.append(timing)
    return found


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _p95(values: list[float | None]) -> float | None:
    present = sorted(v for v in values if v is not None)
    return present[min(len(present) - 1, int(0.95 * len(present)))] if present else None


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on the benchmark's console."""


def _reference_server(root: Path) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def measure(stack: Stack, samples: int, work: Path) -> dict[str, dict[str, Any]]:
    """The console's pages and their static copies, each loaded ``samples`` times."""
    pages = {"runs list": ("/runs", False), "run detail": (f"/runs/{run_name(5000)}", True)}
    copies = work / "reference"
    shutil.copytree(STATIC, copies / "static")
    results: dict[str, dict[str, Any]] = {}
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{stack.http_url}/login")
        page.locator("#token").fill(stack.admin_token())
        page.locator("#login button[type=submit]").click()
        page.wait_for_url(f"{stack.http_url}/")
        for label, (path, charts) in pages.items():
            console = _measure(page, stack.http_url + path, samples, charts)
            (copies / f"{label.replace(' ', '-')}.html").write_text(page.content())
            results[label] = {"path": path, "console": console}
        server, base = _reference_server(copies)
        try:
            reference_page = browser.new_page(viewport={"width": 1280, "height": 800})
            for label, (_, charts) in pages.items():
                results[label]["reference"] = _measure(
                    reference_page, f"{base}/{label.replace(' ', '-')}.html", samples, charts
                )
        finally:
            server.shutdown()
            browser.close()
    return results


def report(console: Console, results: dict[str, dict[str, Any]], runs: int, points: int) -> None:
    """The table of figures."""
    table = Table(
        title=f"Console first render, {runs:,} runs with {points:,} metric points each "
        "(headless Chromium, medians)",
        box=box.SIMPLE_HEAVY,
    )
    for column in (
        "page",
        "first render (FCP)",
        "p95",
        "server (TTFB)",
        "charts drawn",
        "page bytes",
        "reference: static copy",
        "ratio",
        "goal",
        "verdict",
    ):
        table.add_column(column, justify="left" if column == "page" else "right")
    for label, found in results.items():
        fcp = _median([t["fcp"] for t in found["console"]])
        reference = _median([t["fcp"] for t in found["reference"]])
        charts = _median([t["charts"] for t in found["console"]])
        verdict = "met" if fcp is not None and fcp < GOAL_MS else "NOT met"
        table.add_row(
            f"{label} ({found['path']})",
            _ms(fcp),
            _ms(_p95([t["fcp"] for t in found["console"]])),
            _ms(_median([t["ttfb"] for t in found["console"]])),
            _ms(charts),
            f"{int(_median([t['bytes'] for t in found['console']]) or 0):,}",
            _ms(reference),
            f"{fcp / reference:.2f}x" if fcp and reference else "—",
            f"< {GOAL_MS:.0f} ms",
            verdict,
        )
    console.print(table)


def _ms(value: float | None) -> str:
    return f"{value:.0f} ms" if value is not None else "—"


def main(argv: list[str] | None = None) -> int:
    """Seed, start the stack, measure, report."""
    args = parse_args(argv)
    console = Console(width=200)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="shipyard-bench-console-", dir="/var/tmp"))
    data = work / "data"
    marker = work / f"seeded-{args.runs}-{args.points}"
    if not marker.exists():
        shutil.rmtree(data, ignore_errors=True)
        started = time.perf_counter()
        with console.status(
            f"writing {args.runs:,} runs with {args.points:,} metric points each into run-svc's store"
        ):
            seed_blocking(data, args.runs, args.points)
        marker.touch()
        console.log(f"seeded in {time.perf_counter() - started:.0f} s")
    shutil.rmtree(work / "reference", ignore_errors=True)
    stack = Stack(data, env={"SHIPYARD_PATH_IMPORT_ROOTS": ""}).start()
    try:
        results = measure(stack, args.samples, work)
    finally:
        stack.stop()
    report(console, results, args.runs, args.points)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"runs": args.runs, "points": args.points, "goal_ms": GOAL_MS, "pages": results}, indent=1)
    )
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
