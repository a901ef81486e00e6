"""The LSF executor against recorded answers: no LSF can be installed here, so ``bsub``, ``bjobs`` and
``bkill`` are small scripts that answer as LSF 10.1 does (the lines are recorded from its documented
output), and the login node is this machine (commands by /bin/sh, files in a folder). Everything else
is the real executor: its command lines, the job directory, the scripts, staging, metrics and logs."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from shipyard_run.adapters.batch_jobs import BatchExecutor, BatchJob
from shipyard_run.adapters.login_node import CommandFailed, LoginNode
from shipyard_run.adapters.lsf import LsfScheduler
from shipyard_run.app.ports import Job, JobEnvironment, JobState
from shipyard_run.domain.clusters import Cluster, ClusterKind
from shipyard_run.domain.runs import Distribution

from shipyard.kit.blob.checkout import read_manifest
from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.blob.tree import BlobTree

# bsub runs the job at once (as if LSF started it), then records how it ended; bjobs answers from
# those records in `bjobs -o "jobid job_name stat exit_code exit_reason delimiter='|'" -noheader`'s form.
BSUB = r"""#!/bin/sh
echo "$@" >> "$LSF_FAKE/bsub.args"
n=$(( $(cat "$LSF_FAKE/next" 2>/dev/null || echo 100) + 1 )); echo $n > "$LSF_FAKE/next"
while [ $# -gt 2 ]; do
  case "$1" in -J) name=$2; shift 2 ;; -cwd) cwd=$2; shift 2 ;; *) shift ;; esac
