"""The Slurm executor through slurmrestd, against recorded answers.

A small aiohttp server stands in for slurmrestd: it answers with what a real one (Debian 12's Slurm
22.05.8, OpenAPI v0.0.38, JWT) answered (``slurmrestd_api/``: a listing with a completed job, one that
exited 3, one running, one cancelled, another program's job and another user's; a submit; cancels;
HTTP 500 for a bad token on a listing and on a submit, 401 without one), so that the real HTTP client
is exercised. The staging area is in memory; one test serves it over HTTP and runs the submitted script
itself with ``sh``, so the fetch → run → send back sequence is checked without Slurm.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from shipyard_run.adapters.clusters import RemoteClusters
from shipyard_run.adapters.slurm_rest import SlurmRestExecutor, batch_script, job_properties, staged
from shipyard_run.adapters.slurmrestd import RestLogin, SlurmRest
from shipyard_run.app.ports import Job, JobInput, JobState
from shipyard_run.domain.clusters import Cluster, ClusterKind
from shipyard_run.domain.runs import Distribution

from shipyard.kit.blob.checkout import read_manifest
from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.blob.s3 import S3BlobStore, StagedPart
from shipyard.kit.blob.tree import BlobTree
from shipyard.kit.errors import FailedPrecondition, InvalidArgument
from shipyard.kit.testing.credentials import FakeCredentialClient

RECORDED = Path(__file__).parent / "slurmrestd_api"
USER = "shipyard-hpc"
JWT = "eyJhbGciOiJIUzI1NiJ9.the-token.sig"
CLUSTER = Cluster("hpc", ClusterKind.SLURM, owner="ops", ssh_user=USER, credential="hpc-jwt",
                  work_dir="/scratch/sy", partition="debug", slurmrestd_url="http://slurm.example:6820")
RUN_TOKEN = "syr_run7new.t0ken"


def recorded(name: str) -> tuple[int, Any]:
    answer = json.loads((RECORDED / name).read_text())
    return answer["status"], answer["body"]


@dataclass
class FakeSlurmRest:
    """Answers as slurmrestd did; keeps each request (method, path, headers, body)."""

    jobs: list[dict[str, Any]] = field(default_factory=list)
    good_token: str = JWT
    next_id: int = 7
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self.answer)
        return app

    async def answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.path, dict(request.headers), body))
        if not request.headers.get("X-SLURM-USER-TOKEN"):
            status, said = recorded("jobs_no_token.json")
            return web.Response(status=status, text=said)
        bad = request.headers["X-SLURM-USER-TOKEN"] != self.good_token
        route = (request.method, request.path)
        if route == ("GET", "/slurm/v0.0.38/jobs"):
            status, said = recorded("jobs_bad_token.json") if bad else (200, {**recorded("jobs.json")[1],
                                                                                 "jobs": self.jobs})
        elif route == ("POST", "/slurm/v0.0.38/job/submit"):
            status, said = recorded("submit_bad_token.json") if bad else self._submit(body)
        elif request.method == "DELETE":
            status, said = self._cancel(request.path.rsplit("/", 1)[1])
        else:
            return web.Response(status=404, text="Not Found")
        return web.json_response(said, status=status)

    def _submit(self, body: Any) -> tuple[int, Any]:
        if body["job"].get("partition") == "nosuch":
            return recorded("submit_bad_partition.json")
        status, said = recorded("submit.json")
        self.jobs.append({**copy.deepcopy(self.jobs[0]), "job_id": self.next_id, "name": body["job"]["name"],
                          "job_state": "PENDING", "state_reason": "None", "exit_code": 0, "user_name": USER})
        said = {**said, "job_id": self.next_id}
        self.next_id += 1
        return status, said

    def _cancel(self, job_id: str) -> tuple[int, Any]:
        for job in self.jobs:
            if str(job["job_id"]) == job_id:
                if job["job_state"] in ("PENDING", "RUNNING"):
                    job["job_state"] = "CANCELLED"
                return recorded("cancel.json")
        return recorded("cancel_unknown.json")


@dataclass
class FakeStaging:
    """The S3 store's staging area in memory; its URLs point at ``url`` (a server that serves it, where
    a test starts one)."""

    objects: dict[str, bytes] = field(default_factory=dict)
    url: str = "https://s3.example"
    fetched: int = 0  # bytes run-svc downloaded (get_staged, read_staged)

    async def presign_get(self, name: str, expires: timedelta) -> str:
        return f"{self.url}/staging/{name}?X-Amz-Signature=get"

    async def presign_put(self, name: str, expires: timedelta) -> str:
        return f"{self.url}/staging/{name}?X-Amz-Signature=put"

    async def put_staged(self, name: str, source: Path) -> None:
        self.objects[name] = await asyncio.to_thread(source.read_bytes)

    async def get_staged(self, name: str, target: Path) -> None:
        if name not in self.objects:
            raise FileNotFoundError(name)
        await asyncio.to_thread(target.write_bytes, self.objects[name])
        self.fetched += len(self.objects[name])

    async def read_staged(self, name: str, offset: int, max_bytes: int) -> StagedPart:
        if name not in self.objects:
            raise FileNotFoundError(name)
        data = self.objects[name][offset:offset + max_bytes]
        self.fetched += len(data)
        return StagedPart(data, len(self.objects[name]))

    async def delete_staged(self, folder: str) -> None:
        for name in [name for name in self.objects if name.startswith(folder)]:
            del self.objects[name]

    def app(self) -> web.Application:
        """Serves GET and PUT of the objects, as presigned URLs would."""
        async def serve(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            if request.method == "PUT":
                self.objects[name] = await request.read()
                return web.Response(status=200)
            if name not in self.objects:
                return web.Response(status=404)
            return web.Response(body=self.objects[name])

        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/staging/{name:.*}", serve)
        return app


@dataclass
class Setup:
    api: FakeSlurmRest
    staging: FakeStaging
    blobs: LocalBlobStore
    root: Path
    logins: dict[str, RestLogin]
    executor: SlurmRestExecutor

    def again(self, cluster: Cluster = CLUSTER) -> SlurmRestExecutor:
        """A new executor on the same cluster and directory: run-svc after a restart."""
        return SlurmRestExecutor(cluster, SlurmRest(self.api.url), self.login_of, self.blobs, self.staging,
                                 self.root)

    async def login_of(self, owner: str) -> RestLogin:
        return self.logins[owner]


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    api = FakeSlurmRest(jobs=recorded("jobs.json")[1]["jobs"])
    runner, api.url = await serve(api.app())
    blobs = LocalBlobStore(tmp_path / "blobs")
    await blobs.open()
    logins = {"": RestLogin(USER, JWT), "ana": RestLogin("ana", "ana-jwt")}
    made = Setup(api, FakeStaging(), blobs, tmp_path / "hpc", logins, None)  # type: ignore[arg-type]
    made.executor = made.again()
    try:
        yield made
    finally:
        await made.executor.close()
        await runner.cleanup()


async def a_job(setup: Setup, tmp_path: Path, run_id: str = "run7new", command: str = "python train.py",
                **fields: Any) -> Job:
    code, data = tmp_path / "code", tmp_path / "data"
    code.mkdir(exist_ok=True)
    data.mkdir(exist_ok=True)
    (code / "train.py").write_text("print('loss=0.5')\n")
    (data / "rows.csv").write_text("a,b\n1,2\n")
    tree = BlobTree(setup.blobs)
    return Job(run_id, "t1", command, code_manifest=(await tree.store_tree(code)).digest,
               inputs=(JobInput("/data", (await tree.store_tree(data)).digest),), output_paths=("", "/model"),
               api_token=RUN_TOKEN, **fields)


def submitted(api: FakeSlurmRest) -> list[Any]:
    return [body for method, path, _, body in api.requests if method == "POST"]


def set_state(api: FakeSlurmRest, name: str, state: str, reason: str = "None", status: int = 0) -> None:
    job = next(job for job in api.jobs if job["name"] == name)
    job.update(job_state=state, state_reason=reason, exit_code=status)


# --- what is sent ---------------------------------------------------------------------------------------


async def test_submit_stages_the_job_directory_and_posts_the_script_as_the_tokens_user(
        setup: Setup, tmp_path: Path) -> None:
    job = await a_job(setup, tmp_path, time_limit="1:30:30", account="ml", gpu_count=2)
    notes = await setup.executor.submit(job)
    assert notes[0].startswith("Slurm job 7 on cluster hpc (partition debug), submitted through slurmrestd "
                               f"as {USER}: the run's files, inputs and outputs are under "
                               "/scratch/sy/runs/run7new there")
    [(_, path, headers, body)] = [r for r in setup.api.requests if r[0] == "POST"]
    assert path == "/slurm/v0.0.38/job/submit"
    assert headers["X-SLURM-USER-NAME"] == USER and headers["X-SLURM-USER-TOKEN"] == JWT
    properties = body["job"]
    assert {key: properties[key] for key in ("name", "partition", "time_limit", "account", "tasks", "gres",
                                             "current_working_directory")} == {
        "name": "shipyard-run7new", "partition": "debug", "time_limit": 91, "account": "ml", "tasks": 1,
        "gres": "gpu:2", "current_working_directory": "/scratch/sy"}
    environment = properties["environment"]
    assert set(environment) == {"PATH", "SHIPYARD_INPUTS_URL", "SHIPYARD_PUSH", "SHIPYARD_PUSH_END",
                                "SHIPYARD_OUTPUT_DIRS", "SHIPYARD_OUTPUT_URLS"}
    assert environment["SHIPYARD_INPUTS_URL"].startswith("https://s3.example/staging/runs/run7new/job.tar?")
    assert json.loads(environment["SHIPYARD_OUTPUT_DIRS"]) == ["/scratch/sy/runs/run7new/output",
                                                                "/scratch/sy/runs/run7new/outputs/model"]
    # Neither the JWT nor the run's own token is in what Slurm keeps (the script, the environment).
    sent = json.dumps(body)
    assert JWT not in sent and RUN_TOKEN not in sent
    assert "dir=/scratch/sy/runs/run7new" in body["script"]
    with tarfile.open(fileobj=io.BytesIO(setup.staging.objects["runs/run7new/job.tar"])) as tar:
        names = set(tar.getnames())
        command = tar.extractfile("job/command.sh").read().decode()  # type: ignore[union-attr]
    assert {"job/job.sh", "job/run.sh", "job/command.sh", "job/code/train.py", "job/inputs/data/rows.csv",
            "job/sdk/shipyard/sdk.py", "job/hyperparameters.json"} <= names
    assert f"export SHIPYARD_TOKEN={RUN_TOKEN}" in command  # the run's token reaches the command alone
    assert (await setup.executor.status("run7new")).state is JobState.RUNNING


def test_placement_and_time_limit_as_slurmrestd_fields() -> None:
    def properties(**fields: Any) -> dict[str, Any]:
        return job_properties(CLUSTER, Job("r1", "t1", "true", **fields), {})

    auto = properties(gpu_count=4, distribution=Distribution.AUTOMATIC)
    assert (auto["tasks"], auto["gpus"], auto["gpus_per_task"]) == (4, "4", "1")
    manual = properties(gpu_count=2, distribution=Distribution.MANUAL, workers=2)
    assert (manual["nodes"], manual["tasks_per_node"], manual["gres"]) == ([3, 3], 1, "gpu:2")
    assert properties(time_limit="2-00")["time_limit"] == 2 * 24 * 60
    assert properties(time_limit="0:0:30")["time_limit"] == 1  # a minute at least: Slurm counts minutes
    assert "time_limit" not in properties() and "account" not in properties()


async def test_a_job_is_submitted_once_however_often_run_svc_asks(setup: Setup, tmp_path: Path) -> None:
    job = await a_job(setup, tmp_path)
    await setup.executor.submit(job)
    again = setup.again()  # run-svc restarted while starting it: the listing shows the job
    notes = await again.submit(job)
    assert "Slurm job 7 on cluster hpc" in notes[0]
    assert len(submitted(setup.api)) == 1
    assert (await again.status("run7new")).state is JobState.RUNNING
    await again.close()


async def test_a_cluster_where_each_user_signs_in_submits_as_the_owner(setup: Setup, tmp_path: Path) -> None:
    cluster = Cluster("hpc", ClusterKind.SLURM, ssh_user=USER, work_dir="/scratch/shared",
                      login_required=True, slurmrestd_url="http://slurm.example:6820")
    setup.api.good_token = "ana-jwt"
    executor = setup.again(cluster)
    await executor.submit(await a_job(setup, tmp_path, owner="ana"))
    [(_, _, headers, body)] = [r for r in setup.api.requests if r[0] == "POST"]
    assert (headers["X-SLURM-USER-NAME"], headers["X-SLURM-USER-TOKEN"]) == ("ana", "ana-jwt")
    assert "dir=/scratch/shared/ana/runs/run7new" in body["script"]
    await executor.close()


# --- statuses, stop, errors ---------------------------------------------------------------------------


async def blob_text(blobs: LocalBlobStore, digest: str) -> str:
    return b"".join([chunk async for chunk in blobs.get(digest)]).decode()


async def recorded_run(setup: Setup, run_id: str, exit_code: str | None, root: Path | None = None) -> None:
    """A run submitted earlier (its job is in the recorded listing) that sent ``exit_code``."""
    local = (root or setup.root) / run_id
    local.mkdir(parents=True)
    (local / "owner").write_text("")
    (local / "outputs.json").write_text("[]")
    (local / "submitted").touch()
    if exit_code is not None:
        setup.staging.objects[staged(run_id, "exit_code")] = exit_code.encode()


@pytest.mark.parametrize(("run_id", "exit_code", "state", "code", "detail"), [
    ("run1done", "0", JobState.EXITED, 0, ""),
    ("run2fail", "3", JobState.EXITED, 3, ""),
    ("run3live", None, JobState.RUNNING, 0, "Slurm job 4: RUNNING"),
    ("run4stop", "143", JobState.GONE, 143, "cancelled on the cluster, not through Shipyard"),
    ("run2fail", None, JobState.GONE, 0, "ended (FAILED, exit code 3) without sending back its files: its "
                                         "node needs sh and python3"),
])
async def test_slurms_states_map_to_the_runs(setup: Setup, run_id: str, exit_code: str | None,
                                            state: JobState, code: int, detail: str) -> None:
    await recorded_run(setup, run_id, exit_code)
    status = await setup.executor.status(run_id)
    assert (status.state, status.exit_code) == (state, code)
    assert detail in status.detail


@pytest.mark.parametrize(("state", "reason", "expected", "detail"), [
    ("TIMEOUT", "TimeLimit", JobState.KILLED, "ran past its time limit"),
    ("OUT_OF_MEMORY", "OutOfMemory", JobState.KILLED, "ran out of memory"),
    ("NODE_FAIL", "None", JobState.GONE, "Slurm ended job 4: NODE_FAIL"),
    ("PENDING", "PartitionTimeLimit", JobState.KILLED, "longer than the partition allows"),
    ("PENDING", "Priority", JobState.RUNNING, "PENDING"),
])
async def test_limits_failures_and_jobs_that_never_run(setup: Setup, state: str, reason: str,
                                                      expected: JobState, detail: str) -> None:
    await recorded_run(setup, "run3live", "143" if state == "TIMEOUT" else None)
    set_state(setup.api, "shipyard-run3live", state, reason)
    status = await setup.executor.status("run3live")
    assert status.state is expected and detail in status.detail


async def test_one_listing_answers_every_runs_status_in_a_poll(setup: Setup) -> None:
    for run_id in ("run1done", "run2fail", "run3live"):
        await recorded_run(setup, run_id, "0")
    await asyncio.gather(*(setup.executor.status(r) for r in ("run1done", "run2fail", "run3live")))
    assert [path for _, path, _, _ in setup.api.requests] == ["/slurm/v0.0.38/jobs"]


async def test_another_users_job_and_other_programs_jobs_are_not_a_runs(setup: Setup) -> None:
    setup.api.jobs.append({**setup.api.jobs[1], "job_id": 99, "user_name": "mallory"})  # shipyard-run1done
    await recorded_run(setup, "run1done", "0")
    assert (await setup.executor.status("run1done")).state is JobState.EXITED
    await recorded_run(setup, "elses", None)  # "someone-elses" is no run's job
    assert (await setup.executor.status("elses")).state is JobState.GONE


async def test_stop_cancels_the_runs_job(setup: Setup) -> None:
    await recorded_run(setup, "run3live", None)
    await setup.executor.stop("run3live")
    assert ("DELETE", "/slurm/v0.0.38/job/4") in [(m, p) for m, p, _, _ in setup.api.requests]
    assert (await setup.executor.status("run3live")).state is JobState.GONE  # CANCELLED: the run ends


async def test_cancelling_a_job_slurm_no_longer_has_is_no_error(setup: Setup) -> None:
    rest = SlurmRest(setup.api.url)
    await rest.cancel(RestLogin(USER, JWT), "99999")  # the recorded 500, error 2017
    await rest.close()


async def test_a_bad_token_ends_in_an_error_naming_the_cause(setup: Setup, tmp_path: Path) -> None:
    setup.logins[""] = RestLogin(USER, "expired")
    job = await a_job(setup, tmp_path)
    with pytest.raises(FailedPrecondition) as raised:
        await setup.executor.submit(job)
    assert "slurmrestd at http://127.0.0.1" in raised.value.message
    assert "HTTP 500: Unspecified error: Failed while looking for jobs" in raised.value.message
    assert "a JWT it cannot use (wrong, expired, or another user's)" in raised.value.message
    assert setup.staging.objects == {}  # nothing staged for a job that was never submitted


async def test_a_submit_refused_says_what_slurm_said_and_leaves_nothing_staged(setup: Setup,
                                                                               tmp_path: Path) -> None:
    cluster = Cluster("hpc", ClusterKind.SLURM, ssh_user=USER, credential="c", work_dir="/scratch/sy",
                      partition="nosuch", slurmrestd_url="http://slurm.example:6820")
    executor = setup.again(cluster)
    with pytest.raises(FailedPrecondition, match=r"Slurm refused the job on cluster 'hpc': .*HTTP 500: "
                                                 r"Invalid partition name specified$"):
        await executor.submit(await a_job(setup, tmp_path))
    assert setup.staging.objects == {}
    await executor.close()


async def test_submits_bad_token_answer_is_named_too(setup: Setup) -> None:
    rest = SlurmRest(setup.api.url)
    try:
        with pytest.raises(FailedPrecondition, match=r"Zero Bytes were transmitted or received .*a JWT "
                                                     r"it cannot use"):
            await rest.submit(RestLogin(USER, "expired"), "#!/bin/sh\n", {"name": "x"})
        with pytest.raises(FailedPrecondition, match="HTTP 401: Authentication failure"):
            await rest.jobs(RestLogin(USER, ""))
    finally:
        await rest.close()


async def test_an_unreachable_slurmrestd_is_named(tmp_path: Path) -> None:
    rest = SlurmRest("http://127.0.0.1:9")
    with pytest.raises(FailedPrecondition, match=r"slurmrestd at http://127\.0\.0\.1:9 could not be reached"):
        await rest.jobs(RestLogin(USER, JWT))
    await rest.close()


def test_the_token_is_never_in_a_logins_repr() -> None:
    assert JWT not in repr(RestLogin(USER, JWT))


# --- logs, metrics, outputs, the end ------------------------------------------------------------------


async def test_logs_metrics_and_outputs_come_from_what_the_job_sent(setup: Setup, tmp_path: Path) -> None:
    await recorded_run(setup, "run1done", "0")
    (setup.root / "run1done" / "outputs.json").write_text('["", "/model"]')
    objects = setup.staging.objects
    objects[staged("run1done", "log")] = b"starting\nloss=0.5\n"
    objects[staged("run1done", "stdout")] = b"loss=0.5\nacc=0.9"  # the last line is not complete yet
    objects[staged("run1done", "metrics.jsonl")] = b'{"name": "f1", "value": 0.7, "step": 3}\n'
    for index, content in enumerate((b"out", b"weights")):
        folder = tmp_path / f"out{index}"
        folder.mkdir()
        (folder / "file").write_bytes(content)
        spool = io.BytesIO()
        with tarfile.open(fileobj=spool, mode="w") as tar:
            tar.add(folder, arcname=".")
        objects[staged("run1done", f"outputs/{index}.tar")] = spool.getvalue()
    assert await setup.executor.read_logs("run1done", 9, 100) == b"loss=0.5\n"
    points = await setup.executor.new_metrics("run1done")
    assert [(p.name, p.value, p.step) for p in points] == [("loss", 0.5, 1), ("f1", 0.7, 3)]
    assert (await setup.executor.status("run1done")).state is JobState.EXITED
    outputs = await setup.executor.stage_outputs("run1done")
    model = await read_manifest(setup.blobs, outputs["/model"])
    assert [entry.path for entry in model.entries] == ["file"]
    await setup.executor.cleanup("run1done")
    assert objects == {}  # the staged objects went
    assert (setup.root / "run1done" / "log").read_bytes() == b"starting\nloss=0.5\n"
    assert await setup.executor.read_logs("run1done", 0, 100) == b"starting\nloss=0.5\n"


async def test_a_running_jobs_log_is_read_by_range_only_what_it_gained(setup: Setup) -> None:
    await recorded_run(setup, "run3live", None)
    objects, log = setup.staging.objects, staged("run3live", "log")
    objects[log] = b"x" * 1_000_000 + b"\n"
    assert len(await setup.executor.read_logs("run3live", 0, 2_000_000)) == 1_000_001
    before = setup.staging.fetched
    objects[log] += b"epoch 1\n"  # the job sent its whole log again, 8 bytes longer
    setup.executor._read_at.clear()  # the next look is due
    assert await setup.executor.read_logs("run3live", 1_000_001, 100) == b"epoch 1\n"
    assert setup.staging.fetched - before == 8  # only what was new came, not the 1 MB again
    objects[log] = b"sent anew\n"  # a shorter object: the file was written anew, so it is read whole
    setup.executor._read_at.clear()
    assert await setup.executor.read_logs("run3live", 0, 100) == b"sent anew\n"


async def test_an_output_that_never_came_back_is_named(setup: Setup) -> None:
    await recorded_run(setup, "run1done", "0")
    (setup.root / "run1done" / "outputs.json").write_text('["/model"]')
    with pytest.raises(FileNotFoundError, match="the output at /model did not come back from the Slurm job"):
        await setup.executor.stage_outputs("run1done")


async def test_cleanup_cancels_a_job_slurm_would_never_run(setup: Setup) -> None:
    await recorded_run(setup, "run3live", None)
    set_state(setup.api, "shipyard-run3live", "PENDING", "PartitionNodeLimit")
    assert (await setup.executor.status("run3live")).state is JobState.KILLED
    await setup.executor.cleanup("run3live")
    assert ("DELETE", "/slurm/v0.0.38/job/4") in [(m, p) for m, p, _, _ in setup.api.requests]


# --- the submitted script, run here -------------------------------------------------------------------


async def test_the_script_fetches_runs_and_sends_back_the_log_outputs_and_exit_code(
        setup: Setup, tmp_path: Path) -> None:
    runner, setup.staging.url = await serve(setup.staging.app())
    work = tmp_path / "scratch"
    work.mkdir()
    cluster = Cluster("hpc", ClusterKind.SLURM, ssh_user=USER, credential="c", work_dir=str(work),
                      slurmrestd_url="http://slurm.example:6820")
    executor = setup.again(cluster)
    command = ('python3 train.py; echo "urls:$SHIPYARD_INPUTS_URL$SHIPYARD_PUSH" > "$SHIPYARD_OUTPUT/env"; '
               'cp "$SHIPYARD_MOUNT_DATA/rows.csv" "$SHIPYARD_MOUNT_MODEL/w"; echo bye >&2')
    try:
        await executor.submit(await a_job(setup, tmp_path, command=command))
        [body] = submitted(setup.api)
        process = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", body["script"], env=body["job"]["environment"], cwd=work)
        assert await asyncio.wait_for(process.wait(), 120) == 0
    finally:
        await runner.cleanup()
    objects = setup.staging.objects
    assert objects[staged("run7new", "exit_code")] == b"0"
    assert b"loss=0.5" in objects[staged("run7new", "stdout")] and b"bye" in objects[staged("run7new", "log")]
    assert not (work / "runs" / "run7new").exists()  # the job directory went
    outputs = await executor.stage_outputs("run7new")
    own = await read_manifest(setup.blobs, outputs[""])
    assert [entry.path for entry in own.entries] == ["env"]
    assert await blob_text(setup.blobs, own.entries[0].sha256) == "urls:\n"  # the URLs left before it ran
    model = await read_manifest(setup.blobs, outputs["/model"])
    assert [entry.path for entry in model.entries] == ["w"]
    await executor.close()


async def test_a_trials_job_sends_the_files_its_study_reads_and_run_svc_reads_them_back(
        setup: Setup, tmp_path: Path) -> None:
    runner, setup.staging.url = await serve(setup.staging.app())
    work = tmp_path / "scratch"
    work.mkdir()
    cluster = Cluster("hpc", ClusterKind.SLURM, ssh_user=USER, credential="c", work_dir=str(work),
                      slurmrestd_url="http://slurm.example:6820")
    executor = setup.again(cluster)
    command = ("mkdir -p log && echo accuracy=0.5 > log/metrics.log && echo accuracy=0.7 >> log/metrics.log "
               "&& ln -s /etc/passwd log/passwd && env > log/env.txt")
    try:
        await executor.submit(await a_job(setup, tmp_path, command=command, collector_path="/log"))
        [body] = submitted(setup.api)
        environment = body["job"]["environment"]
        assert json.loads(environment["SHIPYARD_COLLECT"]) == {
            "base": f"{work}/runs/run7new/code", "path": "/log", "max": 16 << 20}
        assert environment["SHIPYARD_COLLECT_URL"].startswith(
            f"{setup.staging.url}/staging/runs/run7new/collected.json?")
        process = await asyncio.create_subprocess_exec("/bin/sh", "-c", body["script"], env=environment,
                                                       cwd=work)
        assert await asyncio.wait_for(process.wait(), 120) == 0
    finally:
        await runner.cleanup()
    files = await executor.read_run_files("run7new", "/log", 16 << 20)
    assert files is not None and set(files) == {"/log/metrics.log", "/log/env.txt"}  # not the link
    assert files["/log/metrics.log"] == b"accuracy=0.5\naccuracy=0.7\n"
    assert b"SHIPYARD_COLLECT" not in files["/log/env.txt"]  # where the files go left before the command
    await executor.close()


async def test_only_a_trial_whose_study_reads_files_gets_the_sender(setup: Setup, tmp_path: Path) -> None:
    await setup.executor.submit(await a_job(setup, tmp_path))
    [body] = submitted(setup.api)
    assert "SHIPYARD_COLLECT" not in body["job"]["environment"]
    assert "read_job_files" not in body["script"] and "read_job_files" in batch_script("/w/runs/r1", True)
    assert await setup.executor.read_run_files("run7new", "/log", 1 << 20) == {}


# --- the cluster record and how run-svc opens it ------------------------------------------------------


@pytest.mark.parametrize(("fields", "field_name"), [
    ({"kind": ClusterKind.LSF}, "cluster.slurmrestd_url"),
    ({"slurmrestd_url": "ftp://slurm.example"}, "cluster.slurmrestd_url"),
    ({"slurmrestd_url": "http://user:pw@slurm.example"}, "cluster.slurmrestd_url"),
    ({"slurmrestd_url": "http://"}, "cluster.slurmrestd_url"),
    ({"host": "login.example"}, "cluster.host"),
    ({"ssh_port": 2222}, "cluster.ssh_port"),
    ({"credential": ""}, "cluster.credential"),
    ({"ssh_user": ""}, "cluster.ssh_user"),
    ({"work_dir": ""}, "cluster.work_dir"),
])
def test_a_slurmrestd_cluster_is_checked_when_added(fields: dict[str, Any], field_name: str) -> None:
    settings: dict[str, Any] = {"name": "hpc", "kind": ClusterKind.SLURM, "ssh_user": USER,
                                "credential": "hpc-jwt", "work_dir": "/scratch/sy",
                                "slurmrestd_url": "https://slurm.example:6820", **fields}
    with pytest.raises(InvalidArgument) as raised:
        Cluster(**settings).checked()
    assert raised.value.field == field_name


def test_a_slurmrestd_cluster_needs_no_host_and_no_credential_when_each_user_signs_in() -> None:
    cluster = Cluster("hpc", ClusterKind.SLURM, ssh_user=USER, work_dir="/scratch", ssh_port=22,
                      login_required=True, slurmrestd_url="https://slurm.example:6820").checked()
    assert cluster.ssh_port == 0 and cluster.host == ""


async def no_pin(cluster: str, key: str) -> None:
    raise AssertionError("a slurmrestd cluster has no host key")


async def test_slurmrestd_clusters_take_runs_only_with_an_s3_blob_store(tmp_path: Path) -> None:
    local = RemoteClusters(tmp_path, LocalBlobStore(tmp_path / "blobs"), FakeCredentialClient(), no_pin)
    assert "a job submitted through slurmrestd" in local.unsupported(CLUSTER)
    with pytest.raises(FailedPrecondition, match="S3 blob store"):
        local.open(CLUSTER)
    s3 = S3BlobStore("127.0.0.1:9", "ak", "sk", "shipyard")  # nothing is asked of it here
    assert RemoteClusters(tmp_path, s3, FakeCredentialClient(), no_pin).unsupported(CLUSTER) == ""


async def test_the_executor_signs_in_with_the_operators_token_or_the_users_own(setup: Setup,
                                                                              tmp_path: Path) -> None:
    credentials = FakeCredentialClient()
    clusters = RemoteClusters(tmp_path, S3BlobStore("127.0.0.1:9", "ak", "sk", "shipyard"), credentials,
                              no_pin)
    cluster = Cluster("hpc", ClusterKind.SLURM, owner="ops", ssh_user=USER, credential="hpc-jwt",
                      work_dir="/scratch", slurmrestd_url=setup.api.url)
    executor = clusters.open(cluster)
    assert isinstance(executor, SlurmRestExecutor) and executor.name == "slurm:hpc"
    await recorded_run(setup, "run3live", None, root=tmp_path / "hpc")
    with pytest.raises(FailedPrecondition, match="credential 'hpc-jwt' of ops, which is gone"):
        await executor.status("run3live")
    credentials.add("ops", "hpc-jwt", "an-ssh-key", type="ssh-key")
    with pytest.raises(FailedPrecondition, match="whose type is ssh-key, not token"):
        await executor.status("run3live")
    credentials.stored.clear()
    credentials.add("ops", "hpc-jwt", JWT + "\n", type="token")
    assert (await executor.status("run3live")).state is JobState.RUNNING
    assert setup.api.requests[-1][2]["X-SLURM-USER-TOKEN"] == JWT
    await executor.close()
    own = Cluster("hpc", ClusterKind.SLURM, owner="ops", ssh_user=USER, work_dir="/scratch",
                  login_required=True, slurmrestd_url=setup.api.url)
    assert "--token-file <your JWT>" in await clusters.missing_login(own, "ana")
    credentials.add("ana", "cluster-hpc", "ana-jwt", type="token", username="ana")
    assert await clusters.missing_login(own, "ana") == ""


def test_the_script_keeps_nothing_but_paths_and_the_staging_scripts() -> None:
    script = batch_script("/scratch/sy/runs/r1")
    assert "X-SLURM" not in script and "://" not in script
