"""Worker threads that yield the CPU to the event loop's: one place for the per-thread priority."""

from __future__ import annotations

import os
import sys
import threading


def lower_priority(by: int) -> None:
    """In a worker thread: raise its nice value alone by `by` (at most 19); on Linux each thread has its own,
    so on a busy machine the loop's thread, which answers requests, runs first. Where it is not allowed (a
    container that forbids it, another system) the thread stays at the daemon's priority."""
    if sys.platform == "linux":
        try:
            me = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + by))
        except OSError:
            pass
