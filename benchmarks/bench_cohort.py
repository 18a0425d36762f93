"""Cohort benchmark at clinical size: radimt against dcm2niix + the pyradiomics command line.

N synthetic breast MRI studies at the size scanners write (DCE 6 phases of 512x512x160 in the
three layouts, DWI b0/b800, ADC, T2; one 10-25 mm lesion each) are written once into
benchmarks/data/cohort and reused. For each of two feature settings (Original; Original + LoG +
wavelet; on the early DCE subtraction, T2 and ADC):

- ``radimt batch`` with 1 and with 2 workers (segmentation, kinetics, ADC statistics, features,
  overlays, report), from the command line, outputs recomputed;
- the route a user would take instead: dcm2niix converts every study, numpy makes the early
  subtraction, the pyradiomics command line (2 jobs) extracts the features with radimt's masks
  (no segmentation, no kinetics: radimt does more).

Prints wall seconds, lesions per minute, the peak resident memory of the largest process (a
worker) against the DCE's decoded size, and the ratio to the user route; then a study's second
lesion, the workers on a larger cohort (1 and 2 local workers, a Dask LocalCluster of two
single-thread workers), the command line's start-up and the header scan, and one study
profiled in-process by radimt stage. Every timed run is repeated in ``--rounds`` interleaved
rounds: medians. Last, a table of the cohort goals (issue #29), each with this run's figure.

Run: ``python benchmarks/bench_cohort.py [--studies 3] [--scaling-studies 12] [--rounds 3]`` (0.8 GB of
DICOM per study); ``--studies 0`` runs the workers' part alone (a few minutes, so more rounds).
"""

from __future__ import annotations

import argparse
import compileall
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import yaml
from timing import median_time, pyradiomics_batch, write_seed_manifest

import radimt
from radimt.synth.phantom import Lesion
from radimt.synth.studies import MRStudySpec, write_mr_study
from radimt.synth.writer import Grid

DATA = Path(__file__).resolve().parent / "data" / "cohort"
GRID = Grid((512, 512, 160), (0.4, 0.4, 1.0), (0.0, -102.4, -80.0))
LAYOUTS = ("single", "per_phase", "pre_post")
#: The two feature settings the comparison runs: pyradiomics' image types in each.
SETTINGS = {
    "Original": {"Original": {}},
    "Original + LoG + wavelet": {"Original": {}, "LoG": {"sigma": [1.0, 2.0, 3.0]}, "Wavelet": {}},
}
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Goal:
    """One of the cohort goals, with the figure this run measured for it."""

    goal: str
    measured: str
    met: bool


def round_ratios(numerators: list[float], denominators: list[float]) -> tuple[float, str]:
    """The median of the rounds' ratios, and it with their range as printed."""
    ratios = sorted(a / b for a, b in zip(numerators, denominators, strict=True))
    return median(ratios), f"{median(ratios):.2f}x (rounds {ratios[0]:.2f}-{ratios[-1]:.2f}x)"


def write_studies(n: int) -> Path:
    """The cached studies and their manifest (written once)."""
    manifest = DATA / f"manifest_{n}.csv"
    if manifest.exists():
        return manifest
    rows = []
    for i in range(n):
        lesion = Lesion(
            (100.0 + 3 * (i % 3), -6.0, 4.0 - 2 * (i % 2)), 10.0 + (15.0 * i / max(n - 1, 1)), "oval"
        )
        spec = MRStudySpec(
            f"c{i:03d}",
            lesion,
            initial_enhancement=(150.0, 75.0, 40.0)[i % 3],
            delayed_change=(-0.3, 0.0, 0.35)[i % 3],
            lesion_adc=(0.85, 1.0, 1.6)[i % 3],
            dce_layout=LAYOUTS[i % 3],
            grid=GRID,
            seed=500 + i,
            extras=False,
        )
        if not (DATA / spec.study_id).exists():
            write_mr_study(str(DATA / spec.study_id), spec)
        rows.append([spec.study_id, spec.study_id, *lesion.centre])
    return write_seed_manifest(manifest, rows)


