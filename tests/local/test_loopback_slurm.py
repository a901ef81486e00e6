"""The loopback Slurm test bed (shipyard.local.slurm) as the Slurm executor meets it: the cluster's user
logs in over SSH with the generated key, verifying the host's, and submits with ``sbatch`` to this
cluster; the job runs as that user and ends with its exit code. No password and no other key gets in."""

from __future__ import annotations

import asyncio
import pwd
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncssh
import pytest

from shipyard.local.slurm import LoopbackSlurm

JOB_DEADLINE_S = 60.0
FINISHED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
            "DEADLINE", "PREEMPTED"}


async def _connect(cluster: LoopbackSlurm, **options: Any) -> asyncssh.SSHClientConnection:
    """A connection as the cluster's user that trusts the cluster's host key only (no agent, no ~/.ssh)."""
    return await asyncssh.connect(cluster.host, cluster.ssh_port, username=cluster.ssh_user, agent_path=None,
                            known_hosts=asyncssh.import_known_hosts(cluster.known_hosts), **options)


async def _until(condition: Callable[[], Awaitable[str | None]], what: str) -> str:
    """Poll ``condition`` until it returns a value; fail after JOB_DEADLINE_S."""
    deadline = time.monotonic() + JOB_DEADLINE_S
    while (value := await condition()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {JOB_DEADLINE_S:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)
    return value


async def test_a_job_submitted_over_ssh_runs_as_the_user_and_fails_with_its_exit_code(
        loopback_slurm: LoopbackSlurm) -> None:
    cluster = loopback_slurm
    written = cluster.work_dir / f"ran-{secrets.token_hex(4)}"
    script = f"#!/bin/bash\necho ran > {written}\nexit 3\n"
    key = asyncssh.import_private_key(cluster.private_key)
    async with await _connect(cluster, client_keys=[key]) as ssh:
        seen = await ssh.run("printenv SLURM_CONF", check=True)
        assert str(seen.stdout).strip() == str(cluster.slurm_conf), "SSH sessions reach this cluster"
        submitted = await ssh.run(f"sbatch --parsable --partition={cluster.partition} "
                                  f"--chdir={cluster.work_dir} --output={cluster.work_dir}/slurm-%j.out",
                                  input=script, check=True)
        job = str(submitted.stdout).strip().split(";")[0]

        async def finished() -> str | None:
            listed = await ssh.run(f"squeue -h -t all -j {job} -o %T", check=True)
            state = str(listed.stdout).strip()
            return state if state in FINISHED else None

        state = await _until(finished, f"job {job} to end")
        shown = await ssh.run(f"scontrol show job {job}", check=True)
    assert state == "FAILED"
    assert "ExitCode=3:0" in str(shown.stdout)
    assert written.read_text() == "ran\n"
    assert written.stat().st_uid == pwd.getpwnam(cluster.ssh_user).pw_uid, "the job ran as the user"


async def test_the_server_refuses_passwords_and_other_keys(loopback_slurm: LoopbackSlurm) -> None:
    cluster = loopback_slurm
    asked: list[str] = []

    class AsksForPasswords(asyncssh.SSHClient):
        """Records whether the server ever lets it try a password (or keyboard-interactive)."""

        def password_auth_requested(self) -> str:
            asked.append("password")
            return "not-the-password"

        def kbdint_auth_requested(self) -> str:
            asked.append("keyboard-interactive")
            return ""

    with pytest.raises(asyncssh.PermissionDenied):
        await _connect(cluster, client_factory=AsksForPasswords, client_keys=None)
    assert asked == [], "the server offers no password login at all"
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(asyncssh.PermissionDenied):
        await _connect(cluster, client_keys=[stranger])
