"""Batch benchmark: 40 synthetic MR studies, sequential vs 2 local workers vs a 2-worker Dask
LocalCluster, each writing the full outputs (masks, figures, tables, report).

Prints studies per minute and the speed-up over the sequential run (target >= 1.8x with two
workers on a 2-core machine). Studies are written once into benchmarks/data/batch and reused.

Run: ``python benchmarks/bench_batch.py [--studies N]``.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

from radimt.batch import run_batch
from radimt.synth.phantom import Lesion
from radimt.synth.studies import MRStudySpec, write_mr_study
from radimt.synth.writer import Grid

DATA = Path(__file__).resolve().parent / "data" / "batch"
PIPELINE = Path(__file__).resolve().parents[1] / "pipelines" / "breast_mri.yaml"
KINDS = [
    (150.0, -0.3, 0.85, "spiculated", "per_phase"),
    (75.0, 0.0, 1.0, "oval", "single"),
    (40.0, 0.35, 1.6, "sphere", "pre_post"),
]


def write_studies(n: int) -> Path:
    manifest = DATA / f"manifest_{n}.csv"
    if manifest.exists():
        return manifest
    DATA.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        initial, delayed, adc, shape, layout = KINDS[i % len(KINDS)]
        lesion = Lesion((95.0 + (i % 5), -4.0, 0.0), 12.0 + (i % 4), shape)
        spec = MRStudySpec(
            f"s{i:03d}",
            lesion,
            initial_enhancement=initial,
            delayed_change=delayed,
            lesion_adc=adc,
            dce_layout=layout,
            grid=Grid((80, 80, 24), (1.2, 1.2, 2.5), (42.0, -48.0, -30.0)),
            seed=100 + i,
            extras=False,
        )
        write_mr_study(str(DATA / spec.study_id), spec)
        rows.append([spec.study_id, spec.study_id, *lesion.centre])
    with open(manifest, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["study_id", "path", "seed_x", "seed_y", "seed_z"])
        writer.writerows(rows)
    return manifest


def timed_run(manifest: Path, **kwargs) -> float:
    out = Path(tempfile.mkdtemp(prefix="radimt_bench_"))
    try:
        start = time.perf_counter()
        summary = run_batch(manifest, PIPELINE, out, **kwargs)
        seconds = time.perf_counter() - start
        assert summary.done == summary.total, f"{summary.failed} failed"
        return seconds
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=40)
    args = parser.parse_args()
    manifest = write_studies(args.studies)
    runs = [
        ("sequential (1 process)", {}),
        ("local pool, --workers 2", {"workers": 2}),
        ("Dask LocalCluster, 2 workers", {"workers": 2, "scheduler": "local-dask"}),
    ]
    print(
        f"\n{args.studies} synthetic breast MRI studies (DCE 6 phases, DWI, ADC, T2), pipeline breast_mri\n"
    )
    print(f"{'run':<34} {'seconds':>8} {'studies/min':>12}  speed-up")
    print("-" * 70)
    baseline = None
    for name, kwargs in runs:
        seconds = timed_run(manifest, **kwargs)
        baseline = baseline or seconds
        print(f"{name:<34} {seconds:>8.1f} {60 * args.studies / seconds:>12.1f}  {baseline / seconds:.2f}x")


if __name__ == "__main__":
    main()
