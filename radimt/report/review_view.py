"""What the review page shows of one lesion, written beside its results by the batch: the
reference image around the lesion (a crop, so that hundreds of lesions stay small and the page
never needs the study itself), the mask on the same grid, and for 2D images a thumbnail of the
whole image with the lesion boxed.

Files in the lesion's folder: ``view_image.nii.gz`` (int16: the values quantised over their range
into 60,000 steps, ``value = stored * scale + offset`` with both in ``view.json``; half the size
of float32), ``view_mask.nii.gz`` (uint8; absent
when the lesion failed) and ``view.json`` (what the image is, the seed, a grey window, the
orientation of the grid's axes), and ``thumb_<key>.png`` for each 2D image.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from radimt.grids import nonzero_indices  # noqa: E402
from radimt.io.atomic import atomic_path  # noqa: E402

#: The crop's least side, mm: room to re-seed around a seed that missed.
VIEW_MM = 60.0
#: The crop around a mask: this many times its extent, at least VIEW_MM.
VIEW_MARGIN = 1.6
VIEW_IMAGE, VIEW_MASK, VIEW_META = "view_image.nii.gz", "view_mask.nii.gz", "view.json"


def axis_letters(direction: Sequence[float], dimension: int) -> list[str]:
    """For each image axis, the patient direction it points to (``L``, ``P``, ``S`` or their
    opposites ``R``, ``A``, ``I``; two letters for an oblique axis), from the direction cosines.

    Examples
    --------
    >>> axis_letters((1, 0, 0, 0, 1, 0, 0, 0, 1), 3)
    ['L', 'P', 'S']
    >>> axis_letters((-1, 0, 0, 0, 0, -1, 0, 1, 0), 3)
    ['R', 'S', 'A']
    """
    matrix = np.asarray(direction, float).reshape(dimension, dimension)
    names = [("L", "R"), ("P", "A"), ("S", "I")]
    letters = []
    for axis in range(dimension):
        column = matrix[:, axis]
        order = np.argsort(-np.abs(column))
        text = ""
        for k in order[:2]:
            if abs(column[k]) >= 0.3 or not text:
                text += names[k][0] if column[k] > 0 else names[k][1]
        letters.append(text)
    return letters


def _crop_box(
    image: sitk.Image, mask: sitk.Image | None, seed: Sequence[float] | None
) -> tuple[list[int], list[int]]:
    """Index and size of the view around the mask (or the seed, or the image's centre)."""
    size = np.asarray(image.GetSize())
    spacing = np.asarray(image.GetSpacing())
    where = nonzero_indices(sitk.GetArrayViewFromImage(mask), positive=True) if mask is not None else None
    if where is not None and len(where):
        where = where[:, ::-1]  # (i, j, k) order
        low, high = where.min(axis=0), where.max(axis=0)
        centre = (low + high) / 2.0
        extent = (high - low + 1) * spacing
        half_mm = np.maximum(VIEW_MM, VIEW_MARGIN * extent.max()) / 2.0
    else:
        if seed is not None:
            try:
                centre = np.asarray(image.TransformPhysicalPointToContinuousIndex([float(v) for v in seed]))
            except RuntimeError:
                centre = (size - 1) / 2.0
        else:
            centre = (size - 1) / 2.0
        half_mm = VIEW_MM / 2.0
    half = np.ceil(half_mm / spacing).astype(int)
    start = np.clip(np.round(centre).astype(int) - half, 0, size - 1)
    stop = np.clip(np.round(centre).astype(int) + half + 1, 1, size)
    return [int(v) for v in start], [int(v) for v in np.maximum(stop - start, 1)]


def write_view(
    folder: str | os.PathLike[str],
    image: sitk.Image,
    mask: sitk.Image | None,
    *,
    label: str,
    role: str,
    seed: Sequence[float] | None = None,
) -> None:
    """Write the review view of one lesion into its ``folder``.

    Parameters
    ----------
    image
        The image the lesion was (or was to be) delineated on.
    mask
        Its mask on ``image``'s grid, or ``None`` when the lesion failed (the view is then around
        the seed, to re-seed from).
    label, role
        What the image is (``"DCE early subtraction"``) and its role (``"dce"``).
    seed
        The seed in the image's physical space (LPS mm; mm from the top-left pixel in 2D).
    """
    write_view_region(folder, *view_region(image, mask, seed), label=label, role=role, seed=seed)


def view_region(
    image: sitk.Image, mask: sitk.Image | None, seed: Sequence[float] | None = None
) -> tuple[sitk.Image, sitk.Image | None]:
    """The part of ``image`` (and of ``mask``) that the review view shows: the crop around the
    mask (or the seed), as new images that share nothing with the given ones."""
    start, size = _crop_box(image, mask, seed)
    crop = sitk.RegionOfInterest(image, size, start)
    return crop, sitk.RegionOfInterest(mask, size, start) if mask is not None else None


def write_view_region(
    folder: str | os.PathLike[str],
    crop: sitk.Image,
    mask_crop: sitk.Image | None,
    *,
    label: str,
    role: str,
    seed: Sequence[float] | None = None,
) -> None:
    """Write a lesion's review view from its :func:`view_region` (see :func:`write_view`)."""
    folder = Path(folder)
    crop = sitk.Cast(crop, sitk.sitkFloat32)
    values = np.nan_to_num(sitk.GetArrayViewFromImage(crop), nan=0.0, posinf=0.0, neginf=0.0)  # a copy
    offset = float(values.min()) if values.size else 0.0
    scale = max(float(values.max()) - offset, 1e-6) / 60000.0 if values.size else 1.0
    stored = sitk.GetImageFromArray(np.round((values - offset) / scale - 30000.0).astype(np.int16))
    # last, as it reorders ``values`` (no copy of its own)
    low, high = np.percentile(values, [1, 99.5], overwrite_input=True) if values.size else (0.0, 1.0)
    stored.CopyInformation(crop)
    meta: dict[str, Any] = {
        "label": label,
        "role": role,
        "size": list(crop.GetSize()),
        "spacing": list(crop.GetSpacing()),
        "origin": list(crop.GetOrigin()),
        "direction": list(crop.GetDirection()),
        "axes": axis_letters(crop.GetDirection(), crop.GetDimension()),
        "window": [float(low), float(max(high, low + 1e-6))],
        "scale": scale,
        "offset": offset + 30000.0 * scale,
        "seed": [float(v) for v in seed] if seed is not None else None,
        "has_mask": mask_crop is not None,
    }
    _write_quickly_compressed(stored, folder / VIEW_IMAGE)
    if mask_crop is not None:
        with atomic_path(folder / VIEW_MASK) as tmp:
            sitk.WriteImage(sitk.Cast(mask_crop > 0, sitk.sitkUInt8), str(tmp), True)
    else:
        (folder / VIEW_MASK).unlink(missing_ok=True)
    with atomic_path(folder / VIEW_META) as tmp:
        Path(tmp).write_text(json.dumps(meta, indent=1), encoding="utf-8")


def _write_quickly_compressed(image: sitk.Image, path: Path) -> None:
    """``image`` as NIfTI gzipped at zlib's fastest level (atomically): SimpleITK compresses at
    its default level, twice the time for the view's noisy values and 5 % smaller."""
    fd, raw = tempfile.mkstemp(prefix=".view.", suffix=".nii", dir=path.parent)
    os.close(fd)
    try:
        sitk.WriteImage(image, raw, False)
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(gzip.compress(Path(raw).read_bytes(), compresslevel=1, mtime=0))
    finally:
        os.unlink(raw)


def write_thumbnail(
    path: str | os.PathLike[str],
    image: sitk.Image,
    mask: sitk.Image | None,
    *,
    title: str,
    width_px: int = 360,
) -> None:
    """The whole 2D image (a mammogram, an ultrasound frame) small, with the lesion boxed."""
    values = sitk.GetArrayViewFromImage(image)
    if values.ndim == 3:
        values = values[values.shape[0] // 2]
    sy, sx = image.GetSpacing()[1], image.GetSpacing()[0]
    lo, hi = np.percentile(values, [1, 99.5]) if values.size else (0, 1)
    aspect = values.shape[0] * sy / max(values.shape[1] * sx, 1e-9)  # height over width
    width_in = min(width_px / 100, 3.2 / max(aspect, 1e-9))  # a tall view keeps its title legible
    fig, ax = plt.subplots(figsize=(width_in, max(width_in * aspect, 1.0) + 0.4), dpi=100)
    ax.imshow(values, cmap="gray", vmin=lo, vmax=hi, aspect=sy / sx, interpolation="antialiased")
    if mask is not None:
        labels = np.asarray(sitk.GetArrayViewFromImage(mask) > 0)
        if labels.ndim == 3:
            labels = np.asarray(labels.any(axis=0))
        rows, cols = np.nonzero(labels)
        if len(rows):
            pad = 4
            ax.add_patch(
                plt.Rectangle(
                    (cols.min() - pad, rows.min() - pad),
                    cols.max() - cols.min() + 2 * pad,
                    rows.max() - rows.min() + 2 * pad,
                    fill=False,
                    edgecolor="#ffd400",
                    linewidth=1.5,
                )
            )
    ax.set_axis_off()
    ax.set_title(title, fontsize=13)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
