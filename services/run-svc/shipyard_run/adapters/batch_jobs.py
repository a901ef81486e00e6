"""Runs as batch jobs of a cluster reached over SSH, or from its login node itself (Slurm, LSF): what both
schedulers share — the job directory staged through the login node (a :class:`ClusterNode`), the scripts,
statuses from one listing per poll, metrics and logs read from the job's files, outputs staged back — with
a :class:`BatchScheduler` for what differs (how a job is submitted, listed, read and cancelled).

Job directory ``<runs dir>/<run id>/`` (``<work dir>/runs``; on a cluster where each user signs in,
``<work dir>/<account>/runs``; made by the account, mode 700): ``code/`` (the working directory),
``inputs/<mount path>``, ``outputs/<mount path>``, ``output/`` (SHIPYARD_OUTPUT), ``home/``,
``tensorboard/``, ``config/``, ``hyperparameters.json``, ``metrics.jsonl``, ``sdk/`` (Shipyard's SDK, on
PYTHONPATH), ``run.sh`` (the run's environment and command), ``job.sh`` (the batch script), ``log``,
``stdout`` and ``exit_code`` (written by the same wrapper as the local executor's), ``job_id``. The job is
named ``shipyard-<run id>``: after a restart run-svc finds it again by that name, and never submits a run
twice. When a run ends its log comes home (run-svc's own directory) and the job directory goes.

A run sees the cluster as the account it was submitted as, in the job's directory: without a container
runtime its mounts stay under that directory (SHIPYARD_MOUNTS and SHIPYARD_MOUNT_* say where, as on an
unisolated local run) and it runs in the node's Python, or in a virtual environment built on the cluster
for its image's requirements (once per environment digest, under ``<work dir>/environments``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from shipyard.kit.blob.checkout import check_out, read_manifest
from shipyard.kit.blob.port import BlobStore
from shipyard.kit.blob.tree import BlobTree
from shipyard.kit.environments import sdk_module
from shipyard.kit.errors import FailedPrecondition
from shipyard_run.adapters import job_files
from shipyard_run.adapters.environments import PackageSources
from shipyard_run.adapters.login_node import CommandFailed, quoted
from shipyard_run.adapters.run_contract import (
    WRAPPER,
    MetricCursor,
    WithoutTensorBoard,
    contract_variables,
    load_cursor,
    read_at,
    read_points,
    save_cursor,
)
from shipyard_run.app.ports import Job, JobEnvironment, JobState, JobStatus
from shipyard_run.domain.clusters import PYXIS, Cluster
from shipyard_run.domain.runs import MetricPoint

JOB_PREFIX = "shipyard-"
LISTING_TTL_S = 0.2  # how long one listing answers every run's status
METRICS_EVERY_S = 1.0  # a running job's files are read at most this often
LOG_SCAN_MAX = 1 << 20
FILES_READ_S = 60  # the most a read of a job's files (a study's collector) may take on the login node
_JOB_FILES_SOURCE = Path(job_files.__file__).read_bytes()
# Variables of the job's own environment the command keeps: the scheduler's, the GPUs it was given, the
# locale.
SANDBOX_MISSING = ("the node has no usable bubblewrap (bwrap), so the run sees what the cluster "
                   "account sees there, other runs' job directories under the same account included")
KEPT = ("SLURM_*|LSB_*|LSF_*|CUDA_VISIBLE_DEVICES|GPU_DEVICE_ORDINAL|ROCR_VISIBLE_DEVICES|"
        "LANG|LANGUAGE|LC_*|TZ")


@dataclass(frozen=True)
class BatchJob:
    """A job of ours as the scheduler lists it: its id, state, and why it is in it."""

    job_id: str
    state: str
    reason: str = ""
    exit_code: str = ""  # as the scheduler reports it, where it does


class BatchScheduler(Protocol):
    """What one batch scheduler's commands are, and how its answers read."""

    title: str  # as messages name it: "Slurm", "LSF"

    def submit_command(self, cluster: Cluster, job: Job, run_dir: str) -> str:
        """The shell line that submits ``<run_dir>/job.sh`` as the run's job and prints the answer."""

    def job_id(self, answer: str) -> str:
        """The job id in what the submit command printed."""

    def listing_command(self, run_id: str = "") -> str:
        """The shell line listing the account's jobs (recently ended ones too); only the run's, when given."""

    def parse_listing(self, text: str) -> dict[str, BatchJob]:
        """Run id → its newest job, from the listing."""

    def active(self, job: BatchJob) -> bool:
        """Whether the job waits or runs still."""

    def outcome(self, job: BatchJob, exit_text: str) -> JobStatus:
        """How an ended job ended, from its state and the exit code file the wrapper left ("" if none)."""

    def cancel_command(self, run_id: str) -> str:
        """The shell line that cancels the run's job (and succeeds when there is none)."""


