"""The model server's sandbox: the plan (what a replica sees, and as whom), its environment, and a
real replica in bwrap — it serves on its loopback port, drains on SIGTERM sent inside, and dies
with the process that started it."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests
from shipyard_serving.adapters import server_sandbox
from shipyard_serving.adapters.local_servers import describe_exit
from shipyard_serving.adapters.server_sandbox import MODEL, TRANSFORMER, environment, interpreter, plan

from shipyard.kit.bubblewrap import NOBODY, Bubblewrap, find, sandboxed_pid, system_view
from shipyard.kit.lifetime import PARENT_ENV
from tests.support.iris import iris_request, train_iris, write_module
from tests.support.waiting import wait_until

AS_ROOT = Bubblewrap("/usr/bin/bwrap", NOBODY, "/usr/bin/setpriv")
AS_USER = Bubblewrap("/usr/bin/bwrap", None)
PYTHON = ("/opt/python", "/srv/venv")
MODEL_DIR = Path("/data/serving/models/abc123")
CODE_DIR = Path("/data/serving/code/def456")
BINDS = ("--bind", "--ro-bind", "--dev-bind")


def _pairs(args: list[str], *options: str) -> list[tuple[str, str]]:
    return [(args[i + 1], args[i + 2]) for i, a in enumerate(args) if a in options]


def test_a_replica_sees_the_system_its_python_and_its_model_read_only_and_nothing_else() -> None:
    args = plan(AS_ROOT, MODEL_DIR, CODE_DIR, gpus=False, python=PYTHON)
    system = {source for source, _ in _pairs(system_view(), *BINDS)}
    assert sorted(s for s, _ in _pairs(args, *BINDS)) == sorted(system | set(PYTHON) | {str(MODEL_DIR),
                                                                                        str(CODE_DIR)})
    assert _pairs(args, "--bind") == []  # nothing of the host is writable, the blobs least of all
    assert (str(MODEL_DIR), MODEL) in _pairs(args, "--ro-bind")
    assert (str(CODE_DIR), TRANSFORMER) in _pairs(args, "--ro-bind")
    assert tuple(args[args.index("/tmp") - 1:args.index("/tmp") + 1]) == ("--tmpfs", "/tmp")


def test_a_replica_has_its_own_namespaces_dies_with_serving_svc_and_keeps_the_network() -> None:
    for sandbox in (AS_ROOT, AS_USER):
        args = plan(sandbox, MODEL_DIR, None, gpus=False, python=PYTHON)
        assert args[0] == "/usr/bin/bwrap"
        assert {"--unshare-pid", "--unshare-ipc", "--die-with-parent", "--proc", "--dev"} <= set(args)
        assert not any(a.startswith("--unshare-net") or a == "--unshare-all" for a in args)
        assert all(target != TRANSFORMER for _, target in _pairs(args, *BINDS))
    assert "--unshare-user" in plan(AS_USER, MODEL_DIR, None, gpus=False, python=PYTHON)
    assert AS_ROOT.command(["python"])[:3] == ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534"]


def test_the_gpus_are_shown_only_to_an_endpoint_that_asks_for_them(monkeypatch: pytest.MonkeyPatch) -> None:
    present = {"/dev/nvidiactl", "/dev/nvidia0", "/dev/nvidia1"}
    monkeypatch.setattr(server_sandbox.glob, "glob", lambda pattern: sorted(present))
    monkeypatch.setattr(server_sandbox.os.path, "exists", lambda path: path in present)
    assert _pairs(plan(AS_ROOT, MODEL_DIR, None, gpus=False, python=PYTHON), "--dev-bind") == []
    devices = [source for source, _ in _pairs(plan(AS_ROOT, MODEL_DIR, None, gpus=True, python=PYTHON),
                                              "--dev-bind")]
    assert sorted(devices) == sorted(present)


def test_the_environment_is_an_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_INTERNAL_KEY", "secret")
    monkeypatch.setenv("SHIPYARD_NATS_PASSWORD", "secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    env = environment("/srv/venv/bin/python", sandboxed=True)
    assert "secret" not in env.values()
    assert env["LC_ALL"] == "C.UTF-8" and env["HOME"] == "/tmp" and env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/srv/venv/bin:")
    assert PARENT_ENV not in env  # its parent inside the PID namespace is bwrap's init
    assert environment("/srv/venv/bin/python", sandboxed=False)[PARENT_ENV] == str(os.getpid())


def test_the_python_replicas_run_holds_the_model_server() -> None:
    server = importlib.util.find_spec(server_sandbox.MODEL_SERVER)  # a process of its own: not imported
    assert server is not None and server.origin is not None
    package = os.path.realpath(os.path.dirname(server.origin))
    assert any(package == d or package.startswith(d + "/") for d in interpreter())


# --- a real replica in bwrap -------------------------------------------------------------------

_PARENT = textwrap.dedent("""
    import subprocess, sys, json
    child = subprocess.Popen(json.loads(sys.argv[1]), env=json.loads(sys.argv[2]),
                             stdout=open(sys.argv[3], "wb"), stderr=subprocess.STDOUT)
    print(child.pid, flush=True)
    sys.stdin.read()  # until the test closes it; then this parent exits without stopping its child
