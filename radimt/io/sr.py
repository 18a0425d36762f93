"""A lesion's results as a DICOM Structured Report (TID 1500 measurement report), for PACS.

One Comprehensive 3D SR per lesion, written with highdicom: a volumetric ROI group (TID 1411)
that references the lesion's DICOM SEG segment and its source series, holding the size
(volume, longest diameter), the DCE kinetics (SER, and the BI-RADS delayed-phase curve type and
initial phase as qualitative evaluations), the ADC statistics (µm²/s) and chosen radiomic
features coded by their IBSI identifiers. Concepts without a standard code (SER, initial phase)
use radimt's private coding scheme ``99RADIMT``, as DICOM allows. De-identified by default
like every radimt output.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import highdicom as hd
import pydicom
from pydicom.sr.codedict import codes

from radimt._version import __version__
from radimt.dicom.scan import SeriesInfo
from radimt.dicom.uids import derived_uid
from radimt.errors import MaskError
from radimt.io.atomic import atomic_path
from radimt.io.deidentify import deidentify
from radimt.io.masks import series_description, source_headers

#: radimt's private coding scheme (PS3.16: designators starting "99" are private).
PRIVATE_SCHEME = "99RADIMT"

#: Radiomic features put into the report when none are named: dimensionless shape and texture
#: features of the reference role (``<role>_`` is prefixed), each with an IBSI code.
DEFAULT_RADIOMICS = (
    "original_shape_Sphericity",
    "original_shape_Elongation",
    "original_glcm_JointEntropy",
    "original_glszm_ZoneEntropy",
)

#: radimt's curve types (Kuhl I/II/III, or the BI-RADS words) as DICOM's delayed-phase codes.
_CURVE_TYPES = {
    "i": codes.DCM.PersistentDelayedPhaseType1Curve,
    "ii": codes.DCM.PlateauDelayedPhaseType2Curve,
    "iii": codes.DCM.WashoutDelayedPhaseType3Curve,
    "persistent": codes.DCM.PersistentDelayedPhaseType1Curve,
    "plateau": codes.DCM.PlateauDelayedPhaseType2Curve,
    "washout": codes.DCM.WashoutDelayedPhaseType3Curve,
}


def _private(value: str, meaning: str) -> hd.sr.CodedConcept:
    """A code of radimt's private scheme (values of at most 16 characters, a CodeValue)."""
    return hd.sr.CodedConcept(value=value, scheme_designator=PRIVATE_SCHEME, meaning=meaning)


def _ibsi_codes() -> dict[str, tuple[str, str]]:
    """pyradiomics ``original_<class>_<feature>`` name -> (IBSI code, IBSI feature name)."""
    text = resources.files("radimt").joinpath("data/pyradiomics_to_ibsi_mapping.csv").read_text()
    return {
        f"original_{r['pyradiomics_class']}_{r['pyradiomics_feature']}": (r["ibsi_code"], r["ibsi_feature"])
        for r in csv.DictReader(text.splitlines())
        if r["ibsi_code"]
    }