def job_name(run_id: str) -> str:
    """The name the run's job carries on the cluster."""
    return f"{JOB_PREFIX}{run_id}"


def batch_script(run_dir: str) -> str:
    """The batch script: the wrapper that records the exit code, around ``run.sh``."""
    files = quoted(*(f"{run_dir}/{name}" for name in ("exit_code", "log", "stdout")), "/bin/sh",
                   f"{run_dir}/run.sh")
    return ("#!/bin/sh\n# Shipyard run: the wrapper records the command's exit code beside its log.\n"
            f"exec /bin/sh -c {shlex.quote(WRAPPER)} shipyard-run {files}\n")


def _venv(job: Job, work_dir: str, runtime: str = "") -> str:
    """Where the job's environment is built on the cluster ("" when it needs none: the node's Python,
    or the image itself in a container runtime)."""
    environment = job.environment
    if runtime or environment is None or not environment.requirements:
        return ""
    return f"{work_dir}/environments/{environment.digest}"


def run_script(job: Job, run_dir: str, work_dir: str, packages: PackageSources, runtime: str = "") -> str:
    """``run.sh``: ``command.sh`` in the run's image where the cluster has a container runtime;
    otherwise the run's Python (built on first use), then ``command.sh`` — in a sandbox where the node has
    a usable bubblewrap: the node read-only, the account's home and the work directory (other runs, other
    environments) hidden, only the job's directory writable and its environment readable. Where it has
    none, the log's first line says the run is not isolated from the account's other runs."""
    if runtime:
        return "#!/bin/sh\nset -u\n" + f"exec {container_command(job, run_dir, runtime)}\n"
    venv = _venv(job, work_dir)
    lines = ["#!/bin/sh", "set -u"]
    if venv:
        assert job.environment is not None
        lines += _environment_build(job.environment, venv, packages)
    sandbox = ["bwrap", "--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev", "--proc", "/proc",
               "--tmpfs", "/tmp", "--unshare-pid", "--unshare-ipc", "--die-with-parent"]
    own = [f"--tmpfs {shlex.quote(work_dir)}", f"--bind {shlex.quote(run_dir)} {shlex.quote(run_dir)}"]
    if venv:
        own.append(f"--ro-bind {shlex.quote(venv)} {shlex.quote(venv)}")
    own.append(f"--chdir {shlex.quote(run_dir + '/code')}")
    command = f"/bin/sh {shlex.quote(run_dir + '/command.sh')}"
    lines += [
        'if command -v bwrap >/dev/null 2>&1 && bwrap --ro-bind / / true 2>/dev/null; then',
        # The account's home hidden (its keys, its history) — unless it has none, or it is "/".
        '  set --; case "${HOME:-/}" in /) ;; *) set -- --tmpfs "$HOME" ;; esac',
        f'  exec {quoted(*sandbox)} "$@" {" ".join(own)} {command}',
        "fi",
        f"echo {shlex.quote(f'shipyard: not isolated: {SANDBOX_MISSING}')} >&2",
        f"exec {command}",
    ]
    return "\n".join(lines) + "\n"


def container_command(job: Job, run_dir: str, runtime: str) -> str:
    """``command.sh`` in the run's image: ``apptainer exec`` (its own PID and IPC namespaces, no home
    nor /tmp of the node's, only the job's directory bound, the GPUs with ``--nv``), or Slurm's pyxis
    (``srun --container-image``, the job's directory mounted)."""
    url = job.environment.url if job.environment is not None else ""
    if not url:
        raise FailedPrecondition("the run's image has no URL for the cluster's container runtime to run "
                                 "(shipyard image get shows it)")
    command = ["/bin/sh", f"{run_dir}/command.sh"]
    if runtime == PYXIS:
        return quoted("srun", "--ntasks=1", f"--container-image={_enroot_image(url)}",
                      f"--container-mounts={run_dir}:{run_dir}", f"--container-workdir={run_dir}/code",
                      *command)
    image = url if "://" in url or url.startswith("/") else f"docker://{url}"
    gpus = ["--nv"] if job.gpu_count else []
    return quoted("apptainer", "exec", "--contain", "--pid", "--ipc", *gpus, "--bind", run_dir,
                  "--pwd", f"{run_dir}/code", image, *command)


