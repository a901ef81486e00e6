"""The Slurm executor: each run a batch job submitted with ``sbatch`` on a cluster's login node over
SSH, its files staged in the cluster's work directory.

Job directory ``<work dir>/runs/<run id>/`` (in a ``runs`` directory only the account can enter):
``code/`` (the working directory), ``inputs/<mount path>``, ``outputs/<mount path>``, ``output/``
(SHIPYARD_OUTPUT), ``home/``, ``tensorboard/``, ``config/``, ``hyperparameters.json``, ``metrics.jsonl``,
``sdk/`` (Shipyard's SDK, on PYTHONPATH), ``run.sh`` (the run's environment and command), ``log``,
``stdout`` and ``exit_code`` (written by the same wrapper as the local executor's), ``job_id``. The job is
named ``shipyard-<run id>``: after a restart run-svc finds it again by that name, and never submits a run
twice. Statuses come from one ``squeue`` per cluster per poll, shared by all its runs. When a run ends, its
log comes home (run-svc's own directory) and the job directory goes.

A run sees the cluster as the account it was submitted as, in the job's directory: without a container
runtime its mounts stay under that directory (SHIPYARD_MOUNTS and SHIPYARD_MOUNT_* say where, as on an
unisolated local run) and it runs in the node's Python, or in a virtual environment built on the cluster
for its image's requirements (once per environment digest, under ``<work dir>/environments``).
"""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from shipyard.kit.blob.checkout import check_out, read_manifest
from shipyard.kit.blob.port import BlobStore
from shipyard.kit.blob.tree import BlobTree
from shipyard.kit.environments import sdk_module
from shipyard.kit.errors import FailedPrecondition
from shipyard_run.adapters.environments import PackageSources
from shipyard_run.adapters.login_node import CommandFailed, LoginNode, quoted
from shipyard_run.adapters.run_contract import (
    WRAPPER,
    MetricCursor,
    contract_variables,
    read_points,
)
from shipyard_run.app.ports import Executor, Job, JobEnvironment, JobState, JobStatus
from shipyard_run.domain.clusters import Cluster
from shipyard_run.domain.runs import MetricPoint

JOB_PREFIX = "shipyard-"
LISTING_TTL_S = 0.2  # how long one squeue answers every run's status
METRICS_EVERY_S = 1.0  # a running job's files are read at most this often
LOG_SCAN_MAX = 1 << 20
# Slurm's states of a job not ended yet (squeue %T).
WAITING_OR_RUNNING = frozenset({
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_FED",
    "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "SPECIAL_EXIT",
})
# Ends where the cluster stopped the job at a limit: the run fails, saying which.
LIMITS = {
    "TIMEOUT": "it ran past its time limit (Slurm: TIMEOUT)",
    "OUT_OF_MEMORY": "it ran out of memory (Slurm: OUT_OF_MEMORY)",
    "DEADLINE": "it reached its deadline before it could end (Slurm: DEADLINE)",
}
# Variables of the job's own environment the command keeps: Slurm's, the GPUs it was given, the locale.
KEPT = "SLURM_*|CUDA_VISIBLE_DEVICES|GPU_DEVICE_ORDINAL|ROCR_VISIBLE_DEVICES|LANG|LANGUAGE|LC_*|TZ"


@dataclass(frozen=True)
class SlurmJob:
    """One line of ``squeue``: a job of ours."""

    job_id: str
    state: str
    reason: str


def parse_listing(text: str) -> dict[str, SlurmJob]:
    """run id → its job, from ``squeue -h -o '%i|%j|%T|%r'`` (the newest job of a run wins)."""
    jobs: dict[str, SlurmJob] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 4 or not parts[1].startswith(JOB_PREFIX):
            continue
        job_id, name, state, reason = parts
        run_id = name.removeprefix(JOB_PREFIX)
        earlier = jobs.get(run_id)
        if earlier is None or _number(job_id) > _number(earlier.job_id):
            jobs[run_id] = SlurmJob(job_id, state.split()[0] if state else "", reason)
    return jobs


def _number(job_id: str) -> int:
    head = job_id.split("_")[0]
    return int(head) if head.isdigit() else -1


