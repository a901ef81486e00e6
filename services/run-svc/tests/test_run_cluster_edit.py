"""Editing a cluster (UpdateCluster), against fakes: operators only; only the named fields change, checked
as at add; what new runs read changes any time and reaches the next run; how runs in flight are reached
changes only while none is queued or running; a Kubernetes cluster's namespace, ServiceAccount and
kubeconfig only while it serves no endpoint; name and kind never."""

from __future__ import annotations

from typing import Any

import pytest
from run_fakes import World, a_spec, fake_world
from shipyard_run.app.cluster_messages import changes_from_proto
from shipyard_run.app.clusters import Clusters
from shipyard_run.domain.clusters import Cluster, ClusterKind
from shipyard_run.domain.runs import RunStatus
from test_run_cluster_serving import FakeServing

from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.run.v1 import clusters_pb2 as pb
from shipyard.kit.clients.serving import ClusterEndpoints
from shipyard.kit.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from shipyard.kit.testing import ALICE, OPERATOR_CALLER

HPC = Cluster("hpc", ClusterKind.SLURM, host="login.hpc.example", ssh_user="svc", credential="hpc-key",
              partition="gpu", work_dir="/scratch/shipyard", gpus=8)
K8S = Cluster("k8s-prod", ClusterKind.KUBERNETES, kubeconfig_credential="kube-cred")


async def _world() -> World:
    world = await fake_world()
    await world.service.clusters.add(OPERATOR_CALLER, HPC)
    return world


def _updated(world: World) -> list[events_pb2.ClusterUpdated]:
    return world.uow.messages(events_pb2.ClusterUpdated, "clusters/hpc")


async def test_only_the_named_fields_change_and_the_change_is_published() -> None:
    world = await _world()
    clusters = world.service.clusters
    edited = await clusters.update(OPERATOR_CALLER, "hpc", {"partition": "a100", "gpus": 4,
                                                             "description": "the new GPUs"})
    assert (edited.partition, edited.gpus, edited.description) == ("a100", 4, "the new GPUs")
    stored = await clusters.get("hpc")
    assert stored == edited
    assert (stored.host, stored.work_dir, stored.owner, stored.create_time) == (
        HPC.host, HPC.work_dir, OPERATOR_CALLER.user, (await clusters.list())[0].create_time)
    [event] = _updated(world)
    assert list(event.changed_fields) == ["description", "gpus", "partition"]
    assert (event.cluster.partition, event.actor.user) == ("a100", OPERATOR_CALLER.user)
    await clusters.update(OPERATOR_CALLER, "hpc", {"partition": "a100"})  # no change: nothing published
    assert len(_updated(world)) == 1


async def test_a_non_operator_may_not_edit_a_cluster() -> None:
    world = await _world()
    with pytest.raises(PermissionDenied, match="only an operator may change clusters"):
        await world.service.clusters.update(ALICE, "hpc", {"partition": "mine"})
    assert (await world.service.clusters.get("hpc")).partition == "gpu"


@pytest.mark.parametrize(("changes", "field", "says"), [
    ({}, "update_mask", "name the fields to change"),
    ({"name": "hpc2"}, "update_mask", "name never changes"),
    ({"kind": ClusterKind.LSF}, "update_mask", "kind never changes"),
    ({"owner": "eve"}, "update_mask", "'owner' is not a cluster field that can change"),
    ({"colour": None}, "update_mask", "'colour' is not a cluster field"),
    ({"work_dir": "scratch"}, "cluster.work_dir", ""),
    ({"partition": "bad partition"}, "cluster.partition", ""),
    ({"gpus": -1}, "cluster.gpus", ""),
    ({"container_runtime": "docker"}, "cluster.container_runtime", ""),
    ({"namespace": "ml"}, "cluster.namespace", ""),
    ({"ssh_user": "root", "on_login_node": True, "host": "", "credential": ""}, "cluster.ssh_user", ""),
])
async def test_a_change_is_checked_as_an_added_cluster_is_naming_the_field(
        changes: dict[str, Any], field: str, says: str) -> None:
    world = await _world()
    with pytest.raises(InvalidArgument, match=says or None) as refused:
        await world.service.clusters.update(OPERATOR_CALLER, "hpc", changes)
    assert refused.value.field == field
    assert await world.service.clusters.get("hpc") == (await world.service.clusters.list())[0]
    assert (await world.service.clusters.get("hpc")).partition == "gpu"


def test_the_mask_names_the_fields_of_the_api_and_unknown_ones_reach_the_domain_to_be_refused() -> None:
    message = pb.Cluster(partition="a100", ssh_port=0, kind=pb.CLUSTER_KIND_LSF)
    changes = changes_from_proto(message, ["partition", "cluster.ssh_port", "kind", "colour"])
    assert changes == {"partition": "a100", "ssh_port": 0, "kind": ClusterKind.LSF, "colour": None}