def _enroot_image(url: str) -> str:
    """An image reference as pyxis (enroot) takes it: a registry host is set off by '#'."""
    url = url.removeprefix("docker://")
    host, _, rest = url.partition("/")
    return f"{host}#{rest}" if rest and ("." in host or ":" in host or host == "localhost") else url


def command_script(job: Job, run_dir: str, work_dir: str, runtime: str = "") -> str:
    """``command.sh``: exactly the run's variables — every other variable of the job's is dropped but
    the scheduler's, the GPUs and the locale — then the command."""
    env = contract_variables(job, run_dir, _mounts(job, run_dir))
    env.pop("CUDA_VISIBLE_DEVICES", None)  # the scheduler sets it for the GPUs it gave
    env["HOME"] = f"{run_dir}/home"
    env["PYTHONPATH"] = f"{run_dir}/sdk"
    path = "/usr/local/bin:/usr/bin:/bin"
    if venv := _venv(job, work_dir, runtime):
        env["VIRTUAL_ENV"] = venv
        path = f"{venv}/bin:{path}"
    env["PATH"] = path
    lines = [
        "#!/bin/sh",
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
    # The index (its URL may hold a password) in pip's variable, set by the script for pip alone: never in
    # pip's command line, which every user of the node can read.
    index = "".join(f"{key}={shlex.quote(value)} "
                    for key, value in packages.index_variables("PIP_INDEX_URL").items())
    install = index + quoted(f"{venv}/bin/python", "-m", "pip", "install", "--quiet",
                             "--disable-pip-version-check", *packages.options(), *environment.requirements)
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


async def stage_job_dir(blobs: BlobStore, cluster: Cluster, job: Job, stage: Path, run_dir: str,
                        packages: PackageSources) -> None:
    """Lay out the job directory locally in ``stage`` as it will be at ``run_dir`` on the cluster: code,
    inputs, scripts, the SDK."""
    for item in job.inputs:
        manifest = await read_manifest(blobs, item.manifest_digest)
        await check_out(blobs, manifest, stage / "inputs" / item.mount_path.lstrip("/"), link=False)
    code = await read_manifest(blobs, job.code_manifest)
    await check_out(blobs, code, stage / "code", link=False)
    work_dir = cluster.work_dir.rstrip("/")
    runtime = cluster.container_runtime
    scripts = {"run.sh": run_script(job, run_dir, work_dir, packages, runtime),
               "command.sh": command_script(job, run_dir, work_dir, runtime),
               "job.sh": batch_script(run_dir)}
    await asyncio.to_thread(_lay_out, stage, job, scripts)


@dataclass
class _Listing:
    """The last listing of one account's jobs and when it came."""

    jobs: dict[str, BatchJob] = field(default_factory=dict)
    at: float = -1.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ClusterNode(Protocol):
    """The cluster's login node as one account reaches it: over SSH (login_node.LoginNode), or the node
    run-svc runs on itself (local_node.LocalNode). Commands fail with login_node.CommandFailed."""

    key: str  # tells accounts apart (whose login it is)

    async def user(self) -> str:
        """The account's user name on the cluster."""

    async def run(self, command: str, stdin: bytes | None = None) -> str:
        """Run ``command`` (a shell line) as the account; its stdout."""

    async def put_tree(self, local: Path, remote: str) -> None:
        """Copy the directory ``local`` to ``remote`` (which must not exist yet)."""

    async def get_tree(self, remote: str, local: Path) -> None:
        """Copy the directory ``remote`` to ``local`` (which must not exist yet)."""

    async def get_file(self, remote: str, local: Path) -> bool:
        """Copy the file ``remote`` to ``local``; False when it does not exist."""

    async def read(self, path: str, offset: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of the file from ``offset`` (empty when it does not exist)."""

    async def exists(self, path: str) -> bool:
        """Whether ``path`` exists there."""

    async def close(self) -> None:
        """Close what it holds open (the next call opens it again)."""


NodeOf = Callable[[str], ClusterNode]
"""The login node as a run's owner reaches it ("": the cluster's own account)."""


class BatchExecutor(WithoutTensorBoard):
    """Runs a cluster's runs as batch jobs through its login node."""

    def __init__(self, cluster: Cluster, scheduler: BatchScheduler, nodes: NodeOf, blobs: BlobStore,
                 root: Path, packages: PackageSources | None = None) -> None:
        """``nodes``: the login node as each owner signs in (the cluster's own account when it needs no
        login); ``root``: run-svc's own directory for this cluster (staging, cursors, logs brought home)."""
        self.cluster = cluster
        self.scheduler = scheduler
        self.name = f"{cluster.kind.value}:{cluster.name}"
        self._nodes = nodes
        self._blobs = blobs
        self._tree = BlobTree(blobs)
        self._root = root
        self._packages = packages or PackageSources()
        self._listings: dict[str, _Listing] = {}
        self._owners: dict[str, str] = {}
        self._cursors: dict[str, MetricCursor] = {}
        self._read_at: dict[str, float] = {}
        self._ended: set[str] = set()
        self.on_exit = lambda: None

    def gpu_count(self) -> int:
        return self.cluster.gpus

    def isolation_missing(self) -> str:
        return ""  # a run is the cluster account's job on the cluster's nodes, apart from the platform

    # Where a run's things are.

    def _local(self, run_id: str) -> Path:
        if not run_id.isalnum():
            raise ValueError(f"not a run id: {run_id!r}")
        return self._root / run_id

    def _owner(self, run_id: str) -> str:
        """Whose account the run's job is under ("" = the cluster's own), as recorded at submit."""
        owner = self._owners.get(run_id)
        if owner is None:
            try:
                owner = (self._local(run_id) / "owner").read_text()
            except FileNotFoundError:
                owner = ""
            self._owners[run_id] = owner
        return owner

    def _node(self, run_id: str) -> ClusterNode:
        return self._nodes(self._owner(run_id))

    async def _runs_dir(self, node: ClusterNode) -> str:
        work = self.cluster.work_dir.rstrip("/")
        return f"{work}/{await node.user()}/runs" if self.cluster.login_required else f"{work}/runs"

    async def _run_dir(self, run_id: str) -> str:
        self._local(run_id)  # a valid run id
        return f"{await self._runs_dir(self._node(run_id))}/{run_id}"

    async def _jobs(self, node: ClusterNode) -> dict[str, BatchJob]:
        """The account's jobs as the scheduler lists them now (one call shared by the poll)."""
        listing = self._listings.setdefault(node.key, _Listing())
        async with listing.lock:
            if time.monotonic() - listing.at > LISTING_TTL_S:
                text = await node.run(self.scheduler.listing_command())
                listing.jobs, listing.at = self.scheduler.parse_listing(text), time.monotonic()
            return listing.jobs

    def _forget_listing(self, node: ClusterNode) -> None:
        self._listings.pop(node.key, None)

    # The port.

    async def submit(self, job: Job) -> tuple[str, ...]:
        owner = job.owner if self.cluster.login_required else ""
        await asyncio.to_thread(self._remember, job, owner)
        node = self._node(job.run_id)
        run_dir = await self._run_dir(job.run_id)
        listed = await node.run(self.scheduler.listing_command(job.run_id))
        found = self.scheduler.parse_listing(listed).get(job.run_id)
        if found is not None:  # submitted before run-svc restarted: never twice
            return self._notes(job, found.job_id, run_dir, await node.user())
        stage = self._local(job.run_id) / "stage"
        await asyncio.to_thread(shutil.rmtree, stage, True)
        await self._stage(job, stage, run_dir)
        runs_dir = run_dir.rsplit("/", 1)[0]
        await node.run(f"umask 077 && mkdir -p {shlex.quote(runs_dir)} && rm -rf {shlex.quote(run_dir)}")
        await node.put_tree(stage, run_dir)
        await asyncio.to_thread(shutil.rmtree, stage, True)
        job_id_file = shlex.quote(f"{run_dir}/job_id")
        submit = self.scheduler.submit_command(self.cluster, job, run_dir)
        try:  # the answer lands in the job directory: its presence says the scheduler took the job
            answer = await node.run(f"{submit} > {job_id_file}.tmp && mv {job_id_file}.tmp {job_id_file} && "
                                    f"cat {job_id_file}")
        except CommandFailed as exc:
            await node.run(f"rm -rf {shlex.quote(run_dir)}")
            refused = exc.stderr.strip()[-300:]
            raise FailedPrecondition(f"{self.scheduler.title} refused the job on cluster "
                                     f"{self.cluster.name!r}: {refused}") from exc
        self._forget_listing(node)  # the next status lists again
        return self._notes(job, self.scheduler.job_id(answer), run_dir, await node.user())

    def _notes(self, job: Job, job_id: str, run_dir: str, user: str) -> tuple[str, ...]:
        where = self.cluster.partition or self.cluster.queue
        where = f" ({'partition' if self.cluster.partition else 'queue'} {where})" if where else ""
        account = f"{user} on the login node run-svc runs on" if self.cluster.on_login_node else \
            f"{user}@{self.cluster.host}"
        notes = [f"{self.scheduler.title} job {job_id} on cluster {self.cluster.name}{where}, as {account}: "
                 f"the run's files, inputs and outputs are under {run_dir} there "
                 "(SHIPYARD_MOUNTS and SHIPYARD_MOUNT_* say where)"]
        if job.environment is not None and self.cluster.container_runtime:
            notes.append(f"environment {job.environment.image}: its image {job.environment.url} in "
                         f"{self.cluster.container_runtime} on the cluster")
        elif job.environment is not None and job.environment.requirements:
            built = f"{self.cluster.work_dir}/environments"
            notes.append(f"environment {job.environment.image} (sha256 {job.environment.digest[:8]}…): a "
                         f"virtual environment built on the cluster under {built}")
        elif job.environment is not None:
            notes.append(f"environment {job.environment.image}: the cluster node's own Python")
        return tuple(notes)

    async def _stage(self, job: Job, stage: Path, run_dir: str) -> None:
        await stage_job_dir(self._blobs, self.cluster, job, stage, run_dir, self._packages)

    def _remember(self, job: Job, owner: str) -> None:
        """What run-svc needs of the job later, whatever restarts: whose it is, its outputs' mount paths."""
        local = self._local(job.run_id)
        local.mkdir(parents=True, exist_ok=True)
        (local / "owner").write_text(owner)
        (local / "outputs.json").write_text(json.dumps(list(job.output_paths)))
        (local / "log").unlink(missing_ok=True)
        self._owners[job.run_id] = owner

    async def status(self, run_id: str) -> JobStatus:
        if not (self._local(run_id) / "owner").exists():
            return JobStatus(JobState.NOT_STARTED)  # never submitted from here
        node = self._node(run_id)
        job = (await self._jobs(node)).get(run_id)
        if job is not None and self.scheduler.active(job):
            return JobStatus(JobState.RUNNING, detail=f"{self.scheduler.title} job {job.job_id}: {job.state}")
        if (self._local(run_id) / "log").exists():  # ended and brought home already
            return JobStatus(JobState.GONE, detail="its job directory was removed")
        run_dir = await self._run_dir(run_id)
        exit_text = (await node.read(f"{run_dir}/exit_code", 0, 32)).decode(errors="replace")
        if job is None:
            if exit_text.strip().isdigit():  # the scheduler forgot it; its exit code stayed
                status = JobStatus(JobState.EXITED, int(exit_text))
            elif not await node.exists(f"{run_dir}/job_id"):
                return JobStatus(JobState.NOT_STARTED)
            else:
                status = JobStatus(JobState.GONE, detail=f"{self.scheduler.title} no longer knows its job, "
                                                         "and it left no exit code")
        else:
            status = self.scheduler.outcome(job, exit_text)
        self._ended.add(run_id)
        return status

    async def stop(self, run_id: str) -> None:
        node = self._node(run_id)
        await node.run(self.scheduler.cancel_command(run_id))
        self._forget_listing(node)

    async def read_logs(self, run_id: str, offset: int, max_bytes: int) -> bytes:
        home = self._local(run_id) / "log"
        if home.exists() or not (self._local(run_id) / "owner").exists():
            return await asyncio.to_thread(read_at, home, offset, max_bytes)
        return await self._node(run_id).read(f"{await self._run_dir(run_id)}/log", offset, max_bytes)

    async def read_run_files(self, run_id: str, path: str, max_bytes: int) -> dict[str, bytes] | None:
        """Read on the cluster, as its account, by ``adapters.job_files`` (the node's ``python3``): never
        outside the job's working directory, whatever links, FIFOs or huge files the trial left there."""
        node, run_dir = self._node(run_id), await self._run_dir(run_id)
        reader = quoted("timeout", str(FILES_READ_S), "python3", "-", f"{run_dir}/code", path or "/",
                        str(max_bytes))
        try:
            answer = await node.run(reader, stdin=_JOB_FILES_SOURCE)
        except CommandFailed as exc:
            raise FailedPrecondition(f"the files of the run at {path!r} could not be read on cluster "
                                     f"{self.cluster.name!r} (its login node needs python3): "
                                     f"{exc.stderr.strip()[-300:]}") from exc
        return {name: base64.b64decode(data) for name, data in json.loads(answer).items()}

    async def new_metrics(self, run_id: str) -> list[MetricPoint]:
        now = time.monotonic()
        if run_id not in self._ended and now - self._read_at.get(run_id, -METRICS_EVERY_S) < METRICS_EVERY_S:
            return []
        self._read_at[run_id] = now
        local = self._local(run_id)
        cursor = self._cursors.get(run_id)
        if cursor is None:
            cursor = self._cursors[run_id] = await asyncio.to_thread(load_cursor, local / "metrics.cursor")
        node, run_dir = self._node(run_id), await self._run_dir(run_id)
        before = (cursor.log, cursor.sdk)
        stdout = await node.read(f"{run_dir}/stdout", cursor.log, LOG_SCAN_MAX)
        sdk = await node.read(f"{run_dir}/metrics.jsonl", cursor.sdk, LOG_SCAN_MAX)
        points = read_points(cursor, stdout, sdk, datetime.now(UTC))
        if (cursor.log, cursor.sdk) != before:
            await asyncio.to_thread(save_cursor, local / "metrics.cursor", cursor)
        return points

    async def stage_outputs(self, run_id: str) -> dict[str, str]:
        local = self._local(run_id)
        node, run_dir = self._node(run_id), await self._run_dir(run_id)
        staged: dict[str, str] = {}
        paths = json.loads(await asyncio.to_thread((local / "outputs.json").read_text))
        for path in paths:
            remote = f"{run_dir}/output" if not path else f"{run_dir}/outputs/{path.lstrip('/')}"
            fetched = local / "fetched"
            await asyncio.to_thread(shutil.rmtree, fetched, True)
            await node.get_tree(remote, fetched)
            staged[path] = (await self._tree.store_tree(fetched)).digest
            await asyncio.to_thread(shutil.rmtree, fetched, True)
        await self._blobs.sync()
        return staged

    async def remove(self, run_id: str) -> None:
        local = self._local(run_id)
        if (local / "owner").exists() and not (local / "log").exists():  # its job directory is still there
            node = self._node(run_id)
            await node.run(f"{self.scheduler.cancel_command(run_id)}; "
                           f"rm -rf {shlex.quote(await self._run_dir(run_id))}")
        await asyncio.to_thread(shutil.rmtree, local, True)
        self._forget(run_id)

    async def cleanup(self, run_id: str) -> None:
        """Bring the log home, then cancel the job (one the scheduler would never run is still queued)
        and remove the job directory from the cluster."""
        local = self._local(run_id)
        if (local / "log").exists() or not (local / "owner").exists():
            return
        node, run_dir = self._node(run_id), await self._run_dir(run_id)
        fetched = local / "log.tmp"
        if not await node.get_file(f"{run_dir}/log", fetched):
            await asyncio.to_thread(fetched.write_bytes, b"")
        await asyncio.to_thread(fetched.replace, local / "log")
        cancel = self.scheduler.cancel_command(run_id)
        await node.run(f"{{ {cancel}; }} >/dev/null 2>&1; rm -rf {shlex.quote(run_dir)}")
        self._forget(run_id)

    def _forget(self, run_id: str) -> None:
        self._cursors.pop(run_id, None)
        self._read_at.pop(run_id, None)
        self._ended.discard(run_id)

    async def close(self) -> None:
        closed: set[int] = set()
        for owner in {"", *self._owners.values()}:
            node = self._nodes(owner)
            if id(node) not in closed:
                closed.add(id(node))
                await node.close()


def _lay_out(stage: Path, job: Job, scripts: dict[str, str]) -> None:
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
    for name, text in scripts.items():
        (stage / name).write_text(text)
        (stage / name).chmod(0o700)
