"""The Kubernetes executor: each run one Job in the cluster's namespace (see ``kubernetes_jobs``), its code
and inputs staged through the S3 blob store (presigned URLs: the pod never sees the platform's keys).

run-svc speaks to the API server with the kubeconfig the operator stored as a credential, in a client of
its own (never the process-wide configuration), the blocking client in worker threads. The Job is named
``shipyard-<run id>``: after a restart run-svc finds it again by that name and never creates a run twice
(a second create is refused as AlreadyExists). Statuses come from one list of the runs' Jobs and one of
their pods per poll, shared by every run of the cluster. Logs are the pod's (its init container's, then
the command's: stdout and stderr together), kept under run-svc's own directory as they are read; metrics
are the ``name=value`` lines of that log (the SDK prints its metrics there: a pod has no metrics file). A
trial whose study has a File or TensorFlowEvent collector has its pod send the files at the collector's path
to a staged object every few seconds and at its end; ``read_run_files`` reads what it sent last. When a run
ends its log comes home and the Job, its Secret and the staged files go.

A manually distributed run is one Indexed Job of a master (index 0) and its workers, beside a headless
Service (see ``kubernetes_jobs``). It succeeds when every pod has; the first pod to fail ends it (the Job
is never retried, and Kubernetes then stops the others), with that pod's exit code: the master's when it
failed too, then the lowest index's. Its logs and metrics are the master's pod's alone, as are its
outputs. The Service goes with the Job: owned by it, and deleted with it by stop, cleanup and remove.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from kubernetes.client import ApiClient, ApiException, BatchV1Api, CoreV1Api, V1Job, V1Pod, V1Service
from kubernetes.client.models import V1ContainerStateTerminated, V1ContainerStatus
from urllib3.exceptions import HTTPError

from shipyard.kit.blob.checkout import check_out, read_manifest
from shipyard.kit.blob.port import BlobStore
from shipyard.kit.blob.tree import BlobTree
from shipyard.kit.environments import sdk_module
from shipyard.kit.errors import FailedPrecondition
from shipyard.kit.kubeconfig import api_client, api_message
from shipyard_run.adapters.kubernetes_jobs import (
    FETCH_CONTAINER,
    INDEX_KEY,
    OWN_VOLUME,
    RUN_CONTAINER,
    RUN_ID_LABEL,
    RUN_ROOT,
    SELECTOR,
    StagingUrls,
    job_name,
    job_name_of,
    job_owner,
    pod_count,
    run_objects,
)
from shipyard_run.adapters.run_contract import (
    MetricCursor,
    WithoutTensorBoard,
    load_cursor,
    read_at,
    read_points,
    save_cursor,
)
from shipyard_run.adapters.staged_files import (
    COLLECTED,
    URL_LIFETIME,
    Staging,
    pack,
    read_collected,
    store_staged_outputs,
)
from shipyard_run.app.ports import Job, JobState, JobStatus
from shipyard_run.domain.clusters import Cluster
from shipyard_run.domain.runs import MetricPoint

LISTING_TTL_S = 0.2  # how long one list of Jobs and pods answers every run's status
LOG_EVERY_S = 1.0  # a running pod's log is fetched at most this often
LOG_MAX = 64 << 20  # the most of a pod's log run-svc fetches
LOG_STEP = 1 << 20  # a log this long is fetched every LOG_EVERY_S, one twice as long half as often
REQUEST_TIMEOUT_S = 30
IMAGE_PULL_GRACE_S = 300.0  # how long a pod may fail to pull its image before the run is given up
# Image pulls that fail for good at once, and those Kubernetes retries (with backoff).
PULL_FAILS = frozenset({"InvalidImageName", "ErrImageNeverPull"})
PULL_RETRIES = frozenset({"ErrImagePull", "ImagePullBackOff"})
DISTRIBUTED_MARK = "service"  # in the run's own directory: its Job has a Service beside it

T = TypeVar("T")
log = logging.getLogger(__name__)


Kubeconfig = Callable[[], Awaitable[str]]
"""The cluster's kubeconfig (YAML), read when run-svc first connects."""


def ended_container(pod: V1Pod | None, name: str) -> V1ContainerStateTerminated | None:
    """How the pod's container (or init container) ``name`` ended, if it has."""
    status = _container(pod, name)
    if status is None or status.state is None:
        return None
    return status.state.terminated


