"""Each study's trial views as last computed, kept between reads.

A study's state is read on every GetStudy and ListTrials call and several times per driver tick; building
each trial's view reads its metric log, which for thousands of trials was most of the cost. A trial's run is
saved (its revision goes up) whenever its status or its metrics change (a metric is appended in the
transaction that saves the run), so a view computed for a run's revision holds until the revision moves.
The one exception is a running trial read from its log (the StdOut collector's own formats): never kept.
A listing of the trials (ListTrials) is ranked once for its first page; its next pages read that ranking.
"""

from __future__ import annotations

import hashlib
import struct
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shipyard_run.domain.studies import TrialView
from shipyard_run.domain.tuning import TuningSpec

STUDIES_KEPT = 8  # studies whose views are kept (the most recently read)
RANKING_SECONDS = 30.0  # a listing's next pages come from its first page's ranking for this long
RANKINGS_KEPT = 32
S = TypeVar("S")


@dataclass(frozen=True)
class ComputedTrial:
    """A trial's view and the watched metrics it reported, as computed for its run's ``revision``."""

    revision: int
    reported: list[tuple[str, float]]
    view: TrialView


@dataclass(frozen=True)
class _Kept:
    spec: TuningSpec  # the spec the views were computed with: a study read again with another is recomputed
    trials: Mapping[str, ComputedTrial]  # by run id


@dataclass
class TrialViews:
    """The kept views of the ``limit`` most recently read studies."""

    limit: int = STUDIES_KEPT
    _kept: OrderedDict[str, _Kept] = field(default_factory=OrderedDict)

    def of(self, study_id: str, spec: TuningSpec) -> Mapping[str, ComputedTrial]:
        """The study's kept trials by run id (empty when none, or when computed with another spec)."""
        kept = self._kept.get(study_id)
        if kept is None or kept.spec is not spec:
            return {}
        self._kept.move_to_end(study_id)
        return kept.trials

    def keep(self, study_id: str, spec: TuningSpec, trials: Mapping[str, ComputedTrial]) -> None:
        """Keep what was computed now (trials no longer read, deleted ones, are forgotten)."""
        self._kept[study_id] = _Kept(spec, dict(trials))
        self._kept.move_to_end(study_id)
        while len(self._kept) > self.limit:
            self._kept.popitem(last=False)

    def forget(self, study_id: str) -> None:
        """Drop the study's views."""
        self._kept.pop(study_id, None)


def trials_revision(trials: Iterable[TrialView]) -> int:
    """A number that changes whenever one of the trials does (its run's revision, its state, what it
    reported): the console compares it to skip refreshing a study whose trials did not change."""
    digest = hashlib.blake2b(digest_size=8)
    for trial in trials:
        digest.update(f"{trial.name}\0{trial.run.revision}\0{trial.state.value}\0{trial.objective!r}\0".encode())
        for name, summary in sorted(trial.metrics.items()):
            digest.update(f"{name}\0{summary.min!r}\0{summary.max!r}\0{summary.latest!r}\0".encode())
    return int(struct.unpack(">q", digest.digest())[0])


@dataclass(frozen=True)
class _Ranking(Generic[S]):
    at: float
    key: tuple[str, str, bool]  # the study, the order, descending
    state: S
    ranked: tuple[TrialView, ...]


@dataclass
class RankedPages(Generic[S]):
    """The trials as ranked for a listing's first page, kept briefly for its next pages: reading a study of
    thousands of trials page by page ranks them once, and the pages are of one moment (no trial is listed
    twice or skipped when one changes between pages). A page asked for later is ranked again."""

    seconds: float = RANKING_SECONDS
    limit: int = RANKINGS_KEPT
    clock: Callable[[], float] = time.monotonic
    _kept: OrderedDict[str, _Ranking[S]] = field(default_factory=OrderedDict)

    def keep(self, key: tuple[str, str, bool], state: S, ranked: tuple[TrialView, ...]) -> str:
        """Keep a ranking; the id its next pages' tokens carry."""
        ranking = uuid.uuid4().hex
        self._kept[ranking] = _Ranking(self.clock(), key, state, ranked)
        while len(self._kept) > self.limit:
            self._kept.popitem(last=False)
        return ranking

    def get(self, ranking: str, key: tuple[str, str, bool]) -> tuple[S, tuple[TrialView, ...]] | None:
        """The kept ranking for the same study and order, while it is recent enough; None otherwise."""
        kept = self._kept.get(ranking)
        if kept is None or kept.key != key or self.clock() - kept.at > self.seconds:
            return None
        return kept.state, kept.ranked
