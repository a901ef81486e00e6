"""The references of ``bench.slurm``: bare ``sbatch`` of the same scripts, as the cluster's user over one
SSH connection kept open (asyncssh, as run-svc signs in), and as root on this machine.

Each side writes its two batch scripts once (``stamp.sh`` prints the wall clock, ``true.sh`` does
nothing) into a folder of its own; jobs are named ``bench-<phase>-<n>``.
"""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from shipyard.local.slurm import LoopbackSlurm

T = TypeVar("T")
SCRIPTS = {"stamp.sh": "#!/bin/sh\ndate +%s%N\n", "true.sh": "#!/bin/sh\ntrue\n"}
POLL_S = 0.1  # how often a job's state is asked for, one job at a time (as the Shipyard side polls GetRun)
JOB_TIMEOUT_S = 120.0
MANY_POLL_S = 0.25
SESSION_TRIES = 200
SESSION_RETRY_S = 0.01  # how often the whole listing is asked for while many jobs run (as ListRuns is)
# squeue's states of a job that has not ended.
NOT_ENDED = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
                       "RESIZING", "SIGNALING", "STAGE_OUT"})
Shell = Callable[[str], Awaitable[str]]


@dataclass(frozen=True)
class Sample:
    """One latency job: nanoseconds of the wall clock before sbatch, when sbatch returned, and the
    clock the job printed."""

    before_ns: int
    returned_ns: int
    printed_ns: int

    def seconds(self) -> dict[str, float]:
        """Submit → job's clock, of it until sbatch returned, and sbatch returned → job's clock."""
        return {"total_s": (self.printed_ns - self.before_ns) / 1e9,
                "submitted_s": (self.returned_ns - self.before_ns) / 1e9,
                "started_s": (self.printed_ns - self.returned_ns) / 1e9}


@dataclass(frozen=True)
class Many:
    """N jobs submitted at once: how long until all ended, and what Slurm shows of them."""

    count: int
    seconds: float
    completed: int  # ended well, with exactly one Slurm job
    lost: int  # did not end well, or Slurm has no job of it (refused at submission included)
    duplicated: int  # Slurm has more than one job of it
    refused: list[str]
    submitted_s: float = 0.0  # until the last submission was taken (sbatch returned; the run marked running)

    def figures(self) -> dict[str, Any]:
        """The JSON copy, runs per minute included."""
        return {"count": self.count, "seconds": self.seconds,
                "per_minute": self.completed / self.seconds * 60, "completed": self.completed,
                "lost": self.lost, "duplicated": self.duplicated, "submitted_s": self.submitted_s,
                "refused": self.refused[:5]}


def parse_jobs(listing: str, prefix: str) -> dict[str, list[str]]:
    """name → the states of its jobs, from ``squeue -h -o '%j|%T'``, for names starting with ``prefix``."""
    jobs: dict[str, list[str]] = {}
    for line in listing.splitlines():
        name, _, state = line.strip().partition("|")
        if name.startswith(prefix):
            jobs.setdefault(name, []).append(state)
    return jobs


def tally(outcomes: list[tuple[bool, int]], refused: list[str], seconds: float, submitted_s: float) -> Many:
    """Completed, lost and duplicated, from each item's (ended well, how many Slurm jobs it has)."""
    return Many(count=len(outcomes), seconds=seconds,
                completed=sum(ok and jobs == 1 for ok, jobs in outcomes),
                lost=sum(not ok or jobs == 0 for ok, jobs in outcomes),
                duplicated=sum(jobs > 1 for _, jobs in outcomes), refused=refused, submitted_s=submitted_s)


def _sbatch(folder: str, name: str, script: str, output: str = "") -> str:
    """sbatch of ``script`` as job ``name``, its output in ``<folder>/<name>.out`` unless ``output`` says."""
    return " ".join(shlex.quote(word) for word in (
        "sbatch", "--parsable", f"--job-name={name}", f"--output={output or f'{folder}/{name}.out'}",
        f"--chdir={folder}",
        "--ntasks=1", "--partition=debug", f"{folder}/{script}"))


def _job_id(sbatch_out: str) -> str:
    return sbatch_out.strip().split(";")[0]


async def _latency(shell: Shell, folder: str, n: int) -> Sample:
    """One stamp job, submitted and waited for until it ended; raises when it did not complete."""
    name = f"bench-latency-{n}"
    before = time.time_ns()
    job = _job_id(await shell(_sbatch(folder, name, "stamp.sh")))
    returned = time.time_ns()
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while (state := (await shell(f"squeue -h -t all -j {job} -o %T")).strip()) in NOT_ENDED or not state:
        if time.monotonic() > deadline:
            raise RuntimeError(f"reference job {job} ({name}) still {state or 'unknown'} after "
                               f"{JOB_TIMEOUT_S:.0f}s")
        await asyncio.sleep(POLL_S)
    if state != "COMPLETED":
        raise RuntimeError(f"reference job {job} ({name}) ended {state}")
    printed = await shell(f"cat {shlex.quote(f'{folder}/{name}.out')}")
    return Sample(before, returned, int(printed.split()[0]))


