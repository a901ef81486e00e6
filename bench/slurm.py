"""``python -m bench.slurm``: runs on a real Slurm through Shipyard's Slurm executor, beside bare ``sbatch``,
in one run, on one loopback cluster (``shipyard.local.slurm.LoopbackSlurm``: slurmctld, slurmd and sshd on
127.0.0.1) and one stack, the cluster added as an operator adds one (an ssh-key credential, AddCluster).

* **Latency, submit → job running**: each job's first act prints the wall clock (``date +%s%N``). Shipyard:
  a run whose command is that, on the cluster; the clock is read back from the run's log (ReadRunLogs)
  once the run ended; the figure is that minus the moment before SubmitRun. Reference: a bare ``sbatch``
  of a batch script doing the same, as the same user through SSH (one asyncssh connection kept open, so
  no job pays for a connection, as run-svc's login node keeps one), from the moment before sbatch to the
  clock the job printed (read back from its output file); and, for context, ``sbatch`` as root on this
  machine. Samples are taken in turns (a run, an SSH job, a root job; the next round starting with the
  next side), each after the previous one ended; the three submissions of a round start at the same
  fraction of a second (its *phase*), and the rounds' phases are spread evenly over the second
  (``(n + 0.5) / N``, in an order shuffled by ``--seed``). **Goal: Shipyard's median ≤ 1.5 times the
  bare sbatch's over SSH.**

  What the ratio measures: slurmctld starts pending jobs on a one-second cycle (on the loopback cluster a
  job's script runs at about the same fraction of every second, whenever it was submitted), so every job
  waits 0-1 s for the next cycle, by where its submission fell, plus the launch: most of the bare
  figure. Left alone, each side's samples fell at a phase of their own (the previous job's end sets it),
  which moved the sides' medians by up to 0.25 s; random pauses instead left ±0.1 s of noise in 20
  samples' medians (the ratio went from 1.2x to 1.7x between two runs). With the phases spread evenly
  and shared within a round, every side averages over the whole cycle alike, and the ratio is (Shipyard's
  own path + Slurm's wait) / (one sbatch over SSH + Slurm's wait): Shipyard's own path delays where
  its sbatch falls in the cycle, which costs a whole cycle as often as the delay is a share of the second.
  Shipyard's own cost alone is the breakdown row "to sbatch returned" beside the bare sbatch's. Its path is
  SubmitRun (pinning the image, storing the run), the scheduler taking the queued run up (woken by the
  submission, else it ticks every 0.25 s), a fresh ``squeue`` (never submit a run twice), the job
  directory laid out and copied over SFTP, and sbatch; then, in the job, the wrapper and the sandbox
  (bubblewrap) around the command (~0.025 s). The breakdown rows split it at the run's stored times:
  ``create_time`` (stored by SubmitRun) and ``start_time`` (marked running after sbatch returned).
  "All in Slurm after" is how long the burst took until Slurm had every job (the last run's
  ``start_time``; the last sbatch's answer for the reference).
* **Many runs** (``--many``, 200): trivial runs (``true``) submitted at once from 8 threads; runs per
  minute from the first submit until all are seen ended. Every run must end COMPLETE with exactly one
  Slurm job (``squeue -t all``: Slurm keeps finished jobs for MinJobAge, 3600 s): a run not complete or
  without a job is *lost*, one with two jobs or more *duplicated*. Reference: as many bare sbatch of a
  trivial script over the SSH connection, 8 in flight, until Slurm shows every one COMPLETED; the same
  counts. Shipyard's burst runs first, the reference's after it.

Prints a table, writes ``bench/out/slurm-last-run.json``; never fails on a figure. Needs root and
Debian's slurm-wlm, munge and openssh-server (``tools/install-test-deps.sh``), as the Slurm tests do.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from bench.procs import REPO_ROOT
from bench.slurm_reference import SbatchAsRoot, SbatchOverSsh, slurm_jobs, tally
from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import credentials_pb2 as cred
from shipyard.contracts.run.v1 import clusters_pb2 as cpb
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.local.harness import Stack, wait_for
from shipyard.local.slurm import LoopbackSlurm

OUT = REPO_ROOT / "bench" / "out"
CLUSTER = "bench"
STAMP = "date +%s%N"
LATENCY_GOAL = 1.5  # Shipyard's median at most this many times the bare sbatch's over SSH
POLL_S = 0.1  # GetRun while one run goes (as the reference asks squeue)
MANY_POLL_S = 0.25  # ListRuns while many runs go (as the reference lists Slurm's jobs)
RUN_TIMEOUT_S = 120.0
ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bench.slurm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--latency-runs", type=int, default=20, help="samples of each latency figure (20)")
    p.add_argument("--many", type=int, default=200, help="runs, and reference jobs, submitted at once (200)")
    p.add_argument("--threads", type=int, default=8, help="submitting at once in the many phase (8)")
    p.add_argument("--many-timeout", type=float, default=900.0,
                   help="seconds each side of the many phase may take before what ended is counted (900)")
    p.add_argument("--seed", type=int, default=19, help="shuffles the latency rounds' phases (19)")
    p.add_argument("--json", type=Path, default=OUT / "slurm-last-run.json", help="where the figures go")
    return p.parse_args(argv)


def add_cluster(client: Client, slurm: LoopbackSlurm) -> None:
    """The loopback Slurm as cluster ``bench``, signing in with the operator's stored key."""
    client.call(client.saved_credentials.SaveCredential, cred.SaveCredentialRequest(
        credential=cred.Credential(name="bench-key", type=cred.CREDENTIAL_TYPE_SSH_KEY,
                                   host=slurm.host, username=slurm.ssh_user),
        secret=slurm.private_key))
    client.call(client.clusters.AddCluster, cpb.AddClusterRequest(cluster=cpb.Cluster(
        name=CLUSTER, kind=cpb.CLUSTER_KIND_SLURM, host=slurm.host, ssh_port=slurm.ssh_port,
        ssh_user=slurm.ssh_user, credential="bench-key", partition=slurm.partition,
        work_dir=str(slurm.work_dir))))


