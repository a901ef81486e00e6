"""Model servers on a Kubernetes cluster: each endpoint one KServe InferenceService in the cluster's
namespace (``adapters.kserve`` builds it), its model version's files read from S3.

``ensure`` lays the version's files out under the S3 prefix KServe's storage initializer reads
(``adapters.model_files``), then creates the InferenceService, or replaces it (keeping its
``resourceVersion``) when it serves something else: KServe rolls the new revision out and keeps the old
one serving until it is ready. The document's fingerprint is kept in an annotation, so an ensure that
asks for what is there already (serving-svc restarted) leaves it alone, with no needless rollout.

serving-svc speaks to the API server with the kubeconfig the cluster's operator stored as a credential,
in a client of its own (``shipyard.kit.kubeconfig``), the blocking client in worker threads. Statuses
come from one list of Shipyard's InferenceServices, and one of their pods, per poll: KServe's ``Ready``
condition with its URL makes the endpoint serve, a False condition's reason is what it waits for, a
model that failed to load (``status.modelStatus``) fails it with KServe's message. The pods, when the
account may list them, show as the endpoint's replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from kubernetes.client import ApiClient, ApiException, CoreV1Api, CustomObjectsApi, V1Pod
from urllib3.exceptions import HTTPError

from shipyard.kit.clients.clusters import ClusterRecord
from shipyard.kit.errors import FailedPrecondition, ShipyardError
from shipyard.kit.kubeconfig import api_client, api_message
from shipyard_serving.adapters.kserve import (
    CONTAINER_NAME,
    LABEL_MODEL,
    LABEL_MODEL_VERSION,
    MANAGED_BY,
    inference_service,
)
from shipyard_serving.app.ports import Endpoint, ModelServers, Observer
from shipyard_serving.domain.serving import DEFAULT_NAMESPACE, Observation, ReplicaState

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY}"
POD_SELECTOR = "serving.kserve.io/inferenceservice"  # KServe labels each component's pods with their isvc
COMPONENT_LABEL = "component"  # KServe's: predictor, transformer
ANNOTATION_FINGERPRINT = "shipyard.io/fingerprint"
POLL_S = 3.0
# The cluster's record and kubeconfig are read again this often, so that an operator's replaced kubeconfig
# is used without a restart; and when the API server refuses the one in use (401, 403), at most this often
# (an account that may not list pods is refused at each poll).
REREAD_S = 300.0
REREAD_REFUSED_S = 30.0
REFUSED = frozenset({401, 403})
REQUEST_TIMEOUT_S = 30
IMAGE = "shipyard:0.1.0"  # the image deploy/ builds; it holds the built-in model server
# KServe's model status when the model cannot be loaded (what a replica's loader said is in lastFailureInfo).
LOAD_FAILED = frozenset({"BlockedByFailedLoad", "InvalidSpec"})

T = TypeVar("T")
log = logging.getLogger(__name__)

Kubeconfig = Callable[[], Awaitable[str]]
"""The cluster's kubeconfig (YAML) as its record names it now: read when serving-svc first connects, then
every :data:`REREAD_S` and when the API server refuses it."""


class ModelFiles(Protocol):
    """Model versions laid out where KServe reads them (``adapters.model_files.S3ModelFiles``)."""

    async def lay_out(self, manifest_digest: str) -> str:
        """The storage URI of the version's files, laid out there first unless they are already."""


