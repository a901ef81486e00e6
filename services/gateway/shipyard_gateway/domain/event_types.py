"""CloudEvent type patterns (EventService.Watch and webhooks share them) and which roles may see
which events.

A pattern is a type with wildcards: ``io.shipyard.run.completed.v1`` matches itself, ``*`` in
the middle matches one segment (``io.shipyard.*.created.v1``), and a trailing ``*`` or ``>``
matches the rest, one segment or more (``io.shipyard.run.*``, ``io.shipyard.>``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from shipyard.kit.errors import InvalidArgument

PREFIX = "io.shipyard."
PATTERN_MAX = 200
_SEGMENT = re.compile(r"[a-z0-9_]+")
# The model catalog and deployments are for the roles that ship models (a data scientist
# works on runs and data; the catalog is not theirs to see).
CATALOG_TYPES = ("io.shipyard.model.published.>", "io.shipyard.model.unpublished.>",
                 "io.shipyard.deployment.>")
CATALOG_ROLES = frozenset({"operator", "ml-engineer", "production-engineer"})


def check_type_pattern(field: str, pattern: str) -> str:
    """A valid type pattern, or InvalidArgument naming ``field`` and what is wrong."""
    usage = "(io.shipyard.<area>.<event>.v1; '*' for one segment, a trailing '*' or '>' for the rest)"
    if len(pattern) > PATTERN_MAX:
        raise InvalidArgument(field, f"a pattern must be at most {PATTERN_MAX} characters")
    if not pattern.startswith(PREFIX) or pattern == PREFIX:
        raise InvalidArgument(field, f"{pattern!r} is not a Shipyard event type pattern {usage}")
    segments = pattern.split(".")[2:]
    for i, segment in enumerate(segments):
        if segment == ">" and i != len(segments) - 1:
            raise InvalidArgument(field, f"{pattern!r}: '>' may only end a pattern {usage}")
        if segment not in ("*", ">") and not _SEGMENT.fullmatch(segment):
            raise InvalidArgument(field, f"{pattern!r}: {segment!r} is not a type segment (lowercase "
                                         f"letters, digits and '_') {usage}")
    return pattern


def type_matches(pattern: str, ce_type: str) -> bool:
    """Whether the event type ``ce_type`` matches ``pattern``."""
    *head, last = pattern.split(".")
    segments = ce_type.split(".")
    if last in ("*", ">"):
        if len(segments) <= len(head):
            return False
        segments = segments[:len(head)]
    else:
        head.append(last)
        if len(segments) != len(head):
            return False
    return all(p == "*" or p == s for p, s in zip(head, segments, strict=True))


def any_matches(patterns: Iterable[str], ce_type: str) -> bool:
    """Whether ``ce_type`` matches one of ``patterns``; no patterns match every type."""
    patterns = list(patterns)
    return not patterns or any(type_matches(p, ce_type) for p in patterns)


def may_see(roles: frozenset[str], ce_type: str) -> bool:
    """Whether a user holding ``roles`` may see events of this type."""
    return bool(roles & CATALOG_ROLES) or not any(type_matches(p, ce_type) for p in CATALOG_TYPES)


def check_receivable(field: str, patterns: Iterable[str], roles: frozenset[str],
                     known: Iterable[str]) -> None:
    """InvalidArgument naming ``field`` unless each pattern matches an event type (of ``known``)
    that a user holding ``roles`` may see: a pattern nothing could ever be sent for is a mistake
    (a typo, or the model catalog's events for a data scientist)."""
    types = sorted(known)
    for pattern in patterns:
        matched = [t for t in types if type_matches(pattern, t)]
        if not matched:
            raise InvalidArgument(field, f"{pattern!r} matches no Shipyard event type "
                                         f"(they are: {', '.join(types)})")
        if not any(may_see(roles, t) for t in matched):
            shippers = ", ".join(sorted(CATALOG_ROLES))
            raise InvalidArgument(field, f"{pattern!r} matches only events your roles may not see (the "
                                         f"model catalog and deployments are for {shippers})")
