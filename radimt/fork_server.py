"""Imported by the batch's fork server only, as the last of its preloaded modules.

The server imports the worker's whole stack (:data:`radimt.processes.WORKER_MODULES`), and
tearing that interpreter down when the batch stops the server took ~0.25 s, which the batch
waits for (it reaps the server, so the workers' resource use stays the batch's own). Here the
server ends at once instead: nothing of it needs tearing down, since it only imports and forks.
Its workers never run this: they end as every forked worker does, with ``os._exit``.

The workers it forks also keep every thread's memory in one malloc arena (below).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import sys

from radimt.processes import flush_output

#: glibc's ``mallopt`` parameter for the most malloc arenas a process keeps (``M_ARENA_MAX``).
_M_ARENA_MAX = -8


def _end_at_once() -> None:
    flush_output()
    os._exit(1 if hasattr(sys, "last_value") else 0)  # last_value: it ended on an uncaught error


def one_malloc_arena() -> bool:
    """Have every thread of this process, and of the processes it forks, allocate from the main
    malloc arena (glibc; elsewhere nothing changes). Returns whether the C library took it.

    A pool worker computes in its main thread, but a Dask worker runs each study in a thread of
    its own, which glibc gives an arena of its own: there a lesion's reference image took 15 %
    longer than in the main thread (median of 15 studies each, 0.165 against 0.143 s; 0.127
    against 0.131 s with one arena), and 12 clinical studies on two Dask workers 4 % longer.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(_M_ARENA_MAX, 1))
    except (OSError, AttributeError):  # no C library to ask, or one without mallopt
        return False


one_malloc_arena()
atexit.register(_end_at_once)
