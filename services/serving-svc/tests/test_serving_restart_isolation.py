"""serving-svc's start where model servers cannot be isolated (bubblewrap gone since they were made):
an endpoint that was made with a sandbox is never served without one; it waits in ``error``, saying
why, and serves again at the first start where its servers can be isolated. The rule is the one new
endpoints are made under: an operator's, or anyone's in single-user mode, start unsandboxed."""

from __future__ import annotations

from serving_fakes import FakeServers, fake_world
from shipyard_serving.domain.serving import ModelPin, ServingSpec, ServingStatus

from shipyard.kit.caller import Caller
from shipyard.kit.testing import ALICE, OPERATOR_CALLER

PAT = Caller("pat", frozenset({"production-engineer"}))
ERIN = Caller("erin", frozenset({"ml-engineer"}))


class Unisolated(FakeServers):
    """Model servers on a machine whose bubblewrap went away."""

    def isolation_missing(self) -> str:
        return "bubblewrap is not installed"


async def test_an_inference_made_with_a_sandbox_waits_in_error_until_it_can_have_one_again() -> None:
    world = await fake_world()
    await world.inferences.create(ALICE, "alice-test", ModelPin("mnist"), ServingSpec())

    without = Unisolated()
    await world.restarted(without).inferences.recover()

    assert without.running == {}
    held = await world.inferences.get("alice-test")
    assert held.status is ServingStatus.ERROR
    assert "not started again after serving-svc restarted" in held.status_reason
    assert "bubblewrap is not installed" in held.status_reason
    assert world.event_names()[-1] == "InferenceUpdated"

    again = Unisolated()  # still no bubblewrap: it stays as it is, no new event
    await world.restarted(again).inferences.recover()
    assert again.running == {} and world.event_names().count("InferenceUpdated") == 1

    with_bubblewrap = FakeServers()
    await world.restarted(with_bubblewrap).inferences.recover()
    assert list(with_bubblewrap.running) == ["alice-test"]
    back = await world.inferences.get("alice-test")
    assert (back.status, back.status_reason) == (ServingStatus.QUEUED, "")


async def test_an_operators_inference_starts_again_unsandboxed_as_it_could_be_made() -> None:
    world = await fake_world()
    await world.inferences.create(OPERATOR_CALLER, "root-test", ModelPin("mnist"), ServingSpec())
    without = Unisolated()
    await world.restarted(without).inferences.recover()
    assert list(without.running) == ["root-test"]
    assert (await world.inferences.get("root-test")).status is ServingStatus.QUEUED


async def test_in_single_user_mode_anyones_inference_starts_again_unsandboxed() -> None:
    world = await fake_world(single_user=True)
    await world.inferences.create(ALICE, "alice-test", ModelPin("mnist"), ServingSpec())
    without = Unisolated()
    await world.restarted(without).inferences.recover()
    assert list(without.running) == ["alice-test"]


async def test_a_deployment_made_with_a_sandbox_waits_in_error_until_it_can_have_one_again() -> None:
    world = await fake_world()
    await world.catalog.publish(ERIN, "mnist-v2", ModelPin("mnist", 2), ServingSpec(), project="vision")
    await world.deployments.create(PAT, "live", "mnist-v2", ServingSpec(), frozenset())

    without = Unisolated()
    await world.restarted(without).deployments.recover()

    assert without.running == {}
    held = await world.deployments.get("live")
    assert held.status is ServingStatus.ERROR and "bubblewrap is not installed" in held.status_reason
    assert world.event_names()[-1] == "DeploymentUpdated"

    with_bubblewrap = FakeServers()
    await world.restarted(with_bubblewrap).deployments.recover()
    assert with_bubblewrap.running["live"].model.version == 2
    assert (await world.deployments.get("live")).status is ServingStatus.QUEUED


async def test_an_operators_deployment_starts_again_unsandboxed() -> None:
    world = await fake_world()
    await world.catalog.publish(ERIN, "mnist-v2", ModelPin("mnist", 2), ServingSpec(), project="vision")
    await world.deployments.create(OPERATOR_CALLER, "live", "mnist-v2", ServingSpec(), frozenset())
    without = Unisolated()
    await world.restarted(without).deployments.recover()
    assert list(without.running) == ["live"]
