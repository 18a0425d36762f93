"""The batch's worker processes.

Spawned workers each import radimt's whole stack (~1.6 s) after the batch's own process has.
The command line starts a fork server first (:func:`start_worker_server`): a fresh interpreter
that imports the worker's stack while the batch's process imports its own, and forks each worker
with it already loaded. Called from Python, :func:`radimt.pipeline.run_batch` spawns its workers
as before (each sees the caller's environment and code as they are at that moment). Either way
a worker starts without inherited threads, locks or signal handlers, and none outlives the
batch.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import sys
import threading
from multiprocessing.context import BaseContext
from typing import NoReturn

#: What the fork server imports before it forks a worker.
WORKER_MODULES = ["radimt.pipeline.worker"]
#: Imported after them, by the server only: it ends without tearing its interpreter down.
SERVER_MODULE = "radimt.fork_server"

_server_started = False


def worker_context() -> BaseContext:
    """The multiprocessing context of the batch's worker pools: the fork server when this
    process started one, else spawn."""
    if _server_started:
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def start_worker_server(*, dask: bool = False) -> None:
    """Start the fork server now: it imports the worker's stack while the caller goes on.
    ``dask``: for a local Dask cluster, whose worker processes are forked from it too (with
    Dask's own worker machinery loaded as well)."""
    global _server_started
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_MODULES + (["distributed"] if dask else []) + [SERVER_MODULE])
    forkserver.ensure_running()
    _server_started = True


def keep_dask_off_the_server_preload() -> None:
    """Let Dask's nannies fork their workers from the running fork server without first
    importing Dask's own preload list into this process.

    The first time a nanny starts a worker with the fork server, ``distributed`` imports every
    package it would have a fork server preload (pandas, lz4, ...) into the calling process and
    hands the list to multiprocessing. A preload list only reaches a server that is not running
    yet, and the batch's server runs already with radimt's worker stack and ``distributed``
    imported: the batch only waited for pandas (~0.45 s before its first worker could fork).
    Should a later ``distributed`` drop the private flag, the batch waits again, nothing more.
    """
    import distributed.utils

    if hasattr(distributed.utils, "_forkserver_preload_set"):
        distributed.utils._forkserver_preload_set = True


def stop_worker_server() -> None:
    """Stop the fork server and wait for it (its workers have ended with their pool): nothing
    of the batch outlives it, and the server's and workers' resource use is the batch's own
    (``getrusage`` of whoever started the batch). A no-op when none runs."""
    global _server_started
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)  # the standard library's own shutdown (CPython >= 3.8)
    if _server_started and stop is not None:
        stop()
    _server_started = False


def end_process(code: int | None) -> NoReturn:
    """End this process with exit status ``code`` (``None``: 0, as ``sys.exit``) as the
    interpreter would, without tearing its modules down: with radimt's stack imported that took
    ~0.25 s at the end of every command.

    Output is flushed and the exit handlers run (logging's, multiprocessing's, temporary
    folders'); every file radimt writes is closed by then. While a thread other than a daemon
    still runs, the usual exit is taken instead, which waits for it.
    """
    flush_output()
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if others:
        sys.exit(code)
    atexit._run_exitfuncs()
    flush_output()
    os._exit(0 if code is None else code)


def flush_output() -> None:
    """Flush standard output and error, as far as they still take it."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a pipe nobody reads any more
            pass