def pipeline_file(work: Path, image_types: dict) -> Path:
    """breast_mri with the image types of one setting on every role."""
    path = work / f"cohort_{len(image_types)}.yaml"
    config = yaml.safe_load(
        (Path(__file__).resolve().parents[1] / "pipelines" / "breast_mri.yaml").read_text()
    )
    config["name"] = "cohort"
    config["image_types"] = list(image_types)
    config["presets"] = {
        role: str(Path(__file__).resolve().parents[1] / "pipelines" / "params" / f"{preset}.yaml")
        for role, preset in config["presets"].items()
    }
    path.write_text(yaml.safe_dump(config))
    return path


#: Runs a command and prints the peak resident memory (kB) of the largest of its processes: a
#: fresh process per measurement, since RUSAGE_CHILDREN only ever grows within one.
_PEAK = (
    "import resource, subprocess, sys; "
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def measured(command: list[str]) -> tuple[float, float]:
    """Wall seconds and the peak resident memory (MB) of the largest process it started.

    The files earlier runs wrote are flushed to disk first (``sync``, not timed), so that no run
    pays for another's writeback: the route writes ~3 GB of NIfTI per round, and radimt's next
    run took 9.5 s instead of 5.5 s while 2.4 GB of such writes were still pending.
    """
    os.sync()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PEAK, *command], check=True, capture_output=True, text=True)
    return time.perf_counter() - start, int(done.stdout.split()[-1]) / 1024


