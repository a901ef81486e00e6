"""What console uploads hold on the gateway's disk, per user, while they are received and checked:
bounded in bytes (SHIPYARD_UPLOAD_MAX_BYTES, for all of a user's uploads at once) and in number
(SHIPYARD_UPLOADS_PER_USER), so one user cannot fill the disk or keep every core extracting."""

from __future__ import annotations

from collections import Counter

from shipyard.kit.errors import ResourceExhausted


class Spools:
    """The bytes and uploads each user has in flight."""

    def __init__(self, max_bytes: int, per_user: int) -> None:
        self.max_bytes = max_bytes
        self.per_user = per_user
        self._bytes: Counter[str] = Counter()
        self._uploads: Counter[str] = Counter()

    def begin(self, user: str) -> None:
        """One more upload of ``user``; ResourceExhausted when they run as many as one user may."""
        if self._uploads[user] >= self.per_user:
            raise ResourceExhausted(
                f"{user} has {self._uploads[user]} uploads in progress, as many as one user may "
                f"(SHIPYARD_UPLOADS_PER_USER={self.per_user}); wait for one to finish"
            )
        self._uploads[user] += 1

    def left(self, user: str) -> int:
        """The bytes ``user`` may still spool."""
        return max(0, self.max_bytes - self._bytes[user])

    def spend(self, user: str, count: int) -> None:
        """Count ``count`` more bytes of ``user``'s; ResourceExhausted past the limit."""
        if count > self.left(user):
            raise ResourceExhausted(
                f"the upload is over {self.max_bytes} bytes, the most one user's uploads may hold at once "
                f"(SHIPYARD_UPLOAD_MAX_BYTES); push larger content with the CLI (shipyard dataset push)"
            )
        self._bytes[user] += count

    def end(self, user: str, spent: int) -> None:
        """An upload of ``user`` that had spooled ``spent`` bytes is gone (its files deleted)."""
        self._bytes[user] -= spent
        self._uploads[user] -= 1
        if self._uploads[user] <= 0:
            self._uploads.pop(user, None)
            self._bytes.pop(user, None)
