"""The model server as serving-svc runs it: a process that prints its port, fails with the loader's
message, drains on SIGTERM, and speaks V2 to a third-party client."""

from __future__ import annotations

import concurrent.futures
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from model_server_testkit import ServerProcess, model_server_command, start_model_server

from tests.support.iris import IRIS_CLASSES, IRIS_ROWS, iris_request, train_iris, write_module
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def iris_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("iris")
    train_iris(directory)
    return directory


@pytest.fixture(scope="module")
def iris_server(iris_dir: Path) -> Iterator[ServerProcess]:
    server = start_model_server(iris_dir, "--model-version", "1")
    yield server
    assert server.stop() == 0


def test_the_start_line_names_the_port_and_the_model(iris_server: ServerProcess, iris_dir: Path) -> None:
    started = iris_server.started
    assert started["event"] == "model_server_started"
    assert started["host"] == "127.0.0.1" and started["port"] > 0
    model = started["model"]
    assert model["name"] == "iris" and model["version"] == "1" and model["framework"] == "sklearn"
    assert model["artifact"] == str(iris_dir / "model.joblib")
    assert requests.get(f"{iris_server.base}/v2/health/ready", timeout=10).status_code == 200


def test_kserve_v2_rest_call_as_the_docs_show(iris_server: ServerProcess) -> None:
    """The request KServe's docs show for a V2 sklearn model (curl -H 'Content-Type: application/json'
    -d @iris-input-v2.json http://HOST/v2/models/NAME/infer)."""
    payload: dict[str, Any] = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [2, 4],
                "datatype": "FP32",
                "data": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]],
            }
        ]
    }
    response = requests.post(f"{iris_server.base}/v2/models/iris/infer", json=payload, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["model_name"] == "iris" and body["model_version"] == "1"
    assert body["outputs"][0]["name"] == "predict" and body["outputs"][0]["shape"] == [2]
    assert body["outputs"][0]["data"] == [1, 1]


def test_tritonclient_speaks_to_it(iris_server: ServerProcess) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    client = httpclient.InferenceServerClient(f"127.0.0.1:{iris_server.port}")
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("iris") and client.is_model_ready("iris", "1")
        assert client.get_model_metadata("iris")["platform"] == "sklearn"
        rows = np.array(IRIS_ROWS, dtype=np.float32)
        for binary in (True, False):  # Triton's binary tensor extension, and plain JSON
            tensor = httpclient.InferInput("input-0", list(rows.shape), "FP32")
            tensor.set_data_from_numpy(rows, binary_data=binary)
            outputs = [
                httpclient.InferRequestedOutput("predict", binary_data=binary),
                httpclient.InferRequestedOutput("predict_proba", binary_data=binary),
            ]
            result = client.infer("iris", [tensor], model_version="1", outputs=outputs, request_id="r1")
            assert result.as_numpy("predict").tolist() == IRIS_CLASSES
            assert result.as_numpy("predict_proba").argmax(axis=1).tolist() == IRIS_CLASSES
            assert result.get_response()["id"] == "r1"
        with pytest.raises(Exception, match="model 'wine' is not served here"):
            client.infer("wine", [tensor])
    finally:
        client.close()


def test_a_model_that_cannot_load_exits_nonzero_with_the_loaders_message(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_bytes(b"garbage")
    process = subprocess.run(model_server_command(tmp_path), capture_output=True, timeout=120)
    assert process.returncode == 1
    assert process.stdout == b""
    assert process.stderr.decode().startswith("cannot load sklearn model model.joblib: ")
    empty = tmp_path / "empty"
    empty.mkdir()
    process = subprocess.run(model_server_command(empty), capture_output=True, timeout=120)
    assert process.returncode == 1
    assert process.stderr.decode().startswith(f"no model file in {empty}")


def test_without_the_model_server_extra_it_says_what_to_install(tmp_path: Path) -> None:
    """A platform installed without the extra still starts replicas: their last words name the extra."""
    hide_numpy = ("import runpy, sys; sys.modules['numpy'] = None; "
                  "runpy.run_module('shipyard_model_server', run_name='__main__')")
    command = model_server_command(tmp_path)
    process = subprocess.run([command[0], "-c", hide_numpy, *command[3:]], capture_output=True, timeout=120)
    assert process.returncode == 1
    assert process.stderr.decode().strip() == (
        "the model server needs numpy, which is not installed: pip install 'shipyard[model-server]'")


def test_sigterm_drains_requests_in_flight_then_exits_0(tmp_path: Path) -> None:
    """serving-svc swaps models by SIGTERM: no new connections, but what is in flight is answered."""
    release = tmp_path / "release"
    entered = tmp_path / "entered"
    write_module(
        tmp_path,
        "slow",
        f"""
        import time
        from pathlib import Path

        class Slow:
            def predict(self, inputs, parameters):
                Path({str(entered)!r}).touch()
                deadline = time.monotonic() + 60
                while not Path({str(release)!r}).exists():
                    if time.monotonic() > deadline:
                        raise TimeoutError("never released")
                    time.sleep(0.01)
                return {{"y": inputs["x"] * 2}}
        """,
    )
    server = start_model_server(
        tmp_path, "--predictor", "slow:Slow", "--predict-in-thread", "always", name="slow"
    )
    try:
        body: dict[str, Any] = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [21]}]}
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(
                requests.post, f"{server.base}/v2/models/slow/infer", json=body, timeout=60
            )
            wait_until(entered.exists, what="the request to reach predict")
            server.process.terminate()

            def refused() -> bool:
                try:
                    socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
                except ConnectionRefusedError:
                    return True
                return False

            wait_until(refused, what="the listener to close")
            assert server.process.poll() is None  # still draining
            release.touch()
            response = in_flight.result(timeout=60)
        assert response.status_code == 200
        assert response.json()["outputs"][0]["data"] == [42.0]
        assert server.process.wait(60) == 0
    finally:
        release.touch()
        server.stop()