def _container(pod: V1Pod | None, name: str) -> V1ContainerStatus | None:
    if pod is None or pod.status is None:
        return None
    statuses = [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]
    return next((status for status in statuses if status.name == name), None)


def newest(pods: list[V1Pod]) -> V1Pod | None:
    """The pod created last (a Job that lost a pod may have had another)."""
    def created(pod: V1Pod) -> datetime:
        made = pod.metadata.creation_timestamp if pod.metadata else None
        return made or datetime.min.replace(tzinfo=UTC)

    return max(pods, key=created, default=None)


def pod_index(pod: V1Pod) -> int:
    """The pod's index in an Indexed Job (0, the master, for a one-pod run's)."""
    metadata = pod.metadata
    said = ((metadata.annotations or {}).get(INDEX_KEY) or (metadata.labels or {}).get(INDEX_KEY)
            if metadata is not None else None)
    return int(said) if said and said.isdigit() else 0


def by_index(pods: list[V1Pod]) -> list[V1Pod]:
    """The newest pod of each index, in index order."""
    indexes = sorted({pod_index(pod) for pod in pods})
    return [pod for index in indexes if (pod := newest([p for p in pods if pod_index(p) == index]))]


def master(pods: list[V1Pod]) -> V1Pod | None:
    """The run's pod whose log is the run's: the only one, or a distributed run's index 0."""
    return newest([pod for pod in pods if pod_index(pod) == 0])


def deciding_pod(pods: list[V1Pod]) -> V1Pod | None:
    """The pod whose end is the run's: of the failed ones, those that failed on their own before those
    Kubernetes deleted once another had failed, the master first, then by index; else the master."""
    failed = [pod for pod in by_index(pods) if pod.status is not None and pod.status.phase == "Failed"]

    def order(pod: V1Pod) -> tuple[bool, int]:
        return pod.metadata is not None and pod.metadata.deletion_timestamp is not None, pod_index(pod)

    return min(failed, key=order, default=None) or master(pods)


def outcome(job: V1Job, pods: list[V1Pod]) -> JobStatus | None:
    """How the run's Job ended, from its status and its pod's; None while it has not."""
    status = job.status
    name = job.metadata.name if job.metadata else ""
    if status is None:
        return None
    true = {condition.type: condition for condition in status.conditions or [] if condition.status == "True"}
    if "Complete" in true or (status.succeeded or 0) >= _pod_count(job):  # an Indexed Job's: every index
        return JobStatus(JobState.EXITED, 0)
    failed = true.get("Failed")
    if failed is None and not status.failed:
        return None
    if failed is not None and failed.reason == "DeadlineExceeded":
        return JobStatus(JobState.KILLED, 0, "it ran past its deadline (Kubernetes: DeadlineExceeded)")
    pod = deciding_pod(pods)
    who = _who(pod, job)
    subject, whose = (f"its {who}", f"its {who}'s") if who else ("it", "its")
    ran = ended_container(pod, RUN_CONTAINER)
    if ran is not None:
        if ran.reason == "OOMKilled":
            return JobStatus(JobState.KILLED, ran.exit_code,
                             f"{subject} ran out of memory (Kubernetes: OOMKilled)")
        return JobStatus(JobState.EXITED, ran.exit_code)
    fetched = ended_container(pod, FETCH_CONTAINER)
    if fetched is not None and fetched.exit_code != 0:
        why = _reason(fetched.reason, fetched.message)
        return JobStatus(JobState.GONE, 0, f"{whose} code and inputs could not be fetched into its pod "
                                           f"(exit code {fetched.exit_code}{why}); its log says why")
    if pod is not None and pod.status is not None and pod.status.reason:
        why = _reason(pod.status.reason, pod.status.message)
        return JobStatus(JobState.GONE, 0, f"Kubernetes ended {whose} pod{why}")
    why = _reason(failed.reason, failed.message) if failed is not None else ""
    return JobStatus(JobState.GONE, 0, f"Kubernetes job {name} failed{why}")


def _pod_count(job: V1Job) -> int:
    """The pods the Job runs to completion: a distributed run's master and workers, else one."""
    return (job.spec.completions if job.spec is not None else None) or 1


def _who(pod: V1Pod | None, job: V1Job) -> str:
    """Which of a distributed run's pods ended it ("master", "worker 2"); "" for a one-pod run."""
    if pod is None or _pod_count(job) == 1:
        return ""
    index = pod_index(pod)
    return "master" if index == 0 else f"worker {index}"


