"""The Job and Secret (and a distributed run's Service) a run becomes on a Kubernetes cluster, and the
scripts its pods run.

No Kubernetes API server can run here, so the objects are checked against what can be had without one:

* the ``kubernetes`` client's own models (pydantic, strict on types and required fields): each object
  goes through ``ApiClient().sanitize_for_serialization`` and back through the client's deserializer
  unchanged, so nothing in it is a field Kubernetes does not have;
* the API server's validation rules that the models do not hold (names, labels, env names, volumes,
  mounts, Secret keys), as ``k8s.io/apimachinery`` and ``pkg/apis/core/validation`` state them.

* Kubernetes' own published JSON schemas (``kubernetes-validate``, strict: no field the API does not
  have), for the newest Kubernetes version the package carries.

The init container's script and the command's wrapper are run here, by ``python3``
and ``/bin/sh``, against a local HTTP server standing in for S3's presigned URLs.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from kubernetes import client as k8s
from run_fakes import wait_for
from shipyard_run.adapters.kubernetes import _lay_out
from shipyard_run.adapters.kubernetes_jobs import (
    COLLECTED_URL_KEY,
    FETCH_SCRIPT,
    GPU_RESOURCE,
    INDEX_KEY,
    INPUTS_URL_KEY,
    OUTPUT_URLS_KEY,
    RUN_ROOT,
    SELECTOR,
    UPLOAD_SCRIPT,
    WRAPPER,
    StagingUrls,
    input_places,
    job_name,
    job_owner,
    label_value,
    pod_count,
    run_objects,
)
from shipyard_run.adapters.staged_files import COLLECT_SCRIPT, COLLECTED_MAX, pack, parse_collected
from shipyard_run.app.ports import Job, JobInput
from shipyard_run.domain.runs import Distribution

IMAGE = "registry.example/ml/sklearn:1.5"
SCHEMA_VERSION = kubernetes_validate.latest_version()
TOKEN = "syr_01jq3run.s3cr3t-token"
URLS = StagingUrls("https://s3.example/staging/runs/r1/inputs.tar?X-Amz-Signature=get-sig",
                   ("https://s3.example/staging/runs/r1/outputs/0.tar?X-Amz-Signature=put-sig0",
                    "https://s3.example/staging/runs/r1/outputs/1.tar?X-Amz-Signature=put-sig1"))
JOB = Job("01jq3run", "churn-train", "python train.py --epochs 3", project="churn",
          inputs=(JobInput("/data", "sha256:" + "a" * 64), JobInput("/mnt/features", "sha256:" + "b" * 64)),
          output_paths=("", "/model"), hyperparameters={"lr": "0.01"}, api_token=TOKEN,
          api_server="gw.example:7443", api_url="https://gw.example", gpu_count=2)

# --- the API server's rules the client's models do not hold -----------------------------------------

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
# The pod fields the downward API gives a variable (pkg/apis/core/validation: validEnvDownwardAPIFieldPath).
DOWNWARD_FIELD = re.compile(r"metadata\.(name|namespace|uid)|spec\.(nodeName|serviceAccountName)|"
                            r"status\.(hostIPs?|podIPs?)|metadata\.(labels|annotations)\['(?P<key>[^']+)'\]")


def assert_label_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    assert QUALIFIED_NAME.fullmatch(name) and len(name) <= 63, f"label key {key!r}"
    assert not prefix or (DNS_SUBDOMAIN.fullmatch(prefix) and len(prefix) <= 253), f"label key {key!r}"


def assert_metadata(meta: dict[str, Any]) -> None:
    assert DNS_SUBDOMAIN.fullmatch(meta["name"]) and len(meta["name"]) <= 253, meta["name"]
    for key, value in meta.get("labels", {}).items():
        assert_label_key(key)
        assert LABEL_VALUE.fullmatch(value) and len(value) <= 63, f"label value {value!r}"
    for key in meta.get("annotations", {}):
        assert_label_key(key)


def assert_pod_spec(spec: dict[str, Any]) -> None:
    volumes = [volume["name"] for volume in spec["volumes"]]
    assert len(set(volumes)) == len(volumes), "volume names must be unique"
    assert all(DNS_LABEL.fullmatch(name) and len(name) <= 63 for name in volumes)
    containers = spec.get("initContainers", []) + spec["containers"]
    names = [container["name"] for container in containers]
    assert len(set(names)) == len(names) and all(DNS_LABEL.fullmatch(name) for name in names)
    assert spec["restartPolicy"] in ("Never", "OnFailure")  # a Job's pods
    for container in containers:
        assert container["image"].strip() == container["image"] != ""
        paths = [mount["mountPath"] for mount in container.get("volumeMounts", [])]
        assert len(set(paths)) == len(paths) and all(p.startswith("/") for p in paths)
        assert all(mount["name"] in volumes for mount in container.get("volumeMounts", []))
        names = [variable["name"] for variable in container.get("env", [])]
        assert len(set(names)) == len(names), "a variable stands twice"
        for variable in container.get("env", []):
            assert ENV_NAME.fullmatch(variable["name"]), variable["name"]
            assert ("value" in variable) != ("valueFrom" in variable)
            source = variable.get("valueFrom", {})
            assert len(source) <= 1
            if "secretKeyRef" in source:
                assert SECRET_KEY.fullmatch(source["secretKeyRef"]["key"])
            if "fieldRef" in source:
                field = DOWNWARD_FIELD.fullmatch(source["fieldRef"]["fieldPath"])
                assert field, source["fieldRef"]["fieldPath"]
                if field["key"]:
                    assert_label_key(field["key"])
        for kind in ("limits", "requests"):
            for name, quantity in container.get("resources", {}).get(kind, {}).items():
                assert_label_key(name)
                assert re.fullmatch(r"\d+", quantity), f"{name}: {quantity}"  # GPUs are whole


def round_trip(obj: Any, kind: str) -> dict[str, Any]:
    """The object as the client sends it, after its deserializer took it back unchanged."""
    api = k8s.ApiClient()
    document = api.sanitize_for_serialization(obj)
    back = api._ApiClient__deserialize(json.loads(json.dumps(document)), kind)  # type: ignore[attr-defined]
    assert isinstance(back, getattr(k8s, kind))
    assert api.sanitize_for_serialization(back) == document, f"{kind} lost or changed fields"
    return dict(document)


def valid_job(job: Job = JOB, urls: StagingUrls = URLS) -> tuple[dict[str, Any], dict[str, Any]]:
    objects = run_objects(job, "ml", IMAGE, urls)
    assert objects.service is None
    document = round_trip(objects.job, "V1Job")
    secret = round_trip(objects.secret, "V1Secret")
    assert (document["apiVersion"], document["kind"]) == ("batch/v1", "Job")
    assert (secret["apiVersion"], secret["kind"], secret["type"]) == ("v1", "Secret", "Opaque")
    for meta in (document["metadata"], document["spec"]["template"]["metadata"] | {"name": "pod"},
                 secret["metadata"]):
        assert_metadata(meta)
    assert len(document["metadata"]["name"]) <= 63  # the Job controller labels pods with it
    assert_pod_spec(document["spec"]["template"]["spec"])
    assert all(SECRET_KEY.fullmatch(key) for key in secret["stringData"])
    for checked in (document, secret):
        kubernetes_validate.validate(checked, SCHEMA_VERSION, strict=True)
    return document, secret


def valid_distributed_job(job: Job) -> tuple[dict[str, Any], dict[str, Any]]:
    """A distributed run's Job and Service, checked as ``valid_job`` checks a Job."""
    objects = run_objects(job, "ml", IMAGE, URLS)
    assert objects.service is not None
    document, service = round_trip(objects.job, "V1Job"), round_trip(objects.service, "V1Service")
    assert (service["apiVersion"], service["kind"]) == ("v1", "Service")
    for meta in (document["metadata"], document["spec"]["template"]["metadata"] | {"name": "pod"},
                 service["metadata"]):
        assert_metadata(meta)
    # The Job controller names each pod's host <job>-<index>: a DNS label, for the largest index too.
    assert DNS_LABEL.fullmatch(f"{document['metadata']['name']}-{pod_count(job) - 1}")
    assert len(f"{document['metadata']['name']}-{pod_count(job) - 1}") <= 63
    assert DNS_LABEL.fullmatch(service["metadata"]["name"]) and len(service["metadata"]["name"]) <= 63
    assert_pod_spec(document["spec"]["template"]["spec"])
    for checked in (document, service):
        kubernetes_validate.validate(checked, SCHEMA_VERSION, strict=True)
    return document, service


