"""The model server's command line as serving-svc writes it: the two never import each other (the
model server is a process of its own), so this is where both meet."""

from __future__ import annotations

from shipyard_model_server.adapters import predictors
from shipyard_model_server.entrypoints.process import parse_args
from shipyard_serving.adapters.kserve import inference_service
from shipyard_serving.domain import serving
from shipyard_serving.domain.serving import ModelPin, ServingSpec

IMAGE = "registry.example/shipyard:0.1.0"
URI = "s3://shipyard-models/mnist/3"
MNIST = ModelPin("mnist", 3, "m-1", "sha256:mnist-3")


def test_the_flags_are_ones_the_model_server_parses() -> None:
    spec = ServingSpec(framework="custom", predictor="model:Predictor", max_concurrency=4)
    [container] = inference_service("c", "ns", MNIST, spec, URI, default_image=IMAGE)["spec"]["predictor"][
        "containers"
    ]
    args = parse_args(container["args"])
    assert (args.model_dir, args.model_name, args.model_version, args.port, args.host) == (
        "/mnt/models", "mnist", "3", 8080, "0.0.0.0",
    )
    assert (args.framework, args.predictor, args.max_concurrency) == ("custom", "model:Predictor", 4)


def test_serving_svc_accepts_the_frameworks_the_model_server_loads() -> None:
    assert serving.FRAMEWORKS == predictors.FRAMEWORKS