def test_sigterm_with_an_idle_keep_alive_connection_exits_0(iris_dir: Path) -> None:
    server = start_model_server(iris_dir)
    with requests.Session() as session:  # keeps its connection open across the SIGTERM
        response = session.post(f"{server.base}/v2/models/iris/infer", json=iris_request(), timeout=10)
        assert response.status_code == 200
        assert server.stop() == 0  # within stop()'s deadline, not after the keep-alive timeout


def test_live_but_not_ready_while_loading_and_sigterm_then_exits_0(tmp_path: Path) -> None:
    entered = tmp_path / "entered"
    write_module(
        tmp_path,
        "stuck",
        f"""
        import time
        from pathlib import Path

        class Stuck:
            def load(self):
                Path({str(entered)!r}).touch()
                time.sleep(600)  # a big model: SIGTERM must not wait for it

            def predict(self, inputs, parameters):
                return {{}}
        """,
    )
    with socket.socket() as probe:  # serving-svc picks the port itself, so it can poll before the start line
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = model_server_command(tmp_path, "--predictor", "stuck:Stuck", name="stuck")
    command[command.index("--port") + 1] = str(port)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(entered.exists, what="the model to start loading")
        base = f"http://127.0.0.1:{port}"

        def live() -> bool:
            try:
                return requests.get(f"{base}/v2/health/live", timeout=5).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(live, what="the server to listen")
        assert requests.get(f"{base}/v2/health/ready", timeout=5).status_code == 503
        assert requests.get(f"{base}/v2/models/stuck/ready", timeout=5).status_code == 503
        infer = requests.post(f"{base}/v2/models/stuck/infer", json=iris_request(), timeout=5)
        assert infer.status_code == 503 and infer.headers["Retry-After"] == "1"
        process.terminate()
        assert process.wait(60) == 0
        assert process.stdout is not None and process.stdout.read() == b""  # it never started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(60)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