def test_kubernetes_own_schemas_refuse_what_kubernetes_would() -> None:
    document, _ = valid_job()
    bad = json.loads(json.dumps(document))
    bad["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # a field Kubernetes does not have
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, SCHEMA_VERSION, strict=True)


def test_the_checks_catch_what_the_api_server_refuses() -> None:
    document, _ = valid_job()
    bad = json.loads(json.dumps(document))
    bad["metadata"]["labels"]["shipyard.io/run-name"] = "has spaces"
    with pytest.raises(AssertionError):
        assert_metadata(bad["metadata"])
    bad["spec"]["template"]["spec"]["volumes"].append({"name": "shipyard", "emptyDir": {}})
    with pytest.raises(AssertionError):
        assert_pod_spec(bad["spec"]["template"]["spec"])
    distributed, _ = valid_distributed_job(DISTRIBUTED)
    run = distributed["spec"]["template"]["spec"]["containers"][0]
    rank = next(variable for variable in run["env"] if variable["name"] == "RANK")
    rank["valueFrom"]["fieldRef"]["fieldPath"] = "metadata.annotations.index"
    with pytest.raises(AssertionError, match=r"metadata\.annotations\.index"):
        assert_pod_spec(distributed["spec"]["template"]["spec"])
    run["env"].append({"name": "HOME", "value": "/root"})
    with pytest.raises(AssertionError, match="stands twice"):
        assert_pod_spec(distributed["spec"]["template"]["spec"])
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    with pytest.raises(ValueError, match=r"image_pull_policy|imagePullPolicy"):
        k8s.ApiClient()._ApiClient__deserialize(bad, "V1Job")  # type: ignore[attr-defined]