def _number(row: Mapping[str, Any], key: str) -> float | None:
    try:
        value = float(row[key])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _measurements(row: Mapping[str, Any], role: str, radiomics: Sequence[str]) -> list[hd.sr.Measurement]:
    found = []

    def add(key: str, name, unit, digits: int | None, factor: float = 1.0, derivation=None) -> None:
        value = _number(row, key)
        if value is not None:
            value = _rounded(value * factor, digits)
            found.append(hd.sr.Measurement(name=name, value=value, unit=unit, derivation=derivation))

    # Each number to the precision it has (PRECISION): no 15-digit millimetres in a report.
    add("lesion_volume_mm3", codes.SCT.Volume, codes.UCUM.CubicMillimeter, PRECISION["volume_mm3"])
    add("lesion_longest_diameter_mm", codes.SCT.LongAxis, codes.UCUM.Millimeter, PRECISION["length_mm"])
    ser = _private("SER", "Signal enhancement ratio (lesion mean curve)")
    add("kinetic_ser", ser, codes.UCUM.NoUnits, PRECISION["ser"])
    peak = _private("PEAKENH", "Peak enhancement (lesion mean curve)")
    add("kinetic_peak_enhancement_pct", peak, codes.UCUM.Percent, PRECISION["percent"])
    adc, um2_s = codes.DCM.ApparentDiffusionCoefficient, hd.sr.CodedConcept("um2/s", "UCUM", "um2/s")
    for key, derivation in (("adc_mean_um2_ms", codes.SCT.Mean), ("adc_median_um2_ms", codes.SCT.Median)):
        # radimt's ADC is in µm²/ms (10⁻³ mm²/s) = 1000 µm²/s
        add(key, adc, um2_s, PRECISION["adc_um2_s"], 1000.0, derivation)
    ibsi = _ibsi_codes()
    for feature in radiomics:
        if feature not in ibsi:
            raise MaskError(f"{feature}: no IBSI code for this feature; choose one of the mapped features")
        code, meaning = ibsi[feature]
        add(f"{role}_{feature}", hd.sr.CodedConcept(code, "IBSI", meaning), codes.UCUM.NoUnits, None)
    return found


#: Decimal places each measurement keeps in the SR: lengths to 0.1 mm and volumes to 0.1 mm³
#: (finer than any voxel, coarser than the float's noise), SER to 0.01, enhancement to 0.1 %,
#: ADC to 1 µm²/s (scanners store it in whole µm²/s); radiomic features (None): 4 significant
#: digits, the precision IBSI's reference values are given to.
PRECISION = {"volume_mm3": 1, "length_mm": 1, "ser": 2, "percent": 1, "adc_um2_s": 0}


def _regroup_evidence(sr: pydicom.Dataset) -> None:
    """Evidence of the report's own study in CurrentRequestedProcedureEvidenceSequence, the rest
    in PertinentOtherEvidenceSequence (PS3.3 C.17.2), after de-identification moved the report
    into its research study: its SEG is then in its study, the images in theirs."""
    items = [
        *sr.get("CurrentRequestedProcedureEvidenceSequence", []),
        *sr.get("PertinentOtherEvidenceSequence", []),
    ]
    same = [item for item in items if item.StudyInstanceUID == sr.StudyInstanceUID]
    other = [item for item in items if item.StudyInstanceUID != sr.StudyInstanceUID]
    for keyword, group in (
        ("CurrentRequestedProcedureEvidenceSequence", same),
        ("PertinentOtherEvidenceSequence", other),
    ):
        if group:
            setattr(sr, keyword, group)
        elif keyword in sr:
            delattr(sr, keyword)


def _rounded(value: float, digits: int | None) -> float:
    if digits is not None:
        return round(value, digits)
    return float(f"{value:.4g}")


def _evaluations(row: Mapping[str, Any]) -> list[hd.sr.QualitativeEvaluation]:
    found = []
    curve = str(row.get("kinetic_curve_type") or "").lower()
    if curve in _CURVE_TYPES:
        name = _private("CURVETYPE", "Delayed phase curve type (lesion mean curve)")
        found.append(hd.sr.QualitativeEvaluation(name=name, value=_CURVE_TYPES[curve]))
    initial = str(row.get("kinetic_initial_phase") or "").lower()
    if initial in ("slow", "medium", "fast"):
        name = _private("INITPHASE", "Initial phase enhancement (lesion mean curve)")
        found.append(hd.sr.QualitativeEvaluation(name=name, value=_private(initial.upper(), initial)))
    return found


