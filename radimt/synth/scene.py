"""A whole bilateral breast DCE-MRI with lesions and everything else that enhances, with truth.

The lesion finder (:mod:`radimt.propose`) must find lesions among what real breast DCE holds
besides them; each of these is drawn here, in an axial LPS volume (x patient left, y posterior,
z superior), with a label map of which voxel belongs to what:

- the **thorax** behind the breasts: chest-wall muscle, two air-filled **lungs** and the
  **heart** between them (blood pool: the strongest, earliest enhancement of the volume, washing
  out);
- two **breasts** of fat and fibroglandular tissue, the tissue showing **background parenchymal
  enhancement** (none to marked: persistent, diffuse, patchy);
- **vessels** (long, thin, strongly enhancing), the **nipple** and the **skin** (enhancing);
- **foci** (enhancing dots under 5 mm) and the **lesions** (5-30 mm, every shape and curve
  type; large ones with rim enhancement);
- optionally **motion**: the post-contrast phases shifted by 1-2 mm, which draws bright and dark
  edges along every boundary on the subtraction.

Intensities are those of a fat-suppressed T1 gradient echo (fat dark) or, with ``fat_sat=False``,
of a non-suppressed one (fat bright); noise is Rician. Everything is seeded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from radimt.synth.phantom import Lesion, enhancement_curve, lesion_fraction
from radimt.synth.writer import Grid

#: Label map codes of :class:`Scene` (0 = air or tissue that does not enhance on purpose).
KINDS = {
    1: "lesion",
    2: "heart",
    3: "vessel",
    4: "background enhancement",
    5: "nipple",
    6: "skin",
    7: "focus",
    8: "chest wall",
    9: "lung",
}
LABEL = {name: code for code, name in KINDS.items()}
TIMES = (0.0, 90.0, 180.0, 270.0, 360.0, 450.0)
DELAYED = {"persistent": (0.10, 0.30), "plateau": (-0.05, 0.05), "washout": (-0.30, -0.12)}


@dataclass
class SceneLesion:
    """A lesion of a scene: where, how big, what shape and curve."""

    centre: tuple[float, float, float]
    diameter_mm: float
    shape: str
    initial_pct: float
    curve: str
    rim: bool
    side: str  # "L" or "R"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Scene:
    """A synthetic DCE and its truth."""

    phases: list[np.ndarray]  # (z, y, x) float32 signal per phase
    times: tuple[float, ...]
    grid: Grid
    labels: np.ndarray  # (z, y, x) uint8, codes of KINDS
    lesion_ids: np.ndarray  # (z, y, x) uint8: 1..n = lesions[i - 1], 0 elsewhere
    lesions: list[SceneLesion]
    nipples: list[tuple[float, float, float]]
    notes: dict[str, Any] = field(default_factory=dict)


def _rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    a = signal + rng.normal(0, sigma, signal.shape).astype(np.float32)
    b = rng.normal(0, sigma, signal.shape).astype(np.float32)
    return np.sqrt(a * a + b * b).astype(np.float32)


def _ellipsoid(x, y, z, centre, radii) -> np.ndarray:
    return ((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + (
        (z - centre[2]) / radii[2]
    ) ** 2 <= 1


def _tube(grid: Grid, points: np.ndarray, radius: float, taper: float = 1.0) -> np.ndarray:
    """Partial-volume fraction of a tube along a polyline (LPS points), its radius going from
    ``radius`` mm at the first point to ``taper`` times that at the last (vessels narrow as they
    branch out)."""
    out = np.zeros(grid.size[::-1], np.float32)
    spacing = np.asarray(grid.spacing)
    full = radius
    for k, (a, b) in enumerate(zip(points[:-1], points[1:], strict=True)):
        radius = full * (1 + (taper - 1) * k / max(len(points) - 2, 1))
        low = np.floor(grid.index(np.minimum(a, b) - radius - 2)).astype(int)
        high = np.ceil(grid.index(np.maximum(a, b) + radius + 2)).astype(int)
        low, high = np.clip(low, 0, np.asarray(grid.size) - 1), np.clip(high, 0, np.asarray(grid.size) - 1)
        if np.any(high <= low):
            continue
        zi, yi, xi = np.meshgrid(*(np.arange(low[k], high[k] + 1) for k in (2, 1, 0)), indexing="ij")
        p = np.stack([xi, yi, zi], -1) * spacing + np.asarray(grid.origin)
        ab = b - a
        t = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-9), 0, 1)
        d = np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)
        frac = np.clip((radius + 0.5 * spacing.min() - d) / spacing.min(), 0, 1).astype(np.float32)
        box = out[low[2] : high[2] + 1, low[1] : high[1] + 1, low[0] : high[0] + 1]
        np.maximum(box, frac, out=box)
    return out


def _blob(grid: Grid, lesion: Lesion) -> tuple[tuple[slice, ...], np.ndarray]:
    """A lesion's partial-volume fraction computed on its own box (fast), and the box."""
    reach = lesion.diameter * 0.7 + 3
    centre = np.asarray(lesion.centre)
    low = np.floor(grid.index(list(centre - reach))).astype(int)
    high = np.ceil(grid.index(list(centre + reach))).astype(int)
    low, high = np.clip(low, 0, np.asarray(grid.size) - 1), np.clip(high, 0, np.asarray(grid.size) - 1)
    nx, ny, nz = (int(h - lo + 1) for lo, h in zip(low, high, strict=True))
    ox, oy, oz = (float(v) for v in grid.physical(low))
    sub = Grid((nx, ny, nz), grid.spacing, (ox, oy, oz))
    box = tuple(slice(int(low[k]), int(high[k]) + 1) for k in (2, 1, 0))
    return box, lesion_fraction(sub, lesion)