def _ended(client: Client, name: str) -> pb.Run | None:
    run = client.call(client.runs.GetRun, pb.GetRunRequest(name=name))
    return run if run.status in ENDED else None


def run_once(client: Client, name: str, command: str) -> tuple[int, pb.Run]:
    """Submit a run on the cluster and wait for its end: the wall clock (ns) before SubmitRun, and the
    run as it ended; RuntimeError when it did not complete."""
    before = time.time_ns()
    client.call(client.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name=name, command=command,
                                                                      cluster=CLUSTER)))
    run = wait_for(partial(_ended, client, name), RUN_TIMEOUT_S, f"run {name} to end", POLL_S)
    if run.status != pb.RUN_STATUS_COMPLETE:
        raise RuntimeError(f"run {name} ended {pb.RunStatus.Name(run.status)}: {run.status_reason}")
    return before, run


def latency_via_shipyard(client: Client, n: int) -> dict[str, float]:
    """The n-th run: submit → the clock its command printed, and the breakdown at its stored times."""
    name = f"latency-{n}"
    before, run = run_once(client, name, STAMP)
    printed = int(client.call(client.runs.ReadRunLogs, pb.ReadRunLogsRequest(name=name)).data.split()[0])
    stored, marked = run.create_time.ToNanoseconds(), run.start_time.ToNanoseconds()
    return {"total_s": (printed - before) / 1e9, "stored_s": (stored - before) / 1e9,
            "submitted_s": (marked - before) / 1e9, "started_s": (printed - marked) / 1e9}