class KServeModelServers(ModelServers):
    """The endpoints of one Kubernetes cluster, as KServe InferenceServices in its namespace."""

    def __init__(self, cluster: ClusterRecord, kubeconfig: Kubeconfig, files: ModelFiles, root: Path,
                 image: str = IMAGE, poll_s: float = POLL_S) -> None:
        """``root``: serving-svc's own directory for this cluster (the kubeconfig's certificate files)."""
        self.cluster = cluster
        self.namespace = cluster.namespace or DEFAULT_NAMESPACE
        self._kubeconfig = kubeconfig
        self._files = files
        self._root = root
        self._image = image
        self._poll_s = poll_s
        self._client: ApiClient | None = None
        self._text = ""  # the kubeconfig the client was made of
        self._read_at = 0.0  # when it was last read (time.monotonic())
        self._refused_at = -REREAD_REFUSED_S  # when a refusal last made it read again
        self._client_lock = asyncio.Lock()
        self._poll_lock = asyncio.Lock()
        self._endpoints: dict[str, Endpoint] = {}
        self._seen: dict[str, Observation] = {}
        self._served: dict[str, str] = {}  # endpoint → the model version it was last seen serving
        self._observers: list[Observer] = []
        self._polling: asyncio.Task[None] | None = None

    def watch(self, observer: Observer) -> None:
        self._observers.append(observer)

    # --- the API server -----------------------------------------------------------------------------

    async def _api(self, reread: bool = False) -> ApiClient:
        """The client of the kubeconfig as the cluster's record says now: read again every
        :data:`REREAD_S`, or when ``reread``, and a new client made when it changed."""
        async with self._client_lock:
            if self._client is None or reread or time.monotonic() - self._read_at >= REREAD_S:
                await self._read_kubeconfig()
            assert self._client is not None
            return self._client

    async def _read_kubeconfig(self) -> None:
        try:
            text = await self._kubeconfig()
        except ShipyardError as exc:
            if self._client is None:
                raise
            log.warning("cluster %s: its kubeconfig cannot be read again (the one read before goes on): %s",
                        self.cluster.name, exc.message)
            self._read_at = time.monotonic()
            return
        self._read_at = time.monotonic()
        if self._client is not None and text == self._text:
            return
        try:
            connected = await asyncio.to_thread(api_client, text, self._root / "kubeconfig-files")
        except ValueError as exc:
            raise FailedPrecondition(f"the kubeconfig of cluster {self.cluster.name!r} (credential "
                                     f"{self.cluster.kubeconfig_credential!r}) does not work: {exc}"
                                     ) from None
        replaced, self._client, self._text = self._client, connected, text
        if replaced is not None:
            log.info("cluster %s: its kubeconfig changed; connected with the new one", self.cluster.name)
            await asyncio.to_thread(replaced.close)

    async def _call(self, call: Callable[[ApiClient], T]) -> T:
        """``call`` on the cluster's client in a worker thread; FailedPrecondition saying what the API server
        answered, or that it could not be reached. A refused kubeconfig (401, 403) is read again, at most
        every :data:`REREAD_REFUSED_S`, and the call made once more when an operator replaced it."""
        client = await self._api()
        try:
            return await asyncio.to_thread(call, client)
        except ApiException as exc:
            if exc.status in REFUSED and time.monotonic() - self._refused_at >= REREAD_REFUSED_S:
                self._refused_at = time.monotonic()
                if await self._api(reread=True) is not client:
                    return await self._call(call)
            raise FailedPrecondition(f"the API server of cluster {self.cluster.name!r} answered "
                                     f"{exc.status} {exc.reason}: {api_message(exc)}") from exc
        except HTTPError as exc:
            raise FailedPrecondition(f"the API server of cluster {self.cluster.name!r} could not be "
                                     f"reached: {exc}") from exc

    # --- the model servers --------------------------------------------------------------------------

    async def ensure(self, endpoint: Endpoint) -> None:
        """Apply the endpoint's InferenceService; what goes wrong fails the endpoint, saying why."""
        self._endpoints[endpoint.name] = endpoint
        try:
            storage_uri = await self._files.lay_out(endpoint.model.manifest_digest)
            document = inference_service(endpoint.name, self.namespace, endpoint.model, endpoint.spec,
                                         storage_uri, default_image=self._image,
                                         service_account=self.cluster.service_account)
            await self._apply(_fingerprinted(document))
        except Exception as exc:  # the endpoint shows it failed and why; serving-svc goes on
            failure = exc.message if isinstance(exc, FailedPrecondition) else f"{type(exc).__name__}: {exc}"
            log.warning("endpoint %s on cluster %s: %s", endpoint.name, self.cluster.name, failure)
            await self._tell(endpoint.name, Observation(ready=0, failure=f"cluster {self.cluster.name!r}: "
                                                                          f"{failure}"))
            return
        if self._polling is None:
            self._polling = asyncio.create_task(self._poll_forever())
        if not self._poll_lock.locked():  # asked by an observer of a poll: that poll's next one sees it
            await self.poll()

    async def _apply(self, document: dict[str, Any]) -> None:
        """Create the InferenceService, or replace it at the version read (once more when another
        change won); leave it when it has the same fingerprint."""
        name = document["metadata"]["name"]

        def apply(client: ApiClient) -> None:
            api = CustomObjectsApi(client)
            for attempt in range(2):
                try:
                    current = cast(dict[str, Any], api.get_namespaced_custom_object(
                        GROUP, VERSION, self.namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT_S))
                except ApiException as exc:
                    if exc.status != 404:
                        raise
                    api.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, document,
                                                        _request_timeout=REQUEST_TIMEOUT_S)
                    return
                metadata = current.get("metadata") or {}
                if (metadata.get("labels") or {}).get("app.kubernetes.io/managed-by") != MANAGED_BY:
                    raise ValueError(f"an InferenceService named {name!r} is in namespace {self.namespace!r} "
                                     "already, and Shipyard did not make it")
                if (metadata.get("annotations") or {}).get(ANNOTATION_FINGERPRINT) == _fingerprint(document):
                    return
                document["metadata"]["resourceVersion"] = metadata.get("resourceVersion")
                try:
                    api.replace_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name,
                                                         document, _request_timeout=REQUEST_TIMEOUT_S)
                    return
                except ApiException as exc:
                    if exc.status != 409 or attempt:
                        raise

        await self._call(apply)

    async def remove(self, name: str, cluster: str = "") -> None:
        """Delete the endpoint's InferenceService (KServe deletes its pods with it)."""
        def delete(client: ApiClient) -> None:
            try:
                CustomObjectsApi(client).delete_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT_S)
            except ApiException as exc:
                if exc.status != 404:
                    raise

        await self._call(delete)
        self._endpoints.pop(name, None)
        self._seen.pop(name, None)
        self._served.pop(name, None)

    def observe(self, name: str) -> Observation:
        return self._seen.get(name, Observation(ready=0))

    async def poll(self) -> None:
        """One look at the cluster: every endpoint's InferenceService and pods; the observers hear of
        each endpoint whose servers changed. An API server out of reach is logged and tried next time."""
        async with self._poll_lock:
            if not self._endpoints:
                return
            try:
                services, pods = await self._lists()
            except FailedPrecondition as exc:
                log.warning("cluster %s: its InferenceServices cannot be read: %s", self.cluster.name,
                            exc.message)
                return
            for name, endpoint in list(self._endpoints.items()):
                service = services.get(name)
                seen = observation_of(service, pods.get(name, []), endpoint.spec.min_replicas,
                                      self._served.get(name, ""))
                if seen.serving and not seen.failure and seen.ready:
                    self._served[name] = seen.serving
                if seen != self._seen.get(name):
                    await self._tell(name, seen)

    async def _lists(self) -> tuple[dict[str, dict[str, Any]], dict[str, list[V1Pod]]]:
        listed = cast(dict[str, Any], await self._call(
            lambda c: CustomObjectsApi(c).list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, label_selector=SELECTOR,
                _request_timeout=REQUEST_TIMEOUT_S)))
        services = {item["metadata"]["name"]: item for item in listed.get("items") or []}
        pods: dict[str, list[V1Pod]] = {}
        try:
            found = await self._call(lambda c: CoreV1Api(c).list_namespaced_pod(
                self.namespace, label_selector=POD_SELECTOR, _request_timeout=REQUEST_TIMEOUT_S))
        except FailedPrecondition as exc:  # an account that may not list pods: no replicas shown
            log.debug("cluster %s: pods not listed: %s", self.cluster.name, exc.message)
            return services, pods
        for pod in found.items:
            owner = ((pod.metadata.labels if pod.metadata else None) or {}).get(POD_SELECTOR, "")
            pods.setdefault(owner, []).append(pod)
        return services, pods

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self.poll()
            except Exception:  # the next poll tries again
                log.exception("cluster %s: following its InferenceServices failed", self.cluster.name)

    async def _tell(self, name: str, seen: Observation) -> None:
        self._seen[name] = seen
        for observer in self._observers:
            try:
                await observer(name, seen)
            except Exception:
                log.exception("endpoint %s: recording its servers' state failed", name)

    async def close(self) -> None:
        """Stop following the cluster; the InferenceServices stay (they serve without serving-svc)."""
        if self._polling is not None:
            self._polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polling
            self._polling = None
        if self._client is not None:
            await asyncio.to_thread(self._client.close)
            self._client = None


