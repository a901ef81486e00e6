"""Runs on a Slurm cluster reached through slurmrestd (``Cluster.slurmrestd_url``): no SSH, no shared
file system — the job fetches its files from, and sends its results to, the S3 blob store through
presigned URLs of its own run.

At submit run-svc lays out the job directory exactly as for a run over SSH (``batch_jobs``: ``job.sh``,
``run.sh``, ``command.sh``, code, inputs, the SDK), for the path it will have on the cluster
(``<work dir>/runs/<run id>``; on a cluster where each user signs in, ``<work dir>/<user>/runs/<run id>``),
tars it into the run's staging object and submits, as the token's Slurm user, a small ``sh`` script
(:func:`batch_script`) named ``shipyard-<run id>``. That script fetches the tar into a fresh job
directory, runs ``job.sh`` (so the sandbox, the environments and the container runtimes work unchanged),
sends the log, stdout and metrics file every few seconds and at the end, then each output (when the
command exited 0) and last the exit code, and removes the job directory. The node needs ``sh`` and
``python3`` (stdlib only), and to reach the S3 endpoint.

Statuses come from one listing of the jobs per poll (shared by the cluster's runs of one Slurm user),
mapped as for ``sbatch``'s jobs (``slurm.outcome``); after a restart run-svc finds a run's job by its name
and never submits twice. Stop cancels the job (``DELETE``); logs and metrics are read from what the job
sent last, by ranged reads of only what it gained since the last look; outputs come back into the output
version from their tars; at the end the staged objects go. A trial whose study has a File or
TensorFlowEvent collector also sends the files at the collector's path (``COLLECT_SCRIPT``: read as
``job_files`` reads them on a login node), which ``read_run_files`` reads back, bounded and checked.
The JWT only ever travels in the headers of run-svc's requests: neither the script nor the job's
environment holds it.
"""

from __future__ import annotations

import asyncio
import json
import math
import shlex
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipyard.kit.blob.port import BlobStore
from shipyard.kit.blob.tree import BlobTree
from shipyard.kit.errors import FailedPrecondition
from shipyard_run.adapters.batch_jobs import BatchJob, job_name, stage_job_dir
from shipyard_run.adapters.environments import PackageSources
from shipyard_run.adapters.run_contract import (
    MetricCursor,
    WithoutTensorBoard,
    load_cursor,
    read_at,
    read_points,
    save_cursor,
)
from shipyard_run.adapters.slurm import WAITING_OR_RUNNING, SlurmScheduler
from shipyard_run.adapters.slurmrestd import RestLogin, SlurmRest, newest_jobs
from shipyard_run.adapters.staged_files import (
    COLLECT_SCRIPT,
    COLLECTED,
    FETCH_SCRIPT,
    PUSH_SCRIPT,
    UPLOAD_SCRIPT,
    URL_LIFETIME,
    Staging,
    collect_spec,
    pack,
    read_collected,
    store_staged_outputs,
)
from shipyard_run.app.ports import Job, JobState, JobStatus
from shipyard_run.domain.clusters import Cluster
from shipyard_run.domain.runs import Distribution, MetricPoint, time_limit_seconds

LISTING_TTL_S = 0.2  # how long one listing answers every run's status
LOGIN_TTL_S = 60.0  # a replaced token is used within this
READ_EVERY_S = 1.0  # what a running job sent is fetched at most this often
PUSH_EVERY_S = 5  # how often a running job sends its log, stdout and metrics file
LOG_SCAN_MAX = 1 << 20
FOLLOW_STEP = 8 << 20  # the most of what a job sent that one ranged read brings (the rest in the next)
JOB_PATH = "/usr/local/bin:/usr/bin:/bin"
# What a job sends while it runs (the job directory's files → staged object names), and last of all.
PROGRESS = ("log", "stdout", "metrics.jsonl")
ENDED = "exit_code"
TOP = "job"  # the staged tar's one folder: the job directory

Logins = Callable[[str], Awaitable[RestLogin]]
"""The Slurm user and JWT a run's owner submits as ("": the cluster's own account)."""


def staged(run_id: str, name: str) -> str:
    """The staging object ``name`` of the run (``job.tar``, ``log``, ``outputs/0.tar`` …)."""
    return f"runs/{run_id}/{name}"


