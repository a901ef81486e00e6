"""IBM Spectrum LSF as a batch scheduler: ``bsub`` submits, ``bjobs`` lists, ``bkill`` cancels.

Never run against a real LSF (none can be installed here): the commands follow LSF 10.1's documented
forms, and the answers they are read from are recorded in the tests.
"""

from __future__ import annotations

import math
import re

from shipyard_run.adapters.batch_jobs import BatchJob, job_name
from shipyard_run.adapters.login_node import quoted
from shipyard_run.app.ports import Job, JobState, JobStatus
from shipyard_run.domain.clusters import Cluster
from shipyard_run.domain.runs import Distribution, time_limit_seconds

# bjobs -o: the fields, '|' between them (LSF prints "-" for an empty field).
FIELDS = "jobid job_name stat exit_code exit_reason delimiter='|'"
WAITING_OR_RUNNING = frozenset({"PEND", "PROV", "RUN", "PSUSP", "USUSP", "SSUSP", "WAIT"})
# Exit reasons where LSF ended the job at a limit: the run fails, saying which.
LIMITS = {
    "TERM_RUNLIMIT": "it ran past its time limit (LSF: TERM_RUNLIMIT)",
    "TERM_MEMLIMIT": "it ran out of memory (LSF: TERM_MEMLIMIT)",
    "TERM_CPULIMIT": "it used up its CPU time limit (LSF: TERM_CPULIMIT)",
}
_SUBMITTED = re.compile(r"Job <(\d+)> is submitted")


class LsfScheduler:
    """LSF's commands and answers."""

    title = "LSF"

    def submit_command(self, cluster: Cluster, job: Job, run_dir: str) -> str:
        options = ["-J", job_name(job.run_id), "-o", f"{run_dir}/lsf.out", "-cwd", f"{run_dir}/code"]
        if cluster.queue:
            options += ["-q", cluster.queue]
        if job.time_limit:  # LSF's -W takes [hours:]minutes
            minutes = math.ceil(time_limit_seconds(job.time_limit) / 60)
            options += ["-W", f"{minutes // 60}:{minutes % 60:02d}"]
        if job.account:
            options += ["-P", job.account]
        return quoted("bsub", *options, *_placement(job), "/bin/sh", f"{run_dir}/job.sh")

    def job_id(self, answer: str) -> str:
        found = _SUBMITTED.search(answer)
        return found[1] if found else answer.strip()[:40]

    def listing_command(self, run_id: str = "") -> str:
        # With no job, bjobs says "No job found" (or "No unfinished job found") and exits non-zero: an
        # empty listing. Any other failure is one (a wrong listing would end running runs).
        only = f" -J {quoted(job_name(run_id))}" if run_id else ""
        return (f'out=$(bjobs -a -noheader -u "$USER"{only} -o {quoted(FIELDS)} 2>&1); code=$?; '
                'printf "%s\\n" "$out"; case "$out" in *"job found"*) exit 0 ;; esac; exit $code')

    def parse_listing(self, text: str) -> dict[str, BatchJob]:
        jobs: dict[str, BatchJob] = {}
        for line in text.splitlines():
            parts = [part.strip() for part in line.split("|")]
            if len(parts) != 5 or not parts[1].startswith(job_name("")):
                continue
            job_id, name, state, exit_code, reason = parts
            run_id = name.removeprefix(job_name(""))
            earlier = jobs.get(run_id)
            if earlier is None or _number(job_id) > _number(earlier.job_id):
                jobs[run_id] = BatchJob(job_id, state, "" if reason == "-" else reason,
                                        "" if exit_code == "-" else exit_code)
        return jobs

    def active(self, job: BatchJob) -> bool:
        return job.state in WAITING_OR_RUNNING

    def outcome(self, job: BatchJob, exit_text: str) -> JobStatus:
        code = int(exit_text) if exit_text.strip().isdigit() else None
        known = code if code is not None else (int(job.exit_code) if job.exit_code.isdigit() else None)
        limit = next((text for reason, text in LIMITS.items() if job.reason.startswith(reason)), None)
        if limit is not None:
            return JobStatus(JobState.KILLED, known or 0, limit)
        if job.state == "DONE":
            return JobStatus(JobState.EXITED, code or 0)
        if job.state == "EXIT" and job.reason.startswith(("TERM_OWNER", "TERM_ADMIN", "TERM_FORCE")):
            return JobStatus(JobState.GONE, known or 0, f"LSF job {job.job_id} was killed on the cluster, "
                                                        f"not through Shipyard ({job.reason})")
        if job.state == "EXIT" and known is not None:
            return JobStatus(JobState.EXITED, known)
        reason = f" ({job.reason})" if job.reason else ""
        return JobStatus(JobState.GONE, 0, f"LSF ended job {job.job_id}: {job.state}{reason}")

    def cancel_command(self, run_id: str) -> str:
        # bkill fails when the job has ended already ("No matching job found"): nothing to cancel.
        return f"{quoted('bkill', '-J', job_name(run_id))} >/dev/null 2>&1; true"


def _placement(job: Job) -> list[str]:
    """Slots and GPUs: one slot with its GPUs; automatic distribution a slot per GPU, placed by LSF;
    manual a slot on each of the master's and the workers' hosts, each with its GPUs."""
    gpus = job.gpu_count
    if job.distribution is Distribution.MANUAL:
        return ["-n", str(job.workers + 1), "-R", "span[ptile=1]", *(["-gpu", f"num={gpus}"] if gpus else [])]
    if job.distribution is Distribution.AUTOMATIC and gpus:
        return ["-n", str(gpus), "-gpu", "num=1"]
    return ["-gpu", f"num={gpus}"] if gpus else []


def _number(job_id: str) -> int:
    head = job_id.split("[")[0]
    return int(head) if head.isdigit() else -1