def outcome(job: SlurmJob, exit_text: str) -> JobStatus:
    """How an ended job ended, from Slurm's state and the exit code file the wrapper left ("" if none)."""
    code = int(exit_text) if exit_text.strip().isdigit() else None
    if job.state in LIMITS:
        return JobStatus(JobState.KILLED, code or 0, LIMITS[job.state])
    if job.state in ("COMPLETED", "FAILED") and code is not None:
        return JobStatus(JobState.EXITED, code)
    if job.state == "COMPLETED":  # the batch script exited 0, and it exits with the command's code
        return JobStatus(JobState.EXITED, 0)
    if job.state == "CANCELLED":
        return JobStatus(JobState.GONE, code or 0,
                         f"Slurm job {job.job_id} was cancelled on the cluster, not through Shipyard")
    reason = f" ({job.reason})" if job.reason and job.reason != "None" else ""
    return JobStatus(JobState.GONE, code or 0, f"Slurm ended job {job.job_id}: {job.state}{reason}")


def sbatch_options(cluster: Cluster, job: Job, run_dir: str) -> list[str]:
    """sbatch's options for the run's job (given on its command line: no file parsing, exact quoting)."""
    options = [f"--job-name={JOB_PREFIX}{job.run_id}", f"--output={run_dir}/slurm.out",
               f"--chdir={run_dir}/code", "--ntasks=1", "--parsable"]
    if cluster.partition:
        options.append(f"--partition={cluster.partition}")
    if job.time_limit:
        options.append(f"--time={job.time_limit}")
    if job.account:
        options.append(f"--account={job.account}")
    if job.gpu_count:
        options.append(f"--gres=gpu:{job.gpu_count}")
    return options


def batch_script(run_dir: str) -> str:
    """The batch script: the wrapper that records the exit code, around ``run.sh``."""
    files = quoted(*(f"{run_dir}/{name}" for name in ("exit_code", "log", "stdout")), "/bin/sh",
                   f"{run_dir}/run.sh")
    return ("#!/bin/sh\n# Shipyard run: the wrapper records the command's exit code beside its log.\n"
            f"exec /bin/sh -c {shlex.quote(WRAPPER)} shipyard-run {files}\n")


def run_script(job: Job, run_dir: str, work_dir: str, packages: PackageSources) -> str:
    """``run.sh``: the run's Python (built on first use), then exactly the run's variables — every other
    variable of the job's is dropped but Slurm's, the GPUs and the locale — then the command."""
    mounts = _mounts(job, run_dir)
    env = contract_variables(job, run_dir, mounts)
    env.pop("CUDA_VISIBLE_DEVICES", None)  # Slurm sets it for the GPUs it gave (--gres)
    env["HOME"] = f"{run_dir}/home"
    env["PYTHONPATH"] = f"{run_dir}/sdk"
    lines = ["#!/bin/sh", "set -u"]
    path = "/usr/local/bin:/usr/bin:/bin"
    environment = job.environment
    if environment is not None and environment.requirements:
        venv = f"{work_dir}/environments/{environment.digest}"
        lines += _environment_build(environment, venv, packages)
        env["VIRTUAL_ENV"] = venv
        path = f"{venv}/bin:{path}"
    env["PATH"] = path
    lines += [
        "for name in $(env | sed -n 's/^\\([A-Za-z_][A-Za-z0-9_]*\\)=.*/\\1/p'); do",
        f'  case "$name" in {KEPT}) ;; *) unset "$name" 2>/dev/null ;; esac',
        "done",
        *(f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())),
        f"exec /bin/sh -c {shlex.quote(job.command)}",
    ]
    return "\n".join(lines) + "\n"


