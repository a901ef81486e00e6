"""Attack: MLflow's API used to reach beyond what the caller may touch.

The /mlflow routes go through the same method table as Shipyard's API, so a user sees there exactly
what they see through Shipyard's API and writes only what they could write there: a data scientist
reads everyone's runs but logs only into their own; a production engineer starts no runs; a run's own
token (MLFLOW_TRACKING_TOKEN) writes only that run; an artifact path never climbs into another run;
no token, no answer. Requests here are hand-made (an attacker does not use MLflow's client).
"""

from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.kit.blob.checkout import EMPTY_MANIFEST
from shipyard.local.harness import Stack, wait_for
from tests.support.users import new_user

ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)
API = "/mlflow/api/2.0/mlflow"
ARTIFACT_MAX = 4096  # this module's SHIPYARD_UPLOAD_MAX_BYTES


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose artifact files may have at most ARTIFACT_MAX bytes."""
    running = Stack(tmp_path_factory.mktemp("stack") / "data", env={
        "SHIPYARD_PATH_IMPORT_ROOTS": "", "SHIPYARD_UPLOAD_MAX_BYTES": str(ARTIFACT_MAX)}).start()
    try:
        yield running
    finally:
        running.stop()


def _call(stack: Stack, token: str | None, method: str, path: str, body: Any = None,
          data: bytes | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON answer) of one request to the gateway."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    payload = data if data is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(stack.http_url + path, data=payload, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture(scope="module")
def tokens(admin: Client) -> dict[str, str]:
    """Tokens of a data scientist (dora) and a production engineer (pete)."""
    return {"dora": new_user(admin, "dora"),
            "pete": new_user(admin, "pete", gateway_pb2.ROLE_PRODUCTION_ENGINEER)}


@pytest.fixture(scope="module")
def admins_run(stack: Stack) -> str:
    """A run the admin started from a laptop, with a param."""
    status, made = _call(stack, stack.admin_token(), "POST", f"{API}/runs/create",
                         {"experiment_id": "0", "run_name": "admins"})
    assert status == 200, made
    run_id = made["run"]["info"]["run_id"]
    assert _call(stack, stack.admin_token(), "POST", f"{API}/runs/log-parameter",
                 {"run_id": run_id, "key": "lr", "value": "0.1"})[0] == 200
    return str(run_id)


def test_no_token_gets_unauthenticated(stack: Stack) -> None:
    status, answer = _call(stack, None, "POST", f"{API}/runs/search", {"experiment_ids": ["0"]})
    assert (status, answer["error_code"]) == (401, "UNAUTHENTICATED")


def test_a_data_scientist_reads_everyones_runs_but_writes_only_their_own(stack: Stack, admin: Client,
                                                                         tokens: dict[str, str],
                                                                         admins_run: str) -> None:
    dora = tokens["dora"]
    status, found = _call(stack, dora, "POST", f"{API}/runs/search", {"experiment_ids": ["0"]})
    listed = admin.call(admin.runs.ListRuns, pb.ListRunsRequest(project="", page_size=1000)).runs
    assert status == 200 and admins_run in {r["info"]["run_id"] for r in found["runs"]}
    assert admins_run in {r.id for r in listed}  # the same as Shipyard's API shows her

    for path, body in (("runs/log-metric", {"run_id": admins_run, "key": "loss", "value": 1, "timestamp": 1}),
                       ("runs/log-parameter", {"run_id": admins_run, "key": "lr", "value": "9"}),
                       ("runs/set-tag", {"run_id": admins_run, "key": "owner", "value": "dora"}),
                       ("runs/update", {"run_id": admins_run, "status": "KILLED"})):
        status, answer = _call(stack, dora, "POST", f"{API}/{path}", body)
        assert (status, answer["error_code"]) == (403, "PERMISSION_DENIED"), path
    status, answer = _call(stack, dora, "PUT", f"/mlflow/api/2.0/mlflow-artifacts/artifacts/0/{admins_run}"
                                               "/artifacts/planted.txt", data=b"x")
    assert (status, answer["error_code"]) == (403, "PERMISSION_DENIED")

    run = admin.call(admin.runs.GetRun, pb.GetRunRequest(name="admins"))
    assert run.params == {"lr": "0.1"} and run.metrics == {} and run.labels == {}
    assert run.status == pb.RUN_STATUS_RUNNING and run.artifact_count == 0

    status, mine = _call(stack, dora, "POST", f"{API}/runs/create",
                         {"experiment_id": "0", "run_name": "doras"})
    assert status == 200
    metric = {"run_id": mine["run"]["info"]["run_id"], "key": "loss", "value": 1, "timestamp": 1}
    assert _call(stack, dora, "POST", f"{API}/runs/log-metric", metric)[0] == 200


def test_a_production_engineer_starts_no_runs(stack: Stack, tokens: dict[str, str]) -> None:
    status, answer = _call(stack, tokens["pete"], "POST", f"{API}/runs/create", {"experiment_id": "0"})
    assert (status, answer["error_code"]) == (403, "PERMISSION_DENIED")


def test_an_artifact_path_never_leaves_its_run(stack: Stack, admin: Client, tokens: dict[str, str],
                                               admins_run: str) -> None:
    dora = tokens["dora"]
    _, mine = _call(stack, dora, "POST", f"{API}/runs/create", {"experiment_id": "0", "run_name": "climber"})
    own = mine["run"]["info"]["run_id"]
    root = "/mlflow/api/2.0/mlflow-artifacts/artifacts"
    for path in (f"0/{own}/artifacts/%2E%2E/%2E%2E/{admins_run}/artifacts/planted.txt",
                 f"0/{own}/artifacts/..%2F..%2F{admins_run}%2Fartifacts%2Fplanted.txt",
                 f"0/{own}/artifacts/%2Fetc%2Fpasswd"):
        status, answer = _call(stack, dora, "PUT", f"{root}/{path}", data=b"planted")
        assert status in (400, 403, 404), (path, status, answer)
    status, listed = _call(stack, stack.admin_token(), "GET", f"{root}?path=0/{admins_run}/artifacts")
    assert status == 200 and listed.get("files", []) == []
    status, listed = _call(stack, dora, "GET", f"{root}?path=0/{own}/artifacts")
    assert status == 200 and listed.get("files", []) == []
    status, answer = _call(stack, dora, "POST", f"{API}/runs/log-parameter",
                           {"run_id": own, "key": "../../escape", "value": "x"})
    assert (status, answer["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert admin.call(admin.runs.GetRun, pb.GetRunRequest(name="climber")).params == {}


def test_no_one_registers_another_users_run_nor_claims_a_run_for_a_version(stack: Stack, admin: Client,
                                                                           tokens: dict[str, str],
                                                                           admins_run: str) -> None:
    dora = tokens["dora"]
    assert _call(stack, dora, "POST", f"{API}/registered-models/create", {"name": "doras-model"})[0] == 200
    status, answer = _call(stack, dora, "POST", f"{API}/model-versions/create",
                           {"name": "doras-model", "source": f"runs:/{admins_run}/model"})
    assert (status, answer["error_code"]) == (403, "PERMISSION_DENIED")
    # Straight to repo-svc's CreateVersion, naming the admin's run as the producer: only run-svc may.
    client = stack.client(dora)
    try:
        with pytest.raises(ClientError) as claimed:
            client.call(client.repos.CreateVersion, repos_pb2.CreateVersionRequest(
                kind=repos_pb2.REPO_KIND_MODEL, repo="doras-model", manifest_digest=EMPTY_MANIFEST,
                produced_by_run=admins_run))
        assert claimed.value.code == "PERMISSION_DENIED" and "produced_by_run" in claimed.value.message
    finally:
        client.close()
    repo = admin.call(admin.repos.GetRepo, repos_pb2.GetRepoRequest(kind=repos_pb2.REPO_KIND_MODEL,
                                                                     name="doras-model"))
    assert repo.latest_version == 0


def test_only_a_models_owner_tags_and_aliases_it(stack: Stack, tokens: dict[str, str]) -> None:
    admin_token = stack.admin_token()
    made = _call(stack, admin_token, "POST", f"{API}/registered-models/create", {"name": "admins-model"})
    assert made[0] == 200
    tag = {"name": "admins-model", "key": "k", "value": "v"}
    alias = {"name": "admins-model", "alias": "prod", "version": "1"}
    for path, body in (("registered-models/set-tag", tag), ("registered-models/alias", alias)):
        status, answer = _call(stack, tokens["dora"], "POST", f"{API}/{path}", body)
        assert (status, answer["error_code"]) == (403, "PERMISSION_DENIED"), path
    status, model = _call(stack, admin_token, "GET", f"{API}/registered-models/get?name=admins-model")
    assert status == 200 and model["registered_model"].get("tags", []) == []


def test_an_artifact_over_the_limit_is_refused_and_nothing_is_kept(stack: Stack,
                                                                    tokens: dict[str, str]) -> None:
    dora = tokens["dora"]
    _, mine = _call(stack, dora, "POST", f"{API}/runs/create", {"experiment_id": "0", "run_name": "hoarder"})
    own = mine["run"]["info"]["run_id"]
    root = "/mlflow/api/2.0/mlflow-artifacts/artifacts"
    spooled = set(Path(tempfile.gettempdir()).glob("shipyard-artifact-*"))
    huge = b"x" * (ARTIFACT_MAX + 1)
    status, answer = _call(stack, dora, "PUT", f"{root}/0/{own}/artifacts/huge.bin", data=huge)
    assert (status, answer["error_code"]) == (413, "REQUEST_LIMIT_EXCEEDED")
    assert _call(stack, dora, "PUT", f"{root}/0/{own}/artifacts/fits.bin", data=b"x" * ARTIFACT_MAX)[0] == 200
    status, listed = _call(stack, dora, "GET", f"{root}?path=0/{own}/artifacts")
    assert [f["path"] for f in listed["files"]] == ["fits.bin"]
    assert set(Path(tempfile.gettempdir()).glob("shipyard-artifact-*")) <= spooled  # no spool left behind


LOG_INTO = """python - <<'EOF'
import json, os, urllib.request, urllib.error
def post(path, body):
    request = urllib.request.Request(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/" + path,
        data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
print("own", post("runs/log-parameter", {"run_id": os.environ["MLFLOW_RUN_ID"], "key": "k", "value": "v"}))
print("other", post("runs/log-parameter", {"run_id": "%s", "key": "k", "value": "v"}))
print("create", post("runs/create", {"experiment_id": "0"}))
EOF
"""


def test_a_runs_token_writes_only_its_own_run(stack: Stack, admin: Client, admins_run: str) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="token-thief", kind=pb.RUN_KIND_TRAINING, command=LOG_INTO % admins_run)))

    def ended() -> bool:
        return admin.call(admin.runs.GetRun, pb.GetRunRequest(name="token-thief")).status in ENDED

    wait_for(ended, 120, "the run to end")
    log = admin.call(admin.runs.ReadRunLogs, pb.ReadRunLogsRequest(name="token-thief", max_bytes=1 << 20))
    lines = log.data.decode().split()
    assert lines[-6:] == ["own", "200", "other", "403", "create", "403"], log.data.decode()[-2000:]
    assert admin.call(admin.runs.GetRun, pb.GetRunRequest(name="token-thief")).params == {"k": "v"}
    assert "k" not in admin.call(admin.runs.GetRun, pb.GetRunRequest(name="admins")).params
