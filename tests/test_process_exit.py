"""The command line and the batch's fork server end without tearing their interpreters down,
and lose nothing by it: output, exit status, exit handlers, threads still at work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )


def test_end_process_keeps_the_status_the_output_and_the_exit_handlers(tmp_path):
    code = (
        "import atexit, logging, sys\n"
        "from radimt.processes import end_process\n"
        "handler = logging.FileHandler('log.txt', delay=False)\n"
        "logging.getLogger().addHandler(handler)\n"
        "atexit.register(lambda: open('handler_ran', 'w').close())\n"
        "logging.getLogger().warning('logged')\n"
        "sys.stdout.write('no newline, still buffered')\n"
        "end_process(3)\n"
        "print('never')\n"
    )
    done = _python(code, tmp_path)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "no newline, still buffered"
    assert (tmp_path / "handler_ran").exists()
    assert (tmp_path / "log.txt").read_text() == "logged\n"


def test_end_process_waits_for_a_thread_still_at_work(tmp_path):
    """A thread still writing is never cut off: the usual exit, which waits for it, is taken."""
    code = (
        "import threading, time\n"
        "from radimt.processes import end_process\n"
        "def write():\n"
        "    time.sleep(0.5)\n"
        "    open('written', 'w').write('all of it')\n"
        "threading.Thread(target=write).start()\n"
        "end_process(0)\n"
    )
    done = _python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "written").read_text() == "all of it"


def test_end_process_with_no_status_ends_with_0_as_sys_exit_does(tmp_path):
    done = _python("from radimt.processes import end_process\nend_process(None)\n", tmp_path)
    assert (done.returncode, done.stderr) == (0, "")


def test_end_process_after_the_output_was_closed(tmp_path):
    code = "import sys\nfrom radimt.processes import end_process\nsys.stdout.close()\nend_process(0)\n"
    done = _python(code, tmp_path)
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.parametrize(
    ("body", "status"),
    [("print('served', end='')", 0), ("import sys\nsys.exit(0)", 0), ("raise ValueError('broken')", 1)],
)
def test_the_fork_server_module_ends_its_process_at_once_with_its_status(tmp_path, body, status):
    """What the server's preload registers: output flushed, 0 for a plain end, 1 for an uncaught
    error, and nothing registered before it runs (it ends the process first)."""
    code = (
        "import atexit\n"
        "atexit.register(lambda: open('torn_down', 'w').close())\n"
        f"import radimt.fork_server\n{body}\n"
    )
    done = _python(code, tmp_path)
    assert done.returncode == status, done.stderr
    assert done.stdout == ("served" if "print" in body else "")
    assert ("ValueError: broken" in done.stderr) == (status == 1)
    assert not (tmp_path / "torn_down").exists()


def test_the_command_line_ends_with_main_s_status_and_output(tmp_path):
    """``radimt`` (the console script, :func:`radimt.cli.run`): a refused command keeps its
    status 2 and its message; a finished one its output."""
    script = Path(sys.executable).parent / "radimt"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "radimt.cli"]
    version = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60)
    assert (version.returncode, version.stdout.split()[0]) == (0, "radimt")
    missing = subprocess.run(
        [
            *command,
            "batch",
            str(tmp_path / "none.csv"),
            "--pipeline",
            str(REPO / "pipelines" / "breast_mri.yaml"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "none.csv" in missing.stderr


def test_the_batch_fork_server_is_reaped_after_its_quick_end():
    from radimt import processes

    processes.start_worker_server()
    try:
        context = processes.worker_context()
        with context.Pool(1) as pool:
            assert pool.apply(sum, ([1, 2],)) == 3
        from multiprocessing import forkserver

        pid = forkserver._forkserver._forkserver_pid
    finally:
        processes.stop_worker_server()
    with pytest.raises(ChildProcessError):  # ended, and reaped by stop_worker_server
        os.waitpid(pid, 0)
