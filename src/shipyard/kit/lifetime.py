"""A child process that must not outlive the process that started it (Linux PR_SET_PDEATHSIG).

The parent names itself in the child's environment (``PARENT_ENV``: its pid); the child calls
``die_with_parent``.

The child asks for it itself, first thing after it starts, instead of the parent doing it between
fork and exec (``preexec_fn``): a parent with gRPC threads must not run Python code in a forked
child — gRPC's fork handlers broke model servers' starts that way ("epoll_wait error: Bad file
descriptor"). Without ``preexec_fn`` the child is spawned by vfork/posix_spawn, which runs no fork
handlers at all.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

PARENT_ENV = "SHIPYARD_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """Ask for SIGTERM when the parent named by SHIPYARD_PARENT_PID goes; False when it has gone
    already (the caller should exit). True without the variable or off Linux (nothing to do)."""
    expected = os.environ.get(PARENT_ENV, "")
    if not expected.isdigit():
        return True
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    # The parent may have died before the prctl: then this process was re-parented already.
    return os.getppid() == int(expected)