def _environment_build(environment: JobEnvironment, venv: str, packages: PackageSources) -> list[str]:
    """Lines that build the environment once per digest (a lock: jobs starting together build it once);
    pip's output goes to the log's stderr side, never to stdout, where metrics are read."""
    python = f"python{environment.python}" if environment.python else "python3"
    install = quoted(f"{venv}/bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                     *packages.options(), *environment.requirements)
    failed = (f"the environment {environment.image} could not be built on the cluster "
              f"({python} -m venv, then pip install)")
    return [
        f"if [ ! -e {shlex.quote(venv)}/.ready ]; then",
        f"  mkdir -p {shlex.quote(str(Path(venv).parent))}",
        "  (",
        "    flock 9",
        f"    if [ ! -e {shlex.quote(venv)}/.ready ]; then",
        f"      echo {shlex.quote(f'building the environment {environment.image} on the cluster')} >&2",
        f"      rm -rf {shlex.quote(venv)} && {python} -m venv {shlex.quote(venv)} >&2 && {install} >&2 "
        f"&& touch {shlex.quote(venv)}/.ready",
        "    fi",
        f"  ) 9>{shlex.quote(venv)}.lock || {{ echo {shlex.quote('shipyard: ' + failed)} >&2; exit 1; }}",
        "fi",
    ]


def _mounts(job: Job, run_dir: str) -> dict[str, str]:
    mounts = {item.mount_path: f"{run_dir}/inputs/{item.mount_path.lstrip('/')}" for item in job.inputs}
    mounts.update({path: f"{run_dir}/outputs/{path.lstrip('/')}" for path in job.output_paths if path})
    return mounts


@dataclass
class _Listing:
    """The last squeue answer and when it came."""

    jobs: dict[str, SlurmJob] = field(default_factory=dict)
    at: float = -1.0


class SlurmExecutor(Executor):
    """Runs a cluster's runs as Slurm batch jobs through its login node."""

    def __init__(self, cluster: Cluster, node: LoginNode, blobs: BlobStore, root: Path,
                 packages: PackageSources | None = None) -> None:
        """``root``: run-svc's own directory for this cluster (staging, cursors, logs brought home)."""
        self.cluster = cluster
        self.name = f"slurm:{cluster.name}"
        self._node = node
        self._blobs = blobs
        self._tree = BlobTree(blobs)
        self._root = root
        self._packages = packages or PackageSources()
        self._listing = _Listing()
        self._listing_lock = asyncio.Lock()
        self._cursors: dict[str, MetricCursor] = {}
        self._read_at: dict[str, float] = {}
        self._ended: set[str] = set()
        self.on_exit = lambda: None

    @property
    def _runs_dir(self) -> str:
        return f"{self.cluster.work_dir.rstrip('/')}/runs"

    def _run_dir(self, run_id: str) -> str:
        if not run_id.isalnum():
            raise ValueError(f"not a run id: {run_id!r}")
        return f"{self._runs_dir}/{run_id}"

    def _local(self, run_id: str) -> Path:
        return self._root / self._run_dir(run_id).rsplit("/", 1)[1]

    def gpu_count(self) -> int:
        return self.cluster.gpus

    def isolation_missing(self) -> str:
        return ""  # a run is the cluster account's job on the cluster's nodes, apart from the platform

    async def _jobs(self, fresh: bool = False) -> dict[str, SlurmJob]:
        """Our jobs as squeue shows them now (one call shared by every run's status in a poll)."""
        async with self._listing_lock:
            if fresh or time.monotonic() - self._listing.at > LISTING_TTL_S:
                text = await self._node.run(quoted("squeue", "-h", "-t", "all", "-u", self.cluster.ssh_user,
                                                   "-o", "%i|%j|%T|%r"))
                self._listing = _Listing(parse_listing(text), time.monotonic())
            return self._listing.jobs

    async def submit(self, job: Job) -> tuple[str, ...]:
        run_dir = self._run_dir(job.run_id)
        found = (await self._jobs(fresh=True)).get(job.run_id)
        if found is not None:  # submitted before run-svc restarted: never twice
            return self._notes(job, found.job_id)
        stage = self._local(job.run_id) / "stage"
        await asyncio.to_thread(shutil.rmtree, stage, True)
        await self._stage(job, stage)
        await asyncio.to_thread(self._remember, job)
        await self._node.run(f"umask 077 && mkdir -p {shlex.quote(self._runs_dir)} && "
                             f"rm -rf {shlex.quote(run_dir)}")
        await self._node.put_tree(stage, run_dir)
        await asyncio.to_thread(shutil.rmtree, stage, True)
        sbatch = quoted("sbatch", *sbatch_options(self.cluster, job, run_dir), f"{run_dir}/job.sh")
        job_id = shlex.quote(f"{run_dir}/job_id")
        try:  # the job id lands in the job directory: its presence says sbatch took the job
            out = await self._node.run(f"{sbatch} > {job_id}.tmp && mv {job_id}.tmp {job_id} && cat {job_id}")
        except CommandFailed as exc:
            await self._node.run(f"rm -rf {shlex.quote(run_dir)}")
            raise FailedPrecondition(f"sbatch refused the job on cluster {self.cluster.name!r}: "
                                     f"{exc.stderr.strip()[-300:]}") from exc
        self._listing.at = -1.0  # the next status asks squeue again
        return self._notes(job, out.strip().split(";")[0])

    def _notes(self, job: Job, job_id: str) -> tuple[str, ...]:
        where = f" (partition {self.cluster.partition})" if self.cluster.partition else ""
        run_dir = self._run_dir(job.run_id)
        notes = [f"Slurm job {job_id} on cluster {self.cluster.name}{where}, as {self.cluster.ssh_user}@"
                 f"{self.cluster.host}: the run's files, inputs and outputs are under {run_dir} there "
                 "(SHIPYARD_MOUNTS and SHIPYARD_MOUNT_* say where)"]
        if job.environment is not None and job.environment.requirements:
            built = f"{self.cluster.work_dir}/environments"
            notes.append(f"environment {job.environment.image} (sha256 {job.environment.digest[:8]}…): a "
                         f"virtual environment built on the cluster under {built}")
        elif job.environment is not None:
            notes.append(f"environment {job.environment.image}: the cluster node's own Python")
        return tuple(notes)

    async def _stage(self, job: Job, stage: Path) -> None:
        """Lay out the job directory locally: code, inputs, scripts, the SDK."""
        run_dir = self._run_dir(job.run_id)
        for item in job.inputs:
            manifest = await read_manifest(self._blobs, item.manifest_digest)
            await check_out(self._blobs, manifest, stage / "inputs" / item.mount_path.lstrip("/"), link=False)
        code = await read_manifest(self._blobs, job.code_manifest)
        await check_out(self._blobs, code, stage / "code", link=False)
        await asyncio.to_thread(_lay_out, stage, job, run_dir, run_script(
            job, run_dir, self.cluster.work_dir.rstrip("/"), self._packages), batch_script(run_dir))

    def _remember(self, job: Job) -> None:
        """What run-svc needs of the job later, whatever restarts: its outputs' mount paths."""
        local = self._local(job.run_id)
        local.mkdir(parents=True, exist_ok=True)
        (local / "outputs.json").write_text(json.dumps(list(job.output_paths)))
        (local / "log").unlink(missing_ok=True)

    async def status(self, run_id: str) -> JobStatus:
        run_dir = self._run_dir(run_id)
        job = (await self._jobs()).get(run_id)
        if job is not None and job.state in WAITING_OR_RUNNING:
            return JobStatus(JobState.RUNNING, detail=f"Slurm job {job.job_id}: {job.state}")
        if (self._local(run_id) / "log").exists():  # ended and brought home already
            return JobStatus(JobState.GONE, detail="its job directory was removed")
        exit_text = (await self._node.read(f"{run_dir}/exit_code", 0, 32)).decode(errors="replace")
        if job is None:
            if exit_text.strip().isdigit():  # Slurm forgot it (MinJobAge); its exit code stayed
                status = JobStatus(JobState.EXITED, int(exit_text))
            elif not await self._node.exists(f"{run_dir}/job_id"):
                return JobStatus(JobState.NOT_STARTED)
            else:
                status = JobStatus(JobState.GONE,
                                   detail="Slurm no longer knows its job, and it left no exit code")
        else:
            status = outcome(job, exit_text)
        self._ended.add(run_id)
        return status

    async def stop(self, run_id: str) -> None:
        # Slurm sends SIGTERM, then SIGKILL after the cluster's KillWait.
        await self._node.run(quoted("scancel", "-u", self.cluster.ssh_user, "-n", f"{JOB_PREFIX}{run_id}"))
        self._listing.at = -1.0

    async def read_logs(self, run_id: str, offset: int, max_bytes: int) -> bytes:
        home = self._local(run_id) / "log"
        if home.exists():
            return await asyncio.to_thread(_read, home, offset, max_bytes)
        return await self._node.read(f"{self._run_dir(run_id)}/log", offset, max_bytes)

    async def new_metrics(self, run_id: str) -> list[MetricPoint]:
        now = time.monotonic()
        if run_id not in self._ended and now - self._read_at.get(run_id, -METRICS_EVERY_S) < METRICS_EVERY_S:
            return []
        self._read_at[run_id] = now
        local = self._local(run_id)
        cursor = self._cursors.get(run_id)
        if cursor is None:
            cursor = self._cursors[run_id] = await asyncio.to_thread(_load_cursor, local / "metrics.cursor")
        run_dir = self._run_dir(run_id)
        before = (cursor.log, cursor.sdk)
        stdout = await self._node.read(f"{run_dir}/stdout", cursor.log, LOG_SCAN_MAX)
        sdk = await self._node.read(f"{run_dir}/metrics.jsonl", cursor.sdk, LOG_SCAN_MAX)
        points = read_points(cursor, stdout, sdk, datetime.now(UTC))
        if (cursor.log, cursor.sdk) != before:
            await asyncio.to_thread(_save_cursor, local, cursor)
        return points

    async def stage_outputs(self, run_id: str) -> dict[str, str]:
        local = self._local(run_id)
        run_dir = self._run_dir(run_id)
        staged: dict[str, str] = {}
        paths = json.loads(await asyncio.to_thread((local / "outputs.json").read_text))
        for path in paths:
            remote = f"{run_dir}/output" if not path else f"{run_dir}/outputs/{path.lstrip('/')}"
            fetched = local / "fetched"
            await asyncio.to_thread(shutil.rmtree, fetched, True)
            await self._node.get_tree(remote, fetched)
            staged[path] = (await self._tree.store_tree(fetched)).digest
            await asyncio.to_thread(shutil.rmtree, fetched, True)
        await self._blobs.sync()
        return staged

    async def start_tensorboard(self, run_id: str, run_name: str) -> str:
        raise FailedPrecondition(f"TensorBoard is served for local runs only; run {run_name!r} ran on "
                                 f"cluster {self.cluster.name!r}")

    async def tensorboard_address(self, run_id: str) -> str | None:
        return None

    async def stop_tensorboard(self, run_id: str) -> None:
        return None

    async def remove(self, run_id: str) -> None:
        run_dir = self._run_dir(run_id)
        await self._node.run(f"{quoted('scancel', '-u', self.cluster.ssh_user, '-n', JOB_PREFIX + run_id)}; "
                             f"rm -rf {shlex.quote(run_dir)}")
        await asyncio.to_thread(shutil.rmtree, self._local(run_id), True)
        self._forget(run_id)

    async def cleanup(self, run_id: str) -> None:
        """Bring the log home, then remove the job directory from the cluster."""
        local = self._local(run_id)
        run_dir = self._run_dir(run_id)
        log = await self._node.read(f"{run_dir}/log", 0, 1 << 40)
        await asyncio.to_thread(_write, local / "log", log)
        await self._node.run(f"rm -rf {shlex.quote(run_dir)}")
        self._forget(run_id)

    def _forget(self, run_id: str) -> None:
        self._cursors.pop(run_id, None)
        self._read_at.pop(run_id, None)
        self._ended.discard(run_id)

    async def close(self) -> None:
        await self._node.close()


def _lay_out(stage: Path, job: Job, run_dir: str, run_sh: str, job_sh: str) -> None:
    for name in ("code", "output", "inputs", "outputs", "config", "tensorboard", "home", "sdk/shipyard"):
        (stage / name).mkdir(parents=True, exist_ok=True)
    for path in job.output_paths:
        if path:
            (stage / "outputs" / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
    (stage / "metrics.jsonl").touch()
    if job.config_file_name:
        (stage / "config" / job.config_file_name).write_bytes(job.config)
    (stage / "hyperparameters.json").write_text(json.dumps(job.hyperparameters, indent=2, sort_keys=True))
    (stage / "sdk/shipyard/__init__.py").write_text('"""Shipyard\'s SDK for runs."""\n')
    shutil.copyfile(sdk_module(), stage / "sdk/shipyard/sdk.py")
    for name, text in (("run.sh", run_sh), ("job.sh", job_sh)):
        (stage / name).write_text(text)
        (stage / name).chmod(0o700)


def _read(path: Path, offset: int, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read(max_bytes)
    except FileNotFoundError:
        return b""


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _load_cursor(path: Path) -> MetricCursor:
    try:
        return MetricCursor(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return MetricCursor()


def _save_cursor(local: Path, cursor: MetricCursor) -> None:
    local.mkdir(parents=True, exist_ok=True)
    (local / "metrics.cursor").write_text(json.dumps(cursor.__dict__))