# --- the Job -----------------------------------------------------------------------------------------


def containers(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = document["spec"]["template"]["spec"]
    [fetch] = spec["initContainers"]
    [run] = spec["containers"]
    return fetch, run


def test_a_run_is_one_pod_never_retried_kept_a_day_in_its_image_with_its_gpus() -> None:
    document, _ = valid_job()
    assert document["metadata"]["name"] == "shipyard-01jq3run"
    assert document["metadata"]["namespace"] == "ml"
    spec = document["spec"]
    assert (spec["backoffLimit"], spec["ttlSecondsAfterFinished"]) == (0, 86400)
    assert "activeDeadlineSeconds" not in spec  # a time limit is Slurm's and LSF's, refused at submit
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False  # the namespace's account is not the run's
    fetch, run = containers(document)
    assert fetch["image"] == run["image"] == IMAGE
    assert run["resources"] == {"limits": {GPU_RESOURCE: "2"}, "requests": {GPU_RESOURCE: "2"}}
    assert "resources" not in fetch
    assert run["workingDir"] == f"{RUN_ROOT}/code"
    assert run["command"][-1] == "python train.py --epochs 3"


def test_without_gpus_the_pod_asks_for_none() -> None:
    document, _ = valid_job(Job("r2", "cpu", "true"), StagingUrls("https://s3/x", ()))
    _, run = containers(document)
    assert "resources" not in run


def test_labels_say_whose_run_it_is_and_select_it() -> None:
    document, secret = valid_job()
    labels = {"app.kubernetes.io/managed-by": "shipyard", "shipyard.io/run-id": "01jq3run",
              "shipyard.io/run-name": "churn-train"}
    assert document["metadata"]["labels"] == labels
    assert document["spec"]["template"]["metadata"]["labels"] == labels
    assert secret["metadata"]["labels"] == labels
    assert document["metadata"]["annotations"] == {"shipyard.io/run-name": "churn-train"}
    assert SELECTOR == "app.kubernetes.io/managed-by=shipyard,shipyard.io/run-id"


@pytest.mark.parametrize("name", ["Run with spaces & ünïcode!", "-leading.and.trailing_", "x" * 200, "....",
                                  "a/b:c"])
def test_a_run_name_with_odd_characters_still_makes_valid_objects(name: str) -> None:
    document, _ = valid_job(Job("01jq3odd", name, "true"), StagingUrls("https://s3/x", ()))
    assert document["metadata"]["annotations"]["shipyard.io/run-name"] == name
    assert document["metadata"]["labels"]["shipyard.io/run-name"] == label_value(name)


@pytest.mark.parametrize("run_id", ["UPPER", "has_underscore", "x" * 60, ""])
def test_a_run_id_no_kubernetes_name_takes_is_refused(run_id: str) -> None:
    with pytest.raises(ValueError, match="makes no Kubernetes name"):
        job_name(run_id)


def test_a_run_without_an_image_url_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="names no image"):
        run_objects(JOB, "ml", "", URLS)


