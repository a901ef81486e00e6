"""The model catalog and deployments: publish, deploy, swap (and a swap that fails), on fakes and the
real store adapters."""

from __future__ import annotations

import pytest
from serving_fakes import FakeServers, World, fake_world
from shipyard_serving.domain.serving import ModelPin, Observation, ReplicaState, ServingSpec, ServingStatus

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.caller import Caller
from shipyard.kit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

ERIN = Caller("erin", frozenset({"ml-engineer"}))
PAT = Caller("pat", frozenset({"production-engineer"}))


async def ready(world: World, name: str, label: str, count: int = 1, failure: str = "") -> None:
    """The endpoint's ``count`` servers are ready serving ``label`` (or failed to load it)."""
    replicas = [ReplicaState(f"127.0.0.1:{9000 + i}", True, model=label) for i in range(count)]
    seen = Observation(ready=count, replicas=replicas, failure=failure, serving=label)
    await world.servers.report(name, seen)


@pytest.fixture
async def world() -> World:
    w = await fake_world()
    await w.catalog.publish(
        ERIN, "mnist-v2", ModelPin("mnist", 2), ServingSpec(max_concurrency=4), project="vision"
    )
    await w.catalog.publish(
        ERIN, "mnist-v3", ModelPin("mnist", 3), ServingSpec(max_concurrency=4), project="vision"
    )
    return w


async def test_publish_pins_the_version_keeps_its_metrics_and_says_so(world: World) -> None:
    entry = await world.catalog.get("mnist-v3")
    assert (entry.model.version, entry.model.model_id, entry.metrics) == (3, "id-mnist", {"accuracy": 0.93})
    published = world.events(events_pb2.ModelPublished)
    assert [(p.catalog_name, p.version, p.model_id) for p in published] == [
        ("mnist-v2", 2, "id-mnist"),
        ("mnist-v3", 3, "id-mnist"),
    ]
    with pytest.raises(AlreadyExists, match="mnist-v3"):
        await world.catalog.publish(ERIN, "mnist-v3", ModelPin("mnist", 1), ServingSpec())
    with pytest.raises(NotFound, match="model 'mnist' has no version 7"):
        await world.catalog.publish(ERIN, "mnist-v7", ModelPin("mnist", 7), ServingSpec())


async def test_deploy_takes_the_entrys_defaults_with_the_fields_given(world: World) -> None:
    made = await world.deployments.create(
        PAT, "mnist-live", "mnist-v2", ServingSpec(min_replicas=2), frozenset({"min_replicas"})
    )
    assert (made.spec.min_replicas, made.spec.max_concurrency, made.project) == (2, 4, "vision")
    assert world.servers.running["mnist-live"].model.version == 2
    await ready(world, "mnist-live", "mnist@2", count=2)
    running = await world.deployments.get("mnist-live")
    assert (
        running.status is ServingStatus.RUNNING and running.endpoint == "/serving/mnist-live/v2/models/mnist"
    )
    assert world.event_names()[-2:] == ["DeploymentCreated", "DeploymentUpdated"]


async def test_deploy_refuses_unknown_entries_bad_fields_and_taken_names(world: World) -> None:
    with pytest.raises(NotFound, match="nope"):
        await world.deployments.create(PAT, "d", "nope", ServingSpec(), frozenset())
    with pytest.raises(InvalidArgument, match="update_mask"):
        await world.deployments.create(PAT, "d", "mnist-v2", ServingSpec(), frozenset({"colour"}))
    with pytest.raises(InvalidArgument) as caught:
        await world.deployments.create(
            PAT, "d", "mnist-v2", ServingSpec(min_replicas=50), frozenset({"min_replicas"})
        )
    assert caught.value.field == "spec.min_replicas"
    await world.inferences.create(ERIN, "taken", ModelPin("mnist"), ServingSpec())
    with pytest.raises(AlreadyExists, match="taken"):
        await world.deployments.create(PAT, "taken", "mnist-v2", ServingSpec(), frozenset())
    assert await world.stored_deployments() == []


async def test_a_swap_moves_to_the_new_version_once_its_servers_are_ready(world: World) -> None:
    await world.deployments.create(PAT, "live", "mnist-v2", ServingSpec(), frozenset())
    await ready(world, "live", "mnist@2")
    swapping = await world.deployments.update(
        PAT, "live", "", ModelPin("mnist", 3), ServingSpec(), frozenset()
    )
    assert (swapping.status, swapping.model.version, swapping.previous_model) == (
        ServingStatus.UPDATING,
        3,
        ModelPin("mnist", 2, "id-mnist", "sha256:mnist-2"),
    )
    assert world.servers.running["live"].model.version == 3
    await ready(world, "live", "mnist@2")  # the old servers still serve: still updating
    assert (await world.deployments.get("live")).status is ServingStatus.UPDATING
    await ready(world, "live", "mnist@3")
    done = await world.deployments.get("live")
    assert (done.status, done.model.version, done.catalog_entry) == (ServingStatus.RUNNING, 3, "mnist-v3")