def breast_scene(
    seed: int,
    *,
    grid: Grid | None = None,
    n_lesions: int | None = None,
    distractors: tuple[str, ...] = ("heart", "vessels", "bpe", "nipple", "skin", "foci", "motion"),
    fat_sat: bool | None = None,
    noise: float = 2.5,
    motion: tuple[float, float, float] | None = None,
) -> Scene:
    """A bilateral axial breast DCE with 1-3 lesions (``n_lesions``) and ``distractors``.

    The ``motion`` distractor applies with probability 0.3 (a shift of the post-contrast phases
    by up to 1.4 voxels), or exactly ``motion`` (x, y, z voxels) when given; ``fat_sat`` is
    drawn when ``None``; every other draw follows ``seed``.
    """
    rng = np.random.default_rng(seed)
    grid = grid or Grid((232, 150, 56), (1.5, 1.5, 2.0), (-174.0, -125.0, -56.0))
    fat_sat = bool(rng.random() < 0.7) if fat_sat is None else fat_sat
    coords = grid.coordinates().astype(np.float32)
    x, y, z = coords[..., 0], coords[..., 1], coords[..., 2]
    del coords
    shape = grid.size[::-1]
    times = np.asarray(TIMES)

    # -- anatomy ---------------------------------------------------------------------------
    chest = -10.0 + 0.0016 * x * x  # anterior surface of the chest wall (y, posterior positive)
    trunk = (((x / 160.0) ** 2 + ((y - 45.0) / 85.0) ** 2) <= 1) & (y >= chest)
    muscle = trunk & (y < chest + 12)
    lungs = (
        _ellipsoid(x, y, z, (-78, 52, 0), (52, 42, 70)) | _ellipsoid(x, y, z, (78, 52, 0), (52, 42, 70))
    ) & trunk
    heart = _ellipsoid(x, y, z, (8, 40, -8), (52, 34, 44)) & trunk & ~lungs
    breasts = np.zeros(shape, bool)
    nipples = []
    sides = []
    for sign in (-1, 1):
        cx = sign * float(rng.uniform(78, 92))
        base = -10.0 + 0.0016 * cx * cx
        rx, ry, rz = rng.uniform(55, 70), rng.uniform(60, 85), rng.uniform(45, 54)
        breast = _ellipsoid(x, y, z, (cx, base, 0.0), (rx, ry, rz)) & (y < chest)
        breasts |= breast
        tip = (cx, base - ry, 0.0)
        nipples.append(tip)
        sides.append(("L" if sign > 0 else "R", cx, base, (rx, ry, rz), breast))
    nipple = np.zeros(shape, bool)
    if "nipple" in distractors:
        for tip in nipples:
            nipple |= _ellipsoid(x, y, z, (tip[0], tip[1] - 1.5, tip[2]), (6, 5, 6))  # protrudes
    body = trunk | breasts | nipple
    depth = ndimage.distance_transform_edt(body, sampling=grid.spacing[::-1]).astype(np.float32)
    skin = body & (depth <= 1.6)

    gland = np.zeros(shape, np.float32)
    texture = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), (2.5, 4, 4))
    texture /= texture.std() + 1e-9
    for _, cx, base, (rx, ry, rz), breast in sides:
        if not breast.any():
            continue
        u = ((x - cx) / rx) ** 2 + ((y - (base - 0.45 * ry)) / (0.7 * ry)) ** 2 + (z / rz) ** 2
        field = 0.6 * texture + 1.2 * np.clip(1 - u, 0, 1)  # patchy, denser centrally
        density = rng.uniform(0.15, 0.5)
        gland += (breast & (field > np.quantile(field[breast], 1 - density))).astype(np.float32)
    gland = np.clip(gland, 0, 1) * (depth > 6)
    gland = ndimage.gaussian_filter(gland, 0.7)

    # -- signal model: pre-contrast signal and relative enhancement curve per tissue ------------
    fat_signal, gland_signal = (14.0, 45.0) if fat_sat else (85.0, 45.0)
    pre = np.where(body, fat_signal, 1.0).astype(np.float32)
    pre = pre * (1 - gland) + gland_signal * gland * body
    pre[muscle] = 32.0
    pre[lungs] = 2.0
    pre[heart] = 55.0
    pre[skin] = 48.0
    labels = np.zeros(shape, np.uint8)
    labels[muscle] = LABEL["chest wall"]
    labels[lungs] = LABEL["lung"]
    curves: list[tuple[np.ndarray, np.ndarray]] = []  # (weight map, RE curve) added in order

    def enhance(weight: np.ndarray, initial: float, delayed: float, code: int | None = None) -> None:
        curves.append((weight.astype(np.float32), enhancement_curve(times, initial, delayed)))
        if code is not None:
            labels[weight >= 0.5] = code

    enhance(muscle, 12.0, 0.1)
    if "heart" in distractors:
        enhance(heart, rng.uniform(220, 320), -0.25, LABEL["heart"])
    if "skin" in distractors:
        enhance(skin, rng.uniform(25, 60), 0.1, LABEL["skin"])
    if "bpe" in distractors:
        # minimal, mild, moderate, marked (initial enhancement %), as often as screening MRI
        # reports them (roughly 40 / 35 / 17 / 8 %)
        grade = rng.choice([5.0, 20.0, 40.0, 60.0], p=[0.40, 0.35, 0.17, 0.08])
        patches = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 5)
        patchy = np.clip(1 + 0.35 * patches / (patches.std() + 1e-9), 0.4, 1.6)
        enhance(gland * patchy, grade, 0.15)
        labels[(gland * patchy * grade >= 30) & (labels == 0)] = LABEL["background enhancement"]
    if "nipple" in distractors:
        for tip in nipples:
            retro = _ellipsoid(x, y, z, (tip[0], tip[1] + 6, tip[2]), (9, 6, 9)) & body
            enhance(nipple | retro, rng.uniform(60, 120), 0.0, LABEL["nipple"])
    vessels = np.zeros(shape, np.float32)
    if "vessels" in distractors:
        for _, cx, base, (rx, ry, rz), _ in sides:
            for _ in range(int(rng.integers(3, 7))):
                start = np.array([cx + rng.uniform(-0.8, 0.8) * rx, base + 4, rng.uniform(-0.7, 0.7) * rz])
                end = np.array(
                    [
                        cx + rng.uniform(-0.4, 0.4) * rx,
                        base - rng.uniform(0.5, 0.85) * ry,
                        rng.uniform(-0.5, 0.5) * rz,
                    ]
                )
                bend = (start + end) / 2 + rng.normal(0, 12, 3)
                t = np.linspace(0, 1, 24)[:, None]
                points = (1 - t) ** 2 * start + 2 * (1 - t) * t * bend + t**2 * end
                radius = float(rng.uniform(0.9, 1.8))
                vessels = np.maximum(vessels, _tube(grid, points, radius, taper=0.35))
        vessels *= body
        enhance(vessels, rng.uniform(150, 250), -0.03, LABEL["vessel"])

    # -- lesions and foci ----------------------------------------------------------------------
    def place(diameter: float, taken: list[tuple[np.ndarray, float]]) -> tuple[np.ndarray, str] | None:
        for _ in range(400):
            label, cx, base, (rx, ry, rz), breast = sides[int(rng.integers(0, 2))]
            point = np.array(
                [
                    cx + rng.uniform(-0.7, 0.7) * rx,
                    base - rng.uniform(0.1, 0.8) * ry,
                    rng.uniform(-0.7, 0.7) * rz,
                ]
            )
            index = np.round(grid.index(list(point))).astype(int)
            if np.any(index < 0) or np.any(index >= np.asarray(grid.size)):
                continue
            k = (index[2], index[1], index[0])
            radius = diameter / 2
            if not breast[k] or depth[k] < radius + 8 or point[1] > chest[k] - radius - 10:
                continue
            if any(np.linalg.norm(point - np.asarray(n)) < radius + 25 for n in nipples):
                continue
            if any(np.linalg.norm(point - c) < radius + r + 6 for c, r in taken):
                continue
            return point, label
        return None

    taken: list[tuple[np.ndarray, float]] = []
    lesions: list[SceneLesion] = []
    lesion_ids = np.zeros(shape, np.uint8)
    count = int(rng.integers(1, 4)) if n_lesions is None else n_lesions
    for _ in range(count):
        diameter = float(np.exp(rng.uniform(np.log(5.0), np.log(30.0))))
        where = place(diameter, taken)
        if where is None:
            continue
        point, side = where
        taken.append((point, diameter / 2))
        form = str(rng.choice(["sphere", "oval", "lobulated", "spiculated"]))
        kind = str(rng.choice(list(DELAYED)))
        initial = float(rng.uniform(70, 250))
        rim = diameter > 15 and rng.random() < 0.4
        x0, y0, z0 = (float(v) for v in point)
        lesion = SceneLesion((x0, y0, z0), diameter, form, initial, kind, rim, str(side))
        box, fraction = _blob(grid, Lesion(lesion.centre, diameter, form))
        weight = np.zeros(shape, np.float32)
        weight[box] = fraction
        if rim:
            inside = weight >= 0.5
            core = ndimage.distance_transform_edt(inside, sampling=grid.spacing[::-1]) > 3.0
            weight[core] *= 0.35
        pre = pre * (1 - np.clip(weight, 0, 1)) + 40.0 * np.clip(weight, 0, 1)
        enhance(weight, initial, float(rng.uniform(*DELAYED[kind])))
        inside = (lesion_ids == 0) & (_blob_full(shape, box, fraction) >= 0.5)
        lesion_ids[inside] = len(lesions) + 1
        labels[inside] = LABEL["lesion"]
        lesions.append(lesion)
    if "foci" in distractors:
        for _ in range(int(rng.integers(1, 5))):
            diameter = float(rng.uniform(2.0, 4.0))
            where = place(diameter, taken)
            if where is None:
                continue
            point, _ = where
            taken.append((point, diameter / 2))
            x0, y0, z0 = (float(v) for v in point)
            box, fraction = _blob(grid, Lesion((x0, y0, z0), diameter, "sphere"))
            weight = np.zeros(shape, np.float32)
            weight[box] = fraction
            enhance(weight, float(rng.uniform(100, 200)), float(rng.uniform(-0.1, 0.05)), LABEL["focus"])

    # -- phases ----------------------------------------------------------------------------
    shift = np.zeros(3)
    if "motion" in distractors and rng.random() < 0.3:
        shift = np.array([rng.uniform(-1, 1), rng.uniform(0.7, 1.4) * rng.choice([-1, 1]), 0.0])  # voxels
    if motion is not None:
        shift = np.asarray(motion, float)
    phases = []
    for p in range(len(times)):
        signal = pre.copy()
        for weight, relative in curves:
            signal += pre * weight * (relative[p] / 100.0)
        if p > 0 and shift.any():
            signal = ndimage.shift(signal, shift[::-1], order=1, mode="nearest")
        phases.append(_rician(signal, noise, rng))
    notes = {
        "fat_sat": fat_sat,
        "motion_voxels": shift.tolist(),
        "distractors": list(distractors),
        "bpe_initial_pct": float(grade) if "bpe" in distractors else 0.0,
    }
    return Scene(phases, tuple(TIMES), grid, labels, lesion_ids, lesions, nipples, notes)