async def test_a_new_run_uses_the_new_partition_while_a_run_in_flight_is_still_watched_to_its_end() -> None:
    world = await _world()
    first = await world.runs.submit(ALICE, a_spec("before", cluster="hpc"))
    await world.scheduler.tick()
    assert world.clusters.records[-1].partition == "gpu"
    await world.service.clusters.update(OPERATOR_CALLER, "hpc", {"partition": "a100"})
    second = await world.runs.submit(ALICE, a_spec("after", cluster="hpc"))
    await world.scheduler.tick()
    assert world.clusters.records[-1].partition == "a100"  # opened again from the new record
    hpc = world.clusters.opened["hpc"]
    assert hpc.submitted_names() == ["before", "after"]
    hpc.exit(first.id, 0)
    hpc.exit(second.id, 0)
    await world.scheduler.tick()
    assert (await world.status("before"), await world.status("after")) == (RunStatus.COMPLETE,) * 2


async def test_an_unchanged_record_and_a_pinned_host_key_keep_the_executor() -> None:
    world = await _world()
    executors = world.scheduler.executors
    await executors.of_cluster("hpc")
    await world.service.clusters.update(OPERATOR_CALLER, "hpc", {"partition": "gpu"})  # the same value
    async with world.uow() as uow:  # the first connection pins the login node's key
        pinned = await uow.clusters.by_id("hpc")
        assert pinned is not None
        await uow.clusters.save(Cluster(**{**pinned.__dict__, "ssh_host_key": "ssh-ed25519 AAAAC3Nza"}))
    await executors.of_cluster("hpc")
    assert len(world.clusters.records) == 1


async def test_how_runs_are_reached_changes_only_while_none_is_queued_or_running() -> None:
    world = await _world()
    clusters = world.service.clusters
    run = await world.runs.submit(ALICE, a_spec("t1", cluster="hpc"))
    for changes in ({"work_dir": "/data/shipyard"}, {"host": "login2.hpc.example"}, {"ssh_user": "svc2"},
                    {"login_required": True}, {"ssh_host_key": "ssh-ed25519 AAAAC3Nza"}):
        with pytest.raises(FailedPrecondition, match=r"1 runs not ended \(t1\).*then change its"):
            await clusters.update(OPERATOR_CALLER, "hpc", changes)
    await clusters.update(OPERATOR_CALLER, "hpc", {"max_workers": 2})  # what new runs read: any time
    await world.scheduler.tick()
    world.clusters.opened["hpc"].exit(run.id, 0)
    await world.scheduler.tick()
    moved = await clusters.update(OPERATOR_CALLER, "hpc", {"work_dir": "/data/shipyard",
                                                            "host": "login2.hpc.example"})
    assert (moved.work_dir, moved.host) == ("/data/shipyard", "login2.hpc.example")
    await world.runs.submit(ALICE, a_spec("t2", cluster="hpc"))
    await world.scheduler.tick()
    assert world.clusters.records[-1].work_dir == "/data/shipyard"


async def test_a_cluster_reached_over_ssh_may_move_to_its_login_node_and_back() -> None:
    world = await _world()
    clusters = world.service.clusters
    local = await clusters.update(OPERATOR_CALLER, "hpc",
                                  {"on_login_node": True, "host": "", "credential": ""})
    assert (local.on_login_node, local.ssh_port) == (True, 0)
    back = await clusters.update(OPERATOR_CALLER, "hpc",
                                 {"on_login_node": False, "host": "login.hpc.example"})
    assert back.ssh_port == 22  # over SSH again: the usual port unless the change names another


async def test_a_kubernetes_clusters_namespace_changes_only_while_it_serves_nothing() -> None:
    serving = FakeServing({"k8s-prod": ClusterEndpoints(["mnist-test"], ["live"])})
    world = await fake_world()
    clusters = Clusters(world.uow, clock=world.clock, served=serving)
    await clusters.add(OPERATOR_CALLER, K8S)
    refusal = (r"cluster 'k8s-prod' serves 2 test inferences and deployments \(test inference mnist-test, "
               r"deployment live\): delete them, then change its namespace, service_account")
    with pytest.raises(FailedPrecondition, match=refusal):
        await clusters.update(OPERATOR_CALLER, "k8s-prod",
                              {"namespace": "ml", "service_account": "kserve-s3"})
    described = await clusters.update(OPERATOR_CALLER, "k8s-prod", {"description": "prod", "gpus": 2})
    assert described.description == "prod"
    assert serving.asked == [("olga", "k8s-prod")]  # what serving does not read: serving-svc not asked
    serving.served.clear()
    moved = await clusters.update(OPERATOR_CALLER, "k8s-prod",
                                  {"namespace": "ml", "service_account": "kserve-s3"})
    assert (moved.namespace, moved.service_account) == ("ml", "kserve-s3")
