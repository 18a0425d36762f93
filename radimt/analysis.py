"""Analyse one lesion: its reference image, its mask and its row of numbers.

This is the one path from a lesion's input (a seed, or a mask) to its results. ``radimt batch``
maps each manifest row to a :class:`LesionInput` and calls :func:`analyse_lesion`; ``radimt
segment`` calls :func:`delineate`; a notebook may call either::

    study = radimt.load_study("study/")
    result = analyse_lesion(study, LesionInput(seed=(-108.0, 0.0, -10.0)))
    result.row["kinetic_curve_type"], result.mask

Writing files (masks, DICOM SEG, figures, tables) is left to the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import SimpleITK as sitk

from radimt.dicom.scan import SeriesInfo
from radimt.dicom.study import Study
from radimt.dicom.volume import read_planar, read_volume
from radimt.domain import margin_sharpness
from radimt.errors import RadimtError, SeedError
from radimt.kinetics import KineticCurve
from radimt.lesion import lesion_features, role_image
from radimt.pipeline.config import PipelineConfig
from radimt.pipeline.manifest import ModalitySeed
from radimt.progress import StageClock
from radimt.roles import REFERENCE_ORDER, Role, role
from radimt.segment import segment_from_seed


@dataclass(frozen=True)
class Reference:
    """The image a lesion is delineated on.

    Attributes
    ----------
    image
        The image (for the DCE: the subtraction of the chosen phase minus the first).
    series
        The series the image stands for (for the subtraction: the post-contrast phase's), or
        ``None`` for an image radimt computed without one (an ADC fitted from the DWI).
    role
        The role of the image, which sets the segmentation preset.
    label
        What to call it in messages and figures (``"DCE early subtraction"``, ``"series 5"``).
    """

    image: sitk.Image
    series: SeriesInfo | None
    role: str
    label: str


def reference_image(
    study: Study,
    role_name: str | None = None,
    *,
    series: str | None = None,
    dce_phase: int = 1,
    point: tuple[float, float] | None = None,
) -> Reference:
    """The image to delineate a lesion on.

    Parameters
    ----------
    study
        The loaded study.
    role_name
        The role to use (``"dce"`` means the DCE subtraction at ``dce_phase``). ``None``: the
        first the study has in :data:`radimt.roles.REFERENCE_ORDER`.
    series
        A series key (``"5"``, ``"5.2"``) whose image to use instead, e.g. the series a seed was
        picked on. A phase of the DCE with ``role_name="dce"`` still gives the subtraction.
    dce_phase
        Post-contrast phase of the subtraction.
    point
        For a 2D series: a pixel (column, row), e.g. the seed, that picks the ultrasound region
        whose calibration applies.

    Raises
    ------
    RoleError, RadimtError
        The role is unknown, or the study has no image for it (or no image at all).
    """
    if series is not None:
        chosen = study.find(series)
        if role_name == Role.DCE and chosen.role == Role.DCE and study.dce is not None:
            return _dce_reference(study, dce_phase)
        image = read_planar(chosen, point=point).image if chosen.is_planar else read_volume(chosen)
        # a series without a known role is taken as the reference role (an MR volume if none)
        kind = chosen.role if chosen.role in REFERENCE_ORDER else (role_name or Role.T1)
        return Reference(image, chosen, str(kind), f"series {chosen.key}")
    if role_name is None:
        role_name = next((r for r in REFERENCE_ORDER if r in study.roles), None)
        if role_name is None:
            raise RadimtError(f"{study.path}: no series to delineate a lesion on (roles found: none)")
    kind = role(role_name)
    if kind == Role.DCE:
        if study.dce is None:
            raise RadimtError(f"{study.path}: no DCE series for the reference role dce")
        return _dce_reference(study, dce_phase)
    found = role_image(study, kind, dce_phase)
    if found is None:
        raise RadimtError(f"{study.path}: no {kind} series for the reference role {kind}")
    image = found
    if kind.planar:
        planar = getattr(study, kind)[0]
        return Reference(planar.image, planar.series, kind, f"{kind.upper()} {planar.series.key}")
    if kind == Role.DWI:
        return Reference(image, study.dwi.series[-1], kind, "DWI (highest b-value)")  # type: ignore[union-attr]
    return Reference(image, study.chosen_series(kind), kind, kind.upper())


def _dce_reference(study: Study, dce_phase: int) -> Reference:
    image = role_image(study, Role.DCE, dce_phase)
    label = "DCE early subtraction" if dce_phase == 1 else f"DCE subtraction (phase {dce_phase})"
    return Reference(image, study.dce.series[dce_phase], Role.DCE, label)  # type: ignore[union-attr, arg-type]


@dataclass(frozen=True)
class LesionInput:
    """How to find one lesion: a seed, or a mask someone drew.

    Attributes
    ----------
    seed
        A point in the lesion: LPS millimetres, or a voxel/pixel index with ``seed_is_index``.
    seed_is_index
        ``seed`` is an index (x, y[, z]) into ``series`` (or into the reference image).
    series
        The series the seed or mask refers to (a key such as ``"5"``); it is also the image
        the lesion is delineated on unless it is a DCE phase and the reference role is ``dce``.
    mask
        A mask instead of a seed: a SimpleITK image, or a file (NIfTI/NRRD/... or DICOM SEG).
    """

    seed: tuple[float, ...] | None = None
    seed_is_index: bool = False
    series: str | None = None
    mask: sitk.Image | str | None = None

    def __post_init__(self) -> None:
        if (self.seed is None) == (self.mask is None):
            raise SeedError("a lesion is given by a seed or by a mask (exactly one of them)")


@dataclass
class LesionResult:
    """Everything :func:`analyse_lesion` found for one lesion.

    Attributes
    ----------
    reference
        The image it was delineated on.
    mask
        The lesion mask on the reference image's grid.
    row
        One flat row: ``lesion_*`` size, ``kinetic_*``, ``adc_*``, domain and
        ``<role>_<image type>_<family>_<feature>`` radiomic columns.
    provenance
        Per-role feature diagnostics and the roles left out with why.
    kinetic_curve
        The time-intensity curve behind the ``kinetic_*`` columns (``None`` without DCE).
    stage_seconds
        Wall seconds per stage (reference image, segmentation, features).
    modalities
        The lesion on the study's other modalities it was given seeds for: key (``us``,
        ``mg_cc``, ``ct``) -> (image, mask); their numbers are in ``row`` under the key's prefix.
    """

    reference: Reference
    mask: sitk.Image
    row: dict[str, Any]
    provenance: dict[str, Any]
    kinetic_curve: KineticCurve | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    modalities: dict[str, tuple[Reference, sitk.Image]] = field(default_factory=dict)

    def curve_rows(self) -> list[dict[str, Any]]:
        """The mean and most-suspicious curves as table rows (one per curve and phase)."""
        curve = self.kinetic_curve
        rows: list[dict[str, Any]] = []
        if curve is None:
            return rows
        for name, summary in (("mean", curve.mean), ("most_suspicious", curve.most_suspicious)):
            if summary is None:
                continue
            for phase, (t, s, e) in enumerate(
                zip(curve.times, summary.signal, summary.enhancement, strict=True)
            ):
                rows.append(
                    {
                        "curve": name,
                        "phase": phase,
                        "time_s": float(t),
                        "signal": float(s),
                        "enhancement_pct": float(e),
                    }
                )
        return rows


def delineate(
    study: Study,
    lesion: LesionInput,
    *,
    reference_role: str | None = None,
    dce_phase: int = 1,
    segmentation: Mapping[str, Any] | None = None,
) -> tuple[Reference, sitk.Image]:
    """The lesion's reference image (:func:`reference_image`) and its mask (:func:`lesion_mask`)."""
    reference = reference_image(
        study, reference_role, series=lesion.series, dce_phase=dce_phase, point=_planar_point(study, lesion)
    )
    return reference, lesion_mask(study, lesion, reference, segmentation)