""")


@pytest.fixture
def sandbox() -> Bubblewrap:
    found = find(NOBODY)
    if isinstance(found, str):
        pytest.skip(f"no bubblewrap here: {found}")
    return found


def _command(sandbox: Bubblewrap, model_dir: Path, port: int,
             transformer_dir: Path | None = None) -> list[str]:
    server = [sys.executable, "-m", "shipyard_model_server", "--model-dir", MODEL,
              "--model-name", "iris", "--port", str(port), "--drain-timeout", "5"]
    if transformer_dir is not None:
        server += ["--transformer-dir", TRANSFORMER, "--transformer-script", "transform.py"]
    return [*plan(sandbox, model_dir, transformer_dir, gpus=False), *sandbox.command(server)]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0


def test_a_sandboxed_replica_serves_and_drains_on_sigterm_sent_inside(
        sandbox: Bubblewrap, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    train_iris(model_dir)
    code = write_module(tmp_path / "code", "transform", """
        def postprocess(response):
            response["parameters"] = {"transformed": True}
            return response
    """).parent
    port = _free_port()
    log = tmp_path / "replica.log"
    with log.open("wb") as out:
        process = subprocess.Popen(_command(sandbox, model_dir, port, code), stdout=out,
                                   stderr=subprocess.STDOUT, env=environment(sys.executable, sandboxed=True))
    try:
        wait_until(lambda: _ready(port) or process.poll() is not None, 60, "the replica to be ready")
        assert process.poll() is None, log.read_text()
        url = f"http://127.0.0.1:{port}/v2/models/iris/infer"
        answer = requests.post(url, json=iris_request(), timeout=10)
        assert answer.status_code == 200
        assert answer.json()["parameters"] == {"transformed": True}  # the transformer ran too
        server = sandboxed_pid(process.pid)
        assert server is not None and server != process.pid
        os.kill(server, signal.SIGTERM)
        assert process.wait(timeout=30) == 0  # the server drained and exited 0; bwrap passes that on
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_sandboxed_replica_dies_with_the_process_that_started_it(
        sandbox: Bubblewrap, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    train_iris(model_dir)
    port = _free_port()
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, json.dumps(_command(sandbox, model_dir, port)),
         json.dumps(environment(sys.executable, sandboxed=True)), str(tmp_path / "replica.log")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert parent.stdin is not None and parent.stdout is not None
    bwrap = int(parent.stdout.readline())
    wait_until(lambda: _ready(port), 60, "the replica to be ready")
    server = sandboxed_pid(bwrap)
    assert server is not None
    parent.stdin.close()
    parent.wait(timeout=10)
    wait_until(lambda: not _alive(server) and not _alive(bwrap), 10, "the sandbox to end with its parent")


def test_a_sandboxed_replicas_death_by_signal_is_told_as_such() -> None:
    assert describe_exit(137, sandboxed=True) == "killed by signal 9"  # bwrap's 128 + the signal
    assert describe_exit(-9) == "killed by signal 9"
    assert describe_exit(137) == "exited with code 137"
    assert describe_exit(1, sandboxed=True) == "exited with code 1"
