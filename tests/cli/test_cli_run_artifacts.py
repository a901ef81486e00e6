"""``shipyard run artifacts`` (list, JSON, one file, errors, downloads from a blob server) and what
``run get`` and ``run compare`` show of MLflow's params, tags and external runs — against canned
replies (tests/browser/test_console_mlflow.py runs them against a real stack)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.cli.runs import comparison_rows
from shipyard.client.connection import ClientError
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.contracts.run.v1 import tracking_pb2 as tpb
from shipyard.kit.units import human_size

RUN = pb.Run(id="r-0123", name="laptop-run", owner="ada")
CONTENT = {"confusion.png": b"\x89PNG not really", "model/MLmodel": b"flavors: {}\n",
           "model/model.pkl": b"pickled" * 1000}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


FILES = [tpb.ArtifactFile(path=p, digest=sha(d), size_bytes=len(d)) for p, d in sorted(CONTENT.items())]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["run", *args])
    return result.exit_code, result.output


def not_found(message: str) -> Any:
    def refuse(_: Message) -> Message:
        raise ClientError("NOT_FOUND", message)
    return refuse


def listing(request: Message) -> tpb.ListArtifactsResponse:
    assert isinstance(request, tpb.ListArtifactsRequest)
    assert request.owner.run_id == RUN.id and request.recursive
    prefix = f"{request.path}/" if request.path else ""
    return tpb.ListArtifactsResponse(files=[f for f in FILES if f.path.startswith(prefix)])


@pytest.fixture
def artifacts(replies: dict[str, Any]) -> dict[str, Any]:
    """Replies of a run with three artifact files."""
    replies["GetRun"] = RUN
    replies["ListArtifacts"] = listing
    replies["GetArtifact"] = not_found("run 'laptop-run' has no artifact 'nothing.txt'")
    replies["SearchLoggedModels"] = tpb.SearchLoggedModelsResponse()
    return replies


def test_the_table_lists_every_file_with_its_size_and_short_digest(artifacts: dict[str, Any]) -> None:
    code, out = invoke("artifacts", "laptop-run")
    assert code == 0, out
    for f in FILES:
        row = next(line for line in out.splitlines() if f.path in line)
        assert f.digest[:12] in row and f.digest[:13] not in row, out
        assert human_size(f.size_bytes) in row, out


def test_json_is_the_list_of_files(artifacts: dict[str, Any]) -> None:
    code, out = invoke("artifacts", "laptop-run", "model", "-o", "json")
    assert code == 0, out
    assert [(f["path"], f["digest"], int(f["size_bytes"])) for f in json.loads(out)] == [
        (f.path, f.digest, f.size_bytes) for f in FILES if f.path.startswith("model/")]


def one_file(request: Message) -> tpb.ArtifactFile:
    assert isinstance(request, tpb.GetArtifactRequest)
    return next(f for f in FILES if f.path == request.path)


def test_a_path_may_name_one_file(artifacts: dict[str, Any]) -> None:
    artifacts["GetArtifact"] = one_file
    code, out = invoke("artifacts", "laptop-run", "confusion.png", "-o", "json")
    assert code == 0, out
    assert [f["path"] for f in json.loads(out)] == ["confusion.png"]


def test_an_unknown_path_is_an_error(artifacts: dict[str, Any]) -> None:
    code, out = invoke("artifacts", "laptop-run", "nothing.txt")
    assert code == 1
    assert "NOT_FOUND" in out and "has no artifact 'nothing.txt'" in out


def test_an_unknown_run_is_an_error_naming_it(replies: dict[str, Any]) -> None:
    replies["GetRun"] = not_found("no run named 'nope'")
    replies["GetRunById"] = not_found("no run with id 'nope'")
    code, out = invoke("artifacts", "nope")
    assert code == 1
    assert "no run named 'nope'" in out


def test_a_run_is_found_by_its_mlflow_run_id_too(artifacts: dict[str, Any]) -> None:
    artifacts["GetRun"] = not_found("no run named 'r-0123'")
    artifacts["GetRunById"] = lambda request: RUN if request.run_id == RUN.id else None
    code, out = invoke("artifacts", RUN.id)
    assert code == 0, out
    assert "model/MLmodel" in out


MODEL = tpb.LoggedModel(id="m-42", name="model", run_id=RUN.id)
MODEL_FILES = [tpb.ArtifactFile(path="MLmodel", digest=sha(b"flavors: {}\n"), size_bytes=12)]


def models_listing(request: Message) -> tpb.ListArtifactsResponse:
    assert isinstance(request, tpb.ListArtifactsRequest)
    if request.owner.model_id:
        assert request.owner == tpb.ArtifactOwner(run_id=RUN.id, model_id=MODEL.id)
        return tpb.ListArtifactsResponse(files=MODEL_FILES)
    return listing(request)


def test_the_table_names_the_models_the_run_logged(artifacts: dict[str, Any]) -> None:
    artifacts["SearchLoggedModels"] = tpb.SearchLoggedModelsResponse(models=[MODEL])
    code, out = invoke("artifacts", "laptop-run")
    assert code == 0, out
    assert "Logged model model (m-42)" in out and "--model model" in out
    assert "│ MLmodel " not in out  # its files are listed with --model


@pytest.mark.parametrize("model", ["model", "m-42"])
def test_a_logged_models_files_by_its_name_or_id(artifacts: dict[str, Any], model: str) -> None:
    artifacts["SearchLoggedModels"] = tpb.SearchLoggedModelsResponse(models=[MODEL])
    artifacts["ListArtifacts"] = models_listing
    code, out = invoke("artifacts", "laptop-run", "--model", model, "-o", "json")
    assert code == 0, out
    assert [f["path"] for f in json.loads(out)] == ["MLmodel"]


def test_a_model_the_run_did_not_log_is_an_error(artifacts: dict[str, Any]) -> None:
    artifacts["SearchLoggedModels"] = tpb.SearchLoggedModelsResponse(models=[MODEL])
    code, out = invoke("artifacts", "laptop-run", "--model", "other")
    assert code == 1
    assert "logged no model named 'other' (it logged: model)" in out


def test_a_run_without_artifacts_says_so(replies: dict[str, Any]) -> None:
    replies["GetRun"] = RUN
    replies["ListArtifacts"] = tpb.ListArtifactsResponse()
    replies["SearchLoggedModels"] = tpb.SearchLoggedModelsResponse()
    code, out = invoke("artifacts", "laptop-run")
    assert code == 0, out
    assert "No artifacts for run laptop-run" in out


class Blobs(BaseHTTPRequestHandler):
    """GET /blobs/<digest> from ``stored`` (the token checked), as the gateway serves them."""

    stored: dict[str, bytes] = {}

    def do_GET(self) -> None:
        data = self.stored.get(self.path.removeprefix("/blobs/"))
        if data is None or self.headers["Authorization"] != "Bearer the-token":
            self.send_error(404 if data is None else 401)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None: ...


@pytest.fixture
def blob_server(artifacts: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, bytes]]:
    """A blob server with the artifacts' contents, named by GetStatus; its blobs (to change)."""
    stored = {sha(d): d for d in CONTENT.values()}
    monkeypatch.setattr(Blobs, "stored", stored)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Blobs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    artifacts["GetStatus"] = gateway_pb2.GetStatusResponse(blob_url=f"http://127.0.0.1:{server.server_port}/blobs")
    yield stored
    server.shutdown()
    thread.join()


