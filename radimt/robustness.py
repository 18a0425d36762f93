"""Feature robustness to segmentation: ICC(3,1) of every feature across perturbed masks.

For each lesion the mask is remade several ways — the seed moved within the lesion's inner part
(re-segmented), and the mask eroded and dilated by one voxel — and every feature is computed on
each. Treating lesions as subjects and perturbations as raters, the two-way mixed, consistency,
single-measure intraclass correlation ICC(3,1) (Shrout & Fleiss 1979) says how much of a
feature's variation between lesions survives the segmentation's wobble. Features with a low ICC
(e.g. < 0.75) are unstable and best dropped before modelling, as the radiomics quality score asks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from radimt.errors import RadimtError
from radimt.features import extract_features
from radimt.measure import centroid_lps, mask_volume_mm3
from radimt.segment import segment_from_seed


def icc_3_1(ratings: np.ndarray) -> float:
    """ICC(3,1) of a subjects × raters matrix (two-way mixed, consistency, single measure)."""
    ratings = np.asarray(ratings, float)
    n, k = ratings.shape
    if n < 2 or k < 2:
        raise RadimtError(f"ICC needs at least 2 subjects and 2 raters; got {n} x {k}")
    grand = ratings.mean()
    ss_rows = k * ((ratings.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((ratings.mean(axis=0) - grand) ** 2).sum()
    ss_error = ((ratings - grand) ** 2).sum() - ss_rows - ss_cols
    ms_rows = ss_rows / (n - 1)
    ms_error = ss_error / ((n - 1) * (k - 1))
    denominator = ms_rows + (k - 1) * ms_error
    return float((ms_rows - ms_error) / denominator) if denominator > 0 else float("nan")


def _perturbed_masks(image, seed, n_seeds, seed_is_index, rng, segment_options) -> list[sitk.Image]:
    base = segment_from_seed(image, seed, seed_is_index=seed_is_index, **segment_options)
    centre = centroid_lps(base)
    radius = (
        (3 * mask_volume_mm3(base) / (4 * np.pi)) ** (1 / 3)
        if image.GetDimension() == 3
        else np.sqrt(mask_volume_mm3(base) / np.pi)
    )
    masks = [base]
    for _ in range(n_seeds):
        offset = rng.normal(size=image.GetDimension())
        offset *= rng.uniform(0, 0.5 * radius) / np.linalg.norm(offset)  # the inner half
        masks.append(segment_from_seed(image, tuple(centre + offset), **segment_options))
    one = [1] * image.GetDimension()
    masks.append(sitk.BinaryErode(base, one))
    masks.append(sitk.BinaryDilate(base, one))
    return masks


def robustness(
    images: sitk.Image | Sequence[sitk.Image],
    seeds: Sequence[Sequence[float]],
    *,
    preset: str = "mr",
    n_seeds: int = 4,
    seed_is_index: bool = False,
    segment_options: Mapping[str, Any] | None = None,
    random_state: int = 0,
    **feature_options: Any,
) -> pd.DataFrame:
    """ICC(3,1) of every feature across segmentation perturbations, over several lesions.

    Parameters
    ----------
    images
        One image holding all lesions, or one image per seed.
    seeds
        One seed per lesion (LPS mm, or indices with ``seed_is_index``); at least two lesions.
    preset, **feature_options
        Passed to :func:`radimt.extract_features`.
    n_seeds
        Re-segmentations from seeds moved within the inner half of each lesion; one eroded and
        one dilated mask are added, so each lesion has ``n_seeds + 3`` versions.
    segment_options
        Passed to :func:`radimt.segment_from_seed` (``modality``, ``tolerance``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per feature: ``icc`` (ICC(3,1)), ``mean``, ``sd_between`` (between lesions) and
        ``sd_within`` (across perturbations), sorted from least to most robust.

    Examples
    --------
    >>> import radimt
    >>> from radimt.synth.phantom import lesion_image
    >>> made = [lesion_image("sphere", 6.0, size=(40, 40, 30), diameter=d, seed=d) for d in (8, 11, 14)]
    >>> images, seeds = [image for image, _, _ in made], [lesion.centre for _, _, lesion in made]
    >>> table = radimt.robustness(images, seeds, preset="ct", n_seeds=2, image_types=["Original"], binWidth=5)
    >>> icc = dict(zip(table["feature"], table["icc"]))
    >>> icc["original_shape_MeshVolume"] > 0.9
    True
    """
    if isinstance(images, sitk.Image):
        images = [images] * len(seeds)
    if len(images) != len(seeds):
        raise RadimtError(f"{len(images)} images for {len(seeds)} seeds; give one image, or one per seed")
    if len(seeds) < 2:
        raise RadimtError("an ICC compares lesions with each other: give at least two lesions")
    rng = np.random.default_rng(random_state)
    per_lesion = []
    for image, seed in zip(images, seeds, strict=True):
        masks = _perturbed_masks(image, seed, n_seeds, seed_is_index, rng, dict(segment_options or {}))
        per_lesion.append([extract_features(image, m, preset=preset, **feature_options) for m in masks])
    names = sorted(set.intersection(*(set(row) for rows in per_lesion for row in rows)))
    records = []
    for name in names:
        ratings = np.array([[row[name] for row in rows] for rows in per_lesion])
        records.append(
            {
                "feature": name,
                "icc": icc_3_1(ratings),
                "mean": float(ratings.mean()),
                "sd_between": float(ratings.mean(axis=1).std(ddof=1)),
                "sd_within": float(np.sqrt(ratings.var(axis=1, ddof=1).mean())),
            }
        )
    return (
        pd.DataFrame.from_records(records)
        .sort_values(["icc", "feature"], na_position="first")
        .reset_index(drop=True)
    )
