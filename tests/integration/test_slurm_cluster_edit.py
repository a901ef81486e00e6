"""Editing a cluster through the whole stack, on a real Slurm (``loopback_slurm``): a new partition
reaches the next run's sbatch while a run in flight is still watched to its end; its work dir does not
change under that run (refused, naming it), and once it ended a new work dir takes the next run; each
change is in the activity feed."""

from __future__ import annotations

import contextlib

import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.lineage.v1 import lineage_pb2
from shipyard.contracts.run.v1 import clusters_pb2 as cpb
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.local.harness import Stack, wait_for
from shipyard.local.slurm import LoopbackSlurm
from tests.support.slurm import add_loopback_cluster

ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)


def _run(admin: Client, name: str) -> pb.Run:
    return admin.call(admin.runs.GetRun, pb.GetRunRequest(name=name))


def _ended(admin: Client, name: str) -> pb.Run:
    """The run once it ended; as it is after 90 s otherwise (the caller's check on its status says)."""
    with contextlib.suppress(TimeoutError):
        wait_for(lambda: _run(admin, name).status in ENDED, 90, f"run {name} to end")
    return _run(admin, name)


def _logs(admin: Client, name: str) -> bytes:
    return admin.call(admin.runs.ReadRunLogs, pb.ReadRunLogsRequest(name=name)).data


def _changes(admin: Client, cluster: str) -> list[str]:
    """The activity feed's entries about the cluster."""
    reply = admin.call(admin.lineage.ListActivity, lineage_pb2.ListActivityRequest(
        page_size=100, type_prefix="io.shipyard.cluster."))
    return [a.summary for a in reply.activities if a.subject == f"clusters/{cluster}"]


def _edit(admin: Client, name: str, **fields: str) -> cpb.Cluster:
    cluster = cpb.Cluster()
    for field, value in fields.items():
        setattr(cluster, field, value)
    return admin.call(admin.clusters.UpdateCluster, cpb.UpdateClusterRequest(
        name=name, cluster=cluster, update_mask=FieldMask(paths=sorted(fields))))


def test_a_new_partition_reaches_the_next_run_while_a_run_in_flight_is_watched_to_its_end(
        stack: Stack, admin: Client, loopback_slurm: LoopbackSlurm) -> None:
    cluster = add_loopback_cluster(admin, loopback_slurm, "hpc-edit")
    # The run in flight ends when the test makes the file "gate" in its working directory (the job sees
    # its own job directory alone).
    in_flight = admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="edit-before", cluster=cluster,
        command="echo started; while [ ! -e gate ]; do sleep 0.2; done; echo finished")))
    wait_for(lambda: b"started" in _logs(admin, "edit-before"), 60, "the job to start")
    gate = loopback_slurm.work_dir / "runs" / in_flight.id / "code" / "gate"

    with pytest.raises(ClientError) as moved:
        _edit(admin, cluster, work_dir=str(loopback_slurm.work_dir / "v2"))
    assert moved.value.code == "FAILED_PRECONDITION"
    assert "1 runs not ended (edit-before)" in moved.value.message
    assert _edit(admin, cluster, partition="nowhere").partition == "nowhere"  # for new runs: any time
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="edit-nowhere", command="echo never", cluster=cluster)))
    refused = _ended(admin, "edit-nowhere")
    assert refused.status == pb.RUN_STATUS_ERROR, pb.RunStatus.Name(refused.status)
    assert "refused the job" in refused.status_reason and "partition" in refused.status_reason.lower()

    gate.touch()
    before = _ended(admin, "edit-before")
    assert before.status == pb.RUN_STATUS_COMPLETE, (pb.RunStatus.Name(before.status), before.status_reason)
    assert b"finished" in _logs(admin, "edit-before")

    new_dir = loopback_slurm.work_dir / "v2"
    edited = _edit(admin, cluster, partition=loopback_slurm.partition, work_dir=str(new_dir))
    assert (edited.partition, edited.work_dir) == (loopback_slurm.partition, str(new_dir))
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="edit-after", command="echo here; pwd", cluster=cluster)))
    after = _ended(admin, "edit-after")
    assert after.status == pb.RUN_STATUS_COMPLETE, (pb.RunStatus.Name(after.status), after.status_reason)
    assert any(f"partition {loopback_slurm.partition}" in note for note in after.notes)
    assert f"{new_dir}/runs/{after.id}".encode() in _logs(admin, "edit-after")
    wait_for(lambda: any(s.endswith("updated cluster hpc-edit (partition, work_dir)")
                         for s in _changes(admin, cluster)), 30, "the change in the activity feed")
