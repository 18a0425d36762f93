"""Measurements on masks: voxel count, volume, longest diameter, centroid, overlap."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy.spatial import ConvexHull, QhullError

from radimt.errors import MaskError
from radimt.grids import nonzero_box, nonzero_indices


def mask_points(mask: sitk.Image) -> np.ndarray:
    """Physical (LPS mm) coordinates of the voxel centres inside a mask, shape (n, dim)."""
    arr = sitk.GetArrayViewFromImage(mask)
    index = nonzero_indices(arr, positive=True)[:, ::-1].astype(float)  # (x, y[, z]) order
    dim = mask.GetDimension()
    direction = np.asarray(mask.GetDirection()).reshape(dim, dim)
    return (index * mask.GetSpacing()) @ direction.T + np.asarray(mask.GetOrigin())


def voxel_count(mask: sitk.Image) -> int:
    """Number of voxels (pixels) inside the mask."""
    return int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))


def mask_volume_mm3(mask: sitk.Image) -> float:
    """Volume in mm³ (area in mm² for a 2D mask): voxel count times voxel size.

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk, radimt
    >>> mask = sitk.GetImageFromArray(np.ones((4, 10, 10), np.uint8)); mask.SetSpacing((1.0, 1.0, 2.5))
    >>> radimt.mask_volume_mm3(mask)
    1000.0
    """
    return voxel_count(mask) * float(np.prod(mask.GetSpacing()))


def size_columns(mask: sitk.Image, in_pixels: bool = False) -> dict[str, float]:
    """A lesion's size as row columns, by the mask's dimension.

    3D: ``lesion_voxels``, ``lesion_volume_mm3``, ``lesion_volume_cm3``. 2D (a mammographic view,
    an ultrasound frame): ``lesion_voxels`` (pixels), ``lesion_area_mm2``, ``lesion_perimeter_mm``
    and ``lesion_circularity`` (4πA/P², 1 for a disc; the perimeter is SimpleITK's estimate of
    the boundary length, not the staircase of pixel edges). A 2D lesion has no volume. With
    ``in_pixels`` (an image that gives no pixel size), ``lesion_area_px2`` and
    ``lesion_perimeter_px`` instead: never a guessed millimetre.
    """
    count = voxel_count(mask)
    if mask.GetDimension() == 3:
        volume = mask_volume_mm3(mask)
        return {"lesion_voxels": count, "lesion_volume_mm3": volume, "lesion_volume_cm3": volume / 1000.0}
    area = mask_volume_mm3(mask)
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.ComputePerimeterOn()
    shape.Execute(sitk.Cast(mask > 0, sitk.sitkUInt8))
    perimeter = shape.GetPerimeter(1) if shape.HasLabel(1) else 0.0
    circularity = 4 * np.pi * area / perimeter**2 if perimeter > 0 else float("nan")
    unit = "px" if in_pixels else "mm"
    return {
        "lesion_voxels": count,
        f"lesion_area_{unit}2": area,
        f"lesion_perimeter_{unit}": float(perimeter),
        "lesion_circularity": float(circularity),
    }


def centroid_lps(mask: sitk.Image) -> np.ndarray:
    """Centre of mass of the mask in patient coordinates (mm)."""
    points = mask_points(mask)
    if not len(points):
        raise MaskError("the mask is empty: no centroid")
    return points.mean(axis=0)


def boundary_face_points(mask: sitk.Image) -> np.ndarray:
    """Physical centres of the voxel faces between the mask and the outside, shape (n, dim).

    These points sit on the mask's boundary surface (half a voxel from the boundary voxels'
    centres), so distances between them measure the object itself, not its voxel centres.
    """
    dim = mask.GetDimension()
    labels = sitk.GetArrayViewFromImage(mask)
    box = nonzero_box(labels)  # work on the mask's box, not its field of view
    if box is None:
        return np.empty((0, dim))
    arr = np.pad(labels[box] > 0, 1)
    start = np.array([b.start for b in box][::-1], float)  # (x, y[, z]) of the box's corner
    direction = np.asarray(mask.GetDirection()).reshape(dim, dim)
    spacing = np.asarray(mask.GetSpacing())
    points = []
    for axis in range(dim):  # array axis; SimpleITK axis is dim - 1 - axis
        for step in (-1, 1):
            neighbour = np.roll(arr, -step, axis=axis)
            face = arr & ~neighbour
            index = np.argwhere(face)[:, ::-1].astype(float) - 1.0 + start  # undo padding and box
            index[:, dim - 1 - axis] += 0.5 * step
            points.append(index)
    index = np.concatenate(points)
    return (index * spacing) @ direction.T + np.asarray(mask.GetOrigin())


def longest_diameter_mm(mask: sitk.Image) -> float:
    """Longest diameter (maximum Feret diameter) of a mask in mm.

    The largest distance between two points of the mask's boundary surface (the centres of its
    outer voxel faces, see :func:`boundary_face_points`), found on their convex hull.

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk, radimt
    >>> line = np.zeros((1, 1, 11), np.uint8); line[0, 0, :] = 1        # 11 voxels of 2 mm in x
    >>> mask = sitk.GetImageFromArray(line); mask.SetSpacing((2.0, 1.0, 1.0))
    >>> radimt.longest_diameter_mm(mask)        # from the outer face of one end to the other's
    22.0
    """
    points = boundary_face_points(mask)
    if len(points) == 0:
        raise MaskError("the mask is empty: no diameter")
    try:
        points = points[ConvexHull(points).vertices]
    except (QhullError, ValueError):  # flat or tiny: every point is a candidate
        pass
    if len(points) > 4000:
        points = points[np.linspace(0, len(points) - 1, 4000).astype(int)]
    dist = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    return float(dist.max())


def dice(a: sitk.Image, b: sitk.Image) -> float:
    """Dice overlap of two masks on the same grid."""
    x = sitk.GetArrayViewFromImage(a) > 0
    y = sitk.GetArrayViewFromImage(b) > 0
    if x.shape != y.shape:
        raise MaskError(f"masks on different grids: {x.shape[::-1]} and {y.shape[::-1]}")
    total = int(x.sum() + y.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(x, y).sum()) / total