def pull_failure(pods: list[V1Pod]) -> tuple[str, bool]:
    """Why one of the run's pods cannot pull its image ("" when nothing says so), and whether for good."""
    for pod in by_index(pods):
        if pod.status is None:
            continue
        for status in [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]:
            waiting = status.state.waiting if status.state else None
            if waiting is not None and waiting.reason in PULL_FAILS | PULL_RETRIES:
                why = _reason(waiting.reason, waiting.message)
                return f"its image {status.image} could not be pulled{why}", waiting.reason in PULL_FAILS
    return "", False


def _phases(pods: list[V1Pod]) -> str:
    """Where the run's pods are: "pod Running", or a distributed run's "pods 0 Running, 1 Pending"."""
    def phase(pod: V1Pod | None) -> str:
        return (pod.status.phase if pod is not None and pod.status is not None else None) or "Pending"

    latest = by_index(pods)
    if len(latest) <= 1:
        return f"pod {phase(master(pods))}"
    return "pods " + ", ".join(f"{pod_index(pod)} {phase(pod)}" for pod in latest)


def _reason(reason: str | None, message: str | None) -> str:
    said = ": ".join(part for part in (reason, (message or "").strip()[:300]) if part)
    return f" ({said})" if said else ""


@dataclass
class _Listing:
    """The last lists of the runs' Jobs and pods, by run id, and when they came."""

    jobs: dict[str, V1Job] = field(default_factory=dict)
    pods: dict[str, list[V1Pod]] = field(default_factory=dict)
    at: float = -1.0


