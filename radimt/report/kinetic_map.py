"""The CAD-style kinetic map as a figure: a maximum intensity projection of the early
subtraction, the enhancing voxels coloured by their worst delayed curve type along each ray
(blue persistent, yellow plateau, red washout) and the candidates numbered by rank."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from radimt.io.atomic import atomic_path  # noqa: E402
from radimt.propose import Proposal  # noqa: E402

#: Curve-type colours of breast CAD maps: persistent blue, plateau yellow, washout red.
CURVE_COLOURS = ("#1f5fd6", "#f2d21b", "#e0261b")


def kinetic_map_figure(proposal: Proposal, path: str | os.PathLike[str], title: str = "") -> None:
    """Write the kinetic map MIP (PNG) with the candidates numbered on it.

    The projection runs along the acquisition's slices (an axial study gives an axial MIP, a
    sagittal one a sagittal MIP); pixels keep their physical aspect.
    """
    kinetic = proposal.kinetic_map
    worst = sitk.GetArrayViewFromImage(kinetic).max(axis=0)  # 3 washout > 2 plateau > 1 persistent
    subtraction = sitk.GetArrayViewFromImage(proposal.early_subtraction).max(axis=0)
    spacing = kinetic.GetSpacing()
    width, height = worst.shape[1] * spacing[0], worst.shape[0] * spacing[1]
    extent = (0.0, width, height, 0.0)
    figure, axes = plt.subplots(figsize=(8, 8 * height / max(width, 1e-6) + 0.6), dpi=110)
    high = float(np.percentile(subtraction, 99.8)) or 1.0
    axes.imshow(subtraction, cmap="gray", vmin=0, vmax=high, extent=extent, interpolation="bilinear")
    overlay = np.ma.masked_equal(worst, 0)
    axes.imshow(
        overlay,
        cmap=ListedColormap(CURVE_COLOURS),
        vmin=1,
        vmax=3,
        alpha=0.55,
        extent=extent,
        interpolation="nearest",
    )
    for candidate in proposal.candidates:
        i, j, _ = kinetic.TransformPhysicalPointToContinuousIndex(candidate.seed)
        x, y = (i + 0.5) * spacing[0], (j + 0.5) * spacing[1]
        axes.annotate(
            str(candidate.rank),
            (x, y),
            xytext=(x + 9, y - 9),
            color="white",
            fontsize=13,
            fontweight="bold",
            arrowprops={"arrowstyle": "-", "color": "white", "lw": 1.2},
            bbox={"boxstyle": "circle,pad=0.2", "fc": "black", "ec": "white", "lw": 1},
        )
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in CURVE_COLOURS]
    axes.legend(handles, ["persistent (I)", "plateau (II)", "washout (III)"], loc="lower right", fontsize=10)
    axes.set_xlabel("mm")
    axes.set_ylabel("mm")
    axes.set_title(title or "kinetic map (MIP), candidates by rank", fontsize=13)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
