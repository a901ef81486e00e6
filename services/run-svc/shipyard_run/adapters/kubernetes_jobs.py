"""What a run becomes on a Kubernetes cluster: one ``batch/v1`` Job and the Secret beside it, built with
the ``kubernetes`` client's own models. It does no I/O.

The Job ``shipyard-<run id>`` runs one pod, never retried (``backoffLimit: 0``, ``restartPolicy:
Never``), kept a day after it ends (``ttlSecondsAfterFinished``) so that run-svc can still read how it
ended after a restart. Its pod:

* an init container ``fetch-inputs`` (the run's image, ``python3``) fetches one tar of the run's code and
  inputs from a presigned S3 GET URL and unpacks it into ``emptyDir`` volumes: ``shipyard/`` at
  ``/run/shipyard`` (the run's own files: ``code/``, ``output/``, ``home/``, ``tensorboard/``, ``config/``,
  ``hyperparameters.json``, ``sdk/``) and ``input-<n>/`` at the n-th input's mount path;
* the container ``run`` runs the command under a small ``sh`` wrapper (the command's output is the
  container's log; SIGTERM is passed on to it), then — when it exited 0 — tars each output directory and
  PUTs it to its presigned URL, and exits with the command's code. Inputs are mounted read-only. A trial
  whose study reads its files (a File or TensorFlowEvent collector: ``Job.collector_path``) also sends them
  to a presigned URL every few seconds while the command runs, and once more after it.

The run's variables are the run contract's (``contract_variables``) with its files at ``/run/shipyard``
and its mounts at their own paths, but for SHIPYARD_METRICS_FILE: without it the SDK prints its metrics
as ``name=value`` lines, which run-svc reads from the pod's log. What must not stand in the pod spec in
clear — the run's API token (as SHIPYARD_TOKEN and MLflow's token) and the presigned URLs — is in the
Secret ``shipyard-<run id>``, read through ``valueFrom``; the wrapper drops the URLs before the command
starts. Nothing of the platform's (its S3 keys, NATS, the namespace's service account token) reaches
the pod.

GPU distribution (``Job.distribution``):

* none: the one pod above, with ``gpu_count`` GPUs;
* automatic: the same one pod with all the run's GPUs, placed by the scheduler. Kubernetes cannot split
  one process's GPUs across nodes, so there is nothing to distribute that one pod does not already;
* manual: a master and ``workers`` workers, PyTorchJob-style: the Job is Indexed (``completions =
  parallelism = workers + 1``, index 0 the master), each pod with ``gpu_count`` GPUs, preferably one pod
  per node, beside a headless Service ``shipyard-<run id>`` (the pods' ``subdomain``) through which the
  pods reach each other at ``shipyard-<run id>-<index>.shipyard-<run id>``. Each pod has what torchrun
  and ``torch.distributed`` (``env://``) expect: MASTER_ADDR (index 0's name), MASTER_PORT, WORLD_SIZE
  (the pods), RANK (the pod's index, from the downward API), and SHIPYARD_WORKER_INDEX (the same).
  Every pod fetches the code and inputs; only the master uploads the outputs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from kubernetes.client import (
    V1Affinity,
    V1Container,
    V1EmptyDirVolumeSource,
    V1EnvVar,
    V1EnvVarSource,
    V1Job,
    V1JobSpec,
    V1LabelSelector,
    V1ObjectFieldSelector,
    V1ObjectMeta,
    V1OwnerReference,
    V1PodAffinityTerm,
    V1PodAntiAffinity,
    V1PodSpec,
    V1PodTemplateSpec,
    V1ResourceRequirements,
    V1Secret,
    V1SecretKeySelector,
    V1SecurityContext,
    V1Service,
    V1ServiceSpec,
    V1Volume,
    V1VolumeMount,
    V1WeightedPodAffinityTerm,
)

from shipyard_run.adapters.run_contract import contract_variables
from shipyard_run.adapters.staged_files import COLLECT_SCRIPT, FETCH_SCRIPT, UPLOAD_SCRIPT, collect_spec
from shipyard_run.app.ports import Job
from shipyard_run.domain.runs import Distribution

JOB_PREFIX = "shipyard-"
RUN_ROOT = "/run/shipyard"  # the run's own files in its pod
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "shipyard"
RUN_ID_LABEL = "shipyard.io/run-id"
RUN_NAME_LABEL = "shipyard.io/run-name"
RUN_NAME_ANNOTATION = "shipyard.io/run-name"  # the name as it is (a label value is sanitized)
# Runs' Jobs and pods, and nothing else Shipyard manages there (serving-svc's InferenceServices).
SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY},{RUN_ID_LABEL}"
FINISHED_TTL_S = 24 * 3600  # how long a Job that ended stays, for run-svc to read its end
GPU_RESOURCE = "nvidia.com/gpu"
FETCH_CONTAINER = "fetch-inputs"
RUN_CONTAINER = "run"
OWN_VOLUME = "shipyard"  # the tar's top folder of the run's own files, and their volume
# Variables the Secret holds (the run's token), and its keys for the presigned URLs.
SECRET_VARIABLES = frozenset({"SHIPYARD_TOKEN", "MLFLOW_TRACKING_TOKEN"})
INPUTS_URL_KEY = "inputs-url"
OUTPUT_URLS_KEY = "output-urls"
COLLECTED_URL_KEY = "collected-url"
DNS_LABEL_MAX = 63
# A distributed run's pods: the index the Job controller gives each (an annotation, and a label since
# Kubernetes 1.28), the port torchrun's rendezvous listens on at the master, one pod per node preferred.
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
MASTER_PORT = 29500
NODE_TOPOLOGY = "kubernetes.io/hostname"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9._-]+")

# $1: the upload script, $2: the command, $3 (a trial whose study reads its files): the script that sends
# them. The outputs' places and URLs, and where the files go, leave the environment before the command
# starts; SIGTERM (Kubernetes stopping the pod) goes on to the command, also one that comes before the
# command's process id is known (the wrapper is the container's PID 1: a signal it does not pass on is
# lost); the wrapper exits with the command's code. Only the master of a distributed run
# (SHIPYARD_WORKER_INDEX 0, or none) uploads, and sends the study's files (every few seconds while the
# command runs, and once more after it).
WRAPPER = '''\
upload=$1; command=$2; collect=${3:-}; dirs=${SHIPYARD_OUTPUT_DIRS:-[]}; urls=${SHIPYARD_OUTPUT_URLS:-[]}
spec=${SHIPYARD_COLLECT:-}; collect_url=${SHIPYARD_COLLECT_URL:-}
unset SHIPYARD_OUTPUT_DIRS SHIPYARD_OUTPUT_URLS SHIPYARD_COLLECT SHIPYARD_COLLECT_URL
[ "${SHIPYARD_WORKER_INDEX:-0}" = 0 ] || collect=
child=; pending=; collector=
trap 'if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; else pending=1; fi' TERM INT
/bin/sh -c "$command" &
child=$!
if [ -n "$pending" ]; then kill -TERM "$child" 2>/dev/null; fi
if [ -n "$collect" ]; then
  SHIPYARD_COLLECT=$spec SHIPYARD_COLLECT_URL=$collect_url python3 -c "$collect" "$child" &
  collector=$!
fi
while :; do wait "$child"; code=$?; kill -0 "$child" 2>/dev/null || break; done
trap - TERM INT
# The sender sees the command gone, sends the files once more and ends.
if [ -n "$collector" ]; then wait "$collector"; fi
# A distributed run's outputs are its master's (index 0): the workers' stay in their pods.
if [ "$code" -eq 0 ] && [ "${SHIPYARD_WORKER_INDEX:-0}" = 0 ]; then
  SHIPYARD_OUTPUT_DIRS=$dirs SHIPYARD_OUTPUT_URLS=$urls python3 -c "$upload"
fi
exit "$code"
'''


@dataclass(frozen=True)
class StagingUrls:
    """Where the pod reads its code and inputs (a presigned GET of one tar) and writes each output
    (a presigned PUT per entry of ``Job.output_paths``, in that order)."""

    inputs: str
    outputs: tuple[str, ...]
    collected: str = ""  # a presigned PUT for the files a trial's study reads (``Job.collector_path``)


@dataclass(frozen=True)
class RunObjects:
    """A run's Job, its Secret and, for a distributed run, the headless Service its pods reach each other
    through (create the Secret and the Service first: the pods need them)."""

    job: V1Job
    secret: V1Secret
    service: V1Service | None = None


def job_name(run_id: str) -> str:
    """The name of the run's Job, Secret and (with a suffix) pod; ValueError for an id no DNS label takes."""
    name = f"{JOB_PREFIX}{run_id}"
    if not _DNS_LABEL.fullmatch(name) or len(name) > DNS_LABEL_MAX:
        raise ValueError(f"run id {run_id!r} makes no Kubernetes name (lower-case letters, digits, '-')")
    return name