def user_route(manifest: Path, masks: Path, work: Path, image_types: dict) -> dict[str, tuple[float, float]]:
    """dcm2niix, subtraction, pyradiomics CLI: {stage: (seconds, peak MB)}.

    ``work`` is emptied first: dcm2niix does not overwrite an earlier round's files but writes
    beside them with a suffix (``..a.nii``), and the subtraction would read those too (twice
    the phases; a pre phase taken for the early one).
    """
    import numpy as np
    import SimpleITK as sitk

    from radimt.features import load_params

    shutil.rmtree(work, ignore_errors=True)

    with open(manifest, newline="") as fh:
        studies = [row["study_id"] for row in csv.DictReader(fh)]
    stages = {}
    seconds = peak = 0.0
    for study in studies:
        (work / study).mkdir(parents=True, exist_ok=True)
        s, p = measured(
            [
                str(BIN / "dcm2niix"),
                "-z",
                "n",
                "-b",
                "n",
                "-f",
                "%s_%d_%t",
                "-o",
                str(work / study),
                str(DATA / study),
            ]
        )
        seconds, peak = seconds + s, max(peak, p)
    stages["dcm2niix"] = (seconds, peak)
    start = time.perf_counter()
    rows = {"dce": [], "t2": [], "adc": []}
    for study in studies:
        folder = work / study
        dce = sorted(
            (p for p in folder.glob("*.nii") if "t1" in p.name or "dyn" in p.name),
            key=lambda p: int(p.name.split("_")[0]),
        )
        volumes, reference = [], None
        for path in dce:  # one 4D file, a file per phase, or a pre file and a 4D post file
            image = sitk.ReadImage(str(path), sitk.sitkFloat32)
            array = sitk.GetArrayFromImage(image)
            volumes += list(array) if array.ndim == 4 else [array]
            if reference is None:
                size = list(image.GetSize()[:3])
                reference = sitk.Extract(image, size + [0], [0, 0, 0, 0]) if array.ndim == 4 else image
        if len(volumes) != 6:
            raise RuntimeError(f"{folder}: {len(volumes)} DCE phases from dcm2niix, 6 expected")
        first, early = volumes[0], volumes[1]
        subtraction = sitk.GetImageFromArray((early - first).astype(np.float32))
        subtraction.CopyInformation(reference)
        sitk.WriteImage(subtraction, str(folder / "subtraction.nii"))
        mask = str(masks / "lesions" / study / "1" / "mask.nii.gz")
        rows["dce"].append([str(folder / "subtraction.nii"), mask])
        rows["t2"].append([str(next(folder.glob("*t2*.nii"))), mask])
        rows["adc"].append([str(next(folder.glob("*ADC*.nii"))), mask])
    stages["subtraction (numpy)"] = (time.perf_counter() - start, 0.0)
    seconds = peak = 0.0
    for role, preset in (("dce", "mr"), ("t2", "mr"), ("adc", "adc")):
        with open(work / f"{role}.csv", "w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["Image", "Mask"])
            writer.writerows(rows[role])
        params = load_params(preset)
        params["imageType"] = image_types
        if role == "adc":  # dcm2niix keeps the scanner's 10^-6 mm²/s: the same bins are 1000x wider
            params["setting"]["binWidth"] = params["setting"].get("binWidth", 0.05) * 1000
        (work / f"{role}.yaml").write_text(yaml.safe_dump(params))
        s, p = measured(
            pyradiomics_batch(
                BIN / "pyradiomics", work / f"{role}.csv", work / f"{role}.yaml", work / f"{role}_out.csv"
            )
        )
        seconds, peak = seconds + s, max(peak, p)
    stages["pyradiomics CLI (3 images, 2 jobs)"] = (seconds, peak)
    return stages


#: Stages a study's lesions share (recorded once per study); the others are each lesion's own.
STUDY_STAGES = ("checksum", "scan headers")


def batch_stages(out: Path) -> dict[str, float]:
    """Worker seconds per stage over a batch's lesions, from their ``stage_seconds`` records."""
    totals: dict[str, float] = {}
    counted_studies = set()
    for path in sorted(out.glob("lesions/*/*/result.json")):
        stages = json.loads(path.read_text())["stage_seconds"]
        study = path.parent.parent.name
        for stage, seconds in stages.items():
            if stage in STUDY_STAGES and study in counted_studies:
                continue
            totals[stage] = totals.get(stage, 0.0) + seconds
        counted_studies.add(study)
    return totals


def decoded_dce_mb() -> float:
    """Decoded size of the largest role, the DCE (six int16 phases of the cohort grid)."""
    voxels = GRID.size[0] * GRID.size[1] * GRID.size[2]
    return 6 * voxels * 2 / 2**20


def profile_one(manifest: Path, pipeline: Path) -> list[tuple[str, float]]:
    """One study through radimt's stages in this process: where a lesion's time goes."""
    from radimt.analysis import lesion_features
    from radimt.dicom.study import load_study
    from radimt.pipeline.config import load_config
    from radimt.segment import segment_from_seed, subtraction

    with open(manifest, newline="") as fh:
        row = next(csv.DictReader(fh))
    config = load_config(pipeline)
    stages = []
    start = time.perf_counter()
    study = load_study(DATA / row["path"])
    stages.append(("scan headers", time.perf_counter() - start))
    start = time.perf_counter()
    _ = study.dce, study.adc, study.t2
    stages.append(("read DCE, ADC, T2 volumes", time.perf_counter() - start))
    start = time.perf_counter()
    sub = subtraction(study.dce, config.analysis.dce_phase)
    mask = segment_from_seed(sub, tuple(float(row[f"seed_{a}"]) for a in "xyz"))
    stages.append(("subtraction + segmentation", time.perf_counter() - start))
    start = time.perf_counter()
    lesion_features(study, {"dce": mask}, config.analysis)
    stages.append(("kinetics, ADC, domain and radiomic features", time.perf_counter() - start))
    return stages


def batch_command(manifest: Path, pipeline: Path, out: Path, workers: int, scheduler: str = "") -> list[str]:
    command = [str(BIN / "radimt"), "batch", str(manifest), "--pipeline", str(pipeline), "--out", str(out)]
    command += ["--force", "--workers", str(workers)] + (["--scheduler", scheduler] if scheduler else [])
    return command


def second_lesion(manifest: Path, pipeline: Path, out: Path) -> tuple[float, float]:
    """Seconds of a study's first and of its second lesion (a seed 2 mm away) in one batch."""
    with open(manifest, newline="") as fh:
        row = next(csv.DictReader(fh))
    seed = [float(row[f"seed_{axis}"]) for axis in "xyz"]
    two = out.parent / "two_lesions.csv"
    with open(two, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["study_id", "lesion_id", "path", "seed_x", "seed_y", "seed_z"])
        writer.writerow([row["study_id"], 1, str(DATA / row["path"]), *seed])
        writer.writerow([row["study_id"], 2, str(DATA / row["path"]), seed[0] + 2.0, *seed[1:]])
    subprocess.run(batch_command(two, pipeline, out, 1), check=True, capture_output=True)
    first, second = (
        json.loads((out / "lesions" / row["study_id"] / str(k) / "result.json").read_text())["seconds"]
        for k in (1, 2)
    )
    return first, second


def compare(manifest: Path, n: int, work: Path, name: str, image_types: dict, rounds: int) -> list[Goal]:
    """One feature setting: radimt with 1 and 2 workers against the user route, ``rounds``
    interleaved rounds; medians (and the largest peak) are printed. Returns the setting's goals
    (speed against the route, peak memory)."""
    pipeline = pipeline_file(work, image_types)
    runs: dict[str, list[tuple[float, float]]] = {}
    routes: list[dict[str, tuple[float, float]]] = []
    stages_by_run: list[dict[str, float]] = []
    for _ in range(rounds):
        for workers in (1, 2):
            out = work / f"radimt_{workers}"
            label = f"radimt batch --workers {workers}"
            runs.setdefault(label, []).append(measured(batch_command(manifest, pipeline, out, workers)))
            if len(stages_by_run) < 2:
                stages_by_run.append(batch_stages(out))
        routes.append(user_route(manifest, work / "radimt_1", work / "route", image_types))
    print(
        f"\n== {name}: {n} clinical-size synthetic breast MRI studies "
        f"(DCE 6 x 512x512x160, DWI, ADC, T2); medians of {rounds} rounds ==\n"
    )
    print(f"{'route':<48} {'seconds':>8} {'lesions/min':>12} {'peak MB':>9}")
    print("-" * 82)
    results = [(label, median(s for s, _ in got), max(p for _, p in got)) for label, got in runs.items()]
    for label, seconds, peak in results:
        print(f"{label:<48} {seconds:>8.1f} {60 * n / seconds:>12.2f} {peak:>9.0f}")
    for stage in routes[0]:
        seconds, peak = median(r[stage][0] for r in routes), max(r[stage][1] for r in routes)
        print(
            f"  user route: {stage:<34} {seconds:>8.1f} {'':>12} {peak:>9.0f}"
            if peak
            else f"  user route: {stage:<34} {seconds:>8.1f}"
        )
    totals = [sum(sec for sec, _ in r.values()) for r in routes]
    total = median(totals)
    route_peak = max(p for r in routes for _, p in r.values())
    print(f"{'dcm2niix + pyradiomics (total)':<48} {total:>8.1f} {60 * n / total:>12.2f} {route_peak:>9.0f}")
    goals = []
    for label, got in runs.items():
        ratio, shown = round_ratios(totals, [s for s, _ in got])
        print(f"{label}: {shown} the speed of the user route (goal >= 10x with 1 worker)")
        if label.endswith("--workers 1"):
            goals.append(Goal(f">= 10x the user route, 1 worker, {name}", shown, ratio >= 10))
    for label, _, peak in results:
        print(
            f"{label}: peak {peak:,.0f} MB = {peak / decoded_dce_mb():.2f}x the largest series "
            f"(DCE, {decoded_dce_mb():,.0f} MB decoded; goal <= 2x)"
        )
    worst = max(peak for _, _, peak in results) / decoded_dce_mb()
    goals.append(
        Goal(f"peak memory per worker <= 2x the DCE, {name}", f"{worst:.2f}x (1 or 2 workers)", worst <= 2)
    )
    print("inside the batch, worker seconds per stage summed over the lesions (first round):")
    print(f"  {'stage':<46} {'1 worker':>9} {'2 workers':>10}")
    for stage in stages_by_run[0]:
        one, two = (run.get(stage, 0.0) for run in stages_by_run)
        print(f"  {stage:<46} {one:>9.2f} {two:>10.2f}")
    return goals


def scaling(n: int, work: Path, rounds: int) -> list[Goal]:
    """Workers on a larger cohort (Original features): one worker (every core, as shipped; and
    held to one thread), two local workers, a Dask cluster of two single-thread workers;
    ``rounds`` interleaved rounds, medians.

    The goals' ratios are taken within each round (its runs follow one another within a minute)
    and their median reported: the machine's speed drifts between rounds by more than the goals'
    margins (one single-thread worker took 16.6-20.9 s within ten minutes), and a ratio of
    medians mixes rounds of different speed."""
    manifest = write_studies(n)
    pipeline = pipeline_file(work, SETTINGS["Original"])
    runs = [
        ("1 worker", 1, "", []),
        ("1 worker, 1 thread", 1, "", ["--threads", "1"]),
        ("2 local workers", 2, "", []),
        ("Dask LocalCluster, 2 x 1 thread", 2, "local-dask", []),
    ]
    seconds: dict[str, list[float]] = {label: [] for label, *_ in runs}
    peaks: dict[str, float] = {label: 0.0 for label, *_ in runs}
    for _ in range(rounds):
        for label, workers, scheduler, extra in runs:
            command = batch_command(manifest, pipeline, work / "scaling", workers, scheduler) + extra
            wall, peak = measured(command)
            seconds[label].append(wall)
            peaks[label] = max(peaks[label], peak)
    print(f"\n== workers: {n} studies, Original features; medians of {rounds} rounds ==\n")
    for label, *_ in runs:
        wall = median(seconds[label])
        rounds_seen = ", ".join(f"{s:.1f}" for s in seconds[label])
        print(
            f"{label:<36} {wall:>8.1f} s  {60 * n / wall:>6.2f} lesions/min  peak {peaks[label]:,.0f} MB"
            f"  (rounds {rounds_seen} s)"
        )
    one, one_thread, two, dask = (seconds[label] for label, *_ in runs)
    print(
        f"ratios of the medians: 2 workers {median(one_thread) / median(two):.2f}x one single-thread "
        f"worker, {median(one) / median(two):.2f}x one worker on every core; Dask "
        f"{median(dask) / median(two):.2f}x the local pool's time"
    )
    speedup, speedup_shown = round_ratios(one_thread, two)
    dask_ratio, dask_shown = round_ratios(dask, two)
    print(
        f"within each round: 2 workers {speedup_shown} one single-thread worker (goal >= 1.7x); "
        f"Dask {dask_shown} the local pool's time (goal within 1.10x)"
    )
    return [
        Goal(
            f"2 workers >= 1.7x one single-thread worker ({n} studies)",
            f"{speedup_shown}; medians {median(one_thread):.1f} -> {median(two):.1f} s",
            speedup >= 1.7,
        ),
        Goal("Dask, 2 single-thread workers, within 10 % of the local pool", dask_shown, dask_ratio <= 1.10),
    ]


def startup(rounds: int) -> list[Goal]:
    """Wall seconds of ``radimt --help`` and ``--version`` and of ``import radimt`` in a fresh
    interpreter (the interpreter's own start, ``python -c pass``, for scale); ``rounds``
    interleaved runs each after one unmeasured run, medians."""
    import_radimt = "import time; t = time.perf_counter(); import radimt; print(time.perf_counter() - t)"
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "radimt --help": [str(BIN / "radimt"), "--help"],
        "radimt --version": [str(BIN / "radimt"), "--version"],
    }
    seconds: dict[str, list[float]] = {label: [] for label in [*commands, "import radimt"]}
    for round_ in range(rounds + 1):
        for label, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            if round_:
                seconds[label].append(time.perf_counter() - start)
        done = subprocess.run(
            [sys.executable, "-c", import_radimt], check=True, capture_output=True, text=True
        )
        if round_:
            seconds["import radimt"].append(float(done.stdout))
    print(f"\n== start-up: medians of {rounds} runs ==\n")
    for label, got in seconds.items():
        print(f"  {label:<40} {median(got):>6.3f} s")
    cli = max(median(seconds["radimt --help"]), median(seconds["radimt --version"]))
    imported = median(seconds["import radimt"])
    return [
        Goal("radimt --help and --version <= 0.3 s", f"{cli:.3f} s (the slower of the two)", cli <= 0.3),
        Goal("import radimt <= 0.5 s", f"{imported:.3f} s", imported <= 0.5),
    ]


