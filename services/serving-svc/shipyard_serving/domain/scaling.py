"""How many replicas an endpoint needs, from the load its model servers report: the rules, no I/O.

Concurrency-based, as Knative and KServe scale: each replica should carry on average about
``target`` requests in flight (70 % of its ``max_concurrency``). Up fast, down slowly:

* **up**, at once, when the average load of the last few seconds needs more replicas, or when a
  replica turned a request away (429) — it was full; never while a replica is still starting
  (its capacity is on the way; counting it twice would overshoot);
* **down**, only after the load stayed low for a whole ``down_delay_s`` since the last change,
  to what the highest load of that window needed, and never below ``min_replicas``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

TARGET_UTILIZATION = 0.7  # of max_concurrency, as Knative's container-concurrency-target-percentage
UNLIMITED_TARGET = 70  # requests in flight per replica when max_concurrency is 0 (no limit)
UP_WINDOW_S = 2.0


@dataclass(frozen=True)
class ScaleRule:
    """An endpoint's bounds and how much load one replica should carry."""

    min_replicas: int
    max_replicas: int
    target: float
    down_delay_s: float

    @classmethod
    def of(
        cls, min_replicas: int, max_replicas: int, max_concurrency: int, down_delay_s: float
    ) -> ScaleRule:
        """The rule for a serving spec's replica bounds and concurrency limit."""
        target = max(1.0, max_concurrency * TARGET_UTILIZATION) if max_concurrency else UNLIMITED_TARGET
        return cls(min_replicas, max(min_replicas, max_replicas), target, down_delay_s)

    @property
    def scales(self) -> bool:
        """Whether the replica count can change at all."""
        return self.max_replicas > self.min_replicas


@dataclass(frozen=True)
class LoadSample:
    """The endpoint's load at one moment: requests in flight on all its ready replicas, and the
    requests they refused (429) since the previous sample."""

    at: float
    in_flight: int
    rejected: int = 0


def desired_replicas(
    rule: ScaleRule,
    samples: Sequence[LoadSample],
    replicas: int,
    starting: int,
    last_change: float,
    now: float,
) -> int:
    """The replica count to move to (``replicas`` when nothing should change).

    ``samples`` are oldest first; ``starting``: replicas not ready yet; ``last_change``: when the
    count last changed (monotonic seconds, as ``now`` and the samples' ``at``)."""
    recent = [s for s in samples if s.at > now - UP_WINDOW_S]
    if recent and not starting:
        needed = _needed(rule, sum(s.in_flight for s in recent) / len(recent))
        if any(s.rejected for s in recent):
            needed = max(needed, replicas + 1)
        if needed > replicas:
            return min(needed, rule.max_replicas)
    if replicas <= rule.min_replicas or now - last_change < rule.down_delay_s:
        return replicas
    window = [s for s in samples if s.at > now - rule.down_delay_s]
    covered = bool(window) and window[0].at <= now - rule.down_delay_s + UP_WINDOW_S
    if not covered or any(s.rejected for s in window):
        return replicas  # the window is not covered by samples yet, or the load was at the limit
    needed = _needed(rule, max(s.in_flight for s in window))
    return max(rule.min_replicas, min(replicas, needed))


def _needed(rule: ScaleRule, in_flight: float) -> int:
    return max(rule.min_replicas, math.ceil(in_flight / rule.target))