class KubernetesExecutor(WithoutTensorBoard):
    """Runs a cluster's runs as Kubernetes Jobs in the cluster's namespace."""

    def __init__(self, cluster: Cluster, kubeconfig: Kubeconfig, blobs: BlobStore, staging: Staging,
                 root: Path, image_pull_grace_s: float = IMAGE_PULL_GRACE_S) -> None:
        """``root``: run-svc's own directory for this cluster (staging, cursors, logs brought home)."""
        self.cluster = cluster
        self.name = f"kubernetes:{cluster.name}"
        self.namespace = cluster.namespace or "default"
        self._kubeconfig = kubeconfig
        self._blobs = blobs
        self._tree = BlobTree(blobs)
        self._staging = staging
        self._root = root
        self._pull_grace_s = image_pull_grace_s
        self._client: ApiClient | None = None
        self._client_lock = asyncio.Lock()
        self._listing = _Listing()
        self._listing_lock = asyncio.Lock()
        self._pull_failing: dict[str, float] = {}
        self._log_at: dict[str, float] = {}
        self._cursors: dict[str, MetricCursor] = {}
        self._read_at: dict[str, float] = {}
        self._ended: set[str] = set()
        self.on_exit = lambda: None

    def _local(self, run_id: str) -> Path:
        job_name(run_id)  # refuses an id that is no name (it names a folder here too)
        return self._root / run_id

    def gpu_count(self) -> int:
        return self.cluster.gpus

    def isolation_missing(self) -> str:
        return ""  # a run is a pod of the cluster's, apart from the platform

    # --- the API server -----------------------------------------------------------------------------

    async def _api(self) -> ApiClient:
        async with self._client_lock:
            if self._client is None:
                text = await self._kubeconfig()
                try:
                    client: ApiClient = await asyncio.to_thread(api_client, text,
                                                                self._root / "kubeconfig-files")
                except ValueError as exc:
                    raise FailedPrecondition(f"the kubeconfig of cluster {self.cluster.name!r} "
                                             f"(credential {self.cluster.kubeconfig_credential!r}) does not "
                                             f"work: {exc}") from None
                self._client = client
            return self._client

    async def _call(self, call: Callable[[ApiClient], T]) -> T:
        """``call`` on the cluster's client in a worker thread; FailedPrecondition saying what the API server
        answered, or that it could not be reached."""
        client = await self._api()
        try:
            return await asyncio.to_thread(call, client)
        except ApiException as exc:
            raise FailedPrecondition(f"the API server of cluster {self.cluster.name!r} answered "
                                     f"{exc.status} {exc.reason}: {api_message(exc)}") from exc
        except HTTPError as exc:
            raise FailedPrecondition(f"the API server of cluster {self.cluster.name!r} could not be "
                                     f"reached: {exc}") from exc

    async def _absent_ok(self, call: Callable[[ApiClient], object]) -> None:
        """``call``, which may find its object gone already (404): a delete."""
        def tolerant(client: ApiClient) -> None:
            try:
                call(client)
            except ApiException as exc:
                if exc.status != 404:
                    raise

        await self._call(tolerant)

    async def _lists(self, fresh: bool = False) -> _Listing:
        """The runs' Jobs and pods as the API server lists them now (one list of each shared by every
        run's status in a poll)."""
        async with self._listing_lock:
            if fresh or time.monotonic() - self._listing.at > LISTING_TTL_S:
                jobs = await self._call(lambda c: BatchV1Api(c).list_namespaced_job(
                    self.namespace, label_selector=SELECTOR, _request_timeout=REQUEST_TIMEOUT_S))
                pods = await self._call(lambda c: CoreV1Api(c).list_namespaced_pod(
                    self.namespace, label_selector=SELECTOR, _request_timeout=REQUEST_TIMEOUT_S))
                listing = _Listing(at=time.monotonic())
                for item in jobs.items:
                    if run_id := _run_id(item.metadata):
                        listing.jobs[run_id] = item
                for pod in pods.items:
                    if run_id := _run_id(pod.metadata):
                        listing.pods.setdefault(run_id, []).append(pod)
                self._listing = listing
            return self._listing

    # --- the executor ------------------------------------------------------------------------------

    async def submit(self, job: Job) -> tuple[str, ...]:
        image = job.environment.url if job.environment is not None else ""
        if not image:
            raise FailedPrecondition(f"run {job.name!r} names no image with a URL: a Kubernetes cluster "
                                     "runs a run in its catalog image (shipyard image add … --url)")
        if job.run_id in (await self._lists(fresh=True)).jobs:  # created before run-svc restarted
            await asyncio.to_thread(_mark_submitted, self._local(job.run_id))
            return self._notes(job, image)
        await asyncio.to_thread(self._remember, job)
        try:
            created = await self._create(job, image)
        except BaseException:  # nothing of the run stays on the cluster nor in the staging area
            await self._undo(job.run_id)
            raise
        await asyncio.to_thread(_mark_submitted, self._local(job.run_id))
        if created is not None:
            await self._own(created, "secret", CoreV1Api.patch_namespaced_secret)
            if pod_count(job) > 1:
                await self._own(created, "service", CoreV1Api.patch_namespaced_service)
        self._listing.at = -1.0  # the next status lists again
        return self._notes(job, image)

    async def _create(self, job: Job, image: str) -> V1Job | None:
        """Stage the inputs, then create the Secret and the Job; the Job as created (None: it existed)."""
        await self._stage_inputs(job)
        urls = StagingUrls(
            await self._staging.presign_get(_inputs(job.run_id), URL_LIFETIME),
            tuple([await self._staging.presign_put(_output(job.run_id, index), URL_LIFETIME)
                   for index in range(len(job.output_paths))]),
            (await self._staging.presign_put(_collected(job.run_id), URL_LIFETIME)
             if job.collector_path else ""),
        )
        objects = run_objects(job, self.namespace, image, urls)
        service = objects.service
        try:
            await self._call(lambda c: _put_secret(CoreV1Api(c), self.namespace, objects.secret))
            if service is not None:
                await self._call(lambda c: _put_service(CoreV1Api(c), self.namespace, service))
            return await self._call(lambda c: _create_job(BatchV1Api(c), self.namespace, objects.job))
        except FailedPrecondition as exc:
            raise FailedPrecondition(f"cluster {self.cluster.name!r} did not take job "
                                     f"{job_name(job.run_id)}: {exc.message}") from exc

    async def _undo(self, run_id: str) -> None:
        """Remove what a submit that failed may have made; what cannot be removed now is logged."""
        try:
            await self._forget_objects(run_id)
        except (FailedPrecondition, OSError) as exc:
            log.warning("what run %s's failed submit made on cluster %s could not all be removed: %s",
                        run_id, self.cluster.name, exc)

    async def _own(self, created: V1Job, kind: str, patch: Callable[..., object]) -> None:
        """Make the Job's Secret or Service (``patch``: CoreV1Api's patch of that kind) the Job's, so that
        Kubernetes deletes it with the Job. run-svc deletes it too when the run ends: a refusal (no right
        to patch it) is logged, and the run goes on."""
        def owned(client: ApiClient) -> object:
            owner = client.sanitize_for_serialization(job_owner(created))
            return patch(CoreV1Api(client), job_name_of(created), self.namespace,
                         {"metadata": {"ownerReferences": [owner]}},
                         _content_type="application/merge-patch+json", _request_timeout=REQUEST_TIMEOUT_S)

        try:
            await self._call(owned)
        except FailedPrecondition as exc:
            log.warning("the %s of job %s stays until its run ends: %s", kind, job_name_of(created),
                        exc.message)

    def _notes(self, job: Job, image: str) -> tuple[str, ...]:
        return (f"Kubernetes job {job_name(job.run_id)} in namespace {self.namespace} of cluster "
                f"{self.cluster.name}, image {image}: the run's files are under {RUN_ROOT} in its pod, its "
                "inputs and outputs at their mount paths",)

    def _remember(self, job: Job) -> None:
        """What run-svc needs of the job later, whatever restarts: its outputs' mount paths, and whether
        it has a Service."""
        local = self._local(job.run_id)
        local.mkdir(parents=True, exist_ok=True)
        (local / "outputs.json").write_text(json.dumps(list(job.output_paths)))
        for stale in ("log", "log.part", "metrics.cursor", "submitted", DISTRIBUTED_MARK):
            (local / stale).unlink(missing_ok=True)
        if pod_count(job) > 1:  # its Service goes with its Job, even when run-svc restarted since
            (local / DISTRIBUTED_MARK).touch()

    async def _stage_inputs(self, job: Job) -> None:
        """One tar of the run's own files (``shipyard/``) and each input (``input-<n>/``), staged in S3."""
        local = self._local(job.run_id)
        stage = local / "stage"
        await asyncio.to_thread(shutil.rmtree, stage, True)
        for index, item in enumerate(job.inputs):
            manifest = await read_manifest(self._blobs, item.manifest_digest)
            await check_out(self._blobs, manifest, stage / f"input-{index}", link=False)
        code = await read_manifest(self._blobs, job.code_manifest)
        await check_out(self._blobs, code, stage / OWN_VOLUME / "code", link=False)
        await asyncio.to_thread(_lay_out, stage / OWN_VOLUME, job)
        tar = local / "inputs.tar"
        await asyncio.to_thread(pack, stage, tar)
        await asyncio.to_thread(shutil.rmtree, stage, True)
        try:
            await self._staging.put_staged(_inputs(job.run_id), tar)
        finally:
            await asyncio.to_thread(tar.unlink, True)

    async def status(self, run_id: str) -> JobStatus:
        listing = await self._lists()
        found = listing.jobs.get(run_id)
        local = self._local(run_id)
        if found is None:
            if (local / "log").exists():  # ended and brought home already
                return JobStatus(JobState.GONE, detail="its Kubernetes job was removed")
            if not (local / "submitted").exists():
                return JobStatus(JobState.NOT_STARTED)
            self._ended.add(run_id)
            return JobStatus(JobState.GONE, detail=f"Kubernetes no longer has its job {job_name(run_id)} "
                                                   "(deleted on the cluster, not through Shipyard)")
        pods = listing.pods.get(run_id, [])
        ended = outcome(found, pods)
        if ended is None:
            return self._waiting(run_id, pods)
        self._pull_failing.pop(run_id, None)
        self._ended.add(run_id)
        return ended

    def _waiting(self, run_id: str, pods: list[V1Pod]) -> JobStatus:
        """A Job not ended: RUNNING, unless a pod has failed to pull its image for too long."""
        failing, for_good = pull_failure(pods)
        if not failing:
            self._pull_failing.pop(run_id, None)
            return JobStatus(JobState.RUNNING, detail=f"Kubernetes job {job_name(run_id)}: {_phases(pods)}")
        since = self._pull_failing.setdefault(run_id, time.monotonic())
        if for_good or time.monotonic() - since >= self._pull_grace_s:
            self._ended.add(run_id)
            return JobStatus(JobState.GONE, detail=failing)
        return JobStatus(JobState.RUNNING, detail=failing)

    async def stop(self, run_id: str) -> None:
        # Kubernetes sends the pod SIGTERM, then SIGKILL after its grace period; the Job goes once its
        # pod has (Foreground), so the run's status says RUNNING until then.
        await self._absent_ok(lambda c: BatchV1Api(c).delete_namespaced_job(
            job_name(run_id), self.namespace, propagation_policy="Foreground",
            _request_timeout=REQUEST_TIMEOUT_S))
        await self._delete_service(run_id)
        self._listing.at = -1.0

    async def read_logs(self, run_id: str, offset: int, max_bytes: int) -> bytes:
        home = self._local(run_id) / "log"
        if not home.exists():
            await self._fetch_log(run_id)
            home = home.with_name("log.part")
        return await asyncio.to_thread(read_at, home, offset, max_bytes)

    async def _fetch_log(self, run_id: str, fresh: bool = False) -> None:
        """Bring the pod's log (its init container's, then the command's; a distributed run's master's) to
        ``log.part``, at most every LOG_EVERY_S; a log that came back shorter (rotated on the node) does not
        replace a longer one."""
        now = time.monotonic()
        if not fresh and now < self._log_at.get(run_id, now):
            return
        pod = master((await self._lists()).pods.get(run_id, []))
        if pod is None or pod.metadata is None or not pod.metadata.name:
            return
        pod_name = pod.metadata.name
        fetched = ended_container(pod, FETCH_CONTAINER)
        # The init container prints nothing when it succeeds: its log is asked for only when it did not.
        containers = [RUN_CONTAINER] if fetched is not None and fetched.exit_code == 0 else [FETCH_CONTAINER,
                                                                                               RUN_CONTAINER]
        data = b"".join([await self._container_log(pod_name, container) for container in containers])
        # The whole log comes each time (the API reads no offsets): a long one is fetched less often.
        self._log_at[run_id] = now + LOG_EVERY_S * max(1.0, len(data) / LOG_STEP)
        await asyncio.to_thread(_keep_longer, self._local(run_id) / "log.part", data)

    async def _container_log(self, pod: str, container: str) -> bytes:
        def read(client: ApiClient) -> bytes:
            try:  # the raw answer, not decoded: a log need not be UTF-8
                response: Any = CoreV1Api(client).read_namespaced_pod_log(
                    pod, self.namespace, container=container, limit_bytes=LOG_MAX, _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT_S)
            except ApiException as exc:
                if exc.status in (400, 404):  # not started yet, or gone
                    return b""
                raise
            return bytes(response.data)

        return await self._call(read)

    async def new_metrics(self, run_id: str) -> list[MetricPoint]:
        now = time.monotonic()
        if run_id not in self._ended and now - self._read_at.get(run_id, -LOG_EVERY_S) < LOG_EVERY_S:
            return []
        self._read_at[run_id] = now
        local = self._local(run_id)
        cursor = self._cursors.get(run_id)
        if cursor is None:
            cursor = self._cursors[run_id] = await asyncio.to_thread(load_cursor, local / "metrics.cursor")
        await self._fetch_log(run_id, fresh=run_id in self._ended)
        log = await asyncio.to_thread(read_at, local / "log.part", cursor.log, LOG_MAX)
        before = cursor.log
        points = read_points(cursor, log, b"", datetime.now(UTC))
        if cursor.log != before:
            await asyncio.to_thread(save_cursor, local / "metrics.cursor", cursor)
        return points

    async def read_run_files(self, run_id: str, path: str, max_bytes: int) -> dict[str, bytes] | None:
        """What the pod sent last of its study's collector path (``Job.collector_path``; checked, bounded:
        the trial could have written anything there)."""
        return await read_collected(self._staging, _collected(run_id), max_bytes)

    async def stage_outputs(self, run_id: str) -> dict[str, str]:
        local = self._local(run_id)
        paths = json.loads(await asyncio.to_thread((local / "outputs.json").read_text))
        staged = await store_staged_outputs(self._staging, self._tree, local, paths,
                                            lambda index: _output(run_id, index), "the pod")
        await self._blobs.sync()
        return staged

    async def cleanup(self, run_id: str) -> None:
        """Bring the log home, then remove the Job (its pod goes with it), its Secret and staged files."""
        local = self._local(run_id)
        await self._fetch_log(run_id, fresh=True)
        await asyncio.to_thread(_bring_home, local)
        await self._forget_objects(run_id)
        self._forget(run_id)

    async def remove(self, run_id: str) -> None:
        await self._forget_objects(run_id)
        await asyncio.to_thread(shutil.rmtree, self._local(run_id), True)
        self._forget(run_id)

    async def _forget_objects(self, run_id: str) -> None:
        """Delete the run's Job (and its pods), Secret, Service and staged files, whichever exist."""
        name = job_name(run_id)
        await self._absent_ok(lambda c: BatchV1Api(c).delete_namespaced_job(
            name, self.namespace, propagation_policy="Background", _request_timeout=REQUEST_TIMEOUT_S))
        await self._absent_ok(lambda c: CoreV1Api(c).delete_namespaced_secret(
            name, self.namespace, _request_timeout=REQUEST_TIMEOUT_S))
        await self._delete_service(run_id)
        await self._staging.delete_staged(f"runs/{run_id}/")
        self._listing.at = -1.0

    async def _delete_service(self, run_id: str) -> None:
        """Delete a distributed run's Service, if it has one (a one-pod run's account may have no right
        to Services at all)."""
        if await asyncio.to_thread((self._local(run_id) / DISTRIBUTED_MARK).exists):
            await self._absent_ok(lambda c: CoreV1Api(c).delete_namespaced_service(
                job_name(run_id), self.namespace, _request_timeout=REQUEST_TIMEOUT_S))

    def _forget(self, run_id: str) -> None:
        for memo in (self._cursors, self._read_at, self._log_at, self._pull_failing):
            memo.pop(run_id, None)
        self._ended.discard(run_id)

    async def close(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)
            self._client = None