def many_via_shipyard(client: Client, slurm: LoopbackSlurm, total: int, threads: int,
                      timeout: float) -> dict[str, Any]:
    """``total`` trivial runs at once; then how each ended and how many jobs Slurm has of each."""
    names = [f"many-{n}" for n in range(total)]
    refused: list[str] = []

    def submit(name: str) -> None:
        try:
            client.call(client.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name=name, command="true",
                                                                              cluster=CLUSTER)))
        except ClientError as exc:
            refused.append(f"{name}: {exc.code} {exc.message}")

    def listed() -> list[pb.Run]:
        return list(client.call(client.runs.ListRuns, pb.ListRunsRequest(name_prefix="many-",
                                                                         page_size=1000)).runs)

    def all_ended(runs: list[pb.Run]) -> bool:
        return sum(run.status in ENDED for run in runs) >= total - len(refused)

    start, start_ns = time.monotonic(), time.time_ns()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(submit, names))
    while not all_ended(runs := listed()) and time.monotonic() - start < timeout:
        time.sleep(MANY_POLL_S)
    seconds = time.monotonic() - start
    jobs = slurm_jobs(slurm, "shipyard-")
    outcomes = [(run.status == pb.RUN_STATUS_COMPLETE, len(jobs.get(f"shipyard-{run.id}", [])))
                for run in runs]
    outcomes += [(False, 0)] * (total - len(runs))  # refused at submit: never a run
    last_start = max((run.start_time.ToNanoseconds() for run in runs), default=start_ns)
    figures = tally(outcomes, refused, seconds, (last_start - start_ns) / 1e9).figures()
    figures["statuses"] = _statuses(runs)
    return figures


def _statuses(runs: list[pb.Run]) -> dict[str, int]:
    return dict(sorted(Counter(pb.RunStatus.Name(run.status) for run in runs).items()))


def measure(args: argparse.Namespace, console: Console, slurm: LoopbackSlurm,
            client: Client) -> dict[str, Any]:
    """Every phase, in order; the figures."""
    add_cluster(client, slurm)
    over_ssh, as_root = SbatchOverSsh(slurm).open(), SbatchAsRoot(slurm).open()
    try:
        # Untimed: signs run-svc in (pinning the host key) and starts one job of each kind.
        _, first = run_once(client, "warm-up", STAMP)
        over_ssh.latency(-1)
        as_root.latency(-1)
        figures: dict[str, Any] = {"warm_up_notes": list(first.notes), "load_before": os.getloadavg(),
                                   "latency": {"shipyard": [], "sbatch_ssh": [], "sbatch_root": []}}
        console.log(f"latency: {args.latency_runs} samples of each, in turns …")
        sides: list[tuple[str, Callable[[int], dict[str, float]]]] = [
            ("shipyard", partial(latency_via_shipyard, client)),
            ("sbatch_ssh", lambda n: over_ssh.latency(n).seconds()),
            ("sbatch_root", lambda n: as_root.latency(n).seconds())]
        for n, phase in enumerate(phases(args.latency_runs, args.seed)):
            turn = n % len(sides)  # each side goes first, second and third alike
            for position, (side, sample) in enumerate(sides[turn:] + sides[:turn]):
                time.sleep((phase - time.time()) % 1.0)
                figures["latency"][side].append({**sample(n), "position": position, "phase": phase})
        console.log(f"{args.many} runs at once …")
        figures["many"] = {"shipyard": many_via_shipyard(client, slurm, args.many, args.threads,
                                                         args.many_timeout)}
        console.log(f"{args.many} bare sbatch at once over SSH …")
        figures["many"]["sbatch_ssh"] = over_ssh.many(args.many, args.threads, args.many_timeout).figures()
        figures["many"]["sbatch_ssh"]["session_retries"] = over_ssh.session_retries
        figures["load_after"] = os.getloadavg()
        return figures
    finally:
        over_ssh.close()


def phases(count: int, seed: int) -> list[float]:
    """Where in a second each round's submissions start: spread evenly over the second, in a shuffled
    order (slurmctld starts jobs on a one-second cycle, so the phase decides most of Slurm's wait)."""
    spread = [(n + 0.5) / count for n in range(count)]
    random.Random(seed).shuffle(spread)
    return spread


