"""Synthetic breast anatomy and lesions with known ground truth.

Pure functions on numpy arrays: a breast (fat with fibroglandular texture) in air, and a lesion
(sphere, oval, lobulated or spiculated) with partial-volume edges, on any :class:`Grid`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from radimt.synth.writer import Grid

SUPERSAMPLE = 3  # sub-voxel samples per axis for partial-volume lesion edges


@dataclass(frozen=True)
class Lesion:
    """A lesion's truth: centre (LPS mm), diameter (mm) and shape.

    ``shape`` is ``sphere``, ``oval`` (axes 1 : 0.8 : 0.7), ``lobulated`` or ``spiculated``.
    """

    centre: tuple[float, float, float]
    diameter: float
    shape: str = "sphere"

    def radius_at(self, direction: np.ndarray) -> np.ndarray:
        """Boundary radius (mm) along unit direction vectors (..., 3)."""
        r = self.diameter / 2.0
        x, y, z = direction[..., 0], direction[..., 1], direction[..., 2]
        if self.shape == "sphere":
            return np.full(direction.shape[:-1], r)
        if self.shape == "oval":
            a, b, c = r, 0.8 * r, 0.7 * r
            return 1.0 / np.sqrt((x / a) ** 2 + (y / b) ** 2 + (z / c) ** 2)
        theta = np.arctan2(y, x)
        phi = np.arccos(np.clip(z, -1, 1))
        if self.shape == "lobulated":
            return r * (1 + 0.15 * np.cos(3 * theta) * np.sin(phi) + 0.08 * np.cos(2 * phi))
        if self.shape == "spiculated":
            spikes = np.maximum(0, np.cos(7 * theta) * np.sin(phi)) ** 8 + np.maximum(0, np.cos(5 * phi)) ** 8
            return r * (0.85 + 0.45 * spikes)
        raise ValueError(f"unknown lesion shape {self.shape!r}")


def lesion_fraction(grid: Grid, lesion: Lesion) -> np.ndarray:
    """Fraction of each voxel inside the lesion (z, y, x), by supersampling near the edge."""
    coords = grid.coordinates() - np.asarray(lesion.centre)
    dist = np.linalg.norm(coords, axis=-1)
    safe = np.where(dist[..., None] > 0, coords / np.maximum(dist, 1e-9)[..., None], [1.0, 0, 0])
    inside = (dist <= lesion.radius_at(safe)).astype(np.float32)
    # Refine voxels near the boundary with sub-voxel samples.
    half_diag = 0.5 * float(np.linalg.norm(grid.spacing))
    edge = np.abs(dist - lesion.radius_at(safe)) <= half_diag * 1.5
    if edge.any():
        offsets = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5
        sub = np.stack(np.meshgrid(offsets, offsets, offsets, indexing="ij"), -1).reshape(-1, 3)
        sub_mm = (sub * np.asarray(grid.spacing)) @ grid.matrix.T
        pts = coords[edge][:, None, :] + sub_mm[None]
        d = np.linalg.norm(pts, axis=-1)
        u = pts / np.maximum(d, 1e-9)[..., None]
        inside[edge] = (d <= lesion.radius_at(u)).mean(axis=1)
    return inside


def lesion_shell(fraction: np.ndarray, grid: Grid, thickness_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Split a lesion into its outer shell (rim) of ``thickness_mm`` and its core (boolean)."""
    inside = fraction >= 0.5
    distance = ndimage.distance_transform_edt(inside, sampling=grid.spacing[::-1])
    rim = inside & (distance <= thickness_mm)
    return rim, inside & ~rim


