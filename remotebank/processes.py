"""Whether a process another one left traces of (a scratch folder, an RQ registration) has
ended: known at once for this host's processes, never for another host's (only age tells)."""

from __future__ import annotations

import os
import socket


def ended_here(hostname: str, pid: int) -> bool:
    """True when `hostname` is this host and process `pid` no longer runs."""
    if hostname != socket.gethostname() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