def _median(samples: list[dict[str, float]], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def _p90(samples: list[dict[str, float]], key: str) -> float:
    values = [s[key] for s in samples]
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def report(console: Console, figures: dict[str, Any]) -> None:
    """The table: figure, Shipyard, the references, ratio, goal."""
    t = Table(title="Slurm executor: runs vs bare sbatch, one loopback cluster", box=box.SIMPLE_HEAVY,
              title_justify="left")
    for column in ("figure", "Shipyard", "sbatch SSH", "ratio", "sbatch root", "goal"):
        t.add_column(column, justify="left" if column == "figure" else "right")
    lat = figures["latency"]
    ours, ssh, root = lat["shipyard"], lat["sbatch_ssh"], lat["sbatch_root"]
    ratio = _median(ours, "total_s") / _median(ssh, "total_s")
    met = "[green]met[/]" if ratio <= LATENCY_GOAL else "[red]not met[/]"
    t.add_row("submit → job running (s), median", f"{_median(ours, 'total_s'):.3f}",
              f"{_median(ssh, 'total_s'):.3f}", f"{ratio:.2f}x", f"{_median(root, 'total_s'):.3f}",
              f"≤ {LATENCY_GOAL}x: {met}")
    t.add_row("  p90", f"{_p90(ours, 'total_s'):.3f}", f"{_p90(ssh, 'total_s'):.3f}",
              f"{_p90(ours, 'total_s') / _p90(ssh, 'total_s'):.2f}x", f"{_p90(root, 'total_s'):.3f}", "")
    t.add_row("  to run stored, median", f"{_median(ours, 'stored_s'):.3f}", "", "", "", "")
    t.add_row("  to sbatch returned, median", f"{_median(ours, 'submitted_s'):.3f}",
              f"{_median(ssh, 'submitted_s'):.3f}", "", f"{_median(root, 'submitted_s'):.3f}", "")
    t.add_row("  sbatch returned → job, median", f"{_median(ours, 'started_s'):.3f}",
              f"{_median(ssh, 'started_s'):.3f}", "", f"{_median(root, 'started_s'):.3f}", "Slurm's share")
    many, ref = figures["many"]["shipyard"], figures["many"]["sbatch_ssh"]
    t.add_row(f"{many['count']} at once: per minute", f"{many['per_minute']:,.0f}",
              f"{ref['per_minute']:,.0f}", f"{many['per_minute'] / ref['per_minute']:.2f}x", "",
              "")
    t.add_row("  all in Slurm after (s)", f"{many['submitted_s']:.1f}", f"{ref['submitted_s']:.1f}",
              f"{many['submitted_s'] / ref['submitted_s']:.1f}x", "", "")
    whole = all(side["completed"] == side["count"] and not side["lost"] and not side["duplicated"]
                for side in (many, ref))
    met = "[green]met[/]" if whole else "[red]not met[/]"
    for key in ("completed", "lost", "duplicated"):
        t.add_row(f"  {key}", str(many[key]), str(ref[key]), "", "",
                  f"all, none lost or twice: {met}" if key == "completed" else "")
    console.print(t)
    console.print(f"load average before / after: {figures['load_before'][0]:.2f} / "
                  f"{figures['load_after'][0]:.2f} (2 shared cores: figures scale with it)")


def main(argv: list[str] | None = None) -> int:
    """Start the cluster and a stack, measure, print."""
    args = parse_args(argv)
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-slurm-", dir="/var/tmp"))
    # Not under `work` (mode 700): the job user must reach the cluster's configuration and work dir.
    slurm_base = Path(tempfile.mkdtemp(prefix="shipyard-bench-slurm-"))
    console.log(f"starting a loopback Slurm in {slurm_base} and a stack in {work} …")
    slurm = LoopbackSlurm(slurm_base).start()
    try:
        stack = Stack(work / "data").start()
        client = stack.client()
        try:
            figures = measure(args, console, slurm, client)
        finally:
            client.close()
            stack.stop()
    finally:
        slurm.stop()
    report(console, figures)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    shutil.rmtree(slurm_base)
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
