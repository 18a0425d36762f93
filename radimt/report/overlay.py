"""An overlay PNG of a mask on its image, for a quick look at a segmentation."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from radimt.io.atomic import atomic_path  # noqa: E402


def central_slice(mask: sitk.Image) -> int:
    """The slice (array axis 0) holding the most mask voxels; 0 for a 2D mask."""
    if mask.GetDimension() == 2:
        return 0
    counts = sitk.GetArrayViewFromImage(mask).reshape(mask.GetSize()[2], -1).sum(axis=1)
    return int(np.argmax(counts))


def overlay_png(
    image: sitk.Image,
    mask: sitk.Image,
    path: str | os.PathLike[str],
    *,
    title: str = "",
    margin_mm: float = 15.0,
) -> None:
    """Write a PNG of the mask's central slice: the image in grey, the mask outlined in red.

    The view is cropped to the lesion plus ``margin_mm``, with pixels drawn at their true
    aspect ratio.
    """
    values = sitk.GetArrayViewFromImage(image)
    labels = sitk.GetArrayViewFromImage(mask) > 0
    if image.GetDimension() == 3:
        k = central_slice(mask)
        values, labels = values[k], labels[k]
    rows, cols = np.nonzero(labels)
    sx, sy = image.GetSpacing()[:2]
    if len(rows):
        r0 = max(0, rows.min() - int(margin_mm / sy))
        r1 = min(labels.shape[0], rows.max() + int(margin_mm / sy) + 1)
        c0 = max(0, cols.min() - int(margin_mm / sx))
        c1 = min(labels.shape[1], cols.max() + int(margin_mm / sx) + 1)
        values, labels = values[r0:r1, c0:c1], labels[r0:r1, c0:c1]
    lo, hi = np.percentile(values, [1, 99]) if values.size else (0, 1)
    fig = plt.figure(figsize=(4, 4), dpi=100)
    # fixed margins (a title's band on top): tight_layout would measure the text on every call
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.86 if title else 0.96))
    ax.imshow(values, cmap="gray", vmin=lo, vmax=hi, aspect=sy / sx, interpolation="nearest")
    if labels.any():
        ax.contour(labels.astype(float), levels=[0.5], colors="red", linewidths=1.2)
    ax.set_axis_off()
    if title:  # figure text, not an axes title: placing that measures the (hidden) axes each time
        fig.text(0.5, 0.94, title, ha="center", va="center", fontsize=13)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
