"""Slurm's REST API as run-svc speaks to it: slurmrestd's OpenAPI ``v0.0.38`` (what Debian 12's Slurm
22.05 serves; tested against a real one), authenticated per request by a Slurm user's JWT
(``X-SLURM-USER-NAME``, ``X-SLURM-USER-TOKEN``). Three calls: submit a batch job, list the jobs, cancel
one. Every failure is a FailedPrecondition saying what slurmrestd answered.

slurmrestd answers a token it cannot use (wrong, expired, another user's) with HTTP 500 and a generic
error, not 401: such an answer is reported with that cause named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from shipyard.kit.errors import FailedPrecondition
from shipyard_run.adapters.batch_jobs import JOB_PREFIX, BatchJob

API = "/slurm/v0.0.38"
REQUEST_TIMEOUT_S = 30.0
# Slurm's error numbers for a job it no longer has, or that has ended already: a cancel finds nothing to do.
ALREADY_GONE = frozenset({2017, 2021})  # ESLURM_INVALID_JOB_ID, ESLURM_ALREADY_DONE
# What slurmrestd says when slurmctld would not take the request's JWT: -1 "Unspecified error" (a listing),
# 5005 "Zero Bytes were transmitted or received" (a submit).
TOKEN_SYMPTOMS = frozenset({-1, 5005})
TOKEN_HINT = ("slurmrestd answers a JWT it cannot use (wrong, expired, or another user's) this way too")


@dataclass(frozen=True)
class RestLogin:
    """Whom slurmrestd acts as: a Slurm user and a JWT of theirs (``scontrol token``)."""

    user: str
    token: str = ""

    def __repr__(self) -> str:  # the token never reaches a log line
        return f"RestLogin(user={self.user!r})"

    def headers(self) -> dict[str, str]:
        """The headers that sign a request as this user."""
        return {"X-SLURM-USER-NAME": self.user, "X-SLURM-USER-TOKEN": self.token}


class SlurmRestRefused(FailedPrecondition):
    """slurmrestd answered with an error (``errors`` as it listed them)."""

    def __init__(self, message: str, status: int, errors: tuple[dict[str, Any], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors


def newest_jobs(jobs: list[dict[str, Any]], user: str) -> dict[str, BatchJob]:
    """run id → its newest job among ``user``'s jobs named ``shipyard-<run id>`` (slurmrestd lists every
    user's). The exit code is the command's (Slurm's ``exit_code`` is the wait status)."""
    found: dict[str, BatchJob] = {}
    for job in jobs:
        name = str(job.get("name") or "")
        if job.get("user_name") != user or not name.startswith(JOB_PREFIX):
            continue
        run_id = name.removeprefix(JOB_PREFIX)
        job_id = str(job.get("job_id") or "")
        status = job.get("exit_code")
        exit_code = str(status >> 8) if isinstance(status, int) and status >= 0 else ""
        earlier = found.get(run_id)
        if earlier is None or _number(job_id) > _number(earlier.job_id):
            found[run_id] = BatchJob(job_id, str(job.get("job_state") or ""),
                                     str(job.get("state_reason") or ""), exit_code)
    return found


class SlurmRest:
    """One slurmrestd, reached at ``url`` (``http(s)://host:port``)."""

    def __init__(self, url: str, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def submit(self, login: RestLogin, script: str, job: dict[str, Any]) -> str:
        """Submit the batch ``script`` with ``job``'s properties as ``login``; the job's id."""
        answer = await self._call("POST", "/job/submit", login, {"script": script, "job": job})
        job_id = answer.get("job_id")
        if not isinstance(job_id, int):
            raise SlurmRestRefused(f"slurmrestd at {self.url} took the job but named no job id", 200)
        return str(job_id)

    async def jobs(self, login: RestLogin) -> list[dict[str, Any]]:
        """The jobs slurmctld knows now (every user's; ended ones for MinJobAge)."""
        answer = await self._call("GET", "/jobs", login)
        listed = answer.get("jobs")
        return [job for job in listed if isinstance(job, dict)] if isinstance(listed, list) else []

    async def cancel(self, login: RestLogin, job_id: str) -> None:
        """Cancel the job (Slurm sends SIGTERM, then SIGKILL after its KillWait); one that has ended or
        that Slurm no longer has is left as it is."""
        if not job_id.isdigit():
            raise ValueError(f"not a Slurm job id: {job_id!r}")
        try:
            await self._call("DELETE", f"/job/{job_id}", login)
        except SlurmRestRefused as exc:
            if not any(_number_of(error) in ALREADY_GONE for error in exc.errors):
                raise

    async def close(self) -> None:
        """Close the connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, path: str, login: RestLogin,
                    body: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        what = f"slurmrestd at {self.url}"
        try:
            async with self._session.request(method, f"{self.url}{API}{path}", json=body,
                                             headers=login.headers()) as response:
                status, text = response.status, await response.text(errors="replace")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise FailedPrecondition(f"{what} could not be reached: {type(exc).__name__}: {exc}") from exc
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            said = text.strip()[:300] or "nothing"
            raise SlurmRestRefused(f"{what} answered {method} {path} with HTTP {status}: {said}", status)
        errors = tuple(error for error in answer.get("errors") or [] if isinstance(error, dict))
        if status >= 400 or errors:
            said = "; ".join(_error_text(error) for error in errors) or f"HTTP {status}"
            hint = f" ({TOKEN_HINT})" if status == 500 and _maybe_the_token(errors) else ""
            raise SlurmRestRefused(f"{what} refused {method} {path} as {login.user}: HTTP {status}: {said}"
                                   f"{hint}", status, errors)
        return answer


def _error_text(error: dict[str, Any]) -> str:
    parts = [str(error.get(key)) for key in ("error", "description") if error.get(key)]
    return ": ".join(dict.fromkeys(parts)) or "an unnamed error"


def _number_of(error: dict[str, Any]) -> int | None:
    """Slurm's error number (``error_number`` in answers to reads, ``error_code`` in a submit's)."""
    number = error.get("error_number", error.get("error_code"))
    return number if isinstance(number, int) else None


def _maybe_the_token(errors: tuple[dict[str, Any], ...]) -> bool:
    """Whether the errors are what slurmrestd answers when slurmctld refused the request's JWT."""
    return not errors or any(_number_of(error) in TOKEN_SYMPTOMS for error in errors)


def _number(job_id: str) -> int:
    return int(job_id) if job_id.isdigit() else -1