async def test_a_swap_whose_model_cannot_load_leaves_the_previous_version_serving(world: World) -> None:
    await world.deployments.create(PAT, "live", "mnist-v2", ServingSpec(), frozenset())
    await ready(world, "live", "mnist@2")
    await world.deployments.update(PAT, "live", "mnist-v3", None, ServingSpec(), frozenset())
    await ready(world, "live", "mnist@2", failure="cannot load sklearn model model.joblib: UnpicklingError")
    failed = await world.deployments.get("live")
    assert failed.status is ServingStatus.FAILED and failed.model.version == 2
    assert (
        "mnist@3 could not be served" in failed.status_reason
        and "mnist@2 still serves" in failed.status_reason
    )


async def test_a_version_not_in_the_catalog_cannot_be_deployed(world: World) -> None:
    await world.deployments.create(PAT, "live", "mnist-v2", ServingSpec(), frozenset())
    with pytest.raises(FailedPrecondition, match="publishes it first"):
        await world.deployments.update(PAT, "live", "", ModelPin("mnist", 1), ServingSpec(), frozenset())


async def test_a_deployed_entry_cannot_be_unpublished_until_the_deployment_goes(world: World) -> None:
    await world.deployments.create(PAT, "live", "mnist-v2", ServingSpec(), frozenset())
    with pytest.raises(FailedPrecondition, match="live"):
        await world.catalog.unpublish(ERIN, "mnist-v2")
    await world.deployments.delete(PAT, "live")
    assert world.servers.removed == ["live"]
    await world.catalog.unpublish(ERIN, "mnist-v2")
    assert world.event_names()[-2:] == ["DeploymentDeleted", "ModelUnpublished"]
    entries, token = await world.catalog.list_page("", "", 0, "")
    assert [e.name for e in entries] == ["mnist-v3"] and token == ""


async def test_recover_starts_live_deployments(world: World) -> None:
    await world.deployments.create(PAT, "live", "mnist-v2", ServingSpec(), frozenset())
    fresh = FakeServers()
    await world.restarted(fresh).deployments.recover()
    assert list(fresh.running) == ["live"]


async def test_recover_serves_again_what_a_failed_swap_went_back_to(world: World) -> None:
    await world.deployments.create(PAT, "live", "mnist-v2", ServingSpec(max_replicas=3),
                                   frozenset({"max_replicas"}))
    await ready(world, "live", "mnist@2")
    await world.deployments.update(PAT, "live", "mnist-v3", None, ServingSpec(max_replicas=2),
                                   frozenset({"max_replicas"}))
    await ready(world, "live", "mnist@2", failure="cannot load sklearn model model.joblib: UnpicklingError")
    fresh = FakeServers()
    await world.restarted(fresh).deployments.recover()
    # What served before the swap (model and spec), never the spec that failed.
    served = fresh.running["live"]
    assert (served.model.version, served.spec.max_replicas) == (2, 3)
    assert (await world.deployments.get("live")).status is ServingStatus.FAILED


async def test_recover_leaves_failed_deployments_with_nothing_serving(world: World) -> None:
    failure = "cannot load sklearn model model.joblib: UnpicklingError"
    await world.deployments.create(PAT, "never", "mnist-v3", ServingSpec(), frozenset())
    await ready(world, "never", "", count=0, failure=failure)  # its first model never loaded
    await world.deployments.create(PAT, "later", "mnist-v2", ServingSpec(), frozenset())
    await ready(world, "later", "mnist@2")
    await world.deployments.update(PAT, "later", "mnist-v3", None, ServingSpec(), frozenset())
    await ready(world, "later", "mnist@3")  # the swap worked, then its servers failed
    await ready(world, "later", "", count=0, failure=failure)
    await world.deployments.create(PAT, "refused", "mnist-v2", ServingSpec(), frozenset())
    await ready(world, "refused", "mnist@2")
    await world.deployments.update(PAT, "refused", "mnist-v3", None, ServingSpec(), frozenset())
    await ready(world, "refused", "", count=0, failure="cluster 'k8s': the API server answered 403")
    for name in ("never", "later", "refused"):
        assert (await world.deployments.get(name)).status is ServingStatus.FAILED
    fresh = FakeServers()
    await world.restarted(fresh).deployments.recover()
    assert fresh.running == {}