# --- what KServe says, as an observation --------------------------------------------------------------


def observation_of(service: dict[str, Any] | None, pods: list[V1Pod], min_replicas: int,
                   served_before: str) -> Observation:
    """The endpoint's servers as its InferenceService and pods show them. ``served_before``: the model
    version it was last seen serving, which KServe keeps serving while a new one rolls out or fails."""
    if service is None:
        return Observation(ready=0, waiting="its InferenceService is not on the cluster")
    status = service.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    label = _label((service.get("metadata") or {}).get("labels") or {})
    replicas = [_replica(pod, label) for pod in pods]
    ready_pods = sum(r.ready for r, pod in zip(replicas, pods, strict=True) if _component(pod) == "predictor")
    url = status.get("url") or (status.get("address") or {}).get("url") or ""
    if _true(conditions.get("Ready")) and _reconciled(service) and url:
        return Observation(ready=max(ready_pods, min_replicas), replicas=replicas, serving=label, url=url)
    serving = served_before if url else ""  # the revision that served before goes on serving
    return Observation(ready=ready_pods if serving else 0, replicas=replicas, failure=_load_failure(status),
                       serving=serving, url=url if serving else "", waiting=_waiting(conditions))


def _label(labels: dict[str, str]) -> str:
    model, version = labels.get(LABEL_MODEL, ""), labels.get(LABEL_MODEL_VERSION, "")
    return f"{model}@{version}" if version else model