def pod_count(job: Job) -> int:
    """The pods the run's Job runs: the master and its workers for manual distribution, else one
    (automatic distribution too: Kubernetes cannot split one process's GPUs across nodes)."""
    return job.workers + 1 if job.distribution is Distribution.MANUAL else 1


def job_name_of(job: V1Job) -> str:
    """The name the Job was created with."""
    return job.metadata.name if job.metadata is not None and job.metadata.name else ""


def label_value(text: str) -> str:
    """``text`` as a label value: at most 63 letters, digits, '-', '_' and '.', starting and ending
    alphanumeric ("" when nothing is left)."""
    return _LABEL_VALUE_BAD.sub("-", text)[:DNS_LABEL_MAX].strip("-_.")


def run_labels(job: Job) -> dict[str, str]:
    """The labels of the run's Job, pod and Secret."""
    return {MANAGED_BY_LABEL: MANAGED_BY, RUN_ID_LABEL: job.run_id, RUN_NAME_LABEL: label_value(job.name)}


def input_places(job: Job) -> dict[str, str]:
    """The tar's top folders → where the init container unpacks them."""
    places = {OWN_VOLUME: RUN_ROOT}
    places.update({f"input-{index}": item.mount_path for index, item in enumerate(job.inputs)})
    return places


def output_dirs(job: Job) -> list[str]:
    """Each output's directory in the pod, in the order of ``Job.output_paths``."""
    return [path or f"{RUN_ROOT}/output" for path in job.output_paths]