def write_measurement_report(
    row: Mapping[str, Any],
    seg_path: str | os.PathLike[str],
    series: SeriesInfo,
    path: str | os.PathLike[str],
    *,
    lesion: str = "lesion",
    radiomics: Sequence[str] = DEFAULT_RADIOMICS,
    keep_phi: bool = False,
    pseudonym: str = "anonymous",
    reproducible: bool = False,
) -> None:
    """Write a lesion's TID 1500 measurement report beside its DICOM SEG.

    Parameters
    ----------
    row
        The lesion's features (a features.csv row: ``lesion_*``, ``kinetic_*``, ``adc_*`` and
        ``<role>_original_...`` columns); values that are absent or not finite are left out.
    seg_path
        The lesion's DICOM SEG (:func:`radimt.io.write_dicom_seg`), whose segment 1 the report
        measures.
    series
        The source series the SEG was made on (the report's evidence).
    path
        Where to write the SR.
    lesion
        Tracking identifier of the lesion (e.g. ``"imt_case lesion 1"``).
    radiomics
        pyradiomics feature names (``original_<class>_<feature>``) of the reference role to
        include, each coded by its IBSI identifier.
    keep_phi, pseudonym
        As for the SEG: de-identified by the PS3.15 basic profile (UIDs retained) unless
        ``keep_phi``; PatientName and PatientID become ``pseudonym``, and the report goes into
        the same research study as its SEG (with ``keep_phi``: the source's study, as the SEG;
        :mod:`radimt.io.deidentify`).
    reproducible
        Derive the report's UIDs from the SEG's (same inputs, same bytes) instead of new ones.
    """
    seg = pydicom.dcmread(seg_path)
    if seg.get("Modality") != "SEG":
        raise MaskError(f"{seg_path}: not a DICOM SEG (Modality {seg.get('Modality')!r})")
    role = str(row.get("lesion_reference_role") or "dce")
    sources = list(source_headers(series.frames).values())
    tracking = hd.sr.TrackingIdentifier(
        uid=derived_uid(seg.SOPInstanceUID, "tracking") if reproducible else hd.UID(), identifier=lesion
    )
    group = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking,
        referenced_segment=hd.sr.ReferencedSegment(
            sop_class_uid=seg.SOPClassUID,
            sop_instance_uid=seg.SOPInstanceUID,
            segment_number=1,
            source_series=hd.sr.SourceSeriesForSegmentation(series.series_uid),
        ),
        finding_type=codes.SCT.Lesion,
        finding_sites=[hd.sr.FindingSite(codes.SCT.Breast)],
        measurements=_measurements(row, role, radiomics),
        qualitative_evaluations=_evaluations(row) or None,
    )
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=derived_uid("radimt", "device"), name="radimt", model_name=f"radimt {__version__}"
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=[group],
    )
    series_uid, instance_uid = (
        (derived_uid(seg.SOPInstanceUID, "sr", "series"), derived_uid(seg.SOPInstanceUID, "sr", "instance"))
        if reproducible
        else (hd.UID(), hd.UID())
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=[*sources, seg],
        content=report,
        series_instance_uid=series_uid,
        series_number=9002,
        sop_instance_uid=instance_uid,
        instance_number=1,
        manufacturer="radimt",
        is_complete=True,
    )
    # Dated by the SEG (itself dated by its source), never by the clock.
    for keyword in ("ContentDate", "ContentTime", "InstanceCreationDate", "InstanceCreationTime"):
        if keyword in seg:
            setattr(sr, keyword, seg.get(keyword))
    sr.SeriesDescription = series_description("measurements (TID 1500)", lesion)
    scheme = pydicom.Dataset()  # a private coding scheme is declared in the object (PS3.3 C.12.1)
    scheme.CodingSchemeDesignator = PRIVATE_SCHEME
    scheme.CodingSchemeName = "radimt measurements"
    scheme.CodingSchemeResponsibleOrganization = "radimt"
    sr.CodingSchemeIdentificationSequence = [scheme]
    if not keep_phi:  # into the research study of its study, as its SEG
        deidentify(sr, pseudonym, generated=("ContentSequence",))
        _regroup_evidence(sr)
        sr.SeriesDescription = series_description("measurements (TID 1500)", lesion)
    with atomic_path(path) as tmp:
        sr.save_as(tmp)
