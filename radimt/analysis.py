"""Analyse one lesion: its reference image, its mask and its row of numbers.

This is the one path from a lesion's input (a seed, or a mask) to its results:

1. :func:`reference_image`: the image the lesion is delineated on (for breast MRI the DCE
   early subtraction);
2. :func:`lesion_mask`: the mask on it, read from a file or grown from the seed;
3. :func:`lesion_features`: the mask carried to the study's other 3D roles, and one flat row
   of numbers (size, kinetics, ADC, domain and radiomic features);
4. :func:`analyse_modality`: the same lesion on the study's other modalities (ultrasound, a
   mammographic view, CT), each from its own seed.

:func:`analyse_lesion` runs them in that order for one lesion; :func:`analyse_image_file` is
the route of a pyradiomics batch row (an image file and a mask file, no study). ``radimt
batch`` maps each manifest row to one of the two (:mod:`radimt.pipeline.worker`); ``radimt
segment`` calls :func:`delineate`; a notebook may call any of them. What is computed is set by
one :class:`AnalysisConfig`. Writing files (masks, DICOM SEG, figures, tables) is left to the
caller: nothing here imports the pipeline.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import SimpleITK as sitk

from radimt.dicom.geometry import order_slices
from radimt.dicom.scan import SeriesInfo
from radimt.dicom.study import Study
from radimt.dicom.volume import in_pixels, read_planar, read_volume, spacing_source
from radimt.diffusion import adc_stats, study_adc
from radimt.domain import kinetic_heterogeneity, margin_sharpness, rim_core
from radimt.errors import OptionError, RadimtError, SeedError
from radimt.features import FeatureRow, context_mm, extract_features, load_params, pyradiomics_case
from radimt.io.masks import mask_source, read_dicom_mask, read_mask
from radimt.kinetics import KineticCurve, kinetic_curve, kinetic_maps, kinetic_options
from radimt.measure import longest_diameter_mm, size_columns
from radimt.options import check_fields
from radimt.progress import StageClock
from radimt.roles import (
    DEFAULT_FEATURE_ROLES,
    DEFAULT_PRESETS,
    REFERENCE_ORDER,
    ROLES,
    Role,
    role,
)
from radimt.segment import (
    FIRST_CROP_MM,
    RING_MM,
    SegmentOptions,
    lesion_cut,
    resample_mask,
    segment_from_seed,
    segment_options,
    subtraction,
)
from radimt.segment import PRESETS as SEGMENTATION_PRESETS

# -- what to compute -------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalysisConfig:
    """What :func:`analyse_lesion` does with one lesion; every value is checked when it is made.

    Attributes
    ----------
    reference
        Role of the image the lesion is delineated on (``dce``: the subtraction at
        ``dce_phase``); a seed's ``series`` may name another image.
    dce_phase
        Post-contrast phase whose subtraction image represents the DCE (1 = early).
    segmentation
        Options of :func:`radimt.segment_from_seed` (``tolerance``, ...), and ``modality`` to
        use another preset than the reference role's.
    roles
        Roles whose radiomic features go into the row (those the study has).
    presets
        Feature preset (or pyradiomics YAML) per role; roles not named keep their default.
    image_types
        Image types for every role (``None``: each preset's own).
    kinetics
        Options of :func:`radimt.kinetic_curve` (thresholds, ``n_baseline``, ...).
    rim_mm
        Thickness of the rim for rim-versus-core features.

    Raises
    ------
    OptionError, RoleError
        A value of the wrong type or out of range, an unknown role, option or preset.

    Examples
    --------
    >>> import radimt
    >>> config = radimt.AnalysisConfig(roles=("dce", "adc"), segmentation={"tolerance": 0.6})
    >>> config.roles, config.reference
    ((<Role.DCE: 'dce'>, <Role.ADC: 'adc'>), <Role.DCE: 'dce'>)
    >>> radimt.AnalysisConfig(segmentation={"tolerance": 7})
    Traceback (most recent call last):
    ...
    radimt.errors.OptionError: SegmentOptions: tolerance: 7 is out of range (expected from 0.0 to 1.0)
    """

    reference: Role = Role.DCE
    dce_phase: int = 1
    segmentation: Mapping[str, Any] = field(default_factory=dict)
    roles: tuple[Role, ...] = DEFAULT_FEATURE_ROLES
    presets: Mapping[Role, str] = field(default_factory=lambda: dict(DEFAULT_PRESETS))
    image_types: tuple[str, ...] | None = None
    kinetics: Mapping[str, Any] = field(default_factory=dict)
    rim_mm: float = 2.0

    def __post_init__(self) -> None:
        # Roles are normalised once, here: the rest of radimt sees Role members only.
        set_ = object.__setattr__
        set_(self, "reference", role(self.reference))
        set_(self, "roles", tuple(role(r) for r in self.roles))
        presets = dict(DEFAULT_PRESETS)
        presets.update({role(r): str(p) for r, p in self.presets.items()})
        set_(self, "presets", presets)
        if self.image_types is not None:
            set_(self, "image_types", tuple(self.image_types))
        set_(self, "segmentation", dict(self.segmentation))
        set_(self, "kinetics", dict(self.kinetics))
        check_fields(self, {"dce_phase": (1, None), "rim_mm": (0.0, 1e3)})
        options = dict(self.segmentation)
        modality = options.pop("modality", None)
        if modality is not None and modality not in SEGMENTATION_PRESETS:
            known = sorted(SEGMENTATION_PRESETS)
            raise OptionError("AnalysisConfig", "segmentation", f"unknown modality {modality!r}; use {known}")
        segment_options(modality or self.reference.segmentation_preset, options)  # checks every value
        kinetic_options(**self.kinetics)


class FeatureConfig(AnalysisConfig):
    """Deprecated: the name of :class:`AnalysisConfig` before radimt 0.2 (it warns, then is one)."""

    def __post_init__(self) -> None:
        warnings.warn(
            "radimt.FeatureConfig is now radimt.AnalysisConfig (same fields); FeatureConfig will be "
            "removed in the next release",
            DeprecationWarning,
            stacklevel=3,
        )
        super().__post_init__()


#: What a modality key may be (said in errors).
MODALITY_KEYS = f"use a role ({', '.join(ROLES)}) or mg_<view> (mg_cc, mg_mlo)"


@dataclass(frozen=True)
class ModalitySeed:
    """Where the lesion is on one more modality of the study.

    A manifest gives it as ``<key>_seed_x/_y[/_z]`` in mm (LPS for a 3D series, in its own frame
    of reference; millimetres from the top-left pixel for a 2D image) or ``<key>_seed_i/_j[/_k]``
    as a voxel/pixel index, with an optional ``<key>_series``.

    Attributes
    ----------
    key
        ``us``, ``ct``, ``mg_cc``...: a role, or ``mg_<view>`` for one mammographic view; the
        prefix of the modality's columns in the row.
    seed
        The point: mm, or an index with ``seed_is_index``.
    seed_is_index
        The seed is a voxel/pixel index (x/column first).
    series
        The series the seed is on, when the study has several of that modality.

    Examples
    --------
    >>> import radimt
    >>> seed = radimt.ModalitySeed("mg_cc", (120.0, 80.0), seed_is_index=True)
    >>> seed.role, seed.view
    (<Role.MG: 'mg'>, 'CC')
    """

    key: str
    seed: tuple[float, ...]
    seed_is_index: bool = False
    series: str | None = None

    def __post_init__(self) -> None:
        kind, _, view = self.key.partition("_")
        if kind not in ROLES or (view and kind != Role.MG):
            raise SeedError(f"{self.key!r} is not a modality; {MODALITY_KEYS}")
        object.__setattr__(self, "seed", tuple(float(v) for v in self.seed))

    @property
    def role(self) -> Role:
        return Role(self.key.split("_")[0])

    @property
    def view(self) -> str | None:
        """The mammographic view (``CC``, ``MLO``) of an ``mg_<view>`` key."""
        return self.key.split("_")[1].upper() if "_" in self.key else None


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

    Examples
    --------
    >>> import radimt
    >>> radimt.LesionInput(seed=(-108.0, 0.0, -10.0)).seed_is_index
    False
    >>> radimt.LesionInput()
    Traceback (most recent call last):
    ...
    radimt.errors.SeedError: a lesion is given by a seed or by a mask (exactly one of them)
    """

    seed: tuple[float, ...] | None = None
    seed_is_index: bool = False
    series: str | None = None
    mask: sitk.Image | str | None = None

    def __post_init__(self) -> None:
        if (self.seed is None) == (self.mask is None):
            raise SeedError("a lesion is given by a seed or by a mask (exactly one of them)")


# -- 1. the reference image ------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """The image a lesion is delineated on.

    Attributes
    ----------
    image
        The image (for the DCE: the subtraction of the chosen phase minus the first).
    series
        The series the image stands for (for the subtraction: the post-contrast phase's), or
        ``None`` for an image radimt computed without one (an ADC fitted from the DWI) or read
        from a file.
    role
        The role of the image, which sets the segmentation preset (``None``: an image file of
        unknown kind, :func:`analyse_image_file`).
    label
        What to call it in messages and figures (``"DCE early subtraction"``, ``"series 5"``).
    """

    image: sitk.Image
    series: SeriesInfo | None
    role: Role | None
    label: str


def reference_image(
    study: Study,
    reference_role: Role | str | None = None,
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
    reference_role
        The role to use (``"dce"`` means the DCE subtraction at ``dce_phase``). ``None``: the
        first the study has in :data:`radimt.roles.REFERENCE_ORDER`.
    series
        A series key (``"5"``, ``"5.2"``) whose image to use instead, e.g. the series a seed was
        picked on. A phase of the DCE with ``reference_role="dce"`` still gives the subtraction.
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
    wanted = role(reference_role) if reference_role is not None else None
    if series is not None:
        chosen = study.find(series)
        if wanted == Role.DCE and chosen.role == Role.DCE and study.dce is not None:
            return _dce_reference(study, dce_phase)
        image = (
            read_planar(chosen, point=point, spacing_mm=study.mg_spacing_mm).image
            if chosen.is_planar
            else read_volume(chosen)
        )
        # a series without a known role is taken as the reference role (an MR volume if none)
        kind = role(chosen.role) if chosen.role in REFERENCE_ORDER else (wanted or Role.T1)
        return Reference(image, chosen, kind, f"series {chosen.key}")
    if wanted is None:
        first = next((r for r in REFERENCE_ORDER if r in study.roles), None)
        if first is None:
            raise RadimtError(f"{study.path}: no series to delineate a lesion on (roles found: none)")
        wanted = role(first)
    if wanted == Role.DCE:
        if study.dce is None:
            raise RadimtError(f"{study.path}: no DCE series for the reference role dce")
        return _dce_reference(study, dce_phase)
    found = role_image(study, wanted, dce_phase)
    if found is None:
        raise RadimtError(f"{study.path}: no {wanted} series for the reference role {wanted}")
    if wanted.planar:
        images = getattr(study, wanted)
        if len(images) > 1:  # never the first of several views silently
            listing = ", ".join(
                f"{p.series.key} ({' '.join(x for x in (p.laterality, p.view) if x) or 'no view'})"
                for p in images
            )
            raise RadimtError(
                f"{study.path}: {len(images)} {wanted} images ({listing}); say which one the lesion is on "
                "with the manifest's seed_series (or a view seed such as mg_cc_seed_i)"
            )
        planar = images[0]
        return Reference(planar.image, planar.series, wanted, f"{wanted.upper()} {planar.series.key}")
    if wanted == Role.DWI:
        return Reference(found, study.dwi.series[-1], wanted, "DWI (highest b-value)")  # type: ignore[union-attr]
    return Reference(found, study.chosen_series(wanted), wanted, wanted.upper())


def _dce_reference(study: Study, dce_phase: int) -> Reference:
    image = role_image(study, Role.DCE, dce_phase)
    label = "DCE early subtraction" if dce_phase == 1 else f"DCE subtraction (phase {dce_phase})"
    return Reference(image, study.dce.series[dce_phase], Role.DCE, label)  # type: ignore[union-attr, arg-type]


def reach_mm(
    config: AnalysisConfig, voxel_mm: float, largest_side_mm: float | None = None
) -> tuple[float, float]:
    """How far a seeded lesion's analysis can look (mm) along an axis on which the images' voxel
    side is at most ``voxel_mm`` (``largest_side_mm``: their largest side on any axis): the
    segmentation from its seed (its largest crop, ``max_diameter_mm``, and the ring around the
    region), and the features beyond the mask (:func:`radimt.features.context_mm`). See
    :mod:`radimt.dicom.focus`.
    """
    segmentation = _segmentation_options(config)
    features = max(
        (
            context_mm(
                config.presets.get(kind, kind.feature_preset), config.image_types, voxel_mm, largest_side_mm
            )
            for kind in config.roles
        ),
        default=0.0,
    )
    return segmentation.max_diameter_mm + RING_MM + 2 * voxel_mm, features + 2 * voxel_mm


def focus_radius_mm(config: AnalysisConfig, voxel_mm: float, largest_side_mm: float | None = None) -> float:
    """The radius of the box around a seed that holds a lesion's whole analysis unless the lesion
    outgrows the segmentation's first crop (:data:`radimt.segment.FIRST_CROP_MM`): every crop the
    segmentation may take, and the features' reach beyond a lesion inside that first crop."""
    segmentation, features = reach_mm(config, voxel_mm, largest_side_mm)
    first = min(FIRST_CROP_MM, _segmentation_options(config).max_diameter_mm)
    return max(segmentation, first + features)


def _segmentation_options(config: AnalysisConfig) -> SegmentOptions:
    """The segmentation options a seeded lesion's reference image is delineated with."""
    options = dict(config.segmentation)
    modality = options.pop("modality", None) or config.reference.segmentation_preset
    return segment_options(modality, options)


def role_image(study: Study, role_name: Role | str, dce_phase: int = 1) -> sitk.Image | None:
    """The image a role's features are computed on (DCE: the subtraction at ``dce_phase``;
    DWI: the highest b-value; MG, US: the first image), ``None`` when the study has none."""
    kind = role(role_name)
    if kind == Role.DCE:
        return subtraction(study.dce, dce_phase) if study.dce is not None else None
    if kind == Role.ADC:
        return study_adc(study)
    if kind == Role.DWI:
        return study.dwi.images[-1] if study.dwi is not None else None
    if kind.planar:
        images = getattr(study, kind)
        return images[0].image if images else None
    image: sitk.Image | None = getattr(study, kind)
    return image


# -- 2. the mask -----------------------------------------------------------------------------


def delineate(
    study: Study,
    lesion: LesionInput,
    *,
    reference_role: Role | str | None = None,
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
        if isinstance(lesion.mask, sitk.Image):
            return lesion.mask
        if lesion.mask.lower().endswith(".dcm"):
            return read_dicom_mask(lesion.mask, reference.image)
        return read_mask(lesion.mask, reference.image)
    seed, is_index = tuple(float(v) for v in lesion.seed), lesion.seed_is_index  # type: ignore[union-attr]
    if is_index and lesion.series is not None:
        seed_series = study.find(lesion.series)
        if not seed_series.is_planar and seed_series is not reference.series:
            seed, is_index = _index_to_point(seed_series, seed), False
    options = dict(segmentation or {})
    kind = reference.role or Role.T1
    modality = options.pop("modality", None) or kind.segmentation_preset
    if in_pixels(reference.image):  # film without a pixel size: delineate at the digitiser's scale
        return _segment_film(reference.image, seed, is_index, modality, options)
    return segment_from_seed(reference.image, seed, seed_is_index=is_index, modality=modality, **options)


#: The sampling CBIS-DDSM's digitisers used (42–50 µm, the collection's description): the scale a
#: film without a pixel size is delineated at (the preset's sizes are in mm). Its sizes stay in px.
FILM_DELINEATION_SPACING_MM = 0.05


def _segment_film(
    image: sitk.Image, seed: tuple[float, ...], is_index: bool, modality: str, options: dict[str, Any]
) -> sitk.Image:
    scaled = sitk.Image(image)
    scaled.SetSpacing([FILM_DELINEATION_SPACING_MM] * image.GetDimension())
    point = seed if is_index else tuple(v * FILM_DELINEATION_SPACING_MM for v in seed)  # px -> mm
    mask = segment_from_seed(scaled, point, seed_is_index=is_index, modality=modality, **options)
    mask.CopyInformation(image)
    return mask


def _index_to_point(series: SeriesInfo, index: tuple[float, ...]) -> tuple[float, ...]:
    """A voxel index of a 3D series as an LPS point, from its slice geometry (no pixels read)."""
    _, geometry = order_slices(series.frames, series.label)
    grid = sitk.Image([1, 1, 1], sitk.sitkUInt8)  # carries the geometry only
    grid.SetSpacing(geometry.spacing)
    grid.SetOrigin(geometry.origin)
    grid.SetDirection(geometry.direction)
    return tuple(grid.TransformContinuousIndexToPhysicalPoint(index))


def _planar_point(study: Study, lesion: LesionInput) -> tuple[float, float] | None:
    if lesion.seed is None or not lesion.seed_is_index or lesion.series is None:
        return None
    return (float(lesion.seed[0]), float(lesion.seed[1])) if study.find(lesion.series).is_planar else None


# -- 3. the row ------------------------------------------------------------------------------


def carry_masks(
    study: Study,
    masks: Mapping[Role, sitk.Image] | Mapping[str, sitk.Image],
    roles: Sequence[Role | str],
    dce_phase: int = 1,
) -> tuple[dict[Role, sitk.Image], dict[Role, str]]:
    """Masks for ``roles``: those given, and 3D ones carried from a given 3D mask by physical
    coordinates. Returns the masks and, per role left out, why.

    The roles' masks are carried side by side (:func:`_in_threads`), each from a cut of the
    source mask of its own (:func:`radimt.segment.lesion_cut`): no two threads read one image."""
    out = {role(r): m for r, m in masks.items()}
    source = next((role(r) for r in REFERENCE_ORDER if r in out and not role(r).planar), None)
    why: dict[Role, str | None] = {}  # why each role is left out (None: carried), in order
    jobs: list[tuple[sitk.Image, sitk.Image]] = []  # (the source's cut, the role's image)
    for kind in map(role, roles):
        if kind in out or kind in why:
            continue
        image = role_image(study, kind, dce_phase)
        if image is None:
            why[kind] = "the study has no such series"
        elif source is None or kind.planar:
            why[kind] = "no mask given for it and none to carry over"
        else:
            why[kind] = None
            jobs.append((lesion_cut(out[source]), image))

    def carry(job: tuple[sitk.Image, sitk.Image]) -> sitk.Image | str:
        try:
            return resample_mask(*job)
        except RadimtError as exc:
            return str(exc)

    carried = iter(_in_threads(carry, jobs))
    skipped: dict[Role, str] = {}
    for kind, reason in why.items():  # in the roles' order, however they ran
        done = next(carried) if reason is None else reason
        if isinstance(done, str):
            skipped[kind] = done
        else:
            out[kind] = done
    return out, skipped


def lesion_features(
    study: Study,
    masks: Mapping[Role, sitk.Image] | Mapping[str, sitk.Image] | sitk.Image,
    config: AnalysisConfig | None = None,
    images: Mapping[Role, sitk.Image] | Mapping[str, sitk.Image] | None = None,
    carry: bool = True,
) -> FeatureRow:
    """One flat, CSV-ready row for a lesion.

    Parameters
    ----------
    study
        The loaded study.
    masks
        ``{role: mask}`` on each role's image grid (``dce`` masks on the DCE grid), or a single
        mask on the DCE grid. 3D roles without a mask get one carried over by physical
        coordinates from a given 3D mask.
    config
        What to compute (:class:`AnalysisConfig`; its ``roles``, ``presets``, ``image_types``,
        ``kinetics``, ``dce_phase`` and ``rim_mm``).
    images
        Images to use for some roles instead of the study's default (e.g. the mammographic view
        a lesion was segmented on).
    carry
        Carry a 3D mask to the study's other 3D roles (``False``: only the masks given count).

    Returns
    -------
    FeatureRow
        ``lesion_*`` size columns, ``kinetic_*``, ``adc_*``, domain features
        (``dce_rim_*``, ``ct_rim_*``, ``*_margin_sharpness``, ``kinetic_pe_sd`` ...), and
        ``<role>_<image type>_<family>_<feature>`` radiomic features; ``.provenance`` holds the
        per-role diagnostics and the roles left out with why; ``.kinetic_curve`` the
        :class:`radimt.KineticCurve` behind the ``kinetic_*`` columns (``None`` without DCE).

    Examples
    --------
    >>> import radimt
    >>> study, truth = radimt.synth.example_study()
    >>> mask = radimt.segment_from_seed(radimt.subtraction(study.dce), truth["seed_lps"])
    >>> row = radimt.lesion_features(study, mask, radimt.AnalysisConfig(roles=("dce",)))
    >>> row["kinetic_curve_type"], round(row["lesion_volume_cm3"], 1)
    ('III', 1.4)
    """
    config = config or AnalysisConfig()
    if isinstance(masks, sitk.Image):
        masks = {Role.DCE: masks}
    given = {role(r): m for r, m in masks.items()}
    always = [r for r in map(role, REFERENCE_ORDER) if r.domain_features]
    wanted = list(dict.fromkeys([*config.roles, *always])) if carry else list(given)
    carried, skipped = carry_masks(study, given, wanted, config.dce_phase)
    row = FeatureRow()
    row.provenance = {"skipped_roles": skipped, "roles": {}}
    row.masks = carried
    reference = next((r for r in map(role, REFERENCE_ORDER) if r in carried), None)
    if reference is None:
        raise RadimtError(f"{study.path}: no mask for any role of this study")
    ref_mask = carried[reference]
    row["lesion_reference_role"] = reference.value
    pixels = any(in_pixels(image) for image in (images or {}).values())  # film without a pixel size
    row.update(size_columns(ref_mask, in_pixels=pixels))  # volume for 3D; area, perimeter... for 2D
    row["lesion_longest_diameter_px" if pixels else "lesion_longest_diameter_mm"] = longest_diameter_mm(
        ref_mask
    )

    # Each role's image is read (or fitted) only when it has a mask: a lesion measured on US or MG
    # alone does not load the DCE phases, fit the ADC or read the CT. Read here, before the
    # roles are measured side by side, so that no role loads the study's volumes on a thread.
    own_images = {role(r): image for r, image in (images or {}).items()}
    radiomic = {}
    for kind in config.roles:
        if kind not in carried:
            continue
        image = own_images.get(kind) or role_image(study, kind, config.dce_phase)
        if image is not None:  # carry_masks gives masks only to roles the study has
            radiomic[kind] = image
    domain: dict[Role, Callable[[], _DomainNumbers]] = {}
    if Role.DCE in carried and study.dce is not None:
        domain[Role.DCE] = lambda: _dce_numbers(study, carried[Role.DCE], config)
    adc = study_adc(study) if Role.ADC in carried else None
    if adc is not None:
        domain[Role.ADC] = lambda: _DomainNumbers(adc_stats(adc, carried[Role.ADC]))
    ct = study.ct if Role.CT in carried else None
    if ct is not None:
        domain[Role.CT] = lambda: _ct_numbers(ct, carried[Role.CT], config)

    def measure(kind: Role) -> _Measured:
        """One role's own numbers, then its radiomic features: what reads its image and mask."""
        numbers = domain[kind]() if kind in domain else None
        if kind not in radiomic:
            return numbers, None
        features = extract_features(
            radiomic[kind],
            carried[kind],
            preset=config.presets.get(kind, kind.feature_preset),
            image_types=config.image_types,
            what=f"{study.path}: {kind}",
        )
        return numbers, features

    # The DCE's first: its kinetics and its features are the longest job
    kinds = sorted(dict.fromkeys([*domain, *radiomic]), key=lambda kind: kind != Role.DCE)
    measured = dict(zip(kinds, _in_threads(measure, kinds), strict=True))
    for kind in domain:  # columns in a fixed order, however the roles ran
        numbers = measured[kind][0]
        assert numbers is not None
        row.update(numbers.columns)
        if numbers.curve is not None:
            row.kinetic_curve = numbers.curve
        for note in numbers.warnings:
            row.provenance.setdefault("warnings", []).append(note)
    for kind in radiomic:
        features = measured[kind][1]
        assert features is not None
        for key in sorted(features):
            row[f"{kind}_{key}"] = features[key]
        row.provenance["roles"][kind] = features.provenance
        for warning in features.provenance.get("warnings", []):
            row.provenance.setdefault("warnings", []).append({"role": kind.value, **warning})
    return row


@dataclass
class _DomainNumbers:
    """A role's numbers beside its radiomic features: columns, the DCE's curve, warnings."""

    columns: dict[str, Any]
    curve: KineticCurve | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)


#: One role's job: its own numbers (DCE, ADC, CT) and its radiomic features (roles asked for).
_Measured = tuple[_DomainNumbers | None, FeatureRow | None]


def _dce_numbers(study: Study, mask: sitk.Image, config: AnalysisConfig) -> _DomainNumbers:
    """The kinetic curve and its heterogeneity, the rim and core, and the margin sharpness."""
    assert study.dce is not None  # measured only for a study with a DCE
    curve = kinetic_curve(study.dce, mask, **config.kinetics)
    columns = dict(curve.to_dict())
    maps = kinetic_maps(study.dce, mask, **config.kinetics)
    heterogeneity = kinetic_heterogeneity(maps.peak_enhancement, maps.ser, mask)
    columns.update({f"kinetic_{k}": v for k, v in heterogeneity.items()})
    rim = rim_core(maps.initial_enhancement, mask, config.rim_mm, unit="pct")
    columns.update({f"dce_{k}": v for k, v in rim.items()})
    sub = subtraction(study.dce, config.dce_phase)
    columns["dce_margin_sharpness_per_mm"] = margin_sharpness(sub, mask)
    notes = [  # the curve has fewer points than the scanner acquired
        {"role": "dce", "kind": "time point left out (missing slices)", "message": note}
        for note in study.dce.left_out
    ]
    return _DomainNumbers(columns, curve, notes)


def _ct_numbers(ct: sitk.Image, mask: sitk.Image, config: AnalysisConfig) -> _DomainNumbers:
    """The CT's rim and core (HU) and its margin sharpness."""
    rim = rim_core(ct, mask, config.rim_mm, unit="hu")
    columns: dict[str, Any] = {f"ct_{k}": v for k, v in rim.items()}
    columns["ct_margin_sharpness_per_mm"] = margin_sharpness(ct, mask)
    return _DomainNumbers(columns)


_Job = TypeVar("_Job")
_Done = TypeVar("_Done")


def _in_threads(work: Callable[[_Job], _Done], jobs: Sequence[_Job]) -> Iterator[_Done]:
    """``work`` on each job (a role's numbers, a role's carried mask), results in order; on as
    many threads as SimpleITK may use here (a batch's parallel workers are held to one each):
    pyradiomics' texture matrices and SimpleITK's filters run without Python's lock, so two
    roles' features take ~0.75x the time of one after the other. Each job's result is its own
    whichever way they run (a job reads only its own images).

    While the jobs run side by side, the jobs are the parallelism: SimpleITK's filters run on
    one thread each (:data:`_FILTERS_ON_ONE_THREAD`); two roles each splitting their small boxes'
    filters over both cores took ~8 % longer, two masks carried so 31 -> 20 ms. The row is the
    one the roles give one after the other, bit for bit (tested)."""
    threads = min(len(jobs), sitk.ProcessObject.GetGlobalDefaultNumberOfThreads())
    if threads <= 1:
        return map(work, jobs)
    from concurrent.futures import ThreadPoolExecutor

    with _FILTERS_ON_ONE_THREAD:
        before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
        try:
            with ThreadPoolExecutor(threads, thread_name_prefix="radimt-features") as pool:
                return iter(list(pool.map(work, jobs)))
        finally:
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)


#: Held while :func:`_in_threads` has SimpleITK's process-wide default set to one thread, so
#: that two callers never restore each other's setting wrongly (a second caller waits: the
#: cores are busy anyway). A filter another thread starts meanwhile runs on one thread: slower,
#: never different.
_FILTERS_ON_ONE_THREAD = threading.Lock()


# -- one lesion, start to end ----------------------------------------------------------------


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
    role_masks
        The mask each role's numbers were measured with, on that role's image (the reference
        role's is ``mask``; the others carried over from it).

    Examples
    --------
    >>> import radimt
    >>> study, truth = radimt.synth.example_study()
    >>> result = radimt.analyse_lesion(study, radimt.LesionInput(seed=truth["seed_lps"]))
    >>> result.mask.GetSize(), result.row["kinetic_curve_type"]
    ((96, 96, 24), 'III')
    >>> [(row["curve"], row["time_s"]) for row in result.curve_rows()][:2]
    [('mean', 0.0), ('mean', 90.0)]
    """

    reference: Reference
    mask: sitk.Image
    row: dict[str, Any]
    provenance: dict[str, Any]
    kinetic_curve: KineticCurve | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    modalities: dict[str, tuple[Reference, sitk.Image]] = field(default_factory=dict)
    role_masks: dict[Role, sitk.Image] = field(default_factory=dict)

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


def analyse_lesion(
    study: Study,
    lesion: LesionInput,
    config: AnalysisConfig | None = None,
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
        Reference role, segmentation options and features (:class:`AnalysisConfig`; its
        defaults when ``None``).
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

    Examples
    --------
    >>> import radimt
    >>> study, truth = radimt.synth.example_study()
    >>> result = radimt.analyse_lesion(study, radimt.LesionInput(seed=truth["seed_lps"]))
    >>> result.reference.label, result.row["kinetic_curve_type"]
    ('DCE early subtraction', 'III')
    >>> abs(result.row["lesion_longest_diameter_mm"] - truth["diameter_mm"]) < 2.5
    True
    """
    config = config or AnalysisConfig()
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
    kind = reference.role or Role.T1
    with clock.stage("features"):  # reads the other roles' volumes on first use
        features = lesion_features(
            study, {kind: mask}, config, images={kind: reference.image} if kind.planar else None
        )
    row, provenance = dict(features), features.provenance
    if mask_source(mask):  # a mask another tool made: which one, and how radimt read it
        provenance["mask"] = mask_source(mask)
    if spacing_source(reference.image):  # a 2D image: where its pixel size came from
        provenance["pixel_spacing"] = spacing_source(reference.image)
    modalities = {}
    for other in others:
        with clock.stage("other modalities"):
            image, other_mask, numbers, found = analyse_modality(study, other, config)
            modalities[other.key] = (image, other_mask)
            row.update(numbers)
            for warning in found.get("warnings", []):
                provenance.setdefault("warnings", []).append({**warning, "role": other.key})
            provenance["skipped_roles"].pop(other.role, None)
            provenance.setdefault("modalities", {})[other.key] = image.label
            if spacing_source(image.image):
                provenance.setdefault("modality_pixel_spacing", {})[other.key] = spacing_source(image.image)
    seen = {kind, *(o.role for o in others), *provenance["roles"]}
    for separate in map(role, study.roles):
        if separate.own_session and separate not in seen:
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
        role_masks=dict(features.masks),
    )


def analyse_modality(
    study: Study, seed: ModalitySeed, config: AnalysisConfig | None = None
) -> tuple[Reference, sitk.Image, dict[str, Any], dict[str, Any]]:
    """The lesion on one more modality: its image, its mask, its ``<key>_`` columns and the
    provenance of its features.

    Delineated from the seed with the role's own segmentation preset (the configuration's
    segmentation options are tuned to its reference image, not to this one); a mammographic
    view key (``mg_cc``) picks that view's image.
    """
    config = config or AnalysisConfig()
    series = seed.series
    if series is None and seed.view is not None:
        views = [p for p in (study.mg or []) if (p.view or "").upper() == seed.view]
        if not views:
            found = sorted({p.view or "?" for p in study.mg or []})
            raise RadimtError(
                f"{study.path}: no mammographic view {seed.view} for {seed.key}; views: {found}"
            )
        if len({p.laterality for p in views}) > 1:  # both breasts' CC: which one cannot be guessed
            listing = ", ".join(f"{p.series.key} ({p.laterality or '?'})" for p in views)
            raise RadimtError(
                f"{study.path}: {len(views)} {seed.view} views ({listing}); give {seed.key}_series"
            )
        series = views[0].series.key
    lesion = LesionInput(seed=seed.seed, seed_is_index=seed.seed_is_index, series=series)
    image = reference_image(study, seed.role, series=series, point=_planar_point(study, lesion))
    if image.role != seed.role:
        raise RadimtError(f"{study.path}: series {series} is {image.role}, not {seed.role}, for {seed.key}")
    where = f" (series {image.series.key})" if image.series is not None else ""
    image = replace(image, label=seed.key.upper().replace("_", " ") + where)  # "MG CC (series 30)"
    mask = lesion_mask(study, lesion, image)
    role_config = replace(config, roles=(seed.role,))
    images = {seed.role: image.image} if seed.role.planar else None
    features = lesion_features(study, {seed.role: mask}, role_config, images=images, carry=False)
    numbers: dict[str, Any] = {}
    for name, value in features.items():
        if name == "lesion_reference_role":
            continue
        if name.startswith("lesion_"):
            numbers[f"{seed.key}_{name}"] = value
        elif name.startswith(f"{seed.role}_"):
            numbers[f"{seed.key}_{name[len(seed.role) + 1 :]}"] = value
    if f"{seed.key}_margin_sharpness_per_mm" not in numbers:  # CT has its own, from lesion_features
        unit = "px" if in_pixels(image.image) else "mm"
        numbers[f"{seed.key}_margin_sharpness_per_{unit}"] = margin_sharpness(image.image, mask)
    return image, mask, numbers, features.provenance


def analyse_image_file(
    image_path: str,
    mask_path: str,
    params: str | Mapping[str, Any],
    *,
    label: int | None = None,
    label_channel: int | None = None,
    what: str = "case",
    feature_prefix: str = "image_",
    diagnostics: bool = True,
) -> LesionResult:
    """One row of a pyradiomics batch (an image file and a mask file), as pyradiomics' own batch
    computes it (:func:`radimt.features.pyradiomics_case`: whole image, nothing cropped), plus
    radimt's size measures.

    Parameters
    ----------
    image_path, mask_path
        The image and its mask (any format SimpleITK reads).
    params
        A pyradiomics parameter file (used unchanged) or mapping.
    label, label_channel
        The mask value to measure (``None``: the parameters' ``label`` setting, else 1) and the
        component of a vector mask.
    what
        How to name the case in error messages.
    feature_prefix
        Put before every feature name (``image_original_firstorder_Mean``; ``""`` keeps
        pyradiomics' names).
    diagnostics
        Add pyradiomics' ``diagnostics_*`` entries to the row (they are in the provenance
        either way).

    Returns
    -------
    LesionResult
        ``reference`` is the image (no series, no role); ``provenance`` names the route, the
        parameters, the label and pyradiomics' diagnostics.
    """
    features, found = pyradiomics_case(
        image_path, mask_path, params, label=label, label_channel=label_channel, what=what
    )
    image = sitk.ReadImage(image_path)
    settings = _settings(params)
    label = label if label is not None else int(settings.get("label", 1))
    mask = read_mask(mask_path, image, label=label, label_channel=label_channel)
    row: dict[str, Any] = {**size_columns(mask), "lesion_longest_diameter_mm": longest_diameter_mm(mask)}
    row.update({f"{feature_prefix}{k}": v for k, v in features.items()})
    text = {k: _diagnostic_text(v) for k, v in found.items()}
    if diagnostics:
        row.update({f"diagnostics_{k}": v for k, v in text.items()})
    provenance = {
        "route": "pyradiomics batch row (whole image, as pyradiomics computes it)",
        "params": params if isinstance(params, str) else _plain_json(params),
        "label": label,
        "label_channel": label_channel,
        "pyradiomics": text,
    }
    reference = Reference(image, None, None, f"{what} label {label}")
    return LesionResult(reference=reference, mask=mask, row=row, provenance=provenance)


def _settings(params: str | Mapping[str, Any]) -> Mapping[str, Any]:
    setting: Mapping[str, Any] = (load_params(params) if isinstance(params, str) else params)["setting"]
    return setting


def _diagnostic_text(value: Any) -> Any:
    """A diagnostic as pyradiomics' batch writes it: numbers stay numbers, the rest is str()."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return str(value)


def _plain_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