done
[ -n "${LSF_FAKE_REFUSE:-}" ] && { echo "$LSF_FAKE_REFUSE" >&2; exit 255; }
(cd "$cwd" && LSB_JOBID=$n /bin/sh "$2"); code=$?
if [ -n "${LSF_FAKE_REASON:-}" ]; then line="$n|$name|EXIT|$code|$LSF_FAKE_REASON"
elif [ $code -eq 0 ]; then line="$n|$name|DONE|-|-"
else line="$n|$name|EXIT|$code|-"; fi
echo "$line" >> "$LSF_FAKE/jobs"
echo "Job <$n> is submitted to queue <normal>."
"""
BJOBS = r"""#!/bin/sh
[ -s "$LSF_FAKE/jobs" ] || { echo "No job found" >&2; exit 255; }
cat "$LSF_FAKE/jobs"
"""
# apptainer runs the command it is given in the directory --pwd names (as if inside the image).
APPTAINER = r"""#!/bin/sh
echo "$@" >> "$LSF_FAKE/apptainer.args"
while [ $# -gt 2 ]; do case "$1" in --pwd) cd "$2"; shift 2 ;; *) shift ;; esac; done
exec "$@"
"""
BKILL = r"""#!/bin/sh
echo "$@" >> "$LSF_FAKE/bkill.args"
echo "No matching job found" >&2; exit 255
"""


class LocalNode(LoginNode):
    """A login node that is this machine: commands by /bin/sh with the fake LSF first on PATH."""

    def __init__(self, fake: Path, extra_env: dict[str, str] | None = None) -> None:
        super().__init__(self._account_never_used, key="")
        self.fake = fake
        self.env = {"PATH": f"{fake / 'bin'}:/usr/bin:/bin", "USER": "svc", "LSF_FAKE": str(fake),
                    **(extra_env or {})}
        self.commands: list[str] = []

    async def _account_never_used(self) -> object:
        raise AssertionError("a local node does not sign in")

    async def user(self) -> str:
        return "svc"

    async def run(self, command: str, stdin: bytes | None = None) -> str:
        self.commands.append(command)
        done = await asyncio.to_thread(subprocess.run, ["/bin/sh", "-c", command], env=self.env,
                                       capture_output=True, text=True)
        if done.returncode != 0:
            raise CommandFailed(command, done.returncode, done.stderr)
        return done.stdout

    async def put_tree(self, local: Path, remote: str) -> None:
        await asyncio.to_thread(shutil.copytree, local, remote)

    async def get_tree(self, remote: str, local: Path) -> None:
        await asyncio.to_thread(shutil.copytree, remote, local)

    async def get_file(self, remote: str, local: Path) -> bool:
        if not await self.exists(remote):
            return False
        await asyncio.to_thread(shutil.copyfile, remote, local)
        return True

    async def read(self, path: str, offset: int, max_bytes: int) -> bytes:
        def read() -> bytes:
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    return f.read(max_bytes)
            except FileNotFoundError:
                return b""

        return await asyncio.to_thread(read)

    async def exists(self, path: str) -> bool:
        return await asyncio.to_thread(os.path.exists, path)

    async def close(self) -> None:
        return None


@pytest.fixture
def fake_lsf(tmp_path: Path) -> Path:
    fake = tmp_path / "lsf"
    (fake / "bin").mkdir(parents=True)
    for name, text in (("bsub", BSUB), ("bjobs", BJOBS), ("bkill", BKILL), ("apptainer", APPTAINER)):
        (fake / "bin" / name).write_text(text)
        (fake / "bin" / name).chmod(0o755)
    return fake


async def _executor(tmp_path: Path, node: LocalNode,
                    runtime: str = "") -> tuple[BatchExecutor, LocalBlobStore]:
    blobs = LocalBlobStore(tmp_path / "blobs")
    await blobs.open()
    cluster = Cluster("lsf1", ClusterKind.LSF, host="lsf-login", ssh_user="svc", queue="normal",
                      work_dir=str(tmp_path / "scratch"), container_runtime=runtime)
    return BatchExecutor(cluster, LsfScheduler(), lambda owner: node, blobs, tmp_path / "home"), blobs


async def _code(blobs: LocalBlobStore, tmp_path: Path, files: dict[str, str]) -> str:
    source = tmp_path / "code-src"
    source.mkdir()
    for name, text in files.items():
        (source / name).write_text(text)
    return (await BlobTree(blobs).store_tree(source)).digest


async def test_a_run_is_submitted_with_bsub_and_its_end_metrics_and_output_come_back(
        tmp_path: Path, fake_lsf: Path) -> None:
    node = LocalNode(fake_lsf)
    executor, blobs = await _executor(tmp_path, node)
    code = await _code(blobs, tmp_path, {"train.py": "print('epoch 1: loss=0.5')\n"})
    command = 'python3 train.py && echo "$LSB_JOBID $SHIPYARD_RUN_NAME" > "$SHIPYARD_OUTPUT/m.txt"'
    job = Job("r1", "t1", command,
              output_paths=("",), code_manifest=code, time_limit="1:30:00", account="proj", gpu_count=2)
    notes = await executor.submit(job)
    assert notes[0].startswith("LSF job 101 on cluster lsf1 (queue normal), as svc@lsf-login")
    args = (fake_lsf / "bsub.args").read_text().split()
    assert args[:2] == ["-J", "shipyard-r1"]
    assert args[args.index("-q"):args.index("-q") + 2] == ["-q", "normal"]
    assert args[args.index("-W"):args.index("-W") + 2] == ["-W", "1:30"]
    assert args[args.index("-P"):args.index("-P") + 4] == ["-P", "proj", "-gpu", "num=2"]
    status = await executor.status("r1")
    assert (status.state, status.exit_code) == (JobState.EXITED, 0)
    [point] = await executor.new_metrics("r1")
    assert (point.name, point.value) == ("loss", 0.5)
    staged = await executor.stage_outputs("r1")
    manifest = await read_manifest(blobs, staged[""])
    assert [entry.path for entry in manifest.entries] == ["m.txt"]
    await executor.cleanup("r1")
    assert not (tmp_path / "scratch" / "runs" / "r1").exists()  # the job directory went
    assert b"epoch 1: loss=0.5" in await executor.read_logs("r1", 0, 1 << 20)  # the log came home


@pytest.mark.parametrize(("command", "reason", "expected"), [
    ("exit 3", "", (JobState.EXITED, 3, "")),
    ("exit 140", "TERM_RUNLIMIT: job killed after reaching LSF run time limit",
     (JobState.KILLED, 140, "it ran past its time limit (LSF: TERM_RUNLIMIT)")),
    ("exit 137", "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit",
     (JobState.KILLED, 137, "it ran out of memory (LSF: TERM_MEMLIMIT)")),
    ("exit 130", "TERM_OWNER: job killed by owner", (JobState.GONE, 130, "not through Shipyard")),
])
async def test_how_an_lsf_job_ended_becomes_the_runs_outcome(
        tmp_path: Path, fake_lsf: Path, command: str, reason: str,
        expected: tuple[JobState, int, str]) -> None:
    node = LocalNode(fake_lsf, {"LSF_FAKE_REASON": reason} if reason else None)
    executor, blobs = await _executor(tmp_path, node)
    await executor.submit(Job("r2", "t2", command, code_manifest=await _code(blobs, tmp_path, {})))
    status = await executor.status("r2")
    assert (status.state, status.exit_code) == expected[:2]
    assert expected[2] in status.detail


async def test_a_refused_bsub_fails_the_start_naming_lsfs_reason_and_leaves_no_job_directory(
        tmp_path: Path, fake_lsf: Path) -> None:
    node = LocalNode(fake_lsf, {"LSF_FAKE_REFUSE": "normal: No such queue. Job not submitted."})
    executor, blobs = await _executor(tmp_path, node)
    with pytest.raises(Exception, match="No such queue"):
        await executor.submit(Job("r3", "t3", "true", code_manifest=await _code(blobs, tmp_path, {})))
    assert not (tmp_path / "scratch" / "runs" / "r3").exists()


async def test_a_run_is_never_submitted_twice_and_stop_is_bkill_by_name(tmp_path: Path,
                                                                         fake_lsf: Path) -> None:
    node = LocalNode(fake_lsf)
    executor, blobs = await _executor(tmp_path, node)
    job = Job("r4", "t4", "true", code_manifest=await _code(blobs, tmp_path, {}))
    await executor.submit(job)
    notes = await executor.submit(job)  # run-svc restarted while starting it: found by its name
    assert "LSF job 101" in notes[0]
    assert len((fake_lsf / "bsub.args").read_text().splitlines()) == 1
    await executor.stop("r4")
    assert (fake_lsf / "bkill.args").read_text().split() == ["-J", "shipyard-r4"]


async def test_an_empty_listing_is_no_job_but_a_failing_bjobs_is_an_error(fake_lsf: Path) -> None:
    node = LocalNode(fake_lsf)
    scheduler = LsfScheduler()
    assert scheduler.parse_listing(await node.run(scheduler.listing_command())) == {}  # "No job found"
    (fake_lsf / "bin" / "bjobs").write_text("#!/bin/sh\necho 'LSF is down' >&2; exit 255\n")
    with pytest.raises(CommandFailed):
        await node.run(scheduler.listing_command())


@pytest.mark.parametrize(("distribution", "workers", "gpus", "placement"), [
    (Distribution.MANUAL, 1, 4, ["-n", "2", "-R", "span[ptile=1]", "-gpu", "num=4"]),  # 8 GPUs, 2 hosts
    (Distribution.AUTOMATIC, 0, 8, ["-n", "8", "-gpu", "num=1"]),
    (Distribution.NONE, 0, 2, ["-gpu", "num=2"]),
    (Distribution.NONE, 0, 0, []),
])
def test_gpu_distribution_becomes_lsfs_slots_and_gpus(distribution: Distribution, workers: int, gpus: int,
                                                      placement: list[str]) -> None:
    cluster = Cluster("lsf1", ClusterKind.LSF, host="h", ssh_user="u", work_dir="/w")
    job = Job("r1", "t1", "true", gpu_count=gpus, distribution=distribution, workers=workers)
    line = shlex.split(LsfScheduler().submit_command(cluster, job, "/w/r1"))
    assert line[7:-2] == placement  # after -J, -o and -cwd; before the script


async def test_where_the_cluster_has_apptainer_the_run_executes_in_its_image(tmp_path: Path,
                                                                              fake_lsf: Path) -> None:
    node = LocalNode(fake_lsf)
    executor, blobs = await _executor(tmp_path, node, runtime="apptainer")
    environment = JobEnvironment("sk", "3.11", ("scikit-learn==1.5.2",), "d" * 64, url="ghcr.io/ml/sk:1")
    job = Job("r5", "t5", 'echo "in $PWD"', code_manifest=await _code(blobs, tmp_path, {}),
              environment=environment)
    notes = await executor.submit(job)
    assert "environment sk: its image ghcr.io/ml/sk:1 in apptainer on the cluster" in notes
    status = await executor.status("r5")
    assert (status.state, status.exit_code) == (JobState.EXITED, 0)
    args = (fake_lsf / "apptainer.args").read_text().split()
    assert args[:4] == ["exec", "--contain", "--pid", "--ipc"] and "docker://ghcr.io/ml/sk:1" in args
    run_dir = tmp_path / "scratch" / "runs" / "r5"
    assert (await executor.read_logs("r5", 0, 1000)).decode() == f"in {run_dir}/code\n"
    assert not (tmp_path / "scratch" / "environments").exists()  # the image has its packages: no venv


def test_bjobs_lines_become_each_runs_newest_job() -> None:
    jobs = LsfScheduler().parse_listing("101|shipyard-a|DONE|-|-\n"
                                        "105|shipyard-a|RUN|-|-\n"
                                        "106|other|PEND|-|-\n"
                                        "107|shipyard-b|EXIT|3|-\n")
    assert jobs == {"a": BatchJob("105", "RUN"), "b": BatchJob("107", "EXIT", "", "3")}
