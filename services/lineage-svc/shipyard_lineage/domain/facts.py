"""What one event states about the provenance graph: facts, each stamped with the event's stream
sequence and time (pure; ``app/event_facts.py`` reads them out of the contract's events)."""

from __future__ import annotations

from dataclasses import dataclass, field

from shipyard_lineage.domain.graph import EdgeFact, NodeFact, RepoFact, version_id


@dataclass
class Facts:
    """The facts of one event."""

    nodes: list[NodeFact] = field(default_factory=list)
    edges: list[EdgeFact] = field(default_factory=list)
    repos: list[RepoFact] = field(default_factory=list)


class Stating:
    """Collects one event's facts, stamped with its sequence and time (ISO 8601)."""

    def __init__(self, seq: int, time: str) -> None:
        self.seq = seq
        self.time = time
        self.facts = Facts()

    def node(self, node_id: str, kind: str, **fields: str) -> str:
        """State fields of a node; its id."""
        self.facts.nodes.append(NodeFact(node_id, kind, self.seq, self.time, fields))
        return node_id

    def edge(self, source: str, target: str, relation: str) -> None:
        """State that ``source`` flowed into ``target``."""
        self.facts.edges.append(EdgeFact(source, target, relation))

    def repo(self, repo_id: str, **fields: str) -> None:
        """State fields of a repo."""
        self.facts.repos.append(RepoFact(repo_id, self.seq, fields))

    def version(self, repo_id: str, repo: str, kind: str, number: int, **fields: str) -> str:
        """State fields of a version of a repo; its node id."""
        # Events written before versions carried repo ids name the repo instead.
        key = repo_id or f"{kind}/{repo}"
        return self.node(version_id(key, number), kind, ref=key, repo=repo, number=str(number), **fields)