def _true(condition: dict[str, Any] | None) -> bool:
    return condition is not None and condition.get("status") == "True"


def _reconciled(service: dict[str, Any]) -> bool:
    """Whether KServe's status is about the spec as it is now (not the one before a replace)."""
    observed = (service.get("status") or {}).get("observedGeneration")
    generation = (service.get("metadata") or {}).get("generation")
    return observed is None or generation is None or observed >= generation


def _load_failure(status: dict[str, Any]) -> str:
    """KServe's word that the model cannot be loaded, with the loader's reason; "" otherwise."""
    model = status.get("modelStatus") or {}
    states = model.get("states") or {}
    if model.get("transitionStatus") not in LOAD_FAILED and states.get("targetModelState") != "FailedToLoad":
        return ""
    info = model.get("lastFailureInfo") or {}
    said = ": ".join(str(part) for part in (info.get("reason"), info.get("message")) if part)
    return f"the model could not be loaded on the cluster ({said or model.get('transitionStatus')})"


def _waiting(conditions: dict[str, dict[str, Any]]) -> str:
    """What KServe says the InferenceService waits for: its first condition not True, with why."""
    for kind in ("PredictorReady", "TransformerReady", "IngressReady", "Ready"):
        condition = conditions.get(kind)
        if condition is not None and condition.get("status") != "True":
            said = ": ".join(str(p) for p in (condition.get("reason"), condition.get("message")) if p)
            return f"KServe: {kind} is {condition.get('status')}" + (f" ({said})" if said else "")
    return "KServe has not reported on it yet"


def _component(pod: V1Pod) -> str:
    return ((pod.metadata.labels if pod.metadata else None) or {}).get(COMPONENT_LABEL, "")


def _replica(pod: V1Pod, label: str) -> ReplicaState:
    """A pod of the InferenceService as a replica: named by its component and name."""
    metadata, status = pod.metadata, pod.status
    name = f"{_component(pod) or 'pod'}/{metadata.name if metadata else ''}"
    conditions = (status.conditions or []) if status else []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    containers = (status.container_statuses or []) if status else []
    restarts = sum(c.restart_count or 0 for c in containers)
    last_exit = ""
    for container in containers:
        ended = container.last_state.terminated if container.last_state else None
        if container.name == CONTAINER_NAME and ended is not None:
            last_exit = f"exited with code {ended.exit_code}" + (f" ({ended.reason})" if ended.reason else "")
    labels = (metadata.labels if metadata else None) or {}
    return ReplicaState(name, ready, restarts, last_exit, _label(labels) or label)


def _fingerprint(document: dict[str, Any]) -> str:
    """What the InferenceService is asked to be: its labels, Shipyard's annotations and its spec."""
    metadata = document["metadata"]
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items()
                   if k != ANNOTATION_FINGERPRINT}
    asked = {"labels": metadata.get("labels"), "annotations": annotations, "spec": document["spec"]}
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()


def _fingerprinted(document: dict[str, Any]) -> dict[str, Any]:
    document["metadata"].setdefault("annotations", {})[ANNOTATION_FINGERPRINT] = _fingerprint(document)
    return document
