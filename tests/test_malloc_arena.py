"""Workers forked from the batch's fork server allocate every thread's memory from the main
malloc arena (a Dask worker computes in a thread of its own, 15 % slower in an arena of its own)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's malloc arenas"
)

#: In a forked child, a new thread allocates 4 kB (below malloc's mmap threshold, so from an arena)
#: and prints whether it came from the main arena's heap (below the program break).
PROBE = """
import ctypes, os, sys, threading
{setup}
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.sbrk.restype, libc.sbrk.argtypes = ctypes.c_void_p, [ctypes.c_ssize_t]
if os.fork() == 0:
    got = {{}}
    thread = threading.Thread(target=lambda: got.setdefault("at", libc.malloc(4096)))
    thread.start(); thread.join()
    print(got["at"] < libc.sbrk(0), flush=True)
    os._exit(0)
os.wait()
sys.stdout.flush()
"""


def _thread_allocates_from_the_main_heap(setup: str) -> bool:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(setup=setup)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return {"True": True, "False": False}[done.stdout.strip()]


def test_a_forked_workers_threads_share_the_main_arena():
    assert _thread_allocates_from_the_main_heap("import radimt.fork_server")


def test_without_the_server_module_a_thread_gets_an_arena_of_its_own():
    """The probe tells the two apart: glibc's default gives the thread its own arena."""
    assert not _thread_allocates_from_the_main_heap("")
