"""Per-user quota on pending uploads: bytes a user uploaded that no version of theirs names yet.

The gateway reserves each new blob here before it reads the upload's body. An upload stops being
pending when the user names it in a version, or after the garbage collector's grace period (by
then it was either named — by anyone — or collected). Operators have no quota.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from shipyard.kit.caller import Caller
from shipyard.kit.errors import InvalidArgument, ResourceExhausted
from shipyard_repo.app.ports import PendingUpload, UploadLedger
from shipyard_repo.domain.versions import check_digest

GiB = 1 << 30


def _size(n: int) -> str:
    return f"{n / GiB:.2f} GiB" if n >= GiB else f"{n:,} bytes"


@dataclass(frozen=True)
class Reserved:
    """The caller's pending uploads with this one, and their limit (0: none)."""

    pending_bytes: int
    limit_bytes: int


@dataclass
class UploadQuota:
    """Reserving room for an upload under the caller's quota."""

    ledger: UploadLedger
    max_bytes: int  # 0: unlimited
    grace_s: float
    clock: Callable[[], float] = time.time

    async def reserve(self, caller: Caller, digest: str, size: int) -> Reserved:
        """Count a new blob of ``size`` bytes against the caller's pending uploads; ResourceExhausted,
        recording nothing, when that would take them past the limit."""
        check_digest("digest", digest)
        if size < 0:
            raise InvalidArgument("size_bytes", f"must be ≥ 0 (got {size})")
        if not self.max_bytes or caller.is_operator:
            return Reserved(0, 0)
        now = self.clock()
        pending = await self.ledger.pending(caller.user, now - self.grace_s)
        total = sum(p.size for p in pending if p.digest != digest)
        if total + size > self.max_bytes:
            raise ResourceExhausted(
                f"upload of blob {digest} ({_size(size)}) refused: {caller.user} has {_size(total)} of "
                f"uploads that no version names yet, and may have at most {_size(self.max_bytes)}; "
                "create a version from what was uploaded, or wait until unused uploads are collected"
            )
        await self.ledger.record(PendingUpload(caller.user, digest, size, now))
        return Reserved(total + size, self.max_bytes)
