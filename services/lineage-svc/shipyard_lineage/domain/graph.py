"""The provenance graph: what each event says about nodes and edges, and how those facts merge.

Every fact carries the stream sequence of the event that stated it. A node keeps, for each of
its fields, the value stated by the latest event (highest sequence), so applying the same
events in any order, or twice, gives the same graph — which is what lets lineage-svc take
events as they come and rebuild by replaying the stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from shipyard.kit.caller import OPERATOR

# Node kinds
RUN = "run"
CODE = "code"
IMAGE = "image"
PUBLISHED = "published"
DEPLOYMENT = "deployment"
VERSION_KINDS = ("dataset", "featureset", "model")
KINDS = (RUN, CODE, IMAGE, PUBLISHED, DEPLOYMENT, *VERSION_KINDS)

# Edge relations, in the direction data flows
USED = "used"
PRODUCED = "produced"
PUBLISHED_AS = "published_as"
DEPLOYED_AS = "deployed_as"

# Who may see the model catalog and what is deployed from it (docs/architecture.md, roles: a data
# scientist cannot see the catalog).
CATALOG_ROLES = frozenset({OPERATOR, "ml-engineer", "production-engineer"})
CATALOG_KINDS = frozenset({PUBLISHED, DEPLOYMENT})


class Direction(Enum):
    """Which way a walk follows edges."""

    UPSTREAM = "upstream"      # where it came from: edges backwards
    DOWNSTREAM = "downstream"  # what came of it: edges forwards
    BOTH = "both"


def run_id(run: str) -> str:
    """The node id of a run."""
    return f"run:{run}"


def version_id(repo_id: str, number: int) -> str:
    """The node id of a dataset, feature set or model version (by repo id: names change)."""
    return f"version:{repo_id}@{number}"


def code_id(repo: str, commit: str) -> str:
    """The node id of a code repo at a commit."""
    return f"code:{repo}@{commit}"


def image_id(reference: str) -> str:
    """The node id of a container image."""
    return f"image:{reference}"


def published_id(name: str) -> str:
    """The node id of a model catalog entry."""
    return f"published:{name}"


def deployment_id(name: str) -> str:
    """The node id of a deployment."""
    return f"deployment:{name}"


@dataclass(frozen=True)
class NodeFact:
    """What one event states about one node: its kind and some fields."""

    id: str
    kind: str
    seq: int
    time: str  # the event's time, ISO 8601
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EdgeFact:
    """One edge: ``source`` flowed into ``target``."""

    source: str
    target: str
    relation: str

    @property
    def id(self) -> str:
        """A stable key: the same edge stated twice is one edge."""
        return f"{self.source}>{self.relation}>{self.target}"


@dataclass(frozen=True)
class RepoFact:
    """What one event states about a repo (its name, kind, project, whether it is gone)."""

    repo_id: str
    seq: int
    fields: dict[str, str]


@dataclass
class Merged:
    """Fields merged field by field, the latest sequence winning; the state of a node or a repo."""

    fields: dict[str, str] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)
    first: int = 0     # sequence of the earliest fact
    updated: int = 0   # sequence of the latest fact
    time: str = ""     # the latest fact's event time
    created: str = ""  # the earliest fact's event time
    revision: int = 0  # the store's revision of the saved state (0: never saved)

    def merge(self, seq: int, time: str, fields: dict[str, str]) -> bool:
        """Take the fields this fact states where it is newer; whether anything changed."""
        changed = False
        for name, value in fields.items():
            if seq > self.seqs.get(name, -1) or (seq == self.seqs[name] and self.fields[name] != value):
                self.fields[name] = value
                self.seqs[name] = seq
                changed = True
        if not self.first or seq < self.first:
            self.first, self.created, changed = seq, time, True
        if seq > self.updated:
            self.updated, self.time, changed = seq, time, True
        return changed


@dataclass
class NodeState(Merged):
    """A node as the graph holds it."""

    id: str = ""
    kind: str = ""

    @property
    def project(self) -> str:
        return self.fields.get("project", "")

    @property
    def name(self) -> str:
        return self.fields.get("name", "")

    @property
    def status(self) -> str:
        return self.fields.get("status", "")

    @property
    def ref(self) -> str:
        """The repo id of a version."""
        return self.fields.get("ref", "")

    @property
    def number(self) -> int:
        """The version number of a version."""
        return int(self.fields.get("number", "0") or 0)

    @property
    def deleted(self) -> bool:
        return self.fields.get("deleted") == "true"

    @property
    def gpus(self) -> int:
        return int(self.fields.get("gpus", "0") or 0)


@dataclass
class RepoState(Merged):
    """A repo as lineage knows it: enough to name its versions and count repos."""

    id: str = ""

    @property
    def kind(self) -> str:
        return self.fields.get("kind", "")

    @property
    def name(self) -> str:
        return self.fields.get("name", "")

    @property
    def project(self) -> str:
        return self.fields.get("project", "")

    @property
    def deleted(self) -> bool:
        return self.fields.get("deleted") == "true"


def new_node(fact: NodeFact) -> NodeState:
    """A node made from its first fact."""
    node = NodeState(id=fact.id, kind=fact.kind)
    node.merge(fact.seq, fact.time, fact.fields)
    return node


def label_of(node: NodeState, repo_name: str = "") -> str:
    """What a person reads: ``mnist@3``, ``train-1``, ``train@1a2b3c4``, ``python:3.12``."""
    if node.kind in VERSION_KINDS:
        return f"{repo_name or node.fields.get('repo', '?')}@{node.number}"
    if node.kind == CODE:
        return f"{node.fields.get('repo', '?')}@{node.fields.get('commit', '')[:7]}"
    return node.name or node.id.partition(":")[2]


def visible_to(roles: frozenset[str], kind: str) -> bool:
    """Whether someone holding ``roles`` may see a node of ``kind``."""
    return kind not in CATALOG_KINDS or bool(roles & CATALOG_ROLES)
