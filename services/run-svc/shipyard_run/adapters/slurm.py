"""Slurm as a batch scheduler: ``sbatch`` submits, ``squeue`` lists, ``scancel`` cancels (22.05 and
newer; tested against a real single-node Slurm)."""

from __future__ import annotations

from shipyard_run.adapters.batch_jobs import BatchJob, job_name
from shipyard_run.adapters.login_node import quoted
from shipyard_run.app.ports import Job, JobState, JobStatus
from shipyard_run.domain.clusters import Cluster
from shipyard_run.domain.runs import Distribution

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


# Reasons a pending job waits for something that will never come (the partition's limits as they are):
# such a job is cancelled and the run ends saying why, rather than waiting for ever.
NEVER_RUNS = {
    "PartitionNodeLimit": "the partition has fewer nodes than the run asks for",
    "PartitionTimeLimit": "its time limit is longer than the partition allows",
    "PartitionConfig": "the partition cannot take it as asked (its account, GPUs or other limits)",
    "BadConstraints": "the cluster has no node with what it asks for",
    "InvalidAccount": "the account is not known to Slurm",
    "InvalidQOS": "the quality of service is not known to Slurm",
    "AccountNotAllowed": "the account may not use the partition",
}


def parse_listing(text: str) -> dict[str, BatchJob]:
    """run id → its job, from ``squeue -h -o '%i|%j|%T|%r'`` (the newest job of a run wins)."""
    jobs: dict[str, BatchJob] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 4 or not parts[1].startswith(job_name("")):
            continue
        job_id, name, state, reason = parts
        run_id = name.removeprefix(job_name(""))
        earlier = jobs.get(run_id)
        if earlier is None or _number(job_id) > _number(earlier.job_id):
            jobs[run_id] = BatchJob(job_id, state.split()[0] if state else "", reason)
    return jobs


def outcome(job: BatchJob, exit_text: str) -> JobStatus:
    """How an ended job ended, from Slurm's state and the exit code file the wrapper left ("" if none)."""
    code = int(exit_text) if exit_text.strip().isdigit() else None
    if job.state == "PENDING" and job.reason in NEVER_RUNS:
        return JobStatus(JobState.KILLED, 0, f"Slurm will not run job {job.job_id}: {NEVER_RUNS[job.reason]} "
                                             f"({job.reason})")
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
    options = [f"--job-name={job_name(job.run_id)}", f"--output={run_dir}/slurm.out",
               f"--chdir={run_dir}/code", "--parsable", *_placement(job)]
    if cluster.partition:
        options.append(f"--partition={cluster.partition}")
    if job.time_limit:
        options.append(f"--time={job.time_limit}")
    if job.account:
        options.append(f"--account={job.account}")
    return options


def _placement(job: Job) -> list[str]:
    """Nodes, tasks and GPUs: one task with its GPUs; automatic distribution asks for the GPUs in all and
    a task per GPU, placed by Slurm; manual for a node per worker and the master, each with its GPUs."""
    gpus = job.gpu_count
    each = [f"--gres=gpu:{gpus}"] if gpus else []
    if job.distribution is Distribution.MANUAL:
        return [f"--nodes={job.workers + 1}", "--ntasks-per-node=1", *each]
    if job.distribution is Distribution.AUTOMATIC and gpus:
        return [f"--ntasks={gpus}", f"--gpus={gpus}", "--gpus-per-task=1"]
    return ["--ntasks=1", *each]


class SlurmScheduler:
    """Slurm's commands and answers."""

    title = "Slurm"

    def submit_command(self, cluster: Cluster, job: Job, run_dir: str) -> str:
        return quoted("sbatch", *sbatch_options(cluster, job, run_dir), f"{run_dir}/job.sh")

    def job_id(self, answer: str) -> str:
        return answer.strip().split(";")[0]  # --parsable: "id" or "id;cluster"

    def listing_command(self, run_id: str = "") -> str:
        only = f" -n {quoted(job_name(run_id))}" if run_id else ""
        return f'squeue -h -t all -u "$USER"{only} -o ' + quoted("%i|%j|%T|%r")

    def parse_listing(self, text: str) -> dict[str, BatchJob]:
        return parse_listing(text)

    def active(self, job: BatchJob) -> bool:
        return job.state in WAITING_OR_RUNNING and not (job.state == "PENDING" and job.reason in NEVER_RUNS)

    def outcome(self, job: BatchJob, exit_text: str) -> JobStatus:
        return outcome(job, exit_text)

    def cancel_command(self, run_id: str) -> str:
        # Slurm sends SIGTERM, then SIGKILL after the cluster's KillWait.
        return 'scancel -u "$USER" -n ' + quoted(job_name(run_id))


def _number(job_id: str) -> int:
    head = job_id.split("_")[0]
    return int(head) if head.isdigit() else -1
