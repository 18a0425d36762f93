"""IBSI-2 filter benchmark: every phase-1 configuration on its 64³ phantom (time and agreement
with its consensus map), a 3D Gabor with 4 orientations on a 128k-voxel lesion box, and the
lesion-box crop against filtering the whole image.

- **Phase 1.** Each of the 33 configurations that have a reference map, on its phantom: the
  median time of ``filter_response`` and the worst voxel's error as a fraction of the map's range
  (IBSI 2 passes at 1 %); the total of the medians.
- **Gabor on a lesion.** A 3D (three orthogonal planes) Gabor, 4 orientations (step pi/2),
  sigma 3 mm, lambda 6 mm, gamma 1, mirror boundary, on a 50 x 51 x 51 box (130k voxels).
- **Crop.** LoG (sigma 3 mm) and a rotation-invariant Laws energy map on a 12 mm lesion of a
  240 x 240 x 120 image, as ``response_in_box`` computes them (the lesion's box and the kernel's
  reach), against filtering the whole image: ratio of medians, and the largest difference on the
  lesion (0: exact).

Run: ``python benchmarks/bench_ibsi2.py [--repeats 3] [--ibsi2 ../shared/ibsi2]``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from timing import median_time

from radimt.ibsi_filters import FilterSettings, filter_response, response_array, response_in_box

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.test_ibsi2_filters import ROWS, settings_of  # noqa: E402 - the tests' reading of the CSV


def _phase1(ibsi2: Path, repeats: int) -> None:
    print(f"{'configuration':<10} {'phantom':<13} {'filter':<42} {'median s':>9} {'worst/range':>12}")
    total = 0.0
    for row in ROWS:
        reference = ibsi2 / row["map_file"]
        phantom = ibsi2 / "phantoms" / row["phantom"] / "image" / f"{row['phantom']}.nii.gz"
        if not reference.exists() or not phantom.exists():
            print(f"{row['id']:<10} (map or phantom not here)")
            continue
        image = sitk.ReadImage(str(phantom))
        expected = sitk.GetArrayFromImage(sitk.ReadImage(str(reference))).astype(np.float64)
        settings = settings_of(row)
        seconds, response = median_time(lambda i=image, s=settings: filter_response(i, s), repeats)
        worst = np.abs(sitk.GetArrayFromImage(response) - expected).max() / np.ptp(expected)
        total += seconds
        print(f"{row['id']:<10} {row['phantom']:<13} {settings.name[:42]:<42} {seconds:9.3f} {worst:12.2e}")
    print(f"{'all':<10} {'':<13} {'':<42} {total:9.2f}  (goal: under 30 s)")


def _gabor(repeats: int) -> None:
    rng = np.random.default_rng(0)
    array = rng.normal(0.0, 1.0, (50, 51, 51))
    gabor = FilterSettings(
        "gabor",
        boundary="mirror",
        sigma_mm=3.0,
        gabor_gamma=1.0,
        gabor_lambda_mm=6.0,
        theta_step_rad=math.pi / 2,
        orthogonal_planes=True,
        rotation_invariant=True,
        pooling="mean",
    )
    seconds, _ = median_time(lambda: response_array(array, np.ones(3), gabor), repeats)
    print(f"\n3D Gabor, 4 orientations, 3 planes, {array.size:,} voxels: {seconds:.2f} s (goal: under 5 s)")


def _crop(repeats: int) -> None:
    rng = np.random.default_rng(1)
    array = rng.normal(100.0, 30.0, (120, 240, 240))
    spacing = np.array([1.5, 0.7, 0.7])
    region = np.zeros(array.shape, bool)
    zz, yy, xx = np.ogrid[:120, :240, :240]
    region[((zz - 60) * 1.5) ** 2 + ((yy - 120) * 0.7) ** 2 + ((xx - 120) * 0.7) ** 2 <= 36.0] = True
    print(f"\n{'filter on a 12 mm lesion':<48} {'whole s':>8} {'box s':>8} {'ratio':>7} {'max diff':>9}")
    for settings in (
        FilterSettings("log", boundary="mirror", sigma_mm=3.0),
        FilterSettings(
            "laws", boundary="mirror", laws_kernels="E5L5S5", energy_distance_vox=7, rotation_invariant=True
        ),
    ):
        whole_s, whole = median_time(lambda s=settings: response_array(array, spacing, s), repeats)
        box_s, boxed = median_time(lambda s=settings: response_in_box(array, spacing, region, s), repeats)
        diff = float(np.abs(boxed[region] - whole[region]).max())
        print(f"{settings.name[:48]:<48} {whole_s:8.2f} {box_s:8.3f} {whole_s / box_s:6.0f}x {diff:9.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ibsi2", type=Path, default=REPO.parent / "shared" / "ibsi2")
    args = parser.parse_args()
    _phase1(args.ibsi2, args.repeats)
    _gabor(args.repeats)
    _crop(max(1, args.repeats - 1))


if __name__ == "__main__":
    main()
