"""What a study's File and TensorFlowEvent collectors make of a trial's files, read again and again while
the trial runs and once more when it exits.

Each read parses every file whole (in the order of their paths) and compares each file's observations,
position by position, with those read from it before (kept on the trial's run: how many, and the latest
of them). What follows the last position that still agrees is new, and only that goes to the metric log,
so nothing is logged twice, whatever restarts (the count lives in the run, saved with the points):

- a file that grew: its new lines are new;
- a file rewritten with different content (truncated and written again, or replaced): it is read again
  from the first observation that differs — Katib tails the file and reads a truncated one again from its
  start; here the values it still shares with what was read are not logged twice;
- a file that now holds only the beginning of what was read (being rewritten, or truncated while the
  trial writes it again): nothing is logged, and while the trial runs what was read stays the study's
  view, so a rewrite in progress loses no value; the read at exit takes the files as they were left.

The study reads what the files hold (``collected``: the objective, its strategy, early stopping), so a
rewritten file's final value is the objective's latest value, counted once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Observation = tuple[str, float]


@dataclass(frozen=True)
class FilesRead:
    """The outcome of one read of a trial's files."""

    collected: tuple[Observation, ...]  # what the files hold, as the study reads it (the latest ``keep``)
    counts: dict[str, int]  # file path → how many observations it holds
    new: tuple[Observation, ...]  # not logged before: to append to the trial's metric log


def read_again(collected: Sequence[Observation], counts: Mapping[str, int],
               found: Mapping[str, Sequence[Observation]], final: bool, keep: int) -> FilesRead:
    """Compare what the files hold now (``found``: path → observations) with the last read (``collected``
    and ``counts``); ``final``: the trial has exited (the files are as it left them). A file not read this
    time (gone, or beyond the read's size limit) keeps what it held."""
    before = _by_file(collected, counts)
    now: dict[str, tuple[Observation | None, ...]] = {}
    new: list[Observation] = []
    for path in sorted({*before, *found}):
        old = before.get(path, ())
        if path not in found:
            now[path] = old
            continue
        current = tuple(found[path])
        agree = _agreeing(old, current)
        if agree == len(current) < len(old) and not final:
            now[path] = old  # only the beginning of what it held: being rewritten
            continue
        new += current[agree:]
        now[path] = current
    every = [seen for path in sorted(now) for seen in now[path]]
    kept = every[-keep:] if keep else []
    # The study's view is the files' latest observations, nothing of what is no longer known among them.
    known = len(kept) - next((n for n, seen in enumerate(reversed(kept)) if seen is None), len(kept))
    return FilesRead(tuple(seen for seen in kept[known:] if seen is not None),
                     {path: len(held) for path, held in now.items()}, tuple(new))


def _by_file(collected: Sequence[Observation], counts: Mapping[str, int],
             ) -> dict[str, tuple[Observation | None, ...]]:
    """Each file's observations from the last read; None for those no longer kept (``collected`` keeps
    the latest of the files' observations, in the order of their paths)."""
    total = sum(counts.values())
    held: list[Observation | None] = [None] * (total - len(collected)) + list(collected)
    files: dict[str, tuple[Observation | None, ...]] = {}
    start = 0
    for path in sorted(counts):
        files[path] = tuple(held[start:start + counts[path]])
        start += counts[path]
    return files


def _agreeing(old: Sequence[Observation | None], current: Sequence[Observation]) -> int:
    """How many of ``current``'s first observations agree with ``old``'s (one no longer kept agrees)."""
    for position, (was, now) in enumerate(zip(old, current, strict=False)):
        if was is not None and was != now:
            return position
    return min(len(old), len(current))