def _run_id(metadata: Any) -> str:
    labels = (metadata.labels if metadata is not None else None) or {}
    return str(labels.get(RUN_ID_LABEL, ""))


def _put_secret(core: CoreV1Api, namespace: str, secret: Any) -> None:
    """Create the run's Secret; one left by an attempt that never created its Job is replaced (the run's
    token is new at each start)."""
    try:
        core.create_namespaced_secret(namespace, secret, _request_timeout=REQUEST_TIMEOUT_S)
    except ApiException as exc:
        if exc.status != 409:
            raise
        core.replace_namespaced_secret(secret.metadata.name, namespace, secret,
                                       _request_timeout=REQUEST_TIMEOUT_S)


def _put_service(core: CoreV1Api, namespace: str, service: V1Service) -> None:
    """Create a distributed run's Service; one left by an attempt that never created its Job stays (it
    selects the same pods)."""
    try:
        core.create_namespaced_service(namespace, service, _request_timeout=REQUEST_TIMEOUT_S)
    except ApiException as exc:
        if exc.status != 409:
            raise


def _create_job(batch: BatchV1Api, namespace: str, job: V1Job) -> V1Job | None:
    """Create the Job; None when it exists already (created before a restart: never twice)."""
    try:
        return batch.create_namespaced_job(namespace, job, _request_timeout=REQUEST_TIMEOUT_S)
    except ApiException as exc:
        if exc.status == 409:
            return None
        raise