def run_variables(job: Job) -> dict[str, str]:
    """The run contract's variables as the run sees them in its pod."""
    mounts = {item.mount_path: item.mount_path for item in job.inputs}
    mounts.update({path: path for path in job.output_paths if path})
    env = contract_variables(job, RUN_ROOT, mounts)
    env.pop("CUDA_VISIBLE_DEVICES", None)  # the GPUs Kubernetes gives the pod are its own to name
    # No metrics file: a file in the pod cannot be read from outside, and without it the SDK prints
    # name=value lines, read from the pod's log like any other.
    env.pop("SHIPYARD_METRICS_FILE", None)
    env["HOME"] = f"{RUN_ROOT}/home"
    env["PYTHONPATH"] = f"{RUN_ROOT}/sdk"
    return env


def run_objects(job: Job, namespace: str, image: str, urls: StagingUrls) -> RunObjects:
    """The run's Job and Secret (and a distributed run's Service) in ``namespace``, running ``image`` (the
    catalog image's URL); ValueError naming what cannot make them."""
    if not image:
        raise ValueError(f"run {job.name!r} names no image a cluster can pull: Kubernetes runs it in "
                         "its catalog image's URL (shipyard image add … --url)")
    if len(urls.outputs) != len(job.output_paths):
        raise ValueError(f"{len(job.output_paths)} outputs but {len(urls.outputs)} upload URLs")
    name = job_name(job.run_id)
    labels = run_labels(job)
    secret = V1Secret(
        api_version="v1", kind="Secret", type="Opaque",
        metadata=V1ObjectMeta(name=name, namespace=namespace, labels=labels),
        string_data=_secret_data(job, urls),
    )
    pods = pod_count(job)
    pod = V1PodSpec(
        restart_policy="Never",
        automount_service_account_token=False,  # the namespace's service account is not the run's
        enable_service_links=False,  # no variables naming the namespace's services
        init_containers=[_fetch_container(job, image, name)],
        containers=[_run_container(job, image, name)],
        volumes=[V1Volume(name=volume, empty_dir=V1EmptyDirVolumeSource()) for volume in _volumes(job)],
    )
    spec = V1JobSpec(
        backoff_limit=0,  # a failed pod (a worker's too) fails the run
        ttl_seconds_after_finished=FINISHED_TTL_S,
        template=V1PodTemplateSpec(metadata=V1ObjectMeta(labels=labels), spec=pod),
    )
    service = None
    if pods > 1:  # an Indexed Job: each pod is named <job>-<index> in the Service's subdomain
        spec.completion_mode = "Indexed"
        spec.completions = spec.parallelism = pods
        pod.subdomain = name
        pod.affinity = _one_pod_per_node(job)
        service = _headless_service(job, namespace)
    metadata = V1ObjectMeta(name=name, namespace=namespace, labels=labels,
                            annotations={RUN_NAME_ANNOTATION: job.name})
    return RunObjects(V1Job(api_version="batch/v1", kind="Job", metadata=metadata, spec=spec), secret,
                      service)