def test_download_writes_every_file_at_its_path(blob_server: dict[str, bytes], tmp_path: Path) -> None:
    dest = tmp_path / "out"
    (dest / "model").mkdir(parents=True)
    (dest / "model" / "MLmodel").write_bytes(b"an older copy")
    code, out = invoke("artifacts", "laptop-run", "--download", str(dest))
    assert code == 0, out
    assert "Downloaded 3 files" in out
    assert {str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file()} == CONTENT


def test_download_of_a_directory_keeps_its_paths(blob_server: dict[str, bytes], tmp_path: Path) -> None:
    code, out = invoke("artifacts", "laptop-run", "model", "--download", str(tmp_path))
    assert code == 0, out
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        "model/MLmodel", "model/model.pkl"]


def test_bytes_that_do_not_match_the_digest_are_not_kept(blob_server: dict[str, bytes], tmp_path: Path,
                                                          replies: dict[str, Any]) -> None:
    replies["GetArtifact"] = one_file
    blob_server[sha(CONTENT["confusion.png"])] = b"tampered"
    code, out = invoke("artifacts", "laptop-run", "confusion.png", "--download", str(tmp_path))
    assert code == 1
    assert "do not match sha256" in out
    assert list(tmp_path.iterdir()) == []


def test_a_listed_path_leaving_the_directory_is_refused(blob_server: dict[str, bytes], tmp_path: Path,
                                                        replies: dict[str, Any]) -> None:
    data = CONTENT["confusion.png"]
    replies["ListArtifacts"] = tpb.ListArtifactsResponse(files=[
        tpb.ArtifactFile(path="../escaped.png", digest=sha(data), size_bytes=len(data))])
    dest = tmp_path / "out"
    code, out = invoke("artifacts", "laptop-run", "--download", str(dest))
    assert code == 1
    assert "cannot be downloaded" in out and "'..' component" in out
    assert list(tmp_path.iterdir()) == []


def test_get_shows_params_tags_external_and_artifacts(replies: dict[str, Any]) -> None:
    replies["GetRun"] = pb.Run(
        name="laptop-run", params={"lr": "0.1", "optimizer": "adam"}, tags=["baseline"],
        labels={"team": "vision", "mlflow.source.name": "train.py"}, external=True, artifact_count=3,
        status=pb.RUN_STATUS_COMPLETE, start_time=Timestamp(seconds=1), end_time=Timestamp(seconds=2))
    code, out = invoke("get", "laptop-run")
    assert code == 0, out
    lines = out.splitlines()
    assert any("params" in line and "lr=0.1 optimizer=adam" in line for line in lines), out
    assert any("tags" in line and "baseline team=vision" in line for line in lines), out
    assert "mlflow.source.name" not in out
    assert any("external" in line and "MLflow's start_run" in line for line in lines), out
    assert any("artifacts" in line and "3 files" in line for line in lines), out
    assert any("exit code" in line and "—" in line for line in lines), out  # its process ran elsewhere


def test_get_of_a_run_the_platform_executes_says_nothing_of_external(replies: dict[str, Any]) -> None:
    replies["GetRun"] = pb.Run(name="trained")
    code, out = invoke("get", "trained")
    assert code == 0, out
    assert "external" not in out
    assert any("params" in line and "—" in line for line in out.splitlines()), out


def test_compare_has_a_row_per_param() -> None:
    rows = dict(comparison_rows([pb.Run(name="a", params={"lr": "0.1"}),
                                 pb.Run(name="b", params={"lr": "0.2", "depth": "3"})]))
    assert rows["param depth"] == ["—", "3"]
    assert rows["param lr"] == ["0.1", "0.2"]
