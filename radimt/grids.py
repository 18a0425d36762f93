"""Whether two images share a voxel grid, and masks checked against the image they belong to."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from radimt.errors import MaskError

#: Two grids are the same when sizes are equal and spacing, origin and direction agree within these.
SPACING_TOLERANCE_MM = 1e-3
ORIGIN_TOLERANCE_MM = 1e-2
DIRECTION_TOLERANCE = 1e-4


def same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    """Whether two images share size, spacing, origin and direction (within the tolerances)."""
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=SPACING_TOLERANCE_MM)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=ORIGIN_TOLERANCE_MM)
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=DIRECTION_TOLERANCE)
    )


def mask_on(image: sitk.Image, mask: sitk.Image, what: str = "the mask") -> np.ndarray:
    """The mask as a boolean array (z, y, x), after checking it lies on ``image``'s grid.

    Raises
    ------
    MaskError
        The mask is on another grid (with the hint to carry it over), or empty.
    """
    if not same_grid(image, mask):
        origins = [tuple(round(o, 2) for o in x.GetOrigin()) for x in (mask, image)]
        raise MaskError(
            f"{what} is not on the image's grid (size {mask.GetSize()} vs {image.GetSize()}, origin "
            f"{origins[0]} vs {origins[1]}); carry it over with radimt.resample_mask(mask, image)"
        )
    inside = sitk.GetArrayFromImage(mask) > 0
    if not inside.any():
        raise MaskError(f"{what} is empty")
    return inside