def lesion_mask(
    study: Study,
    lesion: LesionInput,
    reference: Reference,
    segmentation: Mapping[str, Any] | None = None,
) -> sitk.Image:
    """The lesion's mask on the reference image: the given mask read onto its grid, or the region
    grown from the seed (:func:`radimt.segment_from_seed` with the reference role's preset,
    unless ``segmentation`` names a ``modality``; its other keys are segmentation options).

    An index seed into another series than the reference's (a seed picked on a DCE phase, the
    lesion delineated on the subtraction) is placed by that series' slice geometry.
    """
    if lesion.mask is not None:
        return _read_mask(lesion.mask, reference.image)
    seed, is_index = tuple(float(v) for v in lesion.seed), lesion.seed_is_index  # type: ignore[union-attr]
    if is_index and lesion.series is not None:
        seed_series = study.find(lesion.series)
        if not seed_series.is_planar and seed_series is not reference.series:
            seed, is_index = _index_to_point(seed_series, seed), False
    options = dict(segmentation or {})
    modality = options.pop("modality", None) or role(reference.role).segmentation_preset
    return segment_from_seed(reference.image, seed, seed_is_index=is_index, modality=modality, **options)


def _read_mask(mask: sitk.Image | str, image: sitk.Image) -> sitk.Image:
    from radimt.io import read_dicom_seg, read_mask

    if isinstance(mask, sitk.Image):
        return mask
    return read_dicom_seg(mask, image) if mask.lower().endswith(".dcm") else read_mask(mask, image)


