"""Kinetic maps benchmark: a 6-phase 512x512x160 DCE, per voxel.

Prints median times for the per-voxel maps restricted to one lesion's bounding box, over the
whole volume (vectorised, in chunks), and a plain Python loop that analyses one voxel at a time
(timed on a sample of voxels and compared per voxel). Same process, same data.

Run: ``python benchmarks/bench_kinetics.py [--repeats N]``.
"""

from __future__ import annotations

import argparse

import numpy as np
import SimpleITK as sitk
from timing import median_time

from radimt.dicom.study import DCE
from radimt.kinetics import _analyse, _timing, kinetic_maps, kinetic_options
from radimt.synth.phantom import Lesion, enhancement_curve, lesion_fraction
from radimt.synth.writer import Grid

SIZE = (512, 512, 160)
SPACING = (0.7, 0.7, 1.0)
TIMES = np.array([0.0, 90.0, 180.0, 270.0, 360.0, 450.0])


def make_dce() -> tuple[DCE, sitk.Image]:
    rng = np.random.default_rng(0)
    lesion_grid = Grid((40, 40, 30), SPACING, (0.0, 0.0, 0.0))
    fraction = lesion_fraction(lesion_grid, Lesion((14.0, 14.0, 15.0), 12.0))
    curve = enhancement_curve(TIMES, 120.0, -0.2)
    phases = []
    for re in curve:
        volume = rng.normal(100, 5, SIZE[::-1]).astype(np.float32)
        volume[65:95, 200:240, 200:240] += 100 * re / 100 * fraction
        image = sitk.GetImageFromArray(volume)
        image.SetSpacing(SPACING)
        phases.append(image)
    mask_array = np.zeros(SIZE[::-1], np.uint8)
    mask_array[65:95, 200:240, 200:240] = fraction >= 0.5
    mask = sitk.GetImageFromArray(mask_array)
    mask.CopyInformation(phases[0])
    return DCE(phases=phases, times=TIMES, time_source="bench", series=[]), mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-voxels", type=int, default=2000)
    args = parser.parse_args()
    dce, mask = make_dce()
    n_voxels = int(np.prod(SIZE))
    t_box, _ = median_time(lambda: kinetic_maps(dce, mask, crop=False), args.repeats)
    t_crop, _ = median_time(lambda: kinetic_maps(dce, mask), args.repeats)
    t_whole, _ = median_time(lambda: kinetic_maps(dce), max(1, args.repeats // 2))

    opts = kinetic_options()
    timing = _timing(dce.times, 1, opts)
    arrays = [sitk.GetArrayViewFromImage(p) for p in dce.phases]
    rng = np.random.default_rng(1)
    picks = rng.integers(0, n_voxels, args.loop_voxels)

    def loop() -> None:  # what a per-voxel implementation does: one curve at a time
        for flat in picks:
            z, y, x = np.unravel_index(flat, arrays[0].shape)
            curve = np.array([[a[z, y, x]] for a in arrays], np.float64)
            _analyse(curve, timing, opts)

    t_loop = median_time(loop, 1)[0] / args.loop_voxels
    per_voxel_whole = t_whole / n_voxels
    box_voxels = int(np.prod(np.ptp(np.argwhere(sitk.GetArrayViewFromImage(mask)), axis=0) + 1))
    print(f"\n6-phase {'x'.join(map(str, SIZE))} DCE ({n_voxels:,} voxels); medians\n")
    print(f"{'method':<52} {'median s':>10}  per voxel")
    print("-" * 90)
    rows = [
        (
            "per-voxel Python loop (sampled, x all voxels)",
            t_loop * n_voxels,
            f"{t_loop * 1e6:.1f} µs (baseline)",
        ),
        (
            "kinetic_maps, whole volume (vectorised, chunked)",
            t_whole,
            f"{per_voxel_whole * 1e6:.3f} µs = {t_loop / per_voxel_whole:,.0f}x faster (target >= 100x)",
        ),
        (
            "kinetic_maps, lesion box, crop=False (full grid)",
            t_box,
            f"{box_voxels:,} voxels, maps pasted into the whole grid",
        ),
        ("kinetic_maps, lesion box (default)", t_crop, f"maps on the box only; {t_box / t_crop:.1f}x faster"),
    ]
    for name, seconds, note in rows:
        print(f"{name:<52} {seconds:>10.3f}  {note}")


if __name__ == "__main__":
    main()