def master_address(run_id: str) -> str:
    """The DNS name of a distributed run's master (index 0) in its pods' namespace."""
    name = job_name(run_id)
    return f"{name}-0.{name}"


def job_owner(job: V1Job) -> V1OwnerReference:
    """The reference that makes Kubernetes delete an object (the Secret, the Service) with the Job, as
    the Job was created."""
    uid = job.metadata.uid if job.metadata is not None else None
    if not uid:
        raise ValueError(f"job {job_name_of(job)!r} has no uid: it was not created yet")
    return V1OwnerReference(api_version="batch/v1", kind="Job", name=job_name_of(job), uid=uid)


def _headless_service(job: Job, namespace: str) -> V1Service:
    """The Service that gives each of the run's pods a DNS name. Not-ready pods are published: a pod
    has no readiness until its command runs, and the workers look the master up as they start."""
    name = job_name(job.run_id)
    selector = {MANAGED_BY_LABEL: MANAGED_BY, RUN_ID_LABEL: job.run_id}
    return V1Service(
        api_version="v1", kind="Service",
        metadata=V1ObjectMeta(name=name, namespace=namespace, labels=run_labels(job)),
        spec=V1ServiceSpec(cluster_ip="None", selector=selector, publish_not_ready_addresses=True),
    )


def _one_pod_per_node(job: Job) -> V1Affinity:
    """Preferably no two of the run's pods on one node (a node with room for two still takes them)."""
    term = V1PodAffinityTerm(label_selector=V1LabelSelector(match_labels={RUN_ID_LABEL: job.run_id}),
                             topology_key=NODE_TOPOLOGY)
    return V1Affinity(pod_anti_affinity=V1PodAntiAffinity(
        preferred_during_scheduling_ignored_during_execution=[
            V1WeightedPodAffinityTerm(weight=100, pod_affinity_term=term)]))


def _distributed_variables(job: Job) -> list[V1EnvVar]:
    """What torchrun, ``torch.distributed`` (``env://``) and the run's code read to find each other."""
    index = V1EnvVarSource(field_ref=V1ObjectFieldSelector(field_path=f"metadata.annotations['{INDEX_KEY}']"))
    return [V1EnvVar(name="MASTER_ADDR", value=master_address(job.run_id)),
            V1EnvVar(name="MASTER_PORT", value=str(MASTER_PORT)),
            V1EnvVar(name="WORLD_SIZE", value=str(pod_count(job))),
            V1EnvVar(name="RANK", value_from=index),
            V1EnvVar(name="SHIPYARD_WORKERS", value=str(job.workers)),
            V1EnvVar(name="SHIPYARD_WORKER_INDEX", value_from=index)]


