"""The line at the top of ``shipyard up``'s banner where this machine cannot isolate runs.

Without isolation a run still starts (an operator's, or everyone's in single-user mode), but its
inputs and outputs stay in its workspace instead of at their mount paths, so a command written for
``--dataset digits@2:/mnt/data`` finds nothing at /mnt/data. Users meet that long after the
start-up messages scrolled away, hence one line at the top of the banner: what is missing, what it
means for runs, and the fix.
"""

from __future__ import annotations

from shipyard.kit import bubblewrap
from shipyard.kit.settings import Settings


def isolation_notice(*, single_user: bool) -> str | None:
    """The banner's line when runs cannot be isolated here (as run-svc will find), else None.

    Raises ValueError when SHIPYARD_RUN_USER is malformed (``shipyard up`` checks it before starting).
    """
    found = bubblewrap.find(bubblewrap.RunAs.parse(Settings().run_user))
    if isinstance(found, bubblewrap.Bubblewrap):
        return None
    return notice_for(found, single_user=single_user)


def notice_for(missing: str, *, single_user: bool) -> str:
    """What ``missing`` (bubblewrap.find's reason, with its fix) means for runs, in one line."""
    who = ("everyone's runs start, sharing this machine as the platform's user (--single-user)" if single_user
           else "only operators' runs start (--single-user lets everyone's)")
    return (f"Runs are not isolated: {missing}; fix it and restart Shipyard. Until then runs do not see "
            "their inputs and outputs at their mount paths (a command reading /mnt/data finds nothing: "
            f"SHIPYARD_MOUNT_MNT_DATA names where it is), and {who}.")