def _index_to_point(series: SeriesInfo, index: tuple[float, ...]) -> tuple[float, ...]:
    """A voxel index of a 3D series as an LPS point, from its slice geometry (no pixels read)."""
    from radimt.dicom.geometry import order_slices

    _, geometry = order_slices(series.frames, series.label)
    grid = sitk.Image([1, 1, 1], sitk.sitkUInt8)  # carries the geometry only
    grid.SetSpacing(geometry.spacing)
    grid.SetOrigin(geometry.origin)
    grid.SetDirection(geometry.direction)
    return tuple(grid.TransformContinuousIndexToPhysicalPoint(index))


def analyse_lesion(
    study: Study,
    lesion: LesionInput,
    config: PipelineConfig | None = None,
    *,
    others: Sequence[ModalitySeed] = (),
    clock: StageClock | None = None,
) -> LesionResult:
    """Delineate one lesion and compute its row of numbers.

    Parameters
    ----------
    study
        The loaded study.
    lesion
        Its seed or mask (:class:`LesionInput`).
    config
        The pipeline (reference role, segmentation options, features); the defaults of
        :class:`radimt.pipeline.config.PipelineConfig` when ``None``.
    others
        Seeds of the same lesion on the study's other modalities (ultrasound, a mammographic
        view, CT in its own frame of reference...): each is delineated on its own image with its
        role's preset and adds ``<key>_`` columns (size, radiomic features; CT rim and core) to
        the row. Modalities of the study that got neither a seed nor a carried mask are listed
        in ``provenance["skipped_roles"]`` with the reason.
    clock
        Records the stages' wall seconds (a new one when ``None``); see ``stage_seconds``.

    Returns
    -------
    LesionResult

    Raises
    ------
    SeedError, SegmentationError, RadimtError
        The seed is outside the image or the region cannot be delineated, the mask does not
        fit the reference image, or the study lacks the reference role.
    """
    config = config or PipelineConfig()
    clock = clock or StageClock()
    with clock.stage("reference image"):  # reads its volume(s); a DCE subtraction is made here
        reference = reference_image(
            study,
            config.reference,
            series=lesion.series,
            dce_phase=config.dce_phase,
            point=_planar_point(study, lesion),
        )
    with clock.stage("segmentation"):
        mask = lesion_mask(study, lesion, reference, config.segmentation)
    planar = role(reference.role).planar
    with clock.stage("features"):  # reads the other roles' volumes on first use
        features = lesion_features(
            study,
            {reference.role: mask},
            config.features(),
            images={reference.role: reference.image} if planar else None,
        )
    row, provenance = dict(features), features.provenance
    modalities = {}
    for other in others:
        with clock.stage("other modalities"):
            image, other_mask, numbers = analyse_modality(study, other, config)
            modalities[other.key] = (image, other_mask)
            row.update(numbers)
            provenance["skipped_roles"].pop(other.role, None)
            provenance.setdefault("modalities", {})[other.key] = image.label
    seen = {reference.role, *(o.role for o in others), *provenance["roles"]}
    for separate in ("ct", "mg", "us"):  # modalities a mask is not carried to from MRI
        if separate in study.roles and separate not in seen:
            provenance["skipped_roles"].setdefault(
                separate, f"no seed for this modality in the lesion's row (give {separate}_seed_...)"
            )
    return LesionResult(
        reference=reference,
        mask=mask,
        row=row,
        provenance=provenance,
        kinetic_curve=features.kinetic_curve,
        stage_seconds=clock.rounded(),
        modalities=modalities,
    )


