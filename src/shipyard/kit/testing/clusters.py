"""A fake of the kit's cluster client (:class:`shipyard.kit.clients.clusters.ClusterClient`) for
serving-svc's unit tests: the clusters a test adds, read as run-svc answers GetCluster."""

from __future__ import annotations

from dataclasses import dataclass, field

from shipyard.kit.caller import Caller
from shipyard.kit.clients.clusters import ClusterRecord
from shipyard.kit.errors import NotFound


@dataclass
class FakeClusterClient:
    """Clusters by name; ``calls`` keeps (caller's user, name) of each read."""

    clusters: dict[str, ClusterRecord] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def add(self, record: ClusterRecord) -> ClusterRecord:
        """Keep the cluster; what ``get`` returns for its name."""
        self.clusters[record.name] = record
        return record

    async def get(self, caller: Caller, name: str) -> ClusterRecord:
        """The cluster, or NotFound as run-svc words it."""
        self.calls.append((caller.user, name))
        found = self.clusters.get(name)
        if found is None:
            raise NotFound(f"no cluster named {name!r} (shipyard cluster list shows them)")
        return found

    async def close(self) -> None:
        """Nothing to close."""