def _inputs(run_id: str) -> str:
    return f"runs/{run_id}/inputs.tar"


def _collected(run_id: str) -> str:
    return f"runs/{run_id}/{COLLECTED}"


def _output(run_id: str, index: int) -> str:
    return f"runs/{run_id}/outputs/{index}.tar"


def _lay_out(own: Path, job: Job) -> None:
    """The run's own files beside its code (as the Slurm executor lays out its job directory)."""
    for name in ("code", "output", "config", "tensorboard", "home", "sdk/shipyard"):
        (own / name).mkdir(parents=True, exist_ok=True)
    if job.config_file_name:
        (own / "config" / job.config_file_name).write_bytes(job.config)
    (own / "hyperparameters.json").write_text(json.dumps(job.hyperparameters, indent=2, sort_keys=True))
    (own / "sdk/shipyard/__init__.py").write_text('"""Shipyard\'s SDK for runs."""\n')
    shutil.copyfile(sdk_module(), own / "sdk/shipyard/sdk.py")


def _mark_submitted(local: Path) -> None:
    local.mkdir(parents=True, exist_ok=True)
    (local / "submitted").touch()


def _keep_longer(path: Path, data: bytes) -> None:
    try:
        if path.stat().st_size >= len(data):
            return
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _bring_home(local: Path) -> None:
    """The log read last becomes the run's log (empty when none could be read)."""
    part = local / "log.part"
    local.mkdir(parents=True, exist_ok=True)
    if part.exists():
        part.replace(local / "log")
    else:
        (local / "log").write_bytes(b"")
