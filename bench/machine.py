"""How much CPU the rest of the machine took while the benchmark measured.

On a small shared machine (2 cores here) another process using a core halves a figure. A
sampling thread reads /proc twice a second and splits the machine's busy CPU time into the
benchmark's own (this process and all its descendants: the servers it started, the stack)
and everyone else's. Each phase reports the others' share in cores, and before each
measured phase the benchmark waits (a bounded time) for the others to quiet down.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from dataclasses import dataclass

HZ = os.sysconf("SC_CLK_TCK")


def _busy_jiffies() -> int:
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return sum(fields[:3]) + sum(fields[5:8])


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, utime + stime in jiffies) of every process."""
    found: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
            fields = text[text.rindex(")") + 2 :].split()
            found[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return found


def _ours(processes: dict[int, tuple[int, int]], root: int) -> dict[int, int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in processes.items():
        children.setdefault(parent, []).append(pid)
    mine, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in processes:
            mine[pid] = processes[pid][1]
        todo.extend(children.get(pid, ()))
    return mine


@dataclass
class Usage:
    """CPU use over an interval, in cores (1.0 = one core busy all along)."""

    seconds: float
    ours: float
    others: float
    by_process: dict[str, float]  # our processes, by label


def _label(pid: int, root: int) -> str | None:
    """What a process is, from its command line; None if that cannot be read now."""
    if pid == root:
        return "load generator (bench)"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            args = [a.decode(errors="replace") for a in cmdline.read().split(b"\0") if a]
    except OSError:
        return None
    if not args:
        return None
    if args[0].endswith("nats-server"):
        return "nats-server"
    if "-m" in args and args.index("-m") + 1 < len(args):
        module = args[args.index("-m") + 1]
        if module == "shipyard":
            return "supervisor (shipyard up)"
        if module.startswith("shipyard_"):
            name = module.removeprefix("shipyard_")
            return name if name == "gateway" else f"{name}-svc"
        if module == "bench.echo":
            return "echo server"
    if args[0].endswith("py-spy"):
        return "py-spy"
    return " ".join(args)[:40]


class CpuWatch:
    """The sampling thread; ``usage(t0, t1)`` splits the busy time between two instants."""

    def __init__(self, interval: float = 0.5) -> None:
        self._interval = interval
        self._root = os.getpid()
        # (monotonic time, cumulative busy jiffies, cumulative jiffies of our processes)
        self._samples: deque[tuple[float, int, int]] = deque(maxlen=20_000)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-watch", daemon=True)
        self._ours_total = 0
        self._last_ours: dict[int, int] = {}
        # The latest label read for each pid: read again at every sample, because a child
        # seen between fork and exec still shows its parent's command line.
        self._labels: dict[int, str] = {}
        # (monotonic time, cumulative jiffies of each of our pids since we first saw it)
        self._by_pid: deque[tuple[float, dict[int, int]]] = deque(maxlen=20_000)
        self._pid_totals: dict[int, int] = {}

    def __enter__(self) -> CpuWatch:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)

    def _sample(self) -> None:
        busy = _busy_jiffies()
        mine = _ours(_processes(), self._root)
        # A process seen before counts by its growth; one born since the last sample, wholly.
        last = self._last_ours
        for pid, jiffies in mine.items():
            if pid in last:
                grown = max(0, jiffies - last[pid])
            elif self._samples:
                grown = jiffies
            else:
                continue
            self._ours_total += grown
            self._pid_totals[pid] = self._pid_totals.get(pid, 0) + grown
            label = _label(pid, self._root)
            if label is not None:
                self._labels[pid] = label
        self._last_ours = mine
        now = time.monotonic()
        self._by_pid.append((now, dict(self._pid_totals)))  # first: usage() reads _samples first
        self._samples.append((now, busy, self._ours_total))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def usage(self, start: float, end: float) -> Usage | None:
        """CPU use between two ``time.monotonic()`` instants (to the nearest samples)."""
        low, high = start - self._interval / 2, end + self._interval
        inside = [s for s in list(self._samples) if low <= s[0] <= high]
        if len(inside) < 2:
            return None
        (t0, busy0, ours0), (t1, busy1, ours1) = inside[0], inside[-1]
        seconds = t1 - t0
        ours = (ours1 - ours0) / HZ / seconds
        total = (busy1 - busy0) / HZ / seconds
        by_time = dict(list(self._by_pid))
        first, last = by_time.get(t0, {}), by_time.get(t1, {})
        by_process: dict[str, float] = {}
        for pid, jiffies in last.items():
            grown = jiffies - first.get(pid, 0)
            if grown > 0:
                label = self._labels.get(pid, f"pid {pid}")
                by_process[label] = by_process.get(label, 0.0) + grown / HZ / seconds
        return Usage(seconds, ours, max(0.0, total - ours), by_process)

    def wait_quiet(self, max_wait: float, threshold: float = 0.25, window: float = 2.0) -> float:
        """Wait up to ``max_wait`` seconds until others used under ``threshold`` cores for ``window``
        seconds; the others' use over the last window."""
        deadline = time.monotonic() + max_wait
        time.sleep(window)
        while True:
            now = time.monotonic()
            usage = self.usage(now - window, now)
            others = usage.others if usage else 0.0
            if others < threshold or now >= deadline:
                return others
            time.sleep(self._interval)