def test_inputs_are_unpacked_at_their_mount_paths_and_read_only_to_the_command() -> None:
    document, _ = valid_job()
    fetch, run = containers(document)
    assert input_places(JOB) == {"shipyard": RUN_ROOT, "input-0": "/data", "input-1": "/mnt/features"}
    unpack = next(v["value"] for v in fetch["env"] if v["name"] == "SHIPYARD_UNPACK")
    assert json.loads(unpack) == input_places(JOB)
    fetch_mounts = {m["mountPath"]: m.get("readOnly", False) for m in fetch["volumeMounts"]}
    assert fetch_mounts == {RUN_ROOT: False, "/data": False, "/mnt/features": False}
    run_mounts = {m["mountPath"]: m.get("readOnly", False) for m in run["volumeMounts"]}
    assert run_mounts == {RUN_ROOT: False, "/data": True, "/mnt/features": True, "/model": False}


def test_the_run_contract_variables_with_the_token_only_in_the_secret() -> None:
    document, secret = valid_job()
    fetch, run = containers(document)
    plain = {v["name"]: v["value"] for v in run["env"] if "value" in v}
    from_secret = {v["name"]: v["valueFrom"]["secretKeyRef"] for v in run["env"] if "valueFrom" in v}
    assert plain["SHIPYARD_RUN_ID"] == "01jq3run" and plain["lr"] == "0.01"
    assert plain["SHIPYARD_OUTPUT"] == f"{RUN_ROOT}/output"
    assert plain["SHIPYARD_MOUNT_DATA"] == "/data"
    assert json.loads(plain["SHIPYARD_MOUNTS"]) == {"/data": "/data", "/mnt/features": "/mnt/features",
                                                    "/model": "/model"}
    assert plain["HOME"] == f"{RUN_ROOT}/home" and plain["PYTHONPATH"] == f"{RUN_ROOT}/sdk"
    assert plain["MLFLOW_TRACKING_URI"] == "https://gw.example/mlflow"
    assert "CUDA_VISIBLE_DEVICES" not in plain  # the device plugin says which GPUs the pod has
    assert "SHIPYARD_METRICS_FILE" not in plain  # the SDK prints name=value lines to the pod's log
    assert from_secret == {
        "SHIPYARD_TOKEN": {"name": "shipyard-01jq3run", "key": "SHIPYARD_TOKEN"},
        "MLFLOW_TRACKING_TOKEN": {"name": "shipyard-01jq3run", "key": "MLFLOW_TRACKING_TOKEN"},
        "SHIPYARD_OUTPUT_URLS": {"name": "shipyard-01jq3run", "key": OUTPUT_URLS_KEY}}
    assert {v["name"]: v["valueFrom"]["secretKeyRef"]["key"] for v in fetch["env"] if "valueFrom" in v} == {
        "SHIPYARD_INPUTS_URL": INPUTS_URL_KEY}
    # Nothing secret stands in the Job in clear: not the token, not a presigned URL.
    text = json.dumps(document)
    assert TOKEN not in text and "X-Amz-Signature" not in text
    assert secret["stringData"] == {"SHIPYARD_TOKEN": TOKEN, "MLFLOW_TRACKING_TOKEN": TOKEN,
                                    INPUTS_URL_KEY: URLS.inputs,
                                    OUTPUT_URLS_KEY: json.dumps(list(URLS.outputs))}