def batch_script(run_dir: str, collects: bool = False) -> str:
    """The script slurmrestd submits: fetch the job directory to ``run_dir``, run ``job.sh``, send back
    what it made, remove the directory; it exits with the command's code. The presigned URLs come in its
    environment and leave it before ``job.sh`` starts. SIGTERM (a cancel, the time limit) reaches the
    command from Slurm itself; the script outlives it to send the log and exit code. A trial whose study
    reads its files (``collects``) also sends them, as the log, and once more when its command ended."""
    runs_dir = run_dir.rsplit("/", 1)[0]
    unpack_to = shlex.quote(json.dumps({TOP: run_dir}))
    collect = shlex.quote(COLLECT_SCRIPT)
    start_collector = f"""
  SHIPYARD_COLLECT=$collect SHIPYARD_COLLECT_URL=$collect_url SHIPYARD_PUSH_EVERY_S={PUSH_EVERY_S} \\
    python3 -c {collect} "$child" 2>>"$dir/log" &
  collector=$!""" if collects else "\n  collector="
    # The sender sees the command gone, sends the files once more and ends.
    stop_collector = '\n  if [ -n "$collector" ]; then wait "$collector"; fi'
    return f"""#!/bin/sh
# Shipyard run, submitted through slurmrestd: its files come from and go back to the S3 blob store.
set -u
dir={shlex.quote(run_dir)}
fetch=$SHIPYARD_INPUTS_URL; progress=$SHIPYARD_PUSH; ended=$SHIPYARD_PUSH_END
dirs=$SHIPYARD_OUTPUT_DIRS; urls=$SHIPYARD_OUTPUT_URLS
collect=${{SHIPYARD_COLLECT:-}}; collect_url=${{SHIPYARD_COLLECT_URL:-}}
unset SHIPYARD_INPUTS_URL SHIPYARD_PUSH SHIPYARD_PUSH_END SHIPYARD_OUTPUT_DIRS SHIPYARD_OUTPUT_URLS \\
  SHIPYARD_COLLECT SHIPYARD_COLLECT_URL
umask 077
mkdir -p {shlex.quote(runs_dir)} && rm -rf "$dir" && mkdir "$dir" || exit 1
code=0
SHIPYARD_UNPACK={unpack_to} SHIPYARD_INPUTS_URL=$fetch python3 -c {shlex.quote(FETCH_SCRIPT)} \\
  2>>"$dir/log" || code=1
if [ "$code" -eq 0 ]; then
  trap : TERM INT
  /bin/sh "$dir/job.sh" </dev/null &
  child=$!
  SHIPYARD_PUSH=$progress SHIPYARD_PUSH_EVERY_S={PUSH_EVERY_S} python3 -c {shlex.quote(PUSH_SCRIPT)} \\
    "$child" 2>>"$dir/log" &
  pusher=$!{start_collector}
  while :; do wait "$child"; code=$?; kill -0 "$child" 2>/dev/null || break; done
  kill "$pusher" 2>/dev/null; wait "$pusher"{stop_collector}
  trap - TERM INT
  if [ -s "$dir/exit_code" ]; then code=$(cat "$dir/exit_code"); fi
  if [ "$code" -eq 0 ]; then
    SHIPYARD_OUTPUT_DIRS=$dirs SHIPYARD_OUTPUT_URLS=$urls python3 -c {shlex.quote(UPLOAD_SCRIPT)} \\
      2>>"$dir/log"
  fi
fi
printf '%s' "$code" > "$dir/exit_code"
SHIPYARD_PUSH=$progress python3 -c {shlex.quote(PUSH_SCRIPT)} 2>/dev/null
SHIPYARD_PUSH=$ended python3 -c {shlex.quote(PUSH_SCRIPT)} 2>/dev/null
rm -rf "$dir"
exit "$code"
"""


def output_dirs(job: Job, run_dir: str) -> list[str]:
    """Each output's directory in the job directory, in the order of ``Job.output_paths``."""
    return [f"{run_dir}/outputs/{path.lstrip('/')}" if path else f"{run_dir}/output"
            for path in job.output_paths]


