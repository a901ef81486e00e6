"""An operator's change to a Kubernetes cluster's namespace or ServiceAccount (run-svc allows it only while
the cluster serves no endpoint) reaches the next endpoint there with no restart of serving-svc: a cluster's
model servers close with its last endpoint and open again, from the record as it is then, for the next."""

from __future__ import annotations

from dataclasses import replace

from serving_fakes import FakeServers
from shipyard_serving.adapters.endpoint_servers import ClusterOpener, EndpointServers
from shipyard_serving.app.ports import Endpoint, ModelServers
from shipyard_serving.domain.serving import ModelPin, ServingSpec

from shipyard.kit.caller import Caller
from shipyard.kit.clients.clusters import ClusterRecord
from shipyard.kit.testing.clusters import FakeClusterClient

K8S = ClusterRecord("k8s-prod", "kubernetes", "olga", "ml", "kube", service_account="kserve-s3")
SYSTEM = Caller("serving-svc", frozenset())


class _Opened(FakeServers):
    """A cluster's model servers as opened from its record then."""

    def __init__(self, record: ClusterRecord) -> None:
        super().__init__()
        self.record = record
        self.closed = False

    async def close(self) -> None:
        self.closed = True
        await super().close()


def opener(clusters: FakeClusterClient, opened: list[_Opened]) -> ClusterOpener:
    async def open_cluster(name: str) -> ModelServers:
        opened.append(_Opened(await clusters.get(SYSTEM, name)))
        return opened[-1]

    return open_cluster


def _on_cluster(name: str) -> Endpoint:
    return Endpoint(name, ModelPin("mnist", 3), ServingSpec().checked(), "k8s-prod")


async def test_the_next_endpoint_after_the_last_one_went_uses_the_clusters_record_as_it_is_now() -> None:
    clusters, opened = FakeClusterClient(), list[_Opened]()
    clusters.add(K8S)
    servers = EndpointServers(FakeServers(), opener(clusters, opened))
    await servers.ensure(_on_cluster("first"))
    await servers.ensure(_on_cluster("second"))
    await servers.remove("first", "k8s-prod")
    assert len(opened) == 1 and not opened[0].closed  # "second" is still served there
    await servers.remove("second", "k8s-prod")
    assert opened[0].closed
    clusters.add(replace(K8S, namespace="serving", service_account="kserve-gcs"))  # the operator's change
    await servers.ensure(_on_cluster("third"))
    assert [(o.record.namespace, o.record.service_account) for o in opened] == [
        ("ml", "kserve-s3"), ("serving", "kserve-gcs")]
    assert list(opened[1].running) == ["third"]
    await servers.close()