def test_nothing_of_the_platforms_reaches_the_pod() -> None:
    document, secret = valid_job()
    text = json.dumps([document, secret]).lower()
    for word in ("nats", "s3_access", "secret_key", "access_key", "serviceaccountname"):
        assert word not in text


# --- distribution -------------------------------------------------------------------------------------

DISTRIBUTED = dataclasses.replace(JOB, run_id="01jq3dist", distribution=Distribution.MANUAL, workers=2)
INDEX_PATH = f"metadata.annotations['{INDEX_KEY}']"


def variables(run: dict[str, Any]) -> dict[str, Any]:
    return {v["name"]: v.get("value", v.get("valueFrom")) for v in run["env"]}


def test_a_manual_distribution_is_one_indexed_job_of_a_master_and_its_workers() -> None:
    document, _ = valid_distributed_job(DISTRIBUTED)
    spec = document["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 3, 3)
    assert spec["backoffLimit"] == 0  # a failed pod, a worker's too, fails the run
    pod = spec["template"]["spec"]
    assert pod["subdomain"] == "shipyard-01jq3dist"
    fetch, run = containers(document)
    assert run["resources"] == {"limits": {GPU_RESOURCE: "2"}, "requests": {GPU_RESOURCE: "2"}}  # each pod's
    assert fetch["command"] == ["python3", "-c", FETCH_SCRIPT]  # every pod fetches the inputs
    term = {"labelSelector": {"matchLabels": {"shipyard.io/run-id": "01jq3dist"}},
            "topologyKey": "kubernetes.io/hostname"}
    assert pod["affinity"] == {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": term}]}}


def test_the_pods_reach_each_other_through_a_headless_service_named_after_the_job() -> None:
    document, service = valid_distributed_job(DISTRIBUTED)
    assert service["metadata"]["name"] == document["metadata"]["name"] == "shipyard-01jq3dist"
    assert service["metadata"]["namespace"] == "ml"
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True  # the master is looked up before it is ready
    pod_labels = document["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["selector"]["shipyard.io/run-id"] == "01jq3dist"  # this run's pods alone


def test_each_pod_has_the_variables_torchrun_expects_with_its_rank_from_the_downward_api() -> None:
    document, _ = valid_distributed_job(DISTRIBUTED)
    _, run = containers(document)
    env = variables(run)
    assert env["MASTER_ADDR"] == "shipyard-01jq3dist-0.shipyard-01jq3dist"  # index 0 in the Service
    assert (env["MASTER_PORT"], env["WORLD_SIZE"], env["SHIPYARD_WORKERS"]) == ("29500", "3", "2")
    by_index = {"fieldRef": {"fieldPath": INDEX_PATH}}
    assert env["RANK"] == env["SHIPYARD_WORKER_INDEX"] == by_index
    assert "TF_CONFIG" not in env


def test_a_hyperparameter_never_stands_in_for_a_distributed_variable() -> None:
    job = dataclasses.replace(DISTRIBUTED, hyperparameters={"RANK": "7", "WORLD_SIZE": "9", "lr": "0.1"})
    document, _ = valid_distributed_job(job)  # no variable stands twice
    env = variables(containers(document)[1])
    assert env["RANK"] == {"fieldRef": {"fieldPath": INDEX_PATH}} and env["WORLD_SIZE"] == "3"


@pytest.mark.parametrize("distribution", [Distribution.NONE, Distribution.AUTOMATIC])
def test_without_manual_distribution_the_run_is_one_pod_with_all_its_gpus(distribution: Distribution) -> None:
    document, _ = valid_job(dataclasses.replace(JOB, distribution=distribution, gpu_count=4))
    spec = document["spec"]
    assert "completionMode" not in spec and "completions" not in spec and "parallelism" not in spec
    assert "subdomain" not in spec["template"]["spec"] and "affinity" not in spec["template"]["spec"]
    _, run = containers(document)
    assert run["resources"]["limits"] == {GPU_RESOURCE: "4"}
    assert not {"MASTER_ADDR", "RANK", "WORLD_SIZE", "SHIPYARD_WORKER_INDEX"} & variables(run).keys()


def test_the_secret_is_owned_by_the_job_it_was_created_with() -> None:
    created = run_objects(JOB, "ml", IMAGE, URLS).job
    with pytest.raises(ValueError, match="no uid"):
        job_owner(created)
    assert created.metadata is not None
    created.metadata.uid = "5b0c0001-6f1e-4c5a-9d43-1a2b3c4d5e6f"
    owner = round_trip(job_owner(created), "V1OwnerReference")
    assert owner == {"apiVersion": "batch/v1", "kind": "Job", "name": "shipyard-01jq3run",
                     "uid": "5b0c0001-6f1e-4c5a-9d43-1a2b3c4d5e6f"}


# --- the pod's scripts, run here against a stand-in for S3's presigned URLs --------------------------


@dataclass
class FakeS3:
    """Serves GETs of ``objects`` and keeps PUTs, by path."""

    objects: dict[str, bytes] = field(default_factory=dict)
    url: str = ""


@pytest.fixture
def s3() -> Iterator[FakeS3]:
    store = FakeS3()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = store.objects.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def do_PUT(self) -> None:
            store.objects[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    store.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield store
    finally:
        server.shutdown()
        server.server_close()


def test_the_init_script_unpacks_code_and_inputs_where_the_run_sees_them(s3: FakeS3, tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    (stage / "shipyard/code").mkdir(parents=True)
    (stage / "shipyard/code/train.py").write_text("print('hi')\n")
    (stage / "input-0/sub").mkdir(parents=True)
    (stage / "input-0/sub/rows.csv").write_text("a,b\n1,2\n")
    _lay_out(stage / "shipyard", Job("r1", "t1", "true", config_file_name="c.yaml", config=b"k: v\n",
                                     hyperparameters={"lr": "0.1"}))
    pack(stage, tmp_path / "inputs.tar")
    s3.objects["/inputs.tar"] = (tmp_path / "inputs.tar").read_bytes()
    pod = tmp_path / "pod"
    places = {"shipyard": str(pod / "run/shipyard"), "input-0": str(pod / "data")}
    env = {"PATH": os.environ["PATH"], "SHIPYARD_UNPACK": json.dumps(places),
           "SHIPYARD_INPUTS_URL": f"{s3.url}/inputs.tar"}
    done = subprocess.run([sys.executable, "-c", FETCH_SCRIPT], env=env, capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")  # quiet when it works
    assert (pod / "run/shipyard/code/train.py").read_text() == "print('hi')\n"
    assert (pod / "data/sub/rows.csv").read_text() == "a,b\n1,2\n"
    assert (pod / "run/shipyard/config/c.yaml").read_bytes() == b"k: v\n"
    assert json.loads((pod / "run/shipyard/hyperparameters.json").read_text()) == {"lr": "0.1"}
    assert (pod / "run/shipyard/sdk/shipyard/sdk.py").is_file()
    for folder in ("output", "home", "tensorboard"):
        assert os.access(pod / "run/shipyard" / folder, os.W_OK)


def test_the_init_script_fails_naming_what_it_could_not_fetch(s3: FakeS3, tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "SHIPYARD_UNPACK": "{}", "SHIPYARD_INPUTS_URL": f"{s3.url}/gone.tar"}
    done = subprocess.run([sys.executable, "-c", FETCH_SCRIPT], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert "code and inputs could not be fetched: HTTPError: HTTP Error 404" in done.stderr
    assert "gone.tar" not in done.stderr  # never the presigned URL


def wrapper(command: str) -> list[str]:
    return ["/bin/sh", "-c", WRAPPER, "shipyard-run", UPLOAD_SCRIPT, command]


def wrapper_env(tmp_path: Path, dirs: list[str], urls: list[str]) -> dict[str, str]:
    # python3 on PATH is the image's; here this interpreter stands in for it.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "python3").unlink(missing_ok=True)
    (bin_dir / "python3").symlink_to(sys.executable)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SHIPYARD_OUTPUT_DIRS": json.dumps(dirs),
            "SHIPYARD_OUTPUT_URLS": json.dumps(urls)}


def tar_files(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_the_wrapper_runs_the_command_then_puts_each_output_as_a_tar(s3: FakeS3, tmp_path: Path) -> None:
    out, model = tmp_path / "output", tmp_path / "model"
    out.mkdir()
    model.mkdir()
    command = (f"echo loss=0.5; echo warn >&2; env > {tmp_path}/env.txt; "
               f"echo acc > {out}/metrics.txt; mkdir -p {model}/w; printf w > {model}/w/weights.bin")
    dirs, urls = [str(out), str(model)], [f"{s3.url}/outputs/0.tar", f"{s3.url}/outputs/1.tar"]
    done = subprocess.run(wrapper(command), env=wrapper_env(tmp_path, dirs, urls),
                          capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "loss=0.5\n", "warn\n")
    assert tar_files(s3.objects["/outputs/0.tar"]) == {"./metrics.txt": b"acc\n"}
    assert tar_files(s3.objects["/outputs/1.tar"]) == {"./w/weights.bin": b"w"}
    seen = (tmp_path / "env.txt").read_text()
    assert "SHIPYARD_OUTPUT_URLS" not in seen and "SHIPYARD_OUTPUT_DIRS" not in seen


def test_the_commands_exit_code_passes_through_and_a_failed_run_uploads_nothing(s3: FakeS3,
                                                                                tmp_path: Path) -> None:
    out = tmp_path / "output"
    out.mkdir()
    dirs, urls = [str(out)], [f"{s3.url}/outputs/0.tar"]
    done = subprocess.run(wrapper("echo failing; exit 3"), env=wrapper_env(tmp_path, dirs, urls),
                          capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (3, "failing\n")
    assert s3.objects == {}


def test_an_upload_that_fails_says_so_and_the_commands_code_stands(s3: FakeS3, tmp_path: Path) -> None:
    out = tmp_path / "output"
    out.mkdir()
    dirs, urls = [str(out)], ["http://127.0.0.1:9/refused.tar"]
    done = subprocess.run(wrapper("true"), env=wrapper_env(tmp_path, dirs, urls),
                          capture_output=True, text=True)
    assert done.returncode == 0  # run-svc then finds the output missing and says why
    assert f"output 0 ({out}) could not be uploaded" in done.stderr
    assert "refused.tar" not in done.stderr


@pytest.mark.parametrize(("index", "uploads"), [("0", True), ("1", False)])
def test_only_the_master_uploads_the_outputs(s3: FakeS3, tmp_path: Path, index: str, uploads: bool) -> None:
    out = tmp_path / "output"
    out.mkdir()
    env = wrapper_env(tmp_path, [str(out)], [f"{s3.url}/outputs/0.tar"]) | {"SHIPYARD_WORKER_INDEX": index}
    done = subprocess.run(wrapper(f"echo rank {index} > {out}/weights.txt"), env=env, capture_output=True,
                          text=True)
    assert (done.returncode, done.stderr) == (0, "")
    if uploads:
        assert tar_files(s3.objects["/outputs/0.tar"]) == {"./weights.txt": b"rank 0\n"}
    else:
        assert s3.objects == {}


def test_sigterm_to_the_pod_reaches_the_command(s3: FakeS3, tmp_path: Path) -> None:
    command = "trap 'echo got-term; exit 7' TERM; echo started; while :; do sleep 0.05; done"
    with subprocess.Popen(wrapper(command), env=wrapper_env(tmp_path, [], []), stdout=subprocess.PIPE,
                          text=True, start_new_session=True) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == "started\n"  # the trap is set: the command runs
            process.send_signal(signal.SIGTERM)
            out, _ = process.communicate(timeout=30)
        finally:  # a signal that got lost leaves the wrapper and its command waiting: end both
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert (process.returncode, out) == (7, "got-term\n")


# --- a trial whose study reads its files (File, TensorFlowEvent collectors) ------------------------------

COLLECTED_URL = "https://s3.example/staging/runs/r1/collected.json?X-Amz-Signature=put-collected"


def test_a_trials_pod_sends_the_files_its_study_reads_through_a_url_in_the_secret() -> None:
    trial = dataclasses.replace(JOB, collector_path="/var/log/katib/metrics.log")
    document, secret = valid_job(trial, dataclasses.replace(URLS, collected=COLLECTED_URL))
    _, run = containers(document)
    env = {variable["name"]: variable for variable in run["env"]}
    assert json.loads(env["SHIPYARD_COLLECT"]["value"]) == {
        "base": f"{RUN_ROOT}/code", "path": "/var/log/katib/metrics.log", "max": COLLECTED_MAX}
    assert env["SHIPYARD_COLLECT_URL"]["valueFrom"]["secretKeyRef"] == {"name": "shipyard-01jq3run",
                                                                        "key": COLLECTED_URL_KEY}
    assert secret["stringData"][COLLECTED_URL_KEY] == COLLECTED_URL
    assert "X-Amz-Signature" not in json.dumps(document)  # the URL stands in the Secret alone
    assert run["command"][-2:] == ["python train.py --epochs 3", COLLECT_SCRIPT]
    # Any other run sends nothing of the kind.
    document, secret = valid_job()
    _, run = containers(document)
    assert not {"SHIPYARD_COLLECT", "SHIPYARD_COLLECT_URL"} & {variable["name"] for variable in run["env"]}
    assert COLLECTED_URL_KEY not in secret["stringData"] and COLLECT_SCRIPT not in run["command"]


def collecting_env(tmp_path: Path, s3: FakeS3, code: Path, path: str) -> dict[str, str]:
    return wrapper_env(tmp_path, [], []) | {
        "SHIPYARD_COLLECT": json.dumps({"base": str(code), "path": path, "max": COLLECTED_MAX}),
        "SHIPYARD_COLLECT_URL": f"{s3.url}/collected.json", "SHIPYARD_PUSH_EVERY_S": "0.05"}


def sent(s3: FakeS3) -> dict[str, bytes]:
    return parse_collected(s3.objects.get("/collected.json", b"{}"), COLLECTED_MAX)


def test_the_wrapper_sends_the_studys_files_while_the_command_runs_and_after_it(s3: FakeS3,
                                                                               tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("accuracy=0.99\n")
    command = (f"cd {code} && mkdir log && echo accuracy=0.5 > log/metrics.log && ln -s {secret} log/link "
               "&& mkfifo log/fifo && while [ ! -e go ]; do sleep 0.05; done && echo accuracy=0.6 >> "
               "log/metrics.log && env > env.txt")
    with subprocess.Popen([*wrapper(command), COLLECT_SCRIPT], env=collecting_env(tmp_path, s3, code, "/log"),
                          stderr=subprocess.PIPE, text=True, start_new_session=True) as process:
        try:
            wait_for(lambda: sent(s3) == {"/log/metrics.log": b"accuracy=0.5\n"}, 30,
                     "the first value sent while the command runs")
            (code / "go").touch()
            _, errors = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert (process.returncode, errors) == (0, "")
    # The file as the command left it; never the link's target nor the FIFO.
    assert sent(s3) == {"/log/metrics.log": b"accuracy=0.5\naccuracy=0.6\n"}
    seen = (code / "env.txt").read_text()
    assert "SHIPYARD_COLLECT" not in seen and "collected.json" not in seen


def test_a_workers_pod_sends_no_files(s3: FakeS3, tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    env = collecting_env(tmp_path, s3, code, "/") | {"SHIPYARD_WORKER_INDEX": "1"}
    done = subprocess.run([*wrapper(f"echo accuracy=0.5 > {code}/metrics.log"), COLLECT_SCRIPT], env=env,
                          capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (0, "")
    assert s3.objects == {}
