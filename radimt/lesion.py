"""One flat row of numbers per lesion: size, kinetics, ADC, domain and radiomic features."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import SimpleITK as sitk

from radimt.dicom.study import Study
from radimt.diffusion import adc_stats, study_adc
from radimt.domain import kinetic_heterogeneity, margin_sharpness, rim_core
from radimt.errors import RadimtError
from radimt.features import FeatureRow, extract_features
from radimt.kinetics import kinetic_curve, kinetic_maps
from radimt.measure import longest_diameter_mm, size_columns
from radimt.roles import DEFAULT_PRESETS, REFERENCE_ORDER, VOLUME_ROLES
from radimt.segment import resample_mask, subtraction


@dataclass(frozen=True)
class FeatureConfig:
    """What :func:`lesion_features` computes.

    Attributes
    ----------
    roles
        Roles whose radiomic features go into the row (those the study has).
    presets
        Feature preset (or pyradiomics YAML) per role.
    image_types
        Image types for every role (``None``: each preset's own).
    kinetics
        Options of :func:`radimt.kinetic_curve` (thresholds, ``n_baseline``, ...).
    dce_phase
        Post-contrast phase whose subtraction image represents the DCE (1 = early).
    rim_mm
        Thickness of the rim for rim-versus-core features.
    """

    roles: Sequence[str] = ("dce", "adc", "t2")
    presets: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PRESETS))
    image_types: Sequence[str] | None = None
    kinetics: Mapping[str, Any] = field(default_factory=dict)
    dce_phase: int = 1
    rim_mm: float = 2.0


def role_image(study: Study, role: str, dce_phase: int = 1) -> sitk.Image | None:
    """The image a role's features are computed on (DCE: the subtraction at ``dce_phase``)."""
    if role == "dce":
        return subtraction(study.dce, dce_phase) if study.dce is not None else None
    if role == "adc":
        return study_adc(study)
    if role == "dwi":
        return study.dwi.images[-1] if study.dwi is not None else None
    if role in ("mg", "us"):
        images = getattr(study, role)
        return images[0].image if images else None
    return getattr(study, role)


def carry_masks(
    study: Study, masks: Mapping[str, sitk.Image], roles: Sequence[str], dce_phase: int = 1
) -> tuple[dict[str, sitk.Image], dict[str, str]]:
    """Masks for ``roles``: those given, and 3D ones carried from a given 3D mask by physical
    coordinates. Returns the masks and, per role left out, why."""
    out = dict(masks)
    skipped: dict[str, str] = {}
    source = next((r for r in REFERENCE_ORDER if r in masks and r in VOLUME_ROLES), None)
    for role in roles:
        if role in out:
            continue
        image = role_image(study, role, dce_phase)
        if image is None:
            skipped[role] = "the study has no such series"
        elif source is None or role not in VOLUME_ROLES:
            skipped[role] = "no mask given for it and none to carry over"
        else:
            try:
                out[role] = resample_mask(masks[source], image)
            except RadimtError as exc:
                skipped[role] = str(exc)
    return out, skipped


def lesion_features(
    study: Study,
    masks: Mapping[str, sitk.Image] | sitk.Image,
    config: FeatureConfig | None = None,
    images: Mapping[str, sitk.Image] | None = None,
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
        What to compute (:class:`FeatureConfig`).
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
    """
    config = config or FeatureConfig()
    if isinstance(masks, sitk.Image):
        masks = {"dce": masks}
    wanted = list(dict.fromkeys([*config.roles, "dce", "adc", "ct"])) if carry else list(masks)
    masks, skipped = carry_masks(study, masks, wanted, config.dce_phase)
    row = FeatureRow()
    row.provenance = {"skipped_roles": skipped, "roles": {}}
    reference = next((r for r in REFERENCE_ORDER if r in masks), None)
    if reference is None:
        raise RadimtError(f"{study.path}: no mask for any role of this study")
    ref_mask = masks[reference]
    row["lesion_reference_role"] = reference
    row.update(size_columns(ref_mask))  # volume for 3D, area, perimeter, circularity for 2D
    row["lesion_longest_diameter_mm"] = longest_diameter_mm(ref_mask)

    if "dce" in masks and study.dce is not None:
        curve = kinetic_curve(study.dce, masks["dce"], **config.kinetics)
        row.kinetic_curve = curve
        row.update(curve.to_dict())
        maps = kinetic_maps(study.dce, masks["dce"], **config.kinetics)
        row.update(
            {
                f"kinetic_{k}": v
                for k, v in kinetic_heterogeneity(maps.peak_enhancement, maps.ser, masks["dce"]).items()
            }
        )
        row.update(
            {
                f"dce_{k}": v
                for k, v in rim_core(maps.initial_enhancement, masks["dce"], config.rim_mm).items()
            }
        )
        row["dce_margin_sharpness"] = margin_sharpness(subtraction(study.dce, config.dce_phase), masks["dce"])
    # Each role's image is read (or fitted) only when it has a mask: a lesion measured on US or MG
    # alone does not load the DCE phases, fit the ADC or read the CT.
    adc = study_adc(study) if "adc" in masks else None
    if adc is not None:
        row.update(adc_stats(adc, masks["adc"]))
    if "ct" in masks and study.ct is not None:
        row.update({f"ct_{k}": v for k, v in rim_core(study.ct, masks["ct"], config.rim_mm).items()})
        row["ct_margin_sharpness"] = margin_sharpness(study.ct, masks["ct"])

    for role in config.roles:
        if role not in masks:
            continue
        image = (images or {}).get(role) or role_image(study, role, config.dce_phase)
        if image is None:  # carry_masks gives masks only to roles the study has
            continue
        features = extract_features(
            image,
            masks[role],
            preset=config.presets.get(role, DEFAULT_PRESETS.get(role, "mr")),
            image_types=config.image_types,
            what=f"{study.path}: {role}",
        )
        for key in sorted(features):
            row[f"{role}_{key}"] = features[key]
        row.provenance["roles"][role] = features.provenance
    return row
