"""Counting failures (failed sign-ins) per key, in a sliding window. Pure: the caller gives the time."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

# Keys are client addresses and token ids an attacker can make up: past this many, the ones
# without a failure in the window are dropped, so memory stays bounded.
MAX_KEYS = 10_000


@dataclass
class FailureWindow:
    """A key with ``limit`` failures within the last ``window_s`` seconds must wait."""

    limit: int
    window_s: float
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until ``key`` may try again; None if it may now."""
        failures = self._recent(key, now)
        if failures is None or len(failures) < self.limit:
            return None
        return max(failures[-self.limit] + self.window_s - now, 0.001)

    def fail(self, key: str, now: float) -> None:
        """Count one failure of ``key`` at ``now``."""
        if key not in self._failures and len(self._failures) >= MAX_KEYS:
            self._sweep(now)
        self._failures.setdefault(key, deque(maxlen=self.limit)).append(now)

    def _recent(self, key: str, now: float) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def _sweep(self, now: float) -> None:
        for key in list(self._failures):
            self._recent(key, now)
        while len(self._failures) >= MAX_KEYS:  # all recent: forget the oldest key
            del self._failures[next(iter(self._failures))]
