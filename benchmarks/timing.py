"""Shared by the benchmark scripts: the median wall time of repeated calls, the pyradiomics
command line the comparison routes run, and the seed manifest of their synthetic studies."""

from __future__ import annotations

import csv
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median seconds over ``repeats`` calls of ``fn``, and the last call's result."""
    times, result = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def pyradiomics_batch(pyradiomics: str | Path, batch_csv: Path, params: Path, out_csv: Path) -> list[str]:
    """The pyradiomics command line over a batch CSV with 2 jobs, writing a CSV."""
    return [
        str(pyradiomics),
        str(batch_csv),
        "-p",
        str(params),
        "-o",
        str(out_csv),
        "-f",
        "csv",
        "--jobs",
        "2",
    ]


def write_seed_manifest(path: Path, rows: list[list[Any]]) -> Path:
    """A radimt manifest of ``[study_id, path, seed_x, seed_y, seed_z]`` rows."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["study_id", "path", "seed_x", "seed_y", "seed_z"])
        writer.writerows(rows)
    return path
