"""Batch benchmark: 40 synthetic MR studies, sequential vs 2 local workers vs a 2-worker Dask
LocalCluster, each writing the full outputs (masks, figures, tables, report).

Prints studies per minute and the speed-up over the sequential run (target >= 1.8x with two
workers on a 2-core machine). Studies are written once into benchmarks/data/batch and reused.

Then the route users take without radimt, when ``dcm2niix`` (``pip install dcm2niix``) is
installed: convert every study to NIfTI with dcm2niix, and run the pyradiomics command line in
batch mode (2 jobs) on the T2 and ADC images with masks drawn elsewhere (radimt's, resampled
onto the NIfTI grids outside the timer). That route does no segmentation and no kinetics; radimt
does both and features for the DCE too.

Run: ``python benchmarks/bench_batch.py [--studies N]``.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

from timing import pyradiomics_batch, write_seed_manifest

from radimt.pipeline.runner import run_batch
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
    return write_seed_manifest(manifest, rows)


def timed_run(manifest: Path, keep: Path | None = None, **kwargs) -> float:
    out = keep or Path(tempfile.mkdtemp(prefix="radimt_bench_"))
    try:
        start = time.perf_counter()
        summary = run_batch(manifest, PIPELINE, out, force=True, **kwargs)
        seconds = time.perf_counter() - start
        assert summary.done == summary.total, f"{summary.failed} failed"
        return seconds
    finally:
        if keep is None:
            shutil.rmtree(out, ignore_errors=True)


def user_route(manifest: Path, radimt_out: Path, work: Path) -> tuple[float, float] | None:
    """dcm2niix every study, then the pyradiomics CLI on T2 and ADC; (convert s, features s)."""
    import subprocess
    import sys

    import SimpleITK as sitk
    import yaml

    from radimt.features import load_params
    from radimt.segment import resample_mask

    dcm2niix = shutil.which("dcm2niix") or str(Path(sys.executable).with_name("dcm2niix"))
    pyradiomics = str(Path(sys.executable).with_name("pyradiomics"))
    if not Path(dcm2niix).exists() or not Path(pyradiomics).exists():
        return None
    with open(manifest, newline="") as fh:
        studies = [row["study_id"] for row in csv.DictReader(fh)]
    start = time.perf_counter()
    for study in studies:
        (work / study).mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [dcm2niix, "-z", "n", "-b", "n", "-f", "%s_%d", "-o", str(work / study), str(DATA / study)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    convert = time.perf_counter() - start
    batches = {}
    for role, pattern, preset in (("t2", "2_t2*.nii", "mr"), ("adc", "4_*ADC*.nii", "adc")):
        rows = []
        for study in studies:
            image_path = next((work / study).glob(pattern))
            mask = sitk.ReadImage(str(radimt_out / "lesions" / study / "1" / "mask.nii.gz"))
            moved = resample_mask(mask, sitk.ReadImage(str(image_path)))
            mask_path = work / study / f"{role}_mask.nii"
            sitk.WriteImage(moved, str(mask_path))
            rows.append([str(image_path), str(mask_path)])
        csv_path = work / f"{role}.csv"
        with open(csv_path, "w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["Image", "Mask"])
            writer.writerows(rows)
        params = load_params(preset)
        params["imageType"] = {"Original": {}}
        if role == "adc":  # dcm2niix keeps the scanner's 10^-6 mm²/s: the same bins are 1000x wider
            params["setting"]["binWidth"] = 50
        (work / f"{role}.yaml").write_text(yaml.safe_dump(params))
        batches[role] = csv_path
    start = time.perf_counter()
    for role, csv_path in batches.items():
        subprocess.run(
            pyradiomics_batch(pyradiomics, csv_path, work / f"{role}.yaml", work / f"{role}_out.csv"),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return convert, time.perf_counter() - start


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
    keep = Path(tempfile.mkdtemp(prefix="radimt_bench_keep_"))
    pool_seconds = 0.0
    for name, kwargs in runs:
        seconds = timed_run(manifest, keep=keep if "pool" in name else None, **kwargs)
        pool_seconds = seconds if "pool" in name else pool_seconds
        baseline = baseline or seconds
        print(f"{name:<34} {seconds:>8.1f} {60 * args.studies / seconds:>12.1f}  {baseline / seconds:.2f}x")
    work = Path(tempfile.mkdtemp(prefix="radimt_bench_route_"))
    try:
        route = user_route(manifest, keep, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(keep, ignore_errors=True)
    if route is None:
        print("\n(dcm2niix or the pyradiomics command line is not installed: user-route comparison skipped)")
        return
    convert, extract = route
    total = convert + extract
    print(f"\nuser route: dcm2niix {convert:.1f} s + pyradiomics CLI (T2, ADC; 2 jobs) {extract:.1f} s")
    print(f"            = {total:.1f} s")
    print(
        f"radimt --workers 2 (segmentation, kinetics, DCE+ADC+T2 features, report): {pool_seconds:.1f} s "
        f"= {total / pool_seconds:.2f}x the speed of the user route (target > 1)"
    )


if __name__ == "__main__":
    main()
