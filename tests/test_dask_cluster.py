"""A real Dask cluster, not a LocalCluster (issue #18): a scheduler and two workers started as
separate processes on 127.0.0.1, `radimt batch --scheduler tcp://...` against them, one worker
killed mid-run. The run finishes and its tables equal a local run's, byte for byte."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from radimt.pipeline.runner import run_batch
from tests.conftest import REPO, SAMPLE_DICOM

pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

PIPELINE = REPO / "pipelines" / "breast_mri.yaml"
DASK = Path(sys.executable).parent / "dask"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    """A dask process in its own session (so it and its children can be killed together)."""
    return subprocess.Popen(
        [str(DASK), *args], stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


@pytest.fixture()
def cluster(tmp_path):
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [
        _start(
            ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], tmp_path / "s.log"
        )
    ]
    time.sleep(1.0)
    for k in range(2):
        processes.append(
            _start(
                [
                    "worker",
                    address,
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--no-dashboard",
                    "--local-directory",
                    str(tmp_path / f"w{k}"),
                ],
                tmp_path / f"w{k}.log",
            )
        )
    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
    yield address, processes[1:]
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


def test_batch_on_a_real_cluster_survives_a_killed_worker(cluster, tmp_path):
    address, workers = cluster
    local = run_batch(SAMPLE_DICOM / "manifest.csv", PIPELINE, tmp_path / "local", show_progress=False)
    assert local.done == 3
    out = tmp_path / "cluster"
    killed = []

    def kill_a_worker_once_work_started():
        deadline = time.time() + 120
        while time.time() < deadline and not list(out.glob("lesions/*/*")):
            time.sleep(0.02)
        os.killpg(workers[0].pid, signal.SIGKILL)  # the nanny and its worker: a lost machine
        killed.append(workers[0].pid)

    thread = threading.Thread(target=kill_a_worker_once_work_started)
    thread.start()
    summary = run_batch(SAMPLE_DICOM / "manifest.csv", PIPELINE, out, scheduler=address, show_progress=False)
    thread.join()
    assert killed and summary.done == 3, (out / "errors.csv").read_text()
    for table in ("features.csv", "kinetics.csv", "errors.csv"):
        assert (out / table).read_bytes() == (tmp_path / "local" / table).read_bytes(), table