def header_scan(rounds: int) -> Goal:
    """radimt's header scan of one cohort study's DCE (6 phases x 160 slices in one folder),
    page cache warm; median of ``rounds`` scans."""
    write_studies(1)
    folder = DATA / "c000" / "MR" / "dce"
    files = sum(1 for _ in folder.iterdir())
    radimt.scan(folder)  # warm the page cache
    seconds, _ = median_time(lambda: radimt.scan(folder), rounds)
    rate = files / seconds
    print(f"\nheader scan of {files} DCE files: {seconds:.3f} s, {rate:,.0f} files/s (goal >= 3,000)")
    return Goal(f"header scan >= 3,000 files/s ({files} DCE files)", f"{rate:,.0f} files/s", rate >= 3000)


def print_goals(goals: list[Goal]) -> None:
    """The issue's goals, each with this run's figure."""
    print("\n== goals ==\n")
    width = max(len(g.goal) for g in goals)
    for g in goals:
        print(f"  {g.goal:<{width}}  {'met' if g.met else 'NOT MET':<8} {g.measured}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--studies", type=int, default=3, help="studies of the route comparison (0: only the workers' run)"
    )
    parser.add_argument(
        "--scaling-studies", type=int, default=12, help="studies of the workers' run (0: skip)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every timed run")
    args = parser.parse_args()
    # radimt as a pip install leaves it, with its bytecode compiled (as the route's pyradiomics
    # is): an editable install compiles none, and under PYTHONDONTWRITEBYTECODE every command
    # would compile radimt again. Compiles only modules whose source changed.
    compileall.compile_dir(Path(radimt.__file__).parent, quiet=1)
    work = Path(tempfile.mkdtemp(prefix="radimt_cohort_"))
    goals: list[Goal] = []
    try:
        if args.studies:
            manifest = write_studies(args.studies)
            for name, image_types in SETTINGS.items():
                goals += compare(manifest, args.studies, work, name, image_types, args.rounds)
            pairs = [
                second_lesion(manifest, pipeline_file(work, SETTINGS["Original"]), work / "second")
                for _ in range(args.rounds)
            ]
            first, second = median(p[0] for p in pairs), median(p[1] for p in pairs)
            print(
                f"\na study's first lesion {first:.2f} s, a second lesion of the loaded study "
                f"{second:.2f} s (goal <= 0.5 s)"
            )
            goals.append(
                Goal(
                    "a second lesion of a loaded study <= 0.5 s",
                    f"{second:.2f} s (the first {first:.2f} s)",
                    second <= 0.5,
                )
            )
        if args.scaling_studies:
            goals += scaling(args.scaling_studies, work, args.rounds)
        goals += startup(max(5, args.rounds))
        goals.append(header_scan(max(5, args.rounds)))
        if args.studies:
            print("\none study in-process, by radimt stage (Original):")
            for stage, seconds in profile_one(manifest, pipeline_file(work, SETTINGS["Original"])):
                print(f"  {stage:<46} {seconds:>8.2f} s")
        print_goals(goals)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
