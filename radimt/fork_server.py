"""Imported by the batch's fork server only, as the last of its preloaded modules.

The server imports the worker's whole stack (:data:`radimt.processes.WORKER_MODULES`), and
tearing that interpreter down when the batch stops the server took ~0.25 s, which the batch
waits for (it reaps the server, so the workers' resource use stays the batch's own). Here the
server ends at once instead: nothing of it needs tearing down, since it only imports and forks.
Its workers never run this: they end as every forked worker does, with ``os._exit``.
"""

from __future__ import annotations

import atexit
import os
import sys

from radimt.processes import flush_output


def _end_at_once() -> None:
    flush_output()
    os._exit(1 if hasattr(sys, "last_value") else 0)  # last_value: it ended on an uncaught error


atexit.register(_end_at_once)
