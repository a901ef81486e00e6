"""The local executor: each run a process group on this machine, in a workspace of its own.

Workspace ``<root>/<run id>/``: ``inputs/<mount path>`` (the pinned versions, hard-linked from a
local blob store when the run is isolated, else copied), ``outputs/<mount path>`` and ``output/``
(SHIPYARD_OUTPUT), ``code/`` (the working directory), ``home/`` (HOME), ``tmp/`` (an isolated
run's /tmp), ``hyperparameters.json``, ``config/<name>``, ``log`` (stdout and stderr),
``stdout`` (stdout alone: the only stream read for ``name=value`` metrics, so that a library's
warning on stderr makes none), ``metrics.jsonl`` (what ``shipyard.sdk.log_metrics`` writes),
``pid`` and ``exit_code``. The user's command runs under a small ``sh`` wrapper that writes the
exit code file once the command and the ``tee`` copying its stdout have ended, so a run started
by a run-svc that has died since is still watched correctly by the next one: the process group
outlives run-svc, and its outcome is on disk. Where the disk is full and that file cannot be
written, the run's outcome says so (``JobState.NO_SPACE``), never a made-up
exit code.

Each run is isolated where this machine can do it (``isolation_missing`` says whether): it runs in
namespaces of its own as an unprivileged user and sees only what is its own (``sandbox``): its files
from the workspace under ``sandbox.OWN`` (SHIPYARD_OUTPUT, SHIPYARD_HYPERPARAMS, … say where), its
inputs and outputs at their mount paths. An input is a directory of the run's own: as root, of hard
links into a local blob store, owned by the platform and read-only to the run's user, so a run may add
files beside them, rename or delete them but never write a blob; in a user namespace (where the run
would own the blobs) of copies. Without isolation (no usable bubblewrap, or
``SHIPYARD_FAILPOINTS=run.sandbox=unavailable`` in tests) the command runs as run-svc's user, inputs are
copies, mounts stay under the workspace (SHIPYARD_MOUNTS and a SHIPYARD_MOUNT_<PATH> variable per mount
path say where) and a note on the run says so; run-svc's use cases decide whose runs may start then. A
job's Python is its environment's (``adapters.environments``: a virtual environment per image digest,
built on first use): its ``bin`` first on PATH, VIRTUAL_ENV set, and in the sandbox the environment and
its base interpreter read-only instead of run-svc's own Python and the shipyard package. A job submitted
before environments existed runs with run-svc's Python, as then.

Either way the command gets only its own environment: the run's variables and hyperparameters,
PATH, HOME (its own directory), the locale and TZ — none of run-svc's settings or secrets. The
wrapper, which runs outside the sandbox as run-svc's user, gets none of the run's variables. They
reach the command through a file descriptor (an in-memory file, ``run_contract.LAUNCHER``), never a
command line: any local user can read a process's command line, only its own user its environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from shipyard.kit import errors
from shipyard.kit.blob.checkout import check_out, read_manifest
from shipyard.kit.blob.port import BlobStore
from shipyard.kit.blob.tree import BlobTree
from shipyard.kit.bubblewrap import NOBODY, Bubblewrap, RunAs, find
from shipyard_run.adapters import job_files, sandbox
from shipyard_run.adapters.environments import BuiltEnvironment, LocalEnvironments
from shipyard_run.adapters.run_contract import (
    WRAPPER,
    MetricCursor,
    contract_variables,
    environment_bytes,
    launched,
    load_cursor,
    read_at,
    read_points,
    save_cursor,
)
from shipyard_run.adapters.tensorboard import LocalTensorBoards
from shipyard_run.app.ports import Executor, Job, JobEnvironment, JobState, JobStatus
from shipyard_run.domain.runs import MetricPoint

# Free bytes under which a workspace's disk counts as full (a few blocks: what the wrapper needs).
FULL_BELOW = 64 * 1024
GRACE_S = 10.0
LOG_SCAN_MAX = 1 << 20  # bytes of new log read per metrics pass
# run-svc's variables a run gets (besides LC_*): the locale and the time zone, nothing secret.
PASSED_ON = ("LANG", "LANGUAGE", "TZ")
# The wrapper's own environment: it runs as run-svc's user, so it gets nothing of the run's.
WRAPPER_ENV = {"PATH": "/usr/bin:/bin"}


def gpu_inventory() -> int:
    """GPUs on this machine, from ``nvidia-smi`` when it is there; none otherwise."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return 0
    try:
        done = subprocess.run([tool, "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return 0
    return len([line for line in done.stdout.splitlines() if line.strip()])


class LocalExecutor(Executor):
    """Runs on this machine; blobs come from (and outputs go to) ``blobs``."""

    name = "local"

    def __init__(
        self, root: Path, blobs: BlobStore, gpus: int | None = None, grace_s: float = GRACE_S,
        isolation: Bubblewrap | str | None = None, environments: LocalEnvironments | None = None,
    ) -> None:
        """``isolation``: the bubblewrap that isolates runs, or why runs cannot be isolated here
        (default: whatever this machine offers, runs as nobody when run-svc is root);
        ``environments``: where jobs' Python environments are built (default: beside ``root``)."""
        self.root = root
        self.environments = environments or LocalEnvironments(root.parent / "environments")
        self._blobs = blobs
        self._tree = BlobTree(blobs)
        self._gpus = gpu_inventory() if gpus is None else gpus
        self._grace_s = grace_s
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._isolation = find(NOBODY) if isolation is None else isolation
        if not isinstance(self._isolation, str) and (holder := sandbox.holding(root)):
            self._isolation = (f"the Python runs use ({holder}) holds the run workspaces ({root}), so every "
                               "run would see them all: keep the data directory out of it")
        self._boards = LocalTensorBoards(root)
        # Where the metric readers got, also kept here: a full disk may refuse the cursor file.
        self._cursors: dict[str, MetricCursor] = {}
        self.on_exit: Callable[[], None] = lambda: None  # called (on the event loop) when a job exits

    def gpu_count(self) -> int:
        return self._gpus

    def isolation_missing(self) -> str:
        return self._isolation if isinstance(self._isolation, str) else ""

    async def environment_ready(self, environment: JobEnvironment) -> bool:
        return await self.environments.ready(environment)

    async def build_environment(self, environment: JobEnvironment) -> None:
        await self.environments.build(environment)

    async def read_environment_log(self, digest: str, offset: int, max_bytes: int) -> bytes:
        if not digest:
            return b""
        return await asyncio.to_thread(read_at, self.environments.log_path(digest), offset, max_bytes)

    def _workspace(self, run_id: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{8,64}", run_id):
            raise ValueError(f"not a run id: {run_id!r}")
        return self.root / run_id

    async def submit(self, job: Job) -> tuple[str, ...]:
        ws = self._workspace(job.run_id)
        # A start interrupted before the process began: begin again.
        await asyncio.to_thread(shutil.rmtree, ws, True)
        # Built already when the scheduler asked first (environment_ready); built now otherwise.
        python = None if job.environment is None else await self.environments.build(job.environment)
        isolation = self._isolation
        # The run's environment reaches it through this descriptor, never a command line (``launched``).
        fd = os.memfd_create("shipyard-run-environment")
        try:
            if isinstance(isolation, str):
                env, argv = await self._shared(ws, job, python, fd)
            else:
                env, argv = await self._isolated(ws, job, isolation, python, fd)
            await asyncio.to_thread(_write_all, fd, environment_bytes(env))
            child = await asyncio.to_thread(self._launch, ws, job, argv, fd)
        finally:
            os.close(fd)
        self._tell_on_exit(child)
        return (*_notes(ws, isolation), *_environment_notes(job.environment, python))

    async def _isolated(self, ws: Path, job: Job, isolation: Bubblewrap, python: BuiltEnvironment | None,
                        fd: int) -> tuple[dict[str, str], list[str]]:
        """The environment and command line of a run in its sandbox, which reads that environment from
        ``fd``. Its inputs are writable directories: as root, of hard links to the store's blobs, which
        the run's user may replace, rename or delete but not write (they are the platform's); in a user
        namespace, where the run would own those blobs, of copies. It sees its environment's directories
        (or, for a job without one, run-svc's Python) read-only."""
        mounts = await self._prepare(ws, job, link=isolation.run_as is not None)
        if isolation.run_as is not None:
            await asyncio.to_thread(_hand_over, ws, job, mounts, isolation.run_as)
        env = _environment(job, sandbox.OWN, {path: path for path in mounts}, python)
        command = isolation.command(_command(job, python, fd))
        # A job submitted before environments existed (no python) runs with run-svc's own Python.
        shown, hidden = (None, ()) if python is None else (python.directories, python.hidden)
        return env, [*sandbox.plan(_view(ws, job, mounts), isolation, shown, hidden), *command]

    async def _shared(self, ws: Path, job: Job, python: BuiltEnvironment | None, fd: int,
                      ) -> tuple[dict[str, str], list[str]]:
        """The environment and command line of a run that shares the machine, which reads that
        environment from ``fd``; inputs are copies, so that it cannot write the store's blobs."""
        mounts = await self._prepare(ws, job, link=False)
        return _environment(job, str(ws), mounts, python), _command(job, python, fd)

    async def _prepare(self, ws: Path, job: Job, link: bool) -> dict[str, str]:
        """Lay the workspace out; inputs hard-linked from a local store when ``link`` (and the
        store is local), else copied blob by blob."""
        mounts = await asyncio.to_thread(_lay_out, ws, job)
        for item in job.inputs:
            target = ws / "inputs" / item.mount_path.lstrip("/")
            manifest = await read_manifest(self._blobs, item.manifest_digest)
            await check_out(self._blobs, manifest, target, link=link)
        # The code is copied, not linked: runs may edit their working directory.
        code = await read_manifest(self._blobs, job.code_manifest)
        await check_out(self._blobs, code, ws / "code", link=False)
        return mounts

    def _tell_on_exit(self, child: subprocess.Popen[bytes]) -> None:
        """Call ``on_exit`` on this loop when the child exits: the scheduler looks at once instead
        of at its next tick. One waiting thread per running job."""
        loop = asyncio.get_running_loop()

        def wait() -> None:
            child.wait()
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.on_exit)

        threading.Thread(target=wait, name=f"shipyard-run-{child.pid}", daemon=True).start()

    def _launch(self, ws: Path, job: Job, argv: list[str], fd: int) -> subprocess.Popen[bytes]:
        """Start ``argv`` under the wrapper, handing it ``fd`` (the run's environment)."""
        with (ws / "log").open("ab") as log:
            child = subprocess.Popen(
                ["/bin/sh", "-c", WRAPPER, "shipyard-run", str(ws / "exit_code"), str(ws / "log"),
                 str(ws / "stdout"), *argv],
                cwd=ws / "code", env=WRAPPER_ENV, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, pass_fds=(fd,),
                start_new_session=True,  # its own process group, which outlives run-svc
            )
        self._children[job.run_id] = child
        # Whole or not at all: a stop or a status read at this moment must never see half of it.
        (ws / "pid.tmp").write_text(f"{child.pid} {_start_ticks(child.pid)}")
        (ws / "pid.tmp").replace(ws / "pid")
        return child

    async def status(self, run_id: str) -> JobStatus:
        return await asyncio.to_thread(self._status, run_id)

    def _status(self, run_id: str) -> JobStatus:
        ws = self._workspace(run_id)
        child = self._children.get(run_id)
        if child is not None:
            child.poll()  # reap it once it exits
        exit_file = ws / "exit_code"
        if exit_file.exists():
            self._children.pop(run_id, None)
            return _recorded(ws, exit_file)
        if not (ws / "pid").exists():
            return JobStatus(JobState.NOT_STARTED)
        if child is not None and child.returncode is not None:  # its wrapper ended without the file
            self._children.pop(run_id, None)
            code = child.returncode
            code = 128 - code if code < 0 else code
            if _full(ws):
                return JobStatus(JobState.NO_SPACE, code,
                                 f"no space left on device: the command exited with code {code}, but its "
                                 "exit code could not be recorded and its output may be cut short")
            return JobStatus(JobState.EXITED, code)
        if _alive(ws / "pid"):
            return JobStatus(JobState.RUNNING)
        if exit_file.exists():  # it ended between the two looks
            return _recorded(ws, exit_file)
        if _full(ws):
            return JobStatus(JobState.NO_SPACE, detail="no space left on device: the run ended, but its exit "
                                                       "code could not be recorded")
        return JobStatus(JobState.GONE, detail="it is not running and left no exit code "
                                               "(killed with its wrapper, or the machine restarted)")

    async def stop(self, run_id: str) -> None:
        pid_file = self._workspace(run_id) / "pid"
        if not pid_file.exists():
            return  # not launched yet: the scheduler stops it once it has (the run is stopping)
        group = int(pid_file.read_text().split()[0])
        _signal_group(group, signal.SIGTERM)
        asyncio.get_running_loop().call_later(self._grace_s, _signal_group, group, signal.SIGKILL)

    async def read_logs(self, run_id: str, offset: int, max_bytes: int) -> bytes:
        return await asyncio.to_thread(read_at, self._workspace(run_id) / "log", offset, max_bytes)

    async def read_run_files(self, run_id: str, path: str, max_bytes: int) -> dict[str, bytes] | None:
        return await asyncio.to_thread(files_at, self._workspace(run_id) / "code", path, max_bytes)

    async def run_files_stamp(self, run_id: str, path: str) -> str | None:
        return await asyncio.to_thread(files_stamp, self._workspace(run_id) / "code", path)

    async def new_metrics(self, run_id: str) -> list[MetricPoint]:
        return await asyncio.to_thread(self._new_metrics, run_id)

    def _new_metrics(self, run_id: str) -> list[MetricPoint]:
        ws = self._workspace(run_id)
        cursor = self._cursors.get(run_id) or load_cursor(ws / "metrics.cursor")
        self._cursors[run_id] = cursor
        # stdout alone (README: "name=value lines on stdout"); a run started before there was a
        # stdout file is read from its log as then.
        stdout = ws / "stdout" if (ws / "stdout").exists() or not (ws / "log").exists() else ws / "log"
        before = (cursor.log, cursor.sdk)
        points = read_points(cursor, read_at(stdout, cursor.log, LOG_SCAN_MAX),
                             read_at(ws / "metrics.jsonl", cursor.sdk, LOG_SCAN_MAX), datetime.now(UTC))
        if (cursor.log, cursor.sdk) != before:
            try:
                save_cursor(ws / "metrics.cursor", cursor)
            except OSError as exc:
                if errors.out_of_space(exc, "") is None:
                    raise
                # A full disk: this run-svc goes on from the cursor it keeps (a new one would read
                # the metrics since the last cursor it could write again).
        return points

    async def stage_outputs(self, run_id: str) -> dict[str, str]:
        ws = self._workspace(run_id)
        staged: dict[str, str] = {}
        try:
            for path in await asyncio.to_thread(_output_paths, ws):
                source = ws / "output" if not path else ws / "outputs" / path.lstrip("/")
                staged[path] = (await self._tree.store_tree(source)).digest
            await self._blobs.sync()
        except OSError as exc:  # a full disk's NoSpace too
            if errors.out_of_space(exc, "") is None:
                raise
            # Nothing refers to the blobs stored so far: no version is made of them.
            raise errors.NoSpace("the outputs to the blob store", exc.errno or errno.ENOSPC) from exc
        return staged

    async def start_tensorboard(self, run_id: str, run_name: str) -> str:
        self._workspace(run_id)  # a valid run id
        return await self._boards.start(run_id, run_name)

    async def tensorboard_address(self, run_id: str) -> str | None:
        return await self._boards.address(self._workspace(run_id).name)

    async def stop_tensorboard(self, run_id: str) -> None:
        await self._boards.stop(self._workspace(run_id).name)

    async def remove(self, run_id: str) -> None:
        ws = self._workspace(run_id)
        await self._boards.stop(run_id)
        await asyncio.to_thread(shutil.rmtree, ws, True)

    async def cleanup(self, run_id: str) -> None:
        ws = self._workspace(run_id)
        self._cursors.pop(run_id, None)
        for name in ("inputs", "outputs", "output", "code", "home", "tmp"):
            await asyncio.to_thread(shutil.rmtree, ws / name, True)


def files_at(base: Path, path: str, max_bytes: int) -> dict[str, bytes]:
    """The regular files at ``path`` under ``base`` (``/a/b`` is ``base/a/b``): the file, or every file of the
    directory's tree, by their path from ``base`` ("/a/b/c"), newest first until ``max_bytes``. Read as the
    clusters' reader reads (``job_files``: each folder opened under the one above it, no link followed, no
    FIFO or device): the run owns these files, may change them while they are read, and run-svc may read
    far more than the run."""
    return job_files.read_job_files(str(base), path, max_bytes)


def files_stamp(base: Path, path: str) -> str:
    """The size and modification time of every entry at ``path`` under ``base`` (its tree's, for a directory;
    no link followed): it changes when what ``files_at`` reads there changes."""
    parts = [part for part in PurePosixPath(path).parts if part not in ("/", ".")]
    target = base
    for part in parts:
        target = target / part
        if part == ".." or target.is_symlink():
            return part  # files_at reads nothing there
    seen: list[str] = []
    entries = [target]
    if target.is_dir() and not target.is_symlink():
        entries += [Path(folder, name) for folder, dirs, names in os.walk(target, followlinks=False)
                    for name in (*dirs, *names)]
    for entry in entries:
        with contextlib.suppress(OSError):
            info = entry.lstat()
            seen.append(f"{entry}\0{info.st_size}\0{info.st_mtime_ns}")
    return hashlib.sha256("\n".join(seen).encode()).hexdigest()


def _notes(ws: Path, isolation: Bubblewrap | str) -> tuple[str, ...]:
    """What the run's user should know about where it runs and where its inputs and outputs are."""
    if isinstance(isolation, str):
        return (f"not isolated: {isolation}. The run sees this machine as the platform's user; its "
                f"mounts are under {ws} (SHIPYARD_MOUNTS and SHIPYARD_MOUNT_* say where)",)
    who = "a user namespace" if isolation.run_as is None else f"uid {isolation.run_as.uid}"
    return (f"isolated (bubblewrap, as {who}): the run sees only its own files, and its inputs and "
            "outputs at their mount paths (files may be added beside the inputs; their version never "
            "changes)",)


def _environment_notes(environment: JobEnvironment | None, python: BuiltEnvironment | None,
                       ) -> tuple[str, ...]:
    """Which environment the run runs in, when it has one."""
    if environment is None or python is None:
        return ()
    return (f"environment {environment.image} (sha256 {environment.digest[:8]}…), Python {python.python}",)


def _environment(job: Job, own: str, mounts: dict[str, str], python: BuiltEnvironment | None,
                 ) -> dict[str, str]:
    """The command's whole environment; ``own``: where it finds its workspace files, ``mounts``:
    mount path → where it finds the mount; ``python``: the job's environment (None: run-svc's Python,
    for a job submitted before environments existed)."""
    env = {key: value for key, value in os.environ.items() if key in PASSED_ON or key.startswith("LC_")}
    first = str(Path(sys.executable).parent) if python is None else python.bin
    env["PATH"] = os.pathsep.join([first, "/usr/local/bin", "/usr/bin", "/bin"])
    if python is not None:
        env["VIRTUAL_ENV"] = python.path
    env["HOME"] = f"{own}/home"
    env.update(contract_variables(job, own, mounts))
    return env


def _command(job: Job, python: BuiltEnvironment | None, fd: int) -> list[str]:
    """The run's command, started with exactly the environment read from ``fd``: the run's variables reach
    only its command, never the wrapper, bwrap or setpriv (which run with the platform's privileges), and
    never a command line (which every local user can read). Started by the job's Python (run-svc's for a
    job without an environment): the one Python the sandbox shows."""
    return launched(sys.executable if python is None else f"{python.bin}/python", fd,
                    ["/bin/sh", "-c", job.command])


def _write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to ``fd`` and go back to its start, for its reader."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)


def _view(ws: Path, job: Job, mounts: dict[str, str]) -> sandbox.View:
    """What the run sees of its workspace (under ``sandbox.OWN``) and its mounts."""
    own = [("code", True), ("output", True), ("home", True), ("tensorboard", True), ("metrics.jsonl", True),
           ("hyperparameters.json", False), ("config", False)]
    binds = [sandbox.Bind(str(ws / name), f"{sandbox.OWN}/{name}", can_write) for name, can_write in own]
    binds += [sandbox.Bind(where, path, True) for path, where in mounts.items()]
    return sandbox.View(tuple(binds), f"{sandbox.OWN}/code", str(ws / "tmp"), job.gpus)


def _hand_over(ws: Path, job: Job, mounts: dict[str, str], run_as: RunAs) -> None:
    """Give the run's user what it writes and let it read what it reads (run-svc is root here)."""
    writable = [ws / name for name in ("code", "output", "home", "tensorboard", "metrics.jsonl", "tmp")]
    writable += [Path(mounts[path]) for path in job.output_paths if path]
    for top in writable:
        for path in _everything(top):
            os.lchown(path, run_as.uid, run_as.gid)
    # bwrap enters the working directory after giving up its capabilities, before the switch of user.
    (ws / "code").chmod(0o755)
    for path in _everything(ws / "config"):
        _let_read(path)
    # Its inputs' directories are its own (to add, rename and delete files); their files stay the
    # store's, read-only to it.
    for path in _everything(ws / "inputs"):
        _let_read(path)
        if path.is_dir() and not path.is_symlink():
            os.lchown(path, run_as.uid, run_as.gid)
    (ws / "hyperparameters.json").chmod(0o444)


def _everything(top: Path) -> list[Path]:
    """``top`` and everything under it (links not followed)."""
    if not top.is_dir() or top.is_symlink():
        return [top]
    found = [top]
    for directory, dirs, files in os.walk(top):
        found += [Path(directory, name) for name in (*dirs, *files)]
    return found


def _let_read(path: Path) -> None:
    """Make a workspace directory passable and a file of the run's own readable by others (the run's
    user), whatever run-svc's umask; a hard link to a blob (several links) is the store's: left as is."""
    st = path.lstat()
    if stat.S_ISDIR(st.st_mode):
        path.chmod(0o755)
    elif stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and not st.st_mode & stat.S_IROTH:
        path.chmod(st.st_mode | 0o444)


def _lay_out(ws: Path, job: Job) -> dict[str, str]:
    """Make the workspace's directories and files; the mounts (mount path → where)."""
    for name in ("code", "output", "inputs", "outputs", "config", "tensorboard", "home", "tmp"):
        (ws / name).mkdir(parents=True, exist_ok=True)
    (ws / "metrics.jsonl").touch()
    mounts: dict[str, str] = {}
    for item in job.inputs:
        target = ws / "inputs" / item.mount_path.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        mounts[item.mount_path] = str(target)
    for output in job.output_paths:
        if output:
            target = ws / "outputs" / output.lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            mounts[output] = str(target)
    if job.config_file_name:
        (ws / "config" / job.config_file_name).write_bytes(job.config)
    (ws / "hyperparameters.json").write_text(json.dumps(job.hyperparameters, indent=2, sort_keys=True))
    (ws / "outputs.json").write_text(json.dumps(list(job.output_paths)))
    return mounts


def _full(ws: Path) -> bool:
    """Whether the workspace's disk is (all but) full for a run (what unprivileged users may use)."""
    try:
        space = os.statvfs(ws)
    except OSError:
        return False
    return space.f_bavail * space.f_frsize < FULL_BELOW


def _recorded(ws: Path, exit_file: Path) -> JobStatus:
    """The outcome the wrapper recorded in ``exit_file``."""
    text = exit_file.read_text().strip()
    if text.isdigit():
        return JobStatus(JobState.EXITED, int(text))
    detail = f"the run ended, but its exit code could not be recorded (its file holds {text[:20]!r})"
    if _full(ws):
        return JobStatus(JobState.NO_SPACE, detail=f"no space left on device: {detail}")
    return JobStatus(JobState.GONE, detail=detail)


def _output_paths(ws: Path) -> list[str]:
    """The run's output mount paths ("" for SHIPYARD_OUTPUT), as written at submit."""
    return [str(path) for path in json.loads((ws / "outputs.json").read_text())]


def _start_ticks(pid: int) -> str:
    """When the process started (clock ticks since boot, /proc): tells a reused pid from ours."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _alive(pid_file: Path) -> bool:
    pid_text, _, ticks = pid_file.read_text().partition(" ")
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not ticks or _start_ticks(pid) == ticks


def _signal_group(group: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)
