"""Shared by the benchmark scripts: the median wall time of repeated calls, and the pyradiomics
command line the comparison routes run."""

from __future__ import annotations

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