async def _many(shell: Shell, folder: str, total: int, at_once: int, give_up_after: float) -> Many:
    """``total`` true.sh jobs, ``at_once`` sbatch in flight, then polled until every one ended."""
    names = [f"bench-many-{n}" for n in range(total)]
    refused: list[str] = []
    gate = asyncio.Semaphore(at_once)

    async def submit(name: str) -> None:
        async with gate:
            try:
                await shell(_sbatch(folder, name, "true.sh", "/dev/null"))
            except RuntimeError as exc:
                refused.append(f"{name}: {exc}")

    start = time.monotonic()
    await asyncio.gather(*(submit(name) for name in names))
    submitted = time.monotonic() - start
    deadline = start + give_up_after
    while True:
        jobs = parse_jobs(await shell("squeue -h -t all -o '%j|%T'"), "bench-many-")
        ended = all(not set(jobs.get(name, ["?"])) & NOT_ENDED for name in names)
        if ended or time.monotonic() > deadline:
            outcomes = [("COMPLETED" in jobs.get(name, []), len(jobs.get(name, []))) for name in names]
            return tally(outcomes, refused, time.monotonic() - start, submitted)
        await asyncio.sleep(MANY_POLL_S)


async def _connect(slurm: LoopbackSlurm) -> asyncssh.SSHClientConnection:
    """As the cluster's user, with its key, checking the sshd's host key."""
    return await asyncssh.connect(
        slurm.host, slurm.ssh_port, username=slurm.ssh_user,
        client_keys=[asyncssh.import_private_key(slurm.private_key)],
        known_hosts=([asyncssh.import_public_key(slurm.host_public_key)], [], []),
        config=None, agent_path=None, password=None, preferred_auth="publickey")


class SbatchOverSsh:
    """sbatch as the cluster's user through one SSH connection, opened once and kept open (its own event
    loop in a thread), so no job pays for a connection: as run-svc's login node keeps its own."""

    def __init__(self, slurm: LoopbackSlurm) -> None:
        self._slurm = slurm
        self.folder = f"{slurm.work_dir}/bench-reference"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sbatch-over-ssh", daemon=True)
        self._connection: asyncssh.SSHClientConnection | None = None
        self.session_retries = 0  # sessions sshd refused (MaxSessions) and that were asked for again

    def open(self) -> SbatchOverSsh:
        """Connect, and write the scripts."""
        self._thread.start()
        self._connection = self._do(_connect(self._slurm))
        self._do(self._shell(f"mkdir -p {shlex.quote(self.folder)}"))
        for name, text in SCRIPTS.items():
            path = shlex.quote(f"{self.folder}/{name}")
            self._do(self._shell(f"cat > {path} && chmod 700 {path}", text))
        return self

    def close(self) -> None:
        """Close the connection and stop the loop."""
        if self._connection is not None:
            self._connection.close()
            self._do(self._connection.wait_closed())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def latency(self, n: int) -> Sample:
        """The n-th stamp job."""
        return self._do(_latency(self._shell, self.folder, n))

    def many(self, total: int, at_once: int, give_up_after: float) -> Many:
        """``total`` jobs at once."""
        return self._do(_many(self._shell, self.folder, total, at_once, give_up_after))

    async def _shell(self, command: str, stdin: str | None = None) -> str:
        assert self._connection is not None
        for _ in range(SESSION_TRIES):
            try:
                done = await self._connection.run(command, input=stdin, check=False)
                break
            except asyncssh.ChannelOpenError:
                # sshd's MaxSessions (10): a session is freed a moment after its command ended, so 8 in
                # flight sometimes meet the limit; the channel is asked for again.
                self.session_retries += 1
                await asyncio.sleep(SESSION_RETRY_S)
        else:
            raise RuntimeError(f"sshd refused {SESSION_TRIES} sessions in a row for {command.split()[0]}")
        if done.exit_status != 0:
            raise RuntimeError(f"{command.split()[0]} exited with {done.exit_status}: "
                               f"{str(done.stderr).strip()}")
        return str(done.stdout)

    def _do(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result()


class SbatchAsRoot:
    """sbatch as root on this machine, for context: no SSH, no other user."""

    def __init__(self, slurm: LoopbackSlurm) -> None:
        self._slurm = slurm
        self.folder = slurm.base / "bench-root"

    def open(self) -> SbatchAsRoot:
        """Write the scripts."""
        self.folder.mkdir(exist_ok=True)
        for name, text in SCRIPTS.items():
            (self.folder / name).write_text(text)
            (self.folder / name).chmod(0o700)
        return self

    def latency(self, n: int) -> Sample:
        """The n-th stamp job."""
        return asyncio.run(_latency(self._shell, str(self.folder), n))

    async def _shell(self, command: str) -> str:
        return await asyncio.to_thread(_local, command, self._slurm.env(), self.folder)


def _local(command: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(command, shell=True, capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command.split()[0]} exited with {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def slurm_jobs(slurm: LoopbackSlurm, prefix: str) -> dict[str, list[str]]:
    """Every job Slurm knows (finished ones too, for MinJobAge) whose name starts with ``prefix``."""
    return parse_jobs(_local("squeue -h -t all -o '%j|%T'", slurm.env(), slurm.base), prefix)