def job_properties(cluster: Cluster, job: Job, environment: dict[str, str]) -> dict[str, Any]:
    """The submitted job's properties: its name, partition, time limit (whole minutes), account, placement,
    working directory (the cluster's work dir), and an environment of its own — nothing of the login
    environment, the PATH and the staging URLs alone."""
    properties: dict[str, Any] = {
        "name": job_name(job.run_id),
        "current_working_directory": cluster.work_dir,
        "standard_output": "/dev/null",  # the script writes its own log into the job directory
        "environment": {"PATH": JOB_PATH, **environment},  # no login environment: slurmrestd loads none
        "requeue": False,  # a run runs once: a requeued job would fetch and run it again
        **placement(job),
    }
    if cluster.partition:
        properties["partition"] = cluster.partition
    if job.time_limit:
        properties["time_limit"] = max(1, math.ceil(time_limit_seconds(job.time_limit) / 60))
    if job.account:
        properties["account"] = job.account
    return properties


def placement(job: Job) -> dict[str, Any]:
    """Nodes, tasks and GPUs as sbatch asks for them (``slurm._placement``), in slurmrestd's fields: one
    task with its GPUs; automatic distribution: the GPUs in all and a task per GPU, placed by Slurm;
    manual: a node per worker and the master, each with its GPUs."""
    gpus = job.gpu_count
    each = {"gres": f"gpu:{gpus}"} if gpus else {}
    if job.distribution is Distribution.MANUAL:
        nodes = job.workers + 1
        return {"nodes": [nodes, nodes], "tasks": nodes, "tasks_per_node": 1, **each}
    if job.distribution is Distribution.AUTOMATIC and gpus:
        return {"tasks": gpus, "gpus": str(gpus), "gpus_per_task": "1"}
    return {"tasks": 1, **each}