def _secret_data(job: Job, urls: StagingUrls) -> dict[str, str]:
    data = {key: value for key, value in run_variables(job).items() if key in SECRET_VARIABLES}
    data[INPUTS_URL_KEY] = urls.inputs
    data[OUTPUT_URLS_KEY] = json.dumps(list(urls.outputs))
    if job.collector_path:
        data[COLLECTED_URL_KEY] = urls.collected
    return data


def _from_secret(variable: str, secret: str, key: str) -> V1EnvVar:
    return V1EnvVar(name=variable, value_from=V1EnvVarSource(
        secret_key_ref=V1SecretKeySelector(name=secret, key=key)))


def _volumes(job: Job) -> list[str]:
    inputs = [f"input-{index}" for index in range(len(job.inputs))]
    outputs = [f"output-{index}" for index, path in enumerate(job.output_paths) if path]
    return [OWN_VOLUME, *inputs, *outputs]


def _hardened() -> V1SecurityContext:
    return V1SecurityContext(allow_privilege_escalation=False)


def _fetch_container(job: Job, image: str, secret: str) -> V1Container:
    mounts = [V1VolumeMount(name=OWN_VOLUME, mount_path=RUN_ROOT)]
    mounts += [V1VolumeMount(name=f"input-{index}", mount_path=item.mount_path)
               for index, item in enumerate(job.inputs)]
    env = [V1EnvVar(name="SHIPYARD_UNPACK", value=json.dumps(input_places(job), sort_keys=True)),
           _from_secret("SHIPYARD_INPUTS_URL", secret, INPUTS_URL_KEY)]
    return V1Container(name=FETCH_CONTAINER, image=image, command=["python3", "-c", FETCH_SCRIPT],
                       env=env, volume_mounts=mounts, security_context=_hardened())


def _run_container(job: Job, image: str, secret: str) -> V1Container:
    mounts = [V1VolumeMount(name=OWN_VOLUME, mount_path=RUN_ROOT)]
    mounts += [V1VolumeMount(name=f"input-{index}", mount_path=item.mount_path, read_only=True)
               for index, item in enumerate(job.inputs)]
    mounts += [V1VolumeMount(name=f"output-{index}", mount_path=path)
               for index, path in enumerate(job.output_paths) if path]
    variables = {key: _from_secret(key, secret, key) if key in SECRET_VARIABLES
                 else V1EnvVar(name=key, value=value) for key, value in sorted(run_variables(job).items())}
    if pod_count(job) > 1:  # these win over a hyperparameter of the same name
        variables.update({variable.name: variable for variable in _distributed_variables(job)})
    env = [*variables.values(),
           V1EnvVar(name="SHIPYARD_OUTPUT_DIRS", value=json.dumps(output_dirs(job))),
           _from_secret("SHIPYARD_OUTPUT_URLS", secret, OUTPUT_URLS_KEY)]
    command = ["/bin/sh", "-c", WRAPPER, "shipyard-run", UPLOAD_SCRIPT, job.command]
    if job.collector_path:  # a trial whose study reads its files: the pod sends them
        env += [V1EnvVar(name="SHIPYARD_COLLECT", value=collect_spec(f"{RUN_ROOT}/code", job.collector_path)),
                _from_secret("SHIPYARD_COLLECT_URL", secret, COLLECTED_URL_KEY)]
        command.append(COLLECT_SCRIPT)
    resources = None
    if job.gpu_count:
        gpus = str(job.gpu_count)
        resources = V1ResourceRequirements(limits={GPU_RESOURCE: gpus}, requests={GPU_RESOURCE: gpus})
    return V1Container(name=RUN_CONTAINER, image=image, command=command,
                       working_dir=f"{RUN_ROOT}/code", env=env, volume_mounts=mounts, resources=resources,
                       security_context=_hardened())
