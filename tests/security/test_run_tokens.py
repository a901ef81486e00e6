"""Attack: a run's own API token (SHIPYARD_TOKEN, syr_<run id>.<secret>) used beyond what it is for.

A data scientist's run calls the API as its owner from inside the run (the SDK's ``call`` reads
SHIPYARD_API_URL and SHIPYARD_TOKEN; a client of the run's own reads SHIPYARD_SERVER and the token). But
with that token it cannot mint a lasting API token, the token stops working within the gateway's cache
time once the run has ended (printed to the log, it is worth nothing afterwards), a token forged for
another run's id is refused, and the internal VerifyRunToken cannot be called through the gateway's
public edge.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from shipyard.client import transfer
from shipyard.client.connection import Client, ClientError
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.local.harness import Stack, wait_for
from tests.support.users import signed_in

ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)
CACHE_TTL_S = 5.0  # the gateway's SHIPYARD_TOKEN_CACHE_TTL_S default
MINT = """python - <<'EOF'
from shipyard.sdk import ApiError, call
print("whoami", call("shipyard.gateway.v1.IdentityService/WhoAmI")["name"])
try:
    made = call("shipyard.gateway.v1.IdentityService/CreateToken", {"description": "kept"})
    print("minted", made["token"])
except ApiError as exc:
    print("refused", exc.code)
EOF
"""
WHOAMI = """python - <<'EOF'
from shipyard.sdk import call
me = call("shipyard.gateway.v1.IdentityService/WhoAmI")
print("i am", me["name"], "in run", me["run"]["id"], me["run"]["name"])
EOF
"""
LIST = """python - <<'EOF'
from shipyard.sdk import call
for repo in call("shipyard.repo.v1.RepoService/ListRepos", {"kind": "REPO_KIND_DATASET"})["repos"]:
    print(repo["name"])
EOF
"""


@pytest.fixture(scope="module")
def rita(stack: Stack, admin: Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """Rita, a data scientist, with her dataset rita-data."""
    client = signed_in(stack, admin, "rita")
    client.call(client.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_DATASET, name="rita-data", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    data = tmp_path_factory.mktemp("rita-data")
    (data / "train.csv").write_bytes(b"1,2\n")
    transfer.push(client, repos_pb2.REPO_KIND_DATASET, "rita-data", data, transfer.scan_tree(data))
    yield client
    client.close()


def _run(client: Client, name: str, command: str) -> tuple[pb.Run, str]:
    """Run ``command`` as ``client``; the ended run and its log."""
    client.call(client.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name=name, command=command)))

    def ended() -> pb.Run | None:
        run = client.call(client.runs.GetRun, pb.GetRunRequest(name=name))
        return run if run.status in ENDED else None

    run = wait_for(ended, 120, f"run {name} to end")
    log = client.call(client.runs.ReadRunLogs, pb.ReadRunLogsRequest(name=name, max_bytes=1 << 20)).data
    return run, log.decode(errors="replace")


def _code(client: Client) -> str:
    """The status a call of ``client`` gets ("OK" when it works)."""
    try:
        client.call(client.repos.ListRepos, repos_pb2.ListReposRequest(), timeout=10)
    except ClientError as exc:
        return exc.code
    return "OK"


def test_a_run_lists_its_owners_datasets_with_the_sdk(rita: Client) -> None:
    run, log = _run(rita, "lister", LIST)
    assert run.status == pb.RUN_STATUS_COMPLETE, log
    assert "rita-data" in log


def test_a_run_cannot_mint_a_lasting_token_with_its_own(rita: Client) -> None:
    run, log = _run(rita, "minter", MINT)
    assert run.status == pb.RUN_STATUS_COMPLETE, log
    assert "whoami rita" in log
    assert "refused PERMISSION_DENIED" in log and "minted" not in log


def test_whoami_with_a_runs_token_names_the_run(rita: Client) -> None:
    run, log = _run(rita, "who-am-i", WHOAMI)
    assert run.status == pb.RUN_STATUS_COMPLETE, log
    assert f"i am rita in run {run.id} who-am-i" in log
    assert not rita.call(rita.identity.WhoAmI, gateway_pb2.WhoAmIRequest()).HasField("run")


def test_a_token_leaked_through_the_log_dies_with_the_run(stack: Stack, rita: Client) -> None:
    run, log = _run(rita, "leaker", 'echo "leaked=$SHIPYARD_TOKEN"')
    token = log.partition("leaked=")[2].strip()
    assert run.status == pb.RUN_STATUS_COMPLETE and token.startswith(f"syr_{run.id}."), log
    outside = stack.client(token)
    try:
        # The gateway may trust what run-svc said for its cache time; no longer.
        assert wait_for(lambda: _code(outside) == "UNAUTHENTICATED", 4 * CACHE_TTL_S,
                        "the ended run's token to be refused")
        with pytest.raises(ClientError, match="has ended: its token no longer works"):
            outside.call(outside.repos.ListRepos, repos_pb2.ListReposRequest())
    finally:
        outside.close()


def _leaked(client: Client, name: str) -> str | None:
    """The token a running run printed to its log, once it has."""
    log = client.call(client.runs.ReadRunLogs, pb.ReadRunLogsRequest(name=name, max_bytes=1 << 20)).data
    token = log.decode(errors="replace").partition("leaked=")[2].strip()
    return token or None


def test_a_token_forged_for_a_running_run_is_refused(stack: Stack, admin: Client) -> None:
    job = pb.Run(name="operators-job", command='echo "leaked=$SHIPYARD_TOKEN"; sleep 120')
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=job))
    token = wait_for(lambda: _leaked(admin, "operators-job"), 60, "the operator's run to print its token")
    run_id = admin.call(admin.runs.GetRun, pb.GetRunRequest(name="operators-job")).id
    genuine = stack.client(token)
    forged = stack.client(f"syr_{run_id}.{secrets.token_urlsafe(32)}")
    try:
        assert _code(genuine) == "OK"  # the run's own token works while it runs …
        assert _code(forged) == "UNAUTHENTICATED"  # … knowing its id is not enough
        with pytest.raises(ClientError, match="UNAUTHENTICATED"):
            forged.call(forged.runs.StopRun, pb.StopRunRequest(name="operators-job"))
    finally:
        genuine.close()
        forged.close()
        admin.call(admin.runs.StopRun, pb.StopRunRequest(name="operators-job"))


def test_verify_run_token_is_not_public(admin: Client, rita: Client) -> None:
    for client in (admin, rita):
        with pytest.raises(ClientError, match=r"PERMISSION_DENIED.*not a public method"):
            client.call(client.runs.VerifyRunToken, pb.VerifyRunTokenRequest(token="syr_x.y"))