@dataclass
class _Listing:
    """The last listing of one Slurm user's jobs and when it came."""

    jobs: dict[str, BatchJob] = field(default_factory=dict)
    at: float = -1.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SlurmRestExecutor(WithoutTensorBoard):
    """Runs a Slurm cluster's runs as batch jobs submitted through its slurmrestd."""

    def __init__(self, cluster: Cluster, api: SlurmRest, logins: Logins, blobs: BlobStore, staging: Staging,
                 root: Path, packages: PackageSources | None = None) -> None:
        """``logins``: whom each owner submits as (the cluster's own user when it needs no login);
        ``root``: run-svc's own directory for this cluster (staging, cursors, logs brought home)."""
        self.cluster = cluster
        self.name = f"slurm:{cluster.name}"
        self.scheduler = SlurmScheduler()
        self._api = api
        self._logins = logins
        self._blobs = blobs
        self._tree = BlobTree(blobs)
        self._staging = staging
        self._root = root
        self._packages = packages or PackageSources()
        self._login_cache: dict[str, tuple[RestLogin, float]] = {}
        self._listings: dict[str, _Listing] = {}
        self._cursors: dict[str, MetricCursor] = {}
        self._read_at: dict[str, float] = {}
        self._ended: set[str] = set()
        self.on_exit = lambda: None

    def gpu_count(self) -> int:
        return self.cluster.gpus

    def isolation_missing(self) -> str:
        return ""  # a run is the Slurm user's job on the cluster's nodes, apart from the platform

    # Where a run's things are, and whom it runs as.

    def _local(self, run_id: str) -> Path:
        if not run_id.isalnum():
            raise ValueError(f"not a run id: {run_id!r}")
        return self._root / run_id

    def _owner(self, run_id: str) -> str:
        try:
            return (self._local(run_id) / "owner").read_text()
        except FileNotFoundError:
            return ""

    async def _login(self, owner: str) -> RestLogin:
        """Whom ``owner``'s runs go as, read again after LOGIN_TTL_S (a token may be replaced)."""
        cached = self._login_cache.get(owner)
        if cached is not None and time.monotonic() - cached[1] < LOGIN_TTL_S:
            return cached[0]
        login = await self._logins(owner)
        self._login_cache[owner] = (login, time.monotonic())
        return login

    def _run_dir(self, run_id: str, user: str) -> str:
        work = self.cluster.work_dir.rstrip("/")
        runs = f"{work}/{user}/runs" if self.cluster.login_required else f"{work}/runs"
        return f"{runs}/{run_id}"

    async def _jobs(self, login: RestLogin, fresh: bool = False) -> dict[str, BatchJob]:
        """The user's Shipyard jobs as slurmctld lists them now (one call shared by the poll)."""
        listing = self._listings.setdefault(login.user, _Listing())
        async with listing.lock:
            if fresh or time.monotonic() - listing.at > LISTING_TTL_S:
                try:
                    listed = await self._api.jobs(login)
                except FailedPrecondition:
                    self._login_cache.clear()  # a replaced token is read again at the next try
                    raise
                listing.jobs, listing.at = newest_jobs(listed, login.user), time.monotonic()
            return listing.jobs

    def _forget_listings(self) -> None:
        for listing in self._listings.values():
            listing.at = -1.0

    # The port.

    async def submit(self, job: Job) -> tuple[str, ...]:
        owner = job.owner if self.cluster.login_required else ""
        login = await self._login(owner)
        await asyncio.to_thread(self._remember, job, owner)
        found = (await self._jobs(login, fresh=True)).get(job.run_id)
        run_dir = self._run_dir(job.run_id, login.user)
        if found is not None:  # submitted before run-svc restarted: never twice
            await asyncio.to_thread(_mark_submitted, self._local(job.run_id))
            return self._notes(job, found.job_id, run_dir, login)
        await self._stage(job, run_dir)
        urls = await self._urls(job, run_dir)
        try:
            job_id = await self._api.submit(login, batch_script(run_dir, bool(job.collector_path)),
                                            job_properties(self.cluster, job, urls))
        except FailedPrecondition as exc:
            await self._staging.delete_staged(staged(job.run_id, ""))
            raise FailedPrecondition(f"Slurm refused the job on cluster {self.cluster.name!r}: "
                                     f"{exc.message}") from exc
        await asyncio.to_thread(_mark_submitted, self._local(job.run_id))
        self._forget_listings()
        return self._notes(job, job_id, run_dir, login)

    def _remember(self, job: Job, owner: str) -> None:
        """What run-svc needs of the job later, whatever restarts: whose it is, its outputs' mount paths."""
        local = self._local(job.run_id)
        local.mkdir(parents=True, exist_ok=True)
        (local / "owner").write_text(owner)
        (local / "outputs.json").write_text(json.dumps(list(job.output_paths)))
        for stale in ("log", "log.part", "stdout.part", "metrics.part", "metrics.cursor", "submitted"):
            (local / stale).unlink(missing_ok=True)

    async def _stage(self, job: Job, run_dir: str) -> None:
        """The job directory, laid out as over SSH, as one tar in the run's staging object."""
        local = self._local(job.run_id)
        stage = local / "stage"
        await asyncio.to_thread(shutil.rmtree, stage, True)
        await stage_job_dir(self._blobs, self.cluster, job, stage / TOP, run_dir, self._packages)
        tar = local / "job.tar"
        await asyncio.to_thread(pack, stage, tar)
        await asyncio.to_thread(shutil.rmtree, stage, True)
        try:
            await self._staging.put_staged(staged(job.run_id, "job.tar"), tar)
        finally:
            await asyncio.to_thread(tar.unlink, True)

    async def _urls(self, job: Job, run_dir: str) -> dict[str, str]:
        """The job's environment of presigned URLs: its tar to GET, its files and outputs to PUT."""
        run_id = job.run_id

        async def put(name: str) -> str:
            return await self._staging.presign_put(staged(run_id, name), URL_LIFETIME)

        progress = [[f"{run_dir}/{name}", await put(name)] for name in PROGRESS]
        outputs = [await put(f"outputs/{index}.tar") for index in range(len(job.output_paths))]
        urls = {
            "SHIPYARD_INPUTS_URL": await self._staging.presign_get(staged(run_id, "job.tar"), URL_LIFETIME),
            "SHIPYARD_PUSH": json.dumps(progress),
            "SHIPYARD_PUSH_END": json.dumps([[f"{run_dir}/{ENDED}", await put(ENDED)]]),
            "SHIPYARD_OUTPUT_DIRS": json.dumps(output_dirs(job, run_dir)),
            "SHIPYARD_OUTPUT_URLS": json.dumps(outputs),
        }
        if job.collector_path:  # a trial whose study reads its files: the job sends them
            urls["SHIPYARD_COLLECT"] = collect_spec(f"{run_dir}/code", job.collector_path)
            urls["SHIPYARD_COLLECT_URL"] = await put(COLLECTED)
        return urls

    def _notes(self, job: Job, job_id: str, run_dir: str, login: RestLogin) -> tuple[str, ...]:
        where = f" (partition {self.cluster.partition})" if self.cluster.partition else ""
        notes = [f"Slurm job {job_id} on cluster {self.cluster.name}{where}, submitted through slurmrestd "
                 f"as {login.user}: the run's files, inputs and outputs are under {run_dir} there while it "
                 "runs (SHIPYARD_MOUNTS and SHIPYARD_MOUNT_* say where), fetched from and sent back to the "
                 "S3 blob store"]
        if job.environment is not None and self.cluster.container_runtime:
            notes.append(f"environment {job.environment.image}: its image {job.environment.url} in "
                         f"{self.cluster.container_runtime} on the cluster")
        elif job.environment is not None and job.environment.requirements:
            notes.append(f"environment {job.environment.image}: a virtual environment built on the cluster "
                         f"under {self.cluster.work_dir.rstrip('/')}/environments")
        return tuple(notes)

    async def status(self, run_id: str) -> JobStatus:
        local = self._local(run_id)
        if not (local / "submitted").exists():
            return JobStatus(JobState.NOT_STARTED)
        if (local / "log").exists():  # ended and brought home already
            return JobStatus(JobState.GONE, detail="its job's files were removed")
        job = (await self._jobs(await self._login(self._owner(run_id)))).get(run_id)
        if job is not None and self.scheduler.active(job):
            return JobStatus(JobState.RUNNING, detail=f"Slurm job {job.job_id}: {job.state}")
        exit_text = await self._staged_text(run_id, ENDED)
        self._ended.add(run_id)
        if job is None:
            if exit_text.strip().isdigit():  # Slurm forgot the job; it sent its exit code
                return JobStatus(JobState.EXITED, int(exit_text))
            return JobStatus(JobState.GONE, detail="Slurm no longer knows its job, and it sent no exit code")
        if job.state in ("COMPLETED", "FAILED") and not exit_text.strip().isdigit():
            code = f", exit code {job.exit_code}" if job.exit_code else ""
            return JobStatus(JobState.GONE, detail=(
                f"Slurm job {job.job_id} ended ({job.state}{code}) without sending back its files: its node "
                "needs sh and python3, and to reach the S3 blob store at the address run-svc uses"))
        return self.scheduler.outcome(job, exit_text)

    async def _staged_text(self, run_id: str, name: str) -> str:
        """A small staged object's text ("" when there is none)."""
        try:
            part = await self._staging.read_staged(staged(run_id, name), 0, 64)
        except FileNotFoundError:
            return ""
        return part.data.decode(errors="replace")

    async def _follow(self, run_id: str, name: str, local_name: str) -> None:
        """What the job sent of ``name`` since the last look, added to ``local_name`` in the run's own
        directory: ranged reads from the size already here (the job sends the whole file each time, but
        only what it gained is fetched). An object shorter than what is here was sent anew (the file was
        rewritten): it is read again whole. Kept as it was when the job sent none yet."""
        target = self._local(run_id) / local_name
        have = await asyncio.to_thread(_size, target)
        while True:
            try:
                part = await self._staging.read_staged(staged(run_id, name), have, FOLLOW_STEP)
            except FileNotFoundError:
                return
            if part.size < have:
                have = 0
                await asyncio.to_thread(target.write_bytes, b"")
                continue
            if part.data:
                await asyncio.to_thread(_append, target, part.data)
                have += len(part.data)
            if not part.data or have >= part.size:
                return

    async def stop(self, run_id: str) -> None:
        login = await self._login(self._owner(run_id))
        job = (await self._jobs(login, fresh=True)).get(run_id)
        if job is not None:
            await self._api.cancel(login, job.job_id)
        self._forget_listings()

    async def read_logs(self, run_id: str, offset: int, max_bytes: int) -> bytes:
        local = self._local(run_id)
        home = local / "log"
        if home.exists() or not (local / "submitted").exists():
            return await asyncio.to_thread(read_at, home, offset, max_bytes)
        await self._refresh(run_id)
        return await asyncio.to_thread(read_at, local / "log.part", offset, max_bytes)

    async def _refresh(self, run_id: str, fresh: bool = False) -> None:
        """What the job sent last — its log, stdout and metrics file — at most every READ_EVERY_S."""
        now = time.monotonic()
        if not fresh and now - self._read_at.get(run_id, -READ_EVERY_S) < READ_EVERY_S:
            return
        self._read_at[run_id] = now
        for name, local_name in (("log", "log.part"), ("stdout", "stdout.part"),
                                 ("metrics.jsonl", "metrics.part")):
            await self._follow(run_id, name, local_name)

    async def read_run_files(self, run_id: str, path: str, max_bytes: int) -> dict[str, bytes] | None:
        """What the job sent last of its study's collector path (``Job.collector_path``; checked, bounded:
        the trial could have written anything there)."""
        return await read_collected(self._staging, staged(run_id, COLLECTED), max_bytes)

    async def new_metrics(self, run_id: str) -> list[MetricPoint]:
        local = self._local(run_id)
        if (local / "log").exists() or not (local / "submitted").exists():
            return []
        await self._refresh(run_id, fresh=run_id in self._ended)
        cursor = self._cursors.get(run_id)
        if cursor is None:
            cursor = self._cursors[run_id] = await asyncio.to_thread(load_cursor, local / "metrics.cursor")
        before = (cursor.log, cursor.sdk)
        stdout = await asyncio.to_thread(read_at, local / "stdout.part", cursor.log, LOG_SCAN_MAX)
        sdk = await asyncio.to_thread(read_at, local / "metrics.part", cursor.sdk, LOG_SCAN_MAX)
        points = read_points(cursor, stdout, sdk, datetime.now(UTC))
        if (cursor.log, cursor.sdk) != before:
            await asyncio.to_thread(save_cursor, local / "metrics.cursor", cursor)
        return points

    async def stage_outputs(self, run_id: str) -> dict[str, str]:
        local = self._local(run_id)
        paths = json.loads(await asyncio.to_thread((local / "outputs.json").read_text))
        result = await store_staged_outputs(self._staging, self._tree, local, paths,
                                            lambda index: staged(run_id, f"outputs/{index}.tar"),
                                            "the Slurm job")
        await self._blobs.sync()
        return result

    async def cleanup(self, run_id: str) -> None:
        """Bring the log home, cancel the job (one Slurm would never run is still queued), and remove the
        staged objects."""
        local = self._local(run_id)
        if (local / "log").exists() or not (local / "submitted").exists():
            return
        await self._follow(run_id, "log", "log.part")
        await asyncio.to_thread(_bring_home, local)
        await self._forget_job(run_id)

    async def remove(self, run_id: str) -> None:
        local = self._local(run_id)
        if (local / "submitted").exists() and not (local / "log").exists():
            await self._forget_job(run_id)
        await asyncio.to_thread(shutil.rmtree, local, True)

    async def _forget_job(self, run_id: str) -> None:
        login = await self._login(self._owner(run_id))
        job = (await self._jobs(login, fresh=True)).get(run_id)
        if job is not None and job.state in WAITING_OR_RUNNING:  # one that would never run waits still
            await self._api.cancel(login, job.job_id)
        await self._staging.delete_staged(staged(run_id, ""))
        for memo in (self._cursors, self._read_at):
            memo.pop(run_id, None)
        self._ended.discard(run_id)
        self._forget_listings()

    async def close(self) -> None:
        await self._api.close()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as file:
        file.write(data)


def _mark_submitted(local: Path) -> None:
    local.mkdir(parents=True, exist_ok=True)
    (local / "submitted").touch()


def _bring_home(local: Path) -> None:
    """The log fetched last becomes the run's log (empty when the job sent none)."""
    part = local / "log.part"
    if part.exists():
        part.replace(local / "log")
    else:
        (local / "log").write_bytes(b"")
    for name in ("stdout.part", "metrics.part"):
        (local / name).unlink(missing_ok=True)
