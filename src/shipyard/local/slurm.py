"""A real single-node Slurm cluster and an OpenSSH server on loopback, for tests and benchmarks.

``LoopbackSlurm(base).start()`` runs Debian's munged, slurmctld and slurmd (one node, partition
``debug``) and ``sshd`` on 127.0.0.1, all as this process's children, configured and kept under
``base``; an unprivileged user (``shipyard-hpc``) logs in over SSH with a generated key and submits
with ``sbatch``, as a Shipyard Slurm executor does on a login node. ``tools/install-test-deps.sh``
installs the packages (Debian 12: slurm-wlm 22.05, munge 0.5.15, OpenSSH 9.2). No systemd and no cgroups
are needed: processes are tracked by /proc (proctrack/linuxproc), and jobs are not confined.

Layout under ``base`` (which every user must be able to traverse: the job user reads the cluster's
configuration and talks to munge there)::

    slurm.conf, sshd_config       the configurations (world-readable)
    authorized_keys/<user>        each user's public key (world-readable; see _sshd_config)
    munge/                        munged's socket (the directory is mode 755, as munge requires), pid, seed
    secrets/                      root only: munge key, sshd host key, the client's key pair
    state/ spool/ run/            Slurm's state, slurmd's spool, pid files
    log/                          each daemon's output (<name>.out: it runs in the foreground and logs
                                  there), Slurm's log files (slurmd.log has slurmstepd's lines too)
    work/                         the user's work directory (mode 700), the cluster's work dir
    shared/                       mode 1777: a work dir where each user makes their own (login required)
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

DEFAULT_USER = "shipyard-hpc"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
_POLL_S = 0.02
_TAIL_LINES = 25
_PROGRAMS = ("/usr/sbin/munged", "/usr/sbin/mungekey", "/usr/sbin/slurmctld", "/usr/sbin/slurmd",
             "/usr/bin/sbatch", "/usr/bin/squeue", "/usr/bin/scancel", "/usr/bin/sinfo", "/usr/bin/scontrol",
             "/usr/sbin/sshd", "/usr/bin/ssh-keygen")
# Characters that sshd_config and slurm.conf cannot carry unquoted in a path.
_UNSAFE_PATH = re.compile(r"[\s%\"'#=\\]")


class SlurmTestbedError(RuntimeError):
    """The loopback cluster could not start or stop: what failed, with the end of its log."""


@dataclass
class _Daemon:
    """One daemon started in its own session (its process group's id is its pid)."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        """The last lines of what the daemon wrote (it runs in the foreground and logs to stderr)."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()[-_TAIL_LINES:]
        except OSError as error:
            return f"({self.log} unreadable: {error})"
        return f"--- the end of {self.log} ---\n" + "\n".join(lines) if lines else f"({self.log} is empty)"

    def failure(self, what: str) -> SlurmTestbedError:
        """An error naming this daemon, ``what`` went wrong, and the end of its log."""
        return SlurmTestbedError(f"{self.name} failed: {what}\n{self.tail()}")

    def stop(self, timeout: float) -> None:
        """SIGTERM to its process group, SIGKILL after ``timeout``; returns when no process of the group
        is left alive (a zombie counts as gone: only its parent can reap it)."""
        group = self.process.pid
        _signal_group(group, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(group, signal.SIGKILL)
            self.process.wait(timeout)
        # Helpers it forked (slurmctld's slurmscriptd, sshd's children) may outlive it.
        _signal_group(group, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while _group_alive(group):
            if time.monotonic() > deadline:
                raise self.failure(f"processes of its group {group} still run {timeout:.0f}s after SIGKILL")
            time.sleep(_POLL_S)


@dataclass
class LoopbackSlurm:
    """A single-node Slurm cluster and an sshd on 127.0.0.1, kept under ``base``; needs root.

    After ``start()``, a client logs in as ``ssh_user`` at ``host``:``ssh_port`` with ``private_key``
    (verifying ``host_public_key``) and finds ``SLURM_CONF`` set, so ``sbatch``/``squeue``/``scancel``
    reach this cluster; ``env()`` does the same for commands run here as root. ``stop()`` (or leaving
    a ``with`` block) cancels every job and stops every daemon.
    """

    base: Path
    ssh_user: str = DEFAULT_USER
    partition: str = "debug"
    host: str = "127.0.0.1"
    # More users, each with a key of their own (``private_keys``): people with their own accounts.
    other_users: tuple[str, ...] = ()
    # Also Slurm's REST API: slurmrestd on loopback (``rest_url``), JWT-authenticated (``token(user)``).
    rest: bool = False
    ssh_port: int = field(default=0, init=False)
    rest_port: int = field(default=0, init=False)
    private_key: str = field(default="", init=False, repr=False)
    private_keys: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    host_public_key: str = field(default="", init=False)
    cpus: int = field(default=0, init=False)
    _daemons: list[_Daemon] = field(default_factory=list, init=False, repr=False)

    @property
    def work_dir(self) -> Path:
        """The user's work directory (mode 700): what the executor is given as the cluster's work dir."""
        return self.base / "work"

    @property
    def shared_work_dir(self) -> Path:
        """A directory every user may make theirs in (mode 1777, as /scratch): a work dir for a cluster
        where each user signs in."""
        return self.base / "shared"

    @property
    def slurm_conf(self) -> Path:
        """The cluster's slurm.conf (every Slurm command needs it in ``SLURM_CONF``)."""
        return self.base / "slurm.conf"

    @property
    def rest_url(self) -> str:
        """Where slurmrestd listens ("" unless the cluster was made with ``rest=True``)."""
        return f"http://{self.host}:{self.rest_port}" if self.rest_port else ""

    def token(self, user: str, lifespan_s: int = 3600) -> str:
        """A JWT for ``user`` to send slurmrestd (``scontrol token``: only root, Slurm's user, may make
        one for another user)."""
        said = _run(["scontrol", "token", f"username={user}", f"lifespan={lifespan_s}"], "scontrol token",
                    env=self.env())
        return said.strip().removeprefix("SLURM_JWT=")

    @property
    def known_hosts(self) -> str:
        """A known_hosts line for the sshd (OpenSSH's and asyncssh's format)."""
        return f"[{self.host}]:{self.ssh_port} {self.host_public_key}\n"

    def env(self) -> dict[str, str]:
        """This process's environment with ``SLURM_CONF``, for running Slurm's commands here."""
        return {**os.environ, "SLURM_CONF": str(self.slurm_conf)}

    def start(self) -> LoopbackSlurm:
        """Start munged, slurmctld, slurmd and sshd and run a warm-up job; returns when the node is idle,
        sshd accepts and the first scheduling pass is done. On a failure, stops what it started and raises
        SlurmTestbedError naming the daemon, with the end of its log."""
        if self._daemons:
            return self
        _check_host()
        self.base = self.base.resolve()
        _check_base(self.base)
        account = _ensure_user(self.ssh_user)
        for user in self.other_users:
            _ensure_user(user)
        self._make_layout(account)
        self.cpus, memory_mb = _node_resources()
        controller_port, node_port, self.ssh_port, rest_port = _free_ports(4)
        conf = _slurm_conf(self.base, self.cpus, memory_mb, controller_port, node_port)
        if self.rest:
            conf += _jwt_conf(self._jwt_key())
        self.slurm_conf.write_text(conf)
        try:
            self._start_munge()
            self._start_slurm()
            self._start_sshd()
            if self.rest:
                self._start_rest(rest_port)
            self._warm_up()
        except BaseException:
            with contextlib.suppress(SlurmTestbedError):
                self.stop()
            raise
        return self

    def stop(self) -> None:
        """Cancel every job, then stop slurmd, slurmctld, munged and sshd, each until its processes are
        gone. Does nothing when nothing runs."""
        if not self._daemons:
            return
        try:
            if self._running("slurmctld"):
                self._cancel_jobs()
        finally:
            errors = []
            for name in ("slurmrestd", "slurmd", "slurmctld", "munged", "sshd"):
                daemon = self._daemon(name)
                if daemon is not None:
                    try:
                        daemon.stop(STOP_TIMEOUT_S)
                    except SlurmTestbedError as error:
                        errors.append(str(error))
            self._daemons.clear()
            if errors:
                raise SlurmTestbedError("\n".join(errors))

    def __enter__(self) -> LoopbackSlurm:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def _make_layout(self, account: pwd.struct_passwd) -> None:
        """The directories, keys and the user's work dir (see the module's docstring)."""
        for name, mode in (("munge", 0o755), ("secrets", 0o700), ("state", 0o700), ("spool", 0o755),
                           ("run", 0o755), ("log", 0o755)):
            (self.base / name).mkdir(exist_ok=True)
            (self.base / name).chmod(mode)
        self.work_dir.mkdir(exist_ok=True)
        os.chown(self.work_dir, account.pw_uid, account.pw_gid)
        self.work_dir.chmod(0o700)
        secrets = self.base / "secrets"
        for key in ("munge.key", "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "client_ed25519",
                    "client_ed25519.pub"):
            (secrets / key).unlink(missing_ok=True)
        _run(["/usr/sbin/mungekey", "--create", "--keyfile", str(secrets / "munge.key")], "mungekey")
        _run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "loopback-sshd",
              "-f", str(secrets / "ssh_host_ed25519_key")], "ssh-keygen (host key)")
        _run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{self.ssh_user}@loopback",
              "-f", str(secrets / "client_ed25519")], "ssh-keygen (client key)")
        self.private_key = (secrets / "client_ed25519").read_text()
        self.host_public_key = " ".join((secrets / "ssh_host_ed25519_key.pub").read_text().split()[:2])
        authorized = self.base / "authorized_keys"
        authorized.mkdir(exist_ok=True)
        authorized.chmod(0o755)
        (authorized / self.ssh_user).write_text((secrets / "client_ed25519.pub").read_text())
        for user in self.other_users:  # each their own key, authorized for them alone
            own = secrets / f"{user}_ed25519"
            own.unlink(missing_ok=True)
            Path(f"{own}.pub").unlink(missing_ok=True)
            _run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{user}@loopback",
                  "-f", str(own)], f"ssh-keygen ({user})")
            self.private_keys[user] = own.read_text()
            (authorized / user).write_text(Path(f"{own}.pub").read_text())
        for entry in authorized.iterdir():
            entry.chmod(0o644)
        shared = self.shared_work_dir
        shared.mkdir(exist_ok=True)
        shared.chmod(0o1777)

    def _jwt_key(self) -> Path:
        """A fresh key slurmctld signs and checks JWTs with (root's alone, as Slurm's docs make it)."""
        key = self.base / "secrets" / "jwt.key"
        key.unlink(missing_ok=True)
        with os.fdopen(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as sink:
            sink.write(os.urandom(32))
        return key

    def _start_rest(self, port: int) -> None:
        """slurmrestd on loopback as ``nobody`` (it refuses root), passing each request's JWT on to
        slurmctld (``SLURM_JWT=daemon``); v0.0.38 alone (the default plugins need slurmdbd)."""
        self.rest_port = port
        daemon = self._spawn("slurmrestd", [
            "/usr/sbin/slurmrestd", "-f", str(self.slurm_conf), "-a", "rest_auth/jwt",
            "-s", "openapi/v0.0.38", "-u", "nobody", f"{self.host}:{port}"], env={"SLURM_JWT": "daemon"})
        self._await(daemon, f"port {port} to accept", lambda: _tcp_accepts(self.host, port))

    def _start_munge(self) -> None:
        munge = self.base / "munge"
        daemon = self._spawn("munged", [
            "/usr/sbin/munged", "--foreground", f"--socket={munge / 'munge.socket.2'}",
            f"--key-file={self.base / 'secrets' / 'munge.key'}", f"--pid-file={munge / 'munged.pid'}",
            f"--seed-file={munge / 'munged.seed'}"])
        self._await(daemon, "its socket to accept", lambda: _unix_accepts(munge / "munge.socket.2"))

    def _start_slurm(self) -> None:
        controller = self._spawn("slurmctld", ["/usr/sbin/slurmctld", "-D", "-c", "-f", str(self.slurm_conf)])
        self._await(controller, "`scontrol ping` to say UP",
                    lambda: "UP" in self._slurm_output(["scontrol", "ping"]))
        node = self._spawn("slurmd",
                           ["/usr/sbin/slurmd", "-D", "-f", str(self.slurm_conf), "-N", _node_name()])
        self._await(node, "`sinfo -h -o %T` to say idle",
                    lambda: self._slurm_output(["sinfo", "-h", "-o", "%T"]).strip() == "idle")

    def _start_sshd(self) -> None:
        config = self.base / "sshd_config"
        config.write_text(_sshd_config(self.base, self.ssh_port, (self.ssh_user, *self.other_users),
                                       self.ssh_user, self.slurm_conf))
        # sshd's privilege separation directory (Debian's service script would make it).
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        checked = subprocess.run(["/usr/sbin/sshd", "-t", "-f", str(config)], capture_output=True, text=True,
                                 timeout=10, check=False)
        if checked.returncode != 0:
            raise SlurmTestbedError(f"sshd failed: `sshd -t` rejects {config}: {checked.stderr.strip()}")
        daemon = self._spawn("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)])
        self._await(daemon, f"port {self.ssh_port} to accept", lambda: _tcp_accepts(self.host, self.ssh_port))

    def _warm_up(self) -> None:
        """One trivial job: the first scheduling pass after a start takes seconds, so no test waits for it."""
        node = self._daemon("slurmd")
        assert node is not None
        submitted = subprocess.run(
            ["sbatch", "--parsable", "--output=/dev/null", f"--partition={self.partition}", "--wrap=true"],
            capture_output=True, text=True, env=self.env(), cwd=self.base, timeout=10, check=False)
        if submitted.returncode != 0:
            raise node.failure(f"the warm-up job was refused: {submitted.stderr.strip()}")
        job = submitted.stdout.strip().split(";")[0]
        self._await(node, f"warm-up job {job} to complete", lambda: self._job_state(job) == "COMPLETED",
                    failed=lambda: self._job_state(job) not in ("", "PENDING", "CONFIGURING", "RUNNING",
                                                                "COMPLETING", "COMPLETED"))

    def _cancel_jobs(self) -> None:
        """scancel every job and wait until none is left on the node (jobs outlive slurmd)."""
        active = self._slurm_output(["squeue", "-h", "-o", "%i"]).split()
        if active:
            subprocess.run(["scancel", *active], capture_output=True, env=self.env(), timeout=10, check=False)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self._slurm_output(["squeue", "-h", "-o", "%i"]).split():
            if time.monotonic() > deadline:
                controller = self._daemon("slurmctld")
                assert controller is not None
                raise controller.failure(f"jobs still active {STOP_TIMEOUT_S:.0f}s after scancel")
            time.sleep(_POLL_S)

    def _job_state(self, job: str) -> str:
        return self._slurm_output(["squeue", "-h", "-t", "all", "-j", job, "-o", "%T"]).strip()

    def _slurm_output(self, command: list[str]) -> str:
        """A Slurm command's stdout, or "" when it fails (while a daemon comes up)."""
        done = subprocess.run(command, capture_output=True, text=True, env=self.env(), timeout=10,
                              check=False)
        return done.stdout if done.returncode == 0 else ""

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> _Daemon:
        """Start a daemon in the foreground, its stdout and stderr in ``log/<name>.out`` (Slurm's daemons
        copy their log there under -D, and it holds what they say before they open their log file)."""
        log = self.base / "log" / f"{name}.out"
        with log.open("wb") as sink:
            # Its own session: stopped as a group, and no terminal's signals reach it. close_fds (the
            # default) keeps our descriptors, locks included, out of the daemon.
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
                                       env={**self.env(), **(env or {})}, cwd=self.base,
                                       start_new_session=True)
        daemon = _Daemon(name, process, log)
        self._daemons.append(daemon)
        return daemon

    def _daemon(self, name: str) -> _Daemon | None:
        return next((daemon for daemon in self._daemons if daemon.name == name), None)

    def _running(self, name: str) -> bool:
        daemon = self._daemon(name)
        return daemon is not None and daemon.process.poll() is None

    def _await(self, daemon: _Daemon, what: str, ready: Callable[[], bool],
               failed: Callable[[], bool] = lambda: False) -> None:
        """Poll ``ready`` until START_TIMEOUT_S; fail at once when the daemon exits or ``failed`` holds."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            status = daemon.process.poll()
            if status is not None:
                raise daemon.failure(f"it exited with status {status} while waiting for {what}")
            if failed():
                raise daemon.failure(f"gave up waiting for {what}")
            if time.monotonic() > deadline:
                raise daemon.failure(f"timed out after {START_TIMEOUT_S:.0f}s waiting for {what}")
            time.sleep(_POLL_S)


def _check_host() -> None:
    if os.geteuid() != 0:
        raise SlurmTestbedError("the Slurm tests need root: they start slurmd (which runs jobs as another "
                                "user), sshd, and create the user they log in as")
    missing = [program for program in _PROGRAMS if not os.access(program, os.X_OK)]
    if missing:
        raise SlurmTestbedError(f"{', '.join(missing)} missing: run tools/install-test-deps.sh "
                                "(Debian's slurmctld, slurmd, slurm-client, munge and openssh-server)")


def _check_base(base: Path) -> None:
    """``base`` must be a plain path every user can reach: the job user reads slurm.conf and the munge
    socket under it, and the configurations name it unquoted."""
    if _UNSAFE_PATH.search(str(base)):
        raise ValueError(f"base directory {base}: use a path without spaces, quotes, '%', '#', '=' or '\\'")
    for parent in base.parents:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            raise ValueError(f"base directory {base}: {parent} is not searchable by other users "
                             f"(mode {parent.stat().st_mode & 0o777:o}), so the job user cannot reach it")
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)


def _ensure_user(name: str) -> pwd.struct_passwd:
    """The unprivileged user, created when missing: a home and a shell (SSH sessions start there), and a
    password hash of ``*``: no password works, yet the account is not locked (``!``), which sshd without
    PAM refuses even for keys."""
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    made = subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--password", "*",
                           "--comment", "Shipyard Slurm tests", name], capture_output=True, text=True,
                          timeout=30, check=False)
    try:
        return pwd.getpwnam(name)
    except KeyError:  # only now: a concurrent session may have made the user, failing our useradd
        raise SlurmTestbedError(f"useradd {name} failed: {made.stderr.strip()}") from None


def _node_resources() -> tuple[int, int]:
    """This machine's CPUs and memory (MB) as slurmd sees them (``slurmd -C``)."""
    described = _run(["/usr/sbin/slurmd", "-C"], "slurmd -C")
    values = dict(re.findall(r"(\w+)=(\S+)", described))
    try:
        return int(values["CPUs"]), int(values["RealMemory"])
    except (KeyError, ValueError):
        raise SlurmTestbedError(f"slurmd -C said no CPUs or RealMemory: {described.strip()}") from None


def _node_name() -> str:
    return socket.gethostname().split(".")[0]


def _slurm_conf(base: Path, cpus: int, memory_mb: int, controller_port: int, node_port: int) -> str:
    """The note's configuration for one node, on ports of its own so that clusters can run side by side."""
    node = _node_name()
    return f"""\
ClusterName=loopback
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={controller_port}
SlurmdPort={node_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={base}/munge/munge.socket.2
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/run/slurmctld.pid
SlurmdPidFile={base}/run/slurmd.pid
SlurmctldLogFile={base}/log/slurmctld.log
SlurmdLogFile={base}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
MpiDefault=none
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={base}/log/jobcomp.txt
MinJobAge=3600
ReturnToService=2
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def _jwt_conf(key: Path) -> str:
    """What makes slurmctld take JWTs (slurmrestd's users) beside munge."""
    return f"AuthAltTypes=auth/jwt\nAuthAltParameters=jwt_key={key}\n"


def _sshd_config(base: Path, port: int, users: tuple[str, ...], reader: str, slurm_conf: Path) -> str:
    """Key-only sshd for ``users`` on loopback, StrictModes on.

    Each user's key comes from ``AuthorizedKeysCommand /usr/bin/cat <base>/authorized_keys/%u`` (run as
    ``reader``), not
    from an AuthorizedKeysFile: StrictModes requires every directory above such a file to be owned by
    root or the user and writable by no one else, which fails under /tmp (mode 1777), where tests keep
    ``base``. The command's own path is checked the same way and passes; the file holds a public key only.
    """
    return f"""\
ListenAddress 127.0.0.1
Port {port}
HostKey {base}/secrets/ssh_host_ed25519_key
PidFile {base}/run/sshd.pid
AllowUsers {" ".join(users)}
PermitRootLogin no
StrictModes yes
PubkeyAuthentication yes
AuthorizedKeysFile none
AuthorizedKeysCommand /usr/bin/cat {base}/authorized_keys/%u
AuthorizedKeysCommandUser {reader}
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PrintMotd no
SetEnv SLURM_CONF={slurm_conf}
Subsystem sftp internal-sftp
LogLevel VERBOSE
"""


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False, env=env)
    if done.returncode != 0:
        raise SlurmTestbedError(f"{what} failed (status {done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on loopback that nothing listens on right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _unix_accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return False
        return True


def _tcp_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


def _group_alive(group: int) -> bool:
    """Whether a process of ``group`` is alive: present in /proc and not a zombie."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # it exited while we looked
            continue
        state, _parent, process_group = text[text.rindex(")") + 2:].split()[:3]
        if int(process_group) == group and state != "Z":
            return True
    return False