def analyse_modality(
    study: Study, seed: ModalitySeed, config: PipelineConfig
) -> tuple[Reference, sitk.Image, dict[str, Any]]:
    """The lesion on one more modality: its image, its mask and its ``<key>_`` columns.

    Delineated from the seed with the role's own segmentation preset (the pipeline's
    segmentation options are tuned to its reference image, not to this one); a mammographic
    view key (``mg_cc``) picks that view's image.
    """
    series = seed.series
    if series is None and seed.view is not None:
        views = [p for p in (study.mg or []) if (p.view or "").upper() == seed.view]
        if not views:
            found = sorted({p.view or "?" for p in study.mg or []})
            raise RadimtError(
                f"{study.path}: no mammographic view {seed.view} for {seed.key}; views: {found}"
            )
        series = views[0].series.key
    lesion = LesionInput(seed=seed.seed, seed_is_index=seed.seed_is_index, series=series)
    image = reference_image(study, seed.role, series=series, point=_planar_point(study, lesion))
    if image.role != seed.role:
        raise RadimtError(f"{study.path}: series {series} is {image.role}, not {seed.role}, for {seed.key}")
    where = f" (series {image.series.key})" if image.series is not None else ""
    image = replace(image, label=seed.key.upper().replace("_", " ") + where)  # "MG CC (series 30)"
    mask = lesion_mask(study, lesion, image)
    role_config = replace(config.features(), roles=(seed.role,))
    images = {seed.role: image.image} if role(seed.role).planar else None
    features = lesion_features(study, {seed.role: mask}, role_config, images=images, carry=False)
    numbers: dict[str, Any] = {}
    for name, value in features.items():
        if name == "lesion_reference_role":
            continue
        if name.startswith("lesion_"):
            numbers[f"{seed.key}_{name}"] = value
        elif name.startswith(f"{seed.role}_"):
            numbers[f"{seed.key}_{name[len(seed.role) + 1 :]}"] = value
    if f"{seed.key}_margin_sharpness" not in numbers:  # CT has its own, from lesion_features
        numbers[f"{seed.key}_margin_sharpness"] = margin_sharpness(image.image, mask)
    return image, mask, numbers


def _planar_point(study: Study, lesion: LesionInput) -> tuple[float, float] | None:
    if lesion.seed is None or not lesion.seed_is_index or lesion.series is None:
        return None
    return (float(lesion.seed[0]), float(lesion.seed[1])) if study.find(lesion.series).is_planar else None
