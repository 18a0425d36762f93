"""IBSI features on a CT-like lesion of about 125,000 voxels (issue #17 asks for under 30 s).

The lesion is the one of tests/test_ibsi_real_roi.py scaled up (an ellipsoid of soft tissue
with air pockets and calcifications, 0.8 x 0.8 x 2 mm voxels). Rows: radimt.ibsi_features, all
11 families, under the four benchmark-like settings the tests verify, and in the digital
phantom's configuration (bin size 1 HU from the ROI minimum: ~2,300 grey levels). Median of
``--runs`` runs each.

Run: ``python benchmarks/bench_ibsi.py [--runs 3] [--skip-phantom-configuration]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from radimt.ibsi import ibsi_features  # noqa: E402
from radimt.ibsi_processing import IBSISettings  # noqa: E402
from tests.test_ibsi_real_roi import CONFIGURATIONS, ct_like_lesion  # noqa: E402


def lesion() -> tuple[sitk.Image, sitk.Image]:
    """The test's CT-like lesion, larger: about 129,000 voxels."""
    image, mask, _, _ = ct_like_lesion(shape=(30, 120, 120), semi_axes=(13.5, 48.5, 47.0))
    return image, mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-phantom-configuration", action="store_true")
    args = parser.parse_args()
    image, mask = lesion()
    voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
    runs = [(name, IBSISettings(**keywords)) for name, keywords in CONFIGURATIONS]
    if not args.skip_phantom_configuration:
        runs.append(("bin size 1 from the ROI minimum", IBSISettings()))
    rows = []
    for name, settings in runs:
        times, count = [], 0
        for _ in range(args.runs):
            start = time.perf_counter()
            features = ibsi_features(image, mask, settings)
            times.append(time.perf_counter() - start)
            count = len(features)
        rows.append((name, count, statistics.median(times)))
        print(f"{name}: {rows[-1][2]:.1f} s", flush=True)
    print(f"\nradimt.ibsi_features, all 11 families, {voxels:,}-voxel CT-like ROI, median of {args.runs}")
    print(f"{'settings':<36} {'values':>6} {'seconds':>8}")
    for name, count, seconds in rows:
        print(f"{name:<36} {count:>6} {seconds:>8.1f}")
    print("target: under 30 s")


if __name__ == "__main__":
    main()