def _blob_full(shape: tuple[int, ...], box: tuple[slice, ...], fraction: np.ndarray) -> np.ndarray:
    out = np.zeros(shape, np.float32)
    out[box] = fraction
    return out


def write_scene(folder: str | os.PathLike[str], scene: Scene, study_id: str) -> dict[str, Any]:
    """Write a scene's DCE as one DICOM series (all phases, with temporal positions) below
    ``folder`` and return its truth (also written as ``truth.json``)."""
    import json

    from radimt.synth.writer import SeriesSpec, clock, write_volume

    folder = os.fspath(folder)
    n = scene.grid.size[2]
    stored = [np.clip(np.round(p * 10), 0, 32767).astype(np.int16) for p in scene.phases]  # 0.1 a.u. steps
    per_slice = [
        {
            "TemporalPositionIdentifier": p + 1,
            "AcquisitionTime": clock(600 + t),
            "TriggerTime": f"{t * 1000:.1f}",
        }
        for p, t in enumerate(scene.times)
        for _ in range(n)
    ]
    spec = SeriesSpec(
        study_id,
        "dce",
        5,
        "t1_fl3d_tra_fs_dyn" if scene.notes.get("fat_sat") else "t1_fl3d_tra_dyn",
        attrs={
            "NumberOfTemporalPositions": len(scene.times),
            "ContrastBolusAgent": "Gadobutrol",
            "EchoTime": 1.8,
            "RepetitionTime": 4.5,
            "FlipAngle": 10,
            "ScanningSequence": "GR",
        },
        frame_of_reference="mr",
    )
    write_volume(
        os.path.join(folder, "MR", "dce"),
        spec,
        np.concatenate(stored),
        scene.grid,
        slope=0.1,
        per_slice=per_slice,
    )
    truth = {
        "study_id": study_id,
        "lesions": [lesion.to_dict() for lesion in scene.lesions],
        "nipples": [list(n) for n in scene.nipples],
        "notes": scene.notes,
    }
    with open(os.path.join(folder, "truth.json"), "w") as fh:
        json.dump(truth, fh, indent=1)
    return truth


def scene_dce(scene: Scene):
    """The scene's phases as a :class:`radimt.DCE` in memory (no DICOM written)."""
    import SimpleITK as sitk

    from radimt.dicom.study import DCE

    images = []
    for phase in scene.phases:
        image = sitk.GetImageFromArray(phase)
        image.SetSpacing(scene.grid.spacing)
        image.SetOrigin(scene.grid.origin)
        image.SetDirection(scene.grid.direction)
        images.append(image)
    return DCE(phases=images, times=np.asarray(scene.times, float), time_source="synthetic", series=[])


def write_scene_cohort(out: str | os.PathLike[str], studies: int, seed: int = 1000) -> list[dict[str, Any]]:
    """Write ``studies`` whole-breast DCE studies (:func:`breast_scene` seeds ``seed``,
    ``seed + 1``...) as DICOM folders ``out/scene<seed>/`` with their truth, and return it."""
    truths = []
    for k in range(studies):
        study_id = f"scene{seed + k}"
        truths.append(write_scene(os.path.join(os.fspath(out), study_id), breast_scene(seed + k), study_id))
    return truths