def breast_tissue(
    grid: Grid,
    chest_wall_y: float,
    nipple_y: float,
    centre_x: float,
    centre_z: float,
    half_width: float,
    half_height: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Breast support (bool) and fibroglandular fraction (0..1) on a grid.

    The breast is a half-ellipsoid from the chest wall (posterior, +y in LPS) to the nipple
    (anterior, -y). Glandular tissue is smoothed noise concentrated behind the nipple.
    """
    c = grid.coordinates()
    depth = chest_wall_y - nipple_y
    u = (c[..., 0] - centre_x) / half_width
    w = (c[..., 2] - centre_z) / half_height
    v = (chest_wall_y - c[..., 1]) / depth
    breast = (u**2 + w**2 + v**2 <= 1.0) & (c[..., 1] <= chest_wall_y)
    noise = rng.standard_normal(grid.size[::-1]).astype(np.float32)
    sigma = [max(0.5, 4.0 / s) for s in grid.spacing[::-1]]
    texture = ndimage.gaussian_filter(noise, sigma)
    texture = (texture - texture.mean()) / (texture.std() + 1e-9)
    centrality = np.clip(1.0 - (u**2 + w**2) - 0.3 * v, 0, 1)
    glandular = np.clip(0.5 * centrality + 0.35 * texture, 0, 1) * breast
    return breast, glandular.astype(np.float32)


def enhancement_curve(
    times: np.ndarray,
    initial: float,
    delayed_change: float,
    arrival: float = 15.0,
    peak_time: float = 90.0,
    tau: float = 30.0,
) -> np.ndarray:
    """Relative enhancement (%) at ``times`` (s) for a lesion with known kinetics.

    Enhancement rises from contrast ``arrival`` to ``initial`` % at ``peak_time`` (the initial
    phase). After it, the signal intensity changes linearly until the last time by
    ``delayed_change``, a fraction of the signal at the initial peak (Kuhl's delayed-phase
    measure: e.g. +0.3 persistent, 0 plateau, -0.3 washout).
    """
    times = np.asarray(times, float)
    last = float(times.max())
    rise = (1 - np.exp(-np.clip(times - arrival, 0, None) / tau)) / (1 - np.exp(-(peak_time - arrival) / tau))
    early = initial * rise
    progress = (times - peak_time) / max(last - peak_time, 1e-9)
    late = 100.0 * ((1 + initial / 100.0) * (1 + delayed_change * progress) - 1)
    return np.where(times <= peak_time, early, late)


def disk_fraction(
    shape: tuple[int, int],
    centre_rc: tuple[float, float],
    radius_px: float,
    irregular: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Fraction of each pixel inside a (possibly irregular) disk, for 2D phantoms."""
    sub = SUPERSAMPLE
    rr, cc = np.meshgrid(
        (np.arange(shape[0] * sub) + 0.5) / sub - 0.5,
        (np.arange(shape[1] * sub) + 0.5) / sub - 0.5,
        indexing="ij",
    )
    dr, dc = rr - centre_rc[0], cc - centre_rc[1]
    theta = np.arctan2(dr, dc)
    radius = radius_px * (1 + irregular * np.cos(5 * theta + seed))
    inside = (np.hypot(dr, dc) <= radius).astype(np.float32)
    return inside.reshape(shape[0], sub, shape[1], sub).mean(axis=(1, 3))


def lesion_image(
    shape: str = "sphere",
    cnr: float = 5.0,
    *,
    spacing: tuple[float, float, float] = (0.8, 0.8, 1.0),
    size: tuple[int, int, int] = (80, 80, 60),
    diameter: float = 12.0,
    texture_share: float = 0.3,
    contrast: float = 100.0,
    seed: int = 0,
):
    """A 3D test image of one lesion (e.g. an early subtraction) and its true mask.

    The lesion sits at the centre of the grid, ``contrast`` above a background whose standard
    deviation is ``contrast / cnr`` (the contrast-to-noise ratio). ``texture_share`` of the
    background variance is smooth texture (anatomy, parenchymal enhancement), the rest white
    noise. Returns ``(image, truth, lesion)``: float32 image, uint8 mask of the voxels at least
    half inside the lesion, and the :class:`Lesion`.
    """
    import SimpleITK as sitk

    rng = np.random.default_rng(seed)
    grid = Grid(size, spacing, (0.0, 0.0, 0.0))
    cx, cy, cz = (float(c) for c in np.array(size) * np.array(spacing) / 2)
    lesion = Lesion((cx, cy, cz), diameter, shape)
    fraction = lesion_fraction(grid, lesion)
    sd = contrast / cnr
    smooth = ndimage.gaussian_filter(rng.standard_normal(size[::-1]), 4)
    background = np.sqrt(texture_share) * sd * smooth / smooth.std()
    noise = rng.normal(0, np.sqrt(1 - texture_share) * sd, fraction.shape)
    values = background + noise + contrast * fraction
    image = sitk.GetImageFromArray(values.astype(np.float32))
    image.SetSpacing(spacing)
    truth = sitk.GetImageFromArray((fraction >= 0.5).astype(np.uint8))
    truth.CopyInformation(image)
    return image, truth, lesion
