"""Feature extraction benchmark: one 12 mm lesion in a 512x512x160 MR volume.

Plain pyradiomics on the full volume and mask (its default settings, then with LoG and
wavelet) against radimt's ``extract_features`` with the same settings (crop before filtering).
Prints median times, the speed-up, the largest relative difference of original/LoG features
(should be ~0) and of wavelet features (which depend on the field of view in pyradiomics).

Run: ``python benchmarks/bench_features.py [--repeats N]`` (the full-volume wavelet run alone
takes about a minute).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np
import radiomics
import SimpleITK as sitk
from radiomics import featureextractor
from timing import median_time

from radimt.features import extract_features
from radimt.synth.phantom import Lesion, lesion_fraction
from radimt.synth.writer import Grid

SIZE = (512, 512, 160)
SPACING = (0.7, 0.7, 1.0)
FILTERS = {"Original": {}, "LoG": {"sigma": [1.0, 2.0, 3.0]}, "Wavelet": {}}


def volume_with_lesion() -> tuple[sitk.Image, sitk.Image]:
    rng = np.random.default_rng(0)
    values = rng.normal(300, 30, SIZE[::-1]).astype(np.float32)
    local = Grid((40, 40, 30), SPACING, (0.0, 0.0, 0.0))
    fraction = lesion_fraction(local, Lesion((14.0, 14.0, 15.0), 12.0, "lobulated"))
    values[65:95, 200:240, 200:240] += 150 * fraction
    mask = np.zeros(SIZE[::-1], np.uint8)
    mask[65:95, 200:240, 200:240] = fraction >= 0.5
    image, mask_image = sitk.GetImageFromArray(values), sitk.GetImageFromArray(mask)
    image.SetSpacing(SPACING)
    mask_image.CopyInformation(image)
    return image, mask_image


def plain(image, mask, image_types):
    radiomics.setVerbosity(logging.ERROR)
    extractor = featureextractor.RadiomicsFeatureExtractor()
    extractor.disableAllImageTypes()
    extractor.enableImageTypes(**image_types)
    result = extractor.execute(image, mask)
    return {k: float(v) for k, v in result.items() if not k.startswith("diagnostics")}


def worst(ours, theirs, prefix=None):
    keys = [
        k
        for k in theirs
        if (prefix is None or k.startswith(prefix)) and not (prefix is None and k.startswith("wavelet"))
    ]
    return max(abs(ours[k] - theirs[k]) / max(abs(theirs[k]), 1e-12) for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    image, mask = volume_with_lesion()
    with tempfile.TemporaryDirectory() as tmp:
        defaults = Path(tmp) / "pyradiomics_defaults.yaml"
        defaults.write_text("imageType:\n  Original: {}\nsetting: {}\n")  # pyradiomics' own defaults
        t_plain, theirs = median_time(lambda: plain(image, mask, {"Original": {}}), 1)
        t_ours, ours = median_time(lambda: extract_features(image, mask, preset=defaults), args.repeats)
        t_plain_f, theirs_f = median_time(lambda: plain(image, mask, FILTERS), 1)
        t_ours_f, ours_f = median_time(
            lambda: extract_features(image, mask, preset=defaults, image_types=FILTERS), args.repeats
        )
    print(f"\none 12 mm lesion in a {'x'.join(map(str, SIZE))} MR volume; medians\n")
    print(f"{'extraction':<58} {'median s':>9}  ratio")
    print("-" * 100)
    rows = [
        ("plain pyradiomics, full volume, default (Original)", t_plain, "1x (baseline)"),
        ("radimt extract_features, same settings", t_ours, f"{t_plain / t_ours:.0f}x faster (target >= 50x)"),
        ("plain pyradiomics, full volume, Original+LoG(1,2,3)+wavelet", t_plain_f, "1x (baseline)"),
        (
            "radimt extract_features, same settings",
            t_ours_f,
            f"{t_plain_f / t_ours_f:.0f}x faster (target < 1.5 s)",
        ),
    ]
    for name, seconds, note in rows:
        print(f"{name:<58} {seconds:>9.3f}  {note}")
    print(f"\nlargest relative difference, original + LoG features: {worst(ours_f, theirs_f):.1e}")
    print(
        f"largest relative difference, wavelet features (field-of-view dependent in pyradiomics): "
        f"{worst(ours_f, theirs_f, 'wavelet'):.1e}"
    )


if __name__ == "__main__":
    main()
