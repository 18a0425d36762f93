"""Lesion finder benchmark: FROC on synthetic breast DCE studies it was not tuned on, per
distractor kind and lesion size, its time and memory on a clinical-size DCE, and the real GE
tumour's rank.

- **Cohort.** ``--studies`` whole bilateral breast DCEs (:func:`radimt.synth.scene.breast_scene`
  seeds from 1000; the detector's weights were tuned on seeds 100-124 and checked on 200-229),
  every distractor present. Lesion-level sensitivity at 0.25, 0.5, 1 and 2 false candidates per
  study (the FROC points; the threshold is chosen on these studies, so this is the curve, not a
  validated operating point), and at radimt's frozen default threshold (``min_score``): that is
  the number a user gets. Then by lesion size, and the false candidates by what they lie in.
- **Per distractor.** ``--per-kind`` studies for each distractor alone (heart, vessels,
  background enhancement, nipple, skin, foci, motion) and with none: sensitivity and false
  candidates per study at the default threshold.
- **Speed and memory.** A 512x512x160, 6-phase DCE (the scene resampled to 0.68 x 0.44 x 0.7
  mm): median time of ``propose`` against the baseline of one float subtraction of two of its
  phases (what any look at the enhancement costs), and the peak memory
  ``propose`` adds to the process, sampled every 5 ms, as a multiple of the DCE's own size.
- **Real.** The GE breast DCE of ``../shared/realdata/breast_dce_ge`` (when present): the rank
  of the first candidate inside the I-SPY analysis VOI around the tumour.

Run: ``python benchmarks/bench_propose.py [--studies 32] [--per-kind 8] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from timing import median_time

import radimt
from radimt.dicom.study import DCE
from radimt.propose import ProposeOptions, propose
from radimt.synth.froc import JudgedStudy, false_candidates_by_kind, froc, judge
from radimt.synth.scene import breast_scene, scene_dce

DISTRACTORS = ("heart", "vessels", "bpe", "nipple", "skin", "foci", "motion")
SIZES = ((5.0, 10.0), (10.0, 20.0), (20.0, float("inf")))
GE = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata" / "breast_dce_ge" / "UCSF-BR-06.tar.gz"
)


def run_cohort(
    seeds: range, distractors: tuple[str, ...] = DISTRACTORS
) -> tuple[list[JudgedStudy], list[JudgedStudy], list[float]]:
    """Every candidate (``min_score`` 0, up to 50: the FROC needs the low-scoring ones) and the
    candidates radimt returns by default; with the seconds ``propose`` took per study."""
    everything, default, seconds = [], [], []
    threshold = ProposeOptions().min_score
    for seed in seeds:
        scene = breast_scene(seed, distractors=distractors)
        dce = scene_dce(scene)
        start = time.perf_counter()
        proposal = propose(dce, ProposeOptions(min_score=0.0, max_candidates=50))
        seconds.append(time.perf_counter() - start)
        seeds_, scores = [c.seed for c in proposal.candidates], [c.score for c in proposal.candidates]
        everything.append(judge(f"scene{seed}", scene, seeds_, scores))
        kept = [k for k, score in enumerate(scores) if score >= threshold][: ProposeOptions().max_candidates]
        default.append(judge(f"scene{seed}", scene, [seeds_[k] for k in kept], [scores[k] for k in kept]))
    return everything, default, seconds


def operating_point(
    studies: list[JudgedStudy], lo: float = 0.0, hi: float = float("inf")
) -> tuple[float, int]:
    """Sensitivity and the number of lesions of that size range, with all candidates kept."""
    lesions = [d for s in studies for d in s.lesion_diameters_mm if lo <= d < hi]
    found = [
        c.diameter_mm
        for s in studies
        for c in s.candidates
        if c.kind == "lesion" and lo <= c.diameter_mm < hi
    ]
    return len(found) / max(len(lesions), 1), len(lesions)


def false_per_study(studies: list[JudgedStudy]) -> float:
    return sum(c.kind != "lesion" for s in studies for c in s.candidates) / len(studies)


def clinical_dce() -> DCE:
    """The scene of seed 7 on a 512x512x160 grid, 6 phases of int16."""
    small = scene_dce(breast_scene(7))
    reference = sitk.Image([512, 512, 160], sitk.sitkInt16)
    reference.SetSpacing((0.68, 0.44, 0.7))
    reference.SetOrigin(small.phases[0].GetOrigin())
    phases = [
        sitk.Cast(
            sitk.Resample(p, reference, sitk.Transform(), sitk.sitkLinear, 0, sitk.sitkFloat32) * 10,
            sitk.sitkInt16,
        )
        for p in small.phases
    ]
    return DCE(phases=phases, times=small.times, time_source="synthetic", series=[])


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


def peak_added_memory(fn) -> int:
    """The most resident memory ``fn`` adds over what the process held when it started."""
    start, peak, done = _rss_bytes(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    return max(peak[0], _rss_bytes()) - start


def ge_rank() -> str:
    if not GE.exists():
        return "skipped (../shared/realdata/breast_dce_ge absent)"
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(GE) as tar:
            tar.extractall(tmp, filter="data")
        folder = next(Path(tmp).glob("UCSF-BR-06"))
        study = radimt.load_study(folder)
        start = time.perf_counter()
        proposal = propose(study)
        seconds = time.perf_counter() - start
        low, high = np.array([57.8, -78.6, -59.1]), np.array([139.8, -3.4, 27.4])  # the VOI (LPS mm)
        inside = [
            c.rank
            for c in proposal.candidates
            if np.all((np.array(c.seed) >= low) & (np.array(c.seed) <= high))
        ]
        rank = inside[0] if inside else "none"
        return f"tumour = candidate {rank} of {len(proposal.candidates)} ({seconds:.1f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=32)
    parser.add_argument("--per-kind", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    everything, default, seconds = run_cohort(range(1000, 1000 + args.studies))
    n_lesions = sum(len(s.lesion_diameters_mm) for s in everything)
    print(
        f"\nFROC: {args.studies} studies never tuned on (seeds 1000-{999 + args.studies}), "
        f"{n_lesions} lesions >= 5 mm\n"
    )
    print("| false candidates / study | sensitivity | score threshold |")
    print("|---:|---:|---:|")
    for point in froc(everything):
        print(f"| {point.fp_per_study:g} | {point.sensitivity:.3f} | {point.threshold:.3f} |")
    sensitivity, _ = operating_point(default)
    print(
        f"\ndefault threshold (min_score {ProposeOptions().min_score:g}, frozen before these studies): "
        f"sensitivity {sensitivity:.3f} at {false_per_study(default):.2f} false candidates / study"
    )
    print("\n| lesion size | lesions | sensitivity (default threshold) |")
    print("|---|---:|---:|")
    for lo, hi in SIZES:
        value, count = operating_point(default, lo, hi)
        label = f"{lo:g}-{hi:g} mm" if hi != float("inf") else f">= {lo:g} mm"
        print(f"| {label} | {count} | {value:.3f} |")
    print("\n| false candidate in | per study (default threshold) |")
    print("|---|---:|")
    for kind, rate in false_candidates_by_kind(default, ProposeOptions().min_score).items():
        print(f"| {kind} | {rate:.2f} |")

    print(
        f"\nper distractor: {args.per_kind} studies with that distractor alone (seeds 2000+), "
        "default threshold\n"
    )
    print("| distractor | lesions | sensitivity | false candidates / study |")
    print("|---|---:|---:|---:|")
    for kind in ("none", *DISTRACTORS):
        chosen = () if kind == "none" else (kind,)
        _, alone, _ = run_cohort(range(2000, 2000 + args.per_kind), chosen)
        value, count = operating_point(alone)
        print(f"| {kind} | {count} | {value:.3f} | {false_per_study(alone):.2f} |")

    dce = clinical_dce()
    size = sum(sitk.GetArrayViewFromImage(p).nbytes for p in dce.phases)
    def subtract() -> sitk.Image:
        return sitk.Cast(dce.phases[1], sitk.sitkFloat32) - sitk.Cast(dce.phases[0], sitk.sitkFloat32)

    t_sub, _ = median_time(subtract, args.repeats)
    t_propose, _ = median_time(lambda: propose(dce), args.repeats)
    added = peak_added_memory(lambda: propose(dce))
    print(f"\n512x512x160, 6 phases (int16, {size / 2**20:.0f} MiB); medians of {args.repeats}\n")
    print("| step | seconds | x subtraction |")
    print("|---|---:|---:|")
    print(f"| one subtraction (baseline) | {t_sub:.2f} | 1.0 |")
    print(f"| propose | {t_propose:.2f} | {t_propose / t_sub:.1f} |")
    print(f"\npeak memory propose adds: {added / 2**20:.0f} MiB = {added / size:.2f} x the DCE")
    print(f"synthetic studies (232x150x56): propose median {statistics.median(seconds):.2f} s")
    print(f"real GE breast DCE: {ge_rank()}")


if __name__ == "__main__":
    main()
