"""The Slurm executor's translations, without a cluster: squeue's lines, how a job ended, sbatch's
options, and the scripts — run here by /bin/sh, to see what the command's environment holds."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from shipyard_run.adapters.batch_jobs import batch_script, command_script, run_script
from shipyard_run.adapters.environments import PackageSources
from shipyard_run.adapters.slurm import outcome, parse_listing, sbatch_options
from shipyard_run.app.ports import Job, JobEnvironment, JobInput, JobState
from shipyard_run.domain.clusters import Cluster, ClusterKind
from shipyard_run.domain.runs import Distribution, time_limit_seconds

from shipyard.kit.errors import FailedPrecondition, InvalidArgument

CLUSTER = Cluster("hpc", ClusterKind.SLURM, host="login", ssh_user="svc", work_dir="/scratch/sy",
                  partition="gpu")


def test_squeue_lines_become_each_runs_newest_job() -> None:
    jobs = parse_listing("41|shipyard-aaa|COMPLETED|None\n"
                         "57|shipyard-aaa|RUNNING|None\n"
                         "58|someone-elses|PENDING|Priority\n"
                         "59|shipyard-bbb|PENDING|Resources\n"
                         "garbage\n")
    assert {run: (job.job_id, job.state) for run, job in jobs.items()} == {
        "aaa": ("57", "RUNNING"), "bbb": ("59", "PENDING")}


@pytest.mark.parametrize(("state", "exit_text", "expected"), [
    ("COMPLETED", "0", (JobState.EXITED, 0)),
    ("COMPLETED", "", (JobState.EXITED, 0)),
    ("FAILED", "3", (JobState.EXITED, 3)),
    ("FAILED", "", (JobState.GONE, 0)),
    ("TIMEOUT", "143", (JobState.KILLED, 143)),
    ("OUT_OF_MEMORY", "", (JobState.KILLED, 0)),
    ("CANCELLED", "", (JobState.GONE, 0)),
    ("NODE_FAIL", "", (JobState.GONE, 0)),
])
def test_how_a_job_ended_maps_to_the_runs_outcome(state: str, exit_text: str,
                                                   expected: tuple[JobState, int]) -> None:
    [job] = parse_listing(f"7|shipyard-r1|{state}|None").values()
    status = outcome(job, exit_text)
    assert (status.state, status.exit_code) == expected
    if state == "TIMEOUT":
        assert "time limit" in status.detail
    if state == "CANCELLED":
        assert "not through Shipyard" in status.detail


def test_sbatch_gets_the_runs_name_partition_limits_and_gpus() -> None:
    job = Job("r1", "t1", "true", gpu_count=2, time_limit="2:00:00", account="ml")
    assert sbatch_options(CLUSTER, job, "/scratch/sy/runs/r1") == [
        "--job-name=shipyard-r1", "--output=/scratch/sy/runs/r1/slurm.out",
        "--chdir=/scratch/sy/runs/r1/code", "--parsable", "--ntasks=1", "--gres=gpu:2", "--partition=gpu",
        "--time=2:00:00", "--account=ml"]


@pytest.mark.parametrize(("distribution", "workers", "gpus", "placement"), [
    (Distribution.MANUAL, 1, 4, ["--nodes=2", "--ntasks-per-node=1", "--gres=gpu:4"]),  # 8 GPUs, 2 nodes
    (Distribution.MANUAL, 3, 0, ["--nodes=4", "--ntasks-per-node=1"]),
    (Distribution.AUTOMATIC, 0, 8, ["--ntasks=8", "--gpus=8", "--gpus-per-task=1"]),
    (Distribution.AUTOMATIC, 0, 0, ["--ntasks=1"]),
])
def test_gpu_distribution_becomes_slurms_nodes_tasks_and_gpus(distribution: Distribution, workers: int,
                                                              gpus: int, placement: list[str]) -> None:
    job = Job("r1", "t1", "true", gpu_count=gpus, distribution=distribution, workers=workers)
    assert sbatch_options(CLUSTER, job, "/w/r1")[4:] == [*placement, "--partition=gpu"]


def test_the_command_gets_its_own_variables_and_slurms_and_nothing_else(tmp_path: Path) -> None:
    run_dir = str(tmp_path)
    job = Job("r1", "t1", 'echo "$it"; env | sort > env.txt; exit 4',
              inputs=(JobInput("/mnt/data", "d"),), output_paths=("",),
              hyperparameters={"it": "it's $HOME `x`"}, api_token="syr_r1.s", api_url="http://gw")
    script = tmp_path / "command.sh"
    script.write_text(command_script(job, run_dir, "/scratch/sy"))
    outside = {"PATH": os.environ["PATH"], "SLURM_JOB_ID": "77", "CUDA_VISIBLE_DEVICES": "1",
               "SHIPYARD_SECRET_KEY": "leak", "NATS_PASSWORD": "leak", "HOME": "/root"}
    done = subprocess.run(["/bin/sh", str(script)], cwd=tmp_path, env=outside, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (4, "it's $HOME `x`\n")  # quoted: nothing expanded
    env = dict(line.split("=", 1) for line in (tmp_path / "env.txt").read_text().splitlines() if "=" in line)
    assert "SHIPYARD_SECRET_KEY" not in env and "NATS_PASSWORD" not in env
    assert (env["SLURM_JOB_ID"], env["CUDA_VISIBLE_DEVICES"]) == ("77", "1")
    assert env["HOME"] == f"{run_dir}/home" and env["PYTHONPATH"] == f"{run_dir}/sdk"
    assert env["SHIPYARD_OUTPUT"] == f"{run_dir}/output"
    assert env["SHIPYARD_MOUNT_MNT_DATA"] == f"{run_dir}/inputs/mnt/data"
    assert json.loads(env["SHIPYARD_MOUNTS"]) == {"/mnt/data": f"{run_dir}/inputs/mnt/data"}
    assert env["MLFLOW_TRACKING_TOKEN"] == "syr_r1.s"


def test_an_image_with_requirements_builds_its_environment_once_on_the_cluster() -> None:
    environment = JobEnvironment("sk", "3.11", ("scikit-learn==1.5.2",), "d" * 64)
    job = Job("r1", "t1", "python train.py", environment=environment)
    script = run_script(job, "/w/runs/r1", "/w", PackageSources(index_url="https://pypi.example/simple"))
    venv = "/w/environments/" + "d" * 64
    assert f"python3.11 -m venv {venv}" in script and "flock 9" in script
    assert "scikit-learn==1.5.2" in script and "https://pypi.example/simple" in script
    assert f"--ro-bind {venv} {venv}" in script  # its own environment, read-only in the sandbox
    command = command_script(job, "/w/runs/r1", "/w")
    assert f"export VIRTUAL_ENV={venv}" in command and f"export PATH={venv}/bin:" in command


def test_on_a_node_with_bubblewrap_a_run_sees_only_its_own_job_directory(tmp_path: Path) -> None:
    work = tmp_path / "work"
    run_dir, other = work / "runs" / "r1", work / "runs" / "r0"
    for directory in (run_dir / "code", run_dir / "home", other):
        directory.mkdir(parents=True)
    (other / "secret").write_text("another run's")
    home = tmp_path / "account-home"
    home.mkdir()
    (home / "id_ed25519").write_text("the account's key")
    job = Job("r1", "t1", f'ls {work}/runs; cat {other}/secret {home}/id_ed25519; echo mine > "$HOME/x"; pwd')
    (run_dir / "command.sh").write_text(command_script(job, str(run_dir), str(work)))
    (run_dir / "run.sh").write_text(run_script(job, str(run_dir), str(work), PackageSources()))
    done = subprocess.run(["/bin/sh", str(run_dir / "run.sh")], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(home)})
    assert done.stdout.splitlines() == ["r1", f"{run_dir}/code"], done.stderr
    assert "No such file" in done.stderr and "another run's" not in done.stdout
    assert (run_dir / "home" / "x").read_text() == "mine\n"  # its own directory is writable


def test_the_batch_script_records_the_exit_code_beside_the_log(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text("echo out; echo err >&2; exit 5\n")
    done = subprocess.run(["/bin/sh", "-c", batch_script(str(tmp_path))], capture_output=True)
    assert done.returncode == 5
    assert (tmp_path / "exit_code").read_text() == "5"
    assert (tmp_path / "stdout").read_text() == "out\n"
    assert sorted((tmp_path / "log").read_text().splitlines()) == ["err", "out"]


@pytest.mark.parametrize(("text", "seconds"), [("90", 5400), ("5:30", 330), ("2:00:00", 7200),
                                               ("1-12", 129600), ("1-0:0:5", 86405)])
def test_time_limits_in_slurms_forms(text: str, seconds: int) -> None:
    assert time_limit_seconds(text) == seconds


@pytest.mark.parametrize("text", ["0", "1:60", "2:75:00", "1-24", "abc", "1:2:3:4", "-5"])
def test_a_time_limit_slurm_would_not_take_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        time_limit_seconds(text)
    assert refused.value.field == "run.time_limit"


@pytest.mark.parametrize(("runtime", "url", "expected"), [
    ("apptainer", "registry.example/ml/sklearn:1.5",
     "apptainer exec --contain --pid --ipc --nv --bind /w/runs/r1 --pwd /w/runs/r1/code "
     "docker://registry.example/ml/sklearn:1.5 /bin/sh /w/runs/r1/command.sh"),
    ("apptainer", "/images/sklearn.sif",
     "apptainer exec --contain --pid --ipc --nv --bind /w/runs/r1 --pwd /w/runs/r1/code "
     "/images/sklearn.sif /bin/sh /w/runs/r1/command.sh"),
    ("pyxis", "nvcr.io/nvidia/pytorch:24.01-py3",
     "srun --ntasks=1 '--container-image=nvcr.io#nvidia/pytorch:24.01-py3' "
     "--container-mounts=/w/runs/r1:/w/runs/r1 --container-workdir=/w/runs/r1/code "
     "/bin/sh /w/runs/r1/command.sh"),
    ("pyxis", "python:3.11-slim",
     "srun --ntasks=1 --container-image=python:3.11-slim --container-mounts=/w/runs/r1:/w/runs/r1 "
     "--container-workdir=/w/runs/r1/code /bin/sh /w/runs/r1/command.sh"),
])
def test_with_a_container_runtime_the_run_executes_in_its_image(runtime: str, url: str,
                                                                expected: str) -> None:
    environment = JobEnvironment("sk", "3.11", ("scikit-learn==1.5.2",), "d" * 64, url=url)
    job = Job("r1", "t1", "python train.py", environment=environment, gpu_count=1)
    script = run_script(job, "/w/runs/r1", "/w", PackageSources(), runtime)
    assert script.splitlines()[-1] == f"exec {expected}"
    assert "pip" not in script and "VIRTUAL_ENV" not in command_script(job, "/w/runs/r1", "/w", runtime)


def test_a_container_runtime_needs_the_images_url() -> None:
    job = Job("r1", "t1", "true", environment=JobEnvironment("sk", "3.11", (), "d" * 64))
    with pytest.raises(FailedPrecondition, match="no URL"):
        run_script(job, "/w/runs/r1", "/w", PackageSources(), "apptainer")
