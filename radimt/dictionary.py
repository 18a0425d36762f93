"""What every column of a features table means: unit, meaning, role and source image, the IBSI
identifier where one exists, and pyradiomics' own name for radiomic features.

``radimt batch`` writes ``features.dictionary.csv`` beside ``features.csv`` with one entry per
column it wrote; ``docs/data_dictionary.md`` is :func:`dictionary_markdown`. Column names carry
their unit: ``_mm``, ``_mm2``, ``_mm3``, ``_cm3``, ``_s``, ``_pct`` (percent of the
pre-contrast signal), ``_pct_s``, ``_hu``, ``_per_mm``, ``_um2_ms`` (µm²/ms, exactly the
10⁻³ mm²/s radiologists quote ADC in); a name without one is a count, a ratio, a class or a
radiomic feature whose unit the dictionary gives.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import astuple, dataclass, fields
from functools import lru_cache
from importlib import resources

from radimt.io.atomic import atomic_path


@dataclass(frozen=True)
class ColumnEntry:
    """One column of a features table.

    Attributes
    ----------
    column
        Its name.
    unit
        Its unit ('' for counts, ratios, classes and text).
    meaning
        What it is, in a sentence.
    role
        The role or modality key it belongs to (``dce``, ``adc``, ``us``, ``mg_cc``...; '' for
        the columns that identify a row).
    source
        The image it is computed on.
    ibsi
        IBSI identifier(s) of the feature (``code (tag)``), and how pyradiomics' value differs.
    pyradiomics
        pyradiomics' name of a radiomic feature (``original_glcm_Contrast``).
    """

    column: str
    unit: str
    meaning: str
    role: str = ""
    source: str = ""
    ibsi: str = ""
    pyradiomics: str = ""


#: The images a role's numbers come from.
SOURCES = {
    "dce": "DCE subtraction image (the chosen post-contrast phase minus the pre-contrast phase)",
    "adc": "ADC map (the scanner's, else fitted from the DWI), in µm²/ms = 10⁻³ mm²/s",
    "dwi": "DWI at the highest b-value",
    "t1": "T1-weighted series",
    "t2": "T2-weighted series",
    "ct": "CT series, in HU",
    "mg": "the mammogram the lesion was seeded on",
    "mg_cc": "the craniocaudal (CC) mammogram",
    "mg_mlo": "the mediolateral oblique (MLO) mammogram",
    "us": "the ultrasound image the lesion was seeded on",
    "image": "the image file of a pyradiomics manifest row",
}
#: The unit of a role's image intensities (first-order features, rim and core means).
INTENSITY_UNITS = {
    "dce": "MR signal (a.u.)",
    "adc": "µm²/ms",
    "dwi": "MR signal (a.u.)",
    "t1": "MR signal (a.u.)",
    "t2": "MR signal (a.u.)",
    "ct": "HU",
    "mg": "detector value (a.u.)",
    "us": "grey value (a.u.)",
    "image": "image units",
}

_IDENTITY = {
    "study_id": ("", "the study, as the manifest names it"),
    "lesion_id": ("", "the lesion within its study, as the manifest names it (1 when not given)"),
    "label": ("", "the lesion's class from the manifest (the outcome a classifier learns)"),
    "group": ("", "the patient: lesions of one patient stay on one side of every cross-validation split"),
    "site": ("", "the site (for harmonisation and per-site counts)"),
    "scanner": ("", "the scanner (for harmonisation)"),
    "status": ("", "how the lesion's analysis ended: done, failed or not processed"),
    "error": ("", "why it failed (empty when done); its features are empty then"),
    "qc_warnings": ("", "what to check before modelling this row (e.g. too few grey levels for a role)"),
    "review_status": ("", "the reviewer's verdict: to review, accepted, rejected or re-seeded"),
    "dicom_study_instance_uid": ("", "StudyInstanceUID of the study (only with --keep-phi)"),
    "ID": ("", "the ID column of a pyradiomics manifest"),
    "Image": ("", "the image file of a pyradiomics manifest row"),
    "Mask": ("", "the mask file of a pyradiomics manifest row"),
    "Label": ("", "the mask value measured (pyradiomics manifest)"),
    "Label_channel": ("", "the component of a vector mask (pyradiomics manifest)"),
}
#: What ``radimt propose`` said about the candidate a row was seeded from (carried by batch;
#: not features: the classifier leaves them out unless named with ``--clinical``).
_CANDIDATE = {
    "candidate_score": ("", "radimt propose's rank score (0-1): how lesion-like the candidate is"),
    "candidate_volume_mm3": ("mm³", "the candidate's volume on propose's ~1.5 mm working grid"),
    "candidate_longest_diameter_mm": ("mm", "the candidate's longest diameter on propose's working grid"),
    "candidate_peak_initial_enhancement_pct": (
        "%",
        "90th percentile of the candidate's initial enhancement (first post-contrast phase)",
    ),
    "candidate_curve_type": ("", "worst-curve type of the candidate: I persistent, II plateau, III washout"),
    "candidate_laterality": ("", "the breast the candidate lies in: L (patient left) or R"),
    "candidate_reasons": ("", "why the candidate ranks where it does: each score part and its share"),
}
#: Size of a lesion on the image it was delineated on (also ``<key>_lesion_*`` on another modality).
_SIZE = {
    "reference_role": ("", "the role of the image the lesion was delineated on"),
    "voxels": ("", "voxels (pixels in 2D) in the mask"),
    "volume_mm3": ("mm³", "volume: voxel count times voxel volume"),
    "volume_cm3": ("cm³", "volume: voxel count times voxel volume"),
    "area_mm2": ("mm²", "area of a 2D lesion: pixel count times pixel area"),
    "perimeter_mm": ("mm", "perimeter of a 2D lesion (SimpleITK's estimate of the boundary length)"),
    "circularity": ("", "4πA/P² of a 2D lesion (1 for a disc)"),
    "longest_diameter_mm": ("mm", "largest distance between two points of the mask's outer surface"),
    # digitised film without a pixel size (CBIS-DDSM): sizes in pixels, never a guessed mm
    "area_px2": ("px²", "area of a 2D lesion in pixels (the image gives no pixel size)"),
    "perimeter_px": ("px", "perimeter of a 2D lesion in pixels (the image gives no pixel size)"),
    "longest_diameter_px": ("px", "largest distance across the mask in pixels (no pixel size given)"),
}
_CURVE = {
    "initial_enhancement_pct": ("%", "highest enhancement in the initial phase (≤ 120 s after arrival)"),
    "initial_phase": ("", "BI-RADS initial phase: slow (< 50 %), medium (50–100 %), fast (> 100 %)"),
    "delayed_change_pct": ("%", "signal change from the initial peak to the last phase"),
    "delayed_phase": ("", "BI-RADS delayed phase: persistent (> +10 %), plateau (±10 %), washout (< −10 %)"),
    "curve_type": ("", "Kuhl curve type: I persistent, II plateau, III washout"),
    "peak_enhancement_pct": ("%", "highest enhancement after contrast"),
    "time_to_peak_s": ("s", "from contrast arrival to the first phase within 10 % of the highest signal"),
    "wash_in_rate_pct_s": ("%/s", "initial enhancement divided by the time from arrival to it"),
    "washout_rate_pct_s": ("%/s", "drop of enhancement from the peak to the last phase per second"),
    "ser": ("", "signal enhancement ratio (Hylton): (S_early − S_pre) / (S_late − S_pre)"),
    "iauc60_pct_s": ("% s", "initial area under the enhancement curve, 60 s after arrival"),
    "iauc90_pct_s": ("% s", "initial area under the enhancement curve, 90 s after arrival"),
}
_KINETIC = {
    "share_persistent": ("", "share of enhancing voxels (≥ 50 % initially) with a persistent curve"),
    "share_plateau": ("", "share of enhancing voxels with a plateau curve"),
    "share_washout": ("", "share of enhancing voxels with a washout curve"),
    "enhancing_fraction": ("", "share of lesion voxels whose initial enhancement reaches 50 %"),
    "ftv_cm3": ("cm³", "functional tumour volume (ACRIN 6657): early enhancement ≥ 70 %, SER ≥ 0"),
    "voxels": ("", "voxels of the lesion on the DCE grid"),
    "pe_sd_pct": ("%", "SD of per-voxel peak enhancement in the lesion"),
    "pe_iqr_pct": ("%", "interquartile range of per-voxel peak enhancement"),
    "pe_cov": ("", "coefficient of variation of per-voxel peak enhancement"),
    "ser_sd": ("", "SD of per-voxel SER"),
    "ser_iqr": ("", "interquartile range of per-voxel SER"),
}
_ADC = {
    "mean_um2_ms": ("µm²/ms", "mean ADC in the lesion"),
    "median_um2_ms": ("µm²/ms", "median ADC in the lesion"),
    "min_um2_ms": ("µm²/ms", "lowest ADC in the lesion"),
    "p5_um2_ms": ("µm²/ms", "5th percentile of ADC in the lesion"),
    "p10_um2_ms": ("µm²/ms", "10th percentile of ADC in the lesion"),
    "p25_um2_ms": ("µm²/ms", "25th percentile of ADC in the lesion"),
    "sd_um2_ms": ("µm²/ms", "SD of ADC in the lesion"),
    "min_region_mean_um2_ms": ("µm²/ms", "mean of the darkest 3×3(×3) region (the radiologist's small ROI)"),
    "voxels": ("", "voxels of the lesion on the ADC grid with a usable value"),
    "dwi_signal_ratio": ("", "lesion DWI signal over that of a reference region"),
}
_RIM = {
    "rim_mean": "mean in the lesion's outer 2 mm shell (the rim)",
    "core_mean": "mean inside the rim (the core)",
    "rim_minus_core": "rim mean minus core mean",
}
_RIM_PLAIN = {
    "rim_core_ratio": ("", "rim mean over core mean"),
    "rim_fraction": ("", "share of the lesion's voxels in the rim"),
}
_SHAPE_UNITS = {
    "MeshVolume": "mm³",
    "VoxelVolume": "mm³",
    "SurfaceArea": "mm²",
    "SurfaceVolumeRatio": "1/mm",
    "Maximum3DDiameter": "mm",
    "Maximum2DDiameterSlice": "mm",
    "Maximum2DDiameterColumn": "mm",
    "Maximum2DDiameterRow": "mm",
    "MajorAxisLength": "mm",
    "MinorAxisLength": "mm",
    "LeastAxisLength": "mm",
    "MaximumDiameter": "mm",
    "MeshSurface": "mm²",
    "PixelSurface": "mm²",
    "Perimeter": "mm",
    "PerimeterSurfaceRatio": "1/mm",
}
#: First-order features whose unit is the image's intensity unit (squared where ``²``).
_FIRSTORDER_UNITS = {
    **dict.fromkeys(
        [
            "10Percentile",
            "90Percentile",
            "InterquartileRange",
            "Maximum",
            "Mean",
            "MeanAbsoluteDeviation",
            "Median",
            "Minimum",
            "Range",
            "RobustMeanAbsoluteDeviation",
            "RootMeanSquared",
            "StandardDeviation",
        ],
        "{unit}",
    ),
    "Energy": "({unit})²",
    "TotalEnergy": "({unit})² mm³",
    "Variance": "({unit})²",
    "Entropy": "bits",
}
_IMAGE_TYPE = (
    r"original|log-sigma-[0-9-]+mm-[23]D|wavelet-[HL]+|square|squareroot|logarithm|exponential|gradient"
    r"|lbp-[23]D(?:-[a-z0-9]+)?"
)
_FAMILIES = "shape2D|shape|firstorder|glcm|glrlm|glszm|gldm|ngtdm"
_RADIOMIC = re.compile(
    rf"^(?:(?P<key>[a-z0-9]+(?:_(?:cc|mlo))?)_)?(?P<image_type>{_IMAGE_TYPE})_(?P<family>{_FAMILIES})_(?P<feature>[A-Za-z0-9]+)$"
)
_KEYS = r"(?P<key>dce|dwi|adc|t1|t2|ct|mg|us|mg_cc|mg_mlo)"


def _image_type_words(image_type: str) -> str:
    if image_type == "original":
        return "the original image"
    if image_type.startswith("log-sigma-"):
        sigma = image_type[len("log-sigma-") :].split("-mm")[0].replace("-", ".")
        return f"its Laplacian of Gaussian (σ {sigma} mm, pyradiomics' σ²-scaled definition)"
    if image_type.startswith("wavelet-"):
        return f"its wavelet sub-band {image_type[len('wavelet-') :]} (pyradiomics' wavelet)"
    return f"its {image_type} filter (pyradiomics')"


@lru_cache(maxsize=1)
def _ibsi_codes() -> dict[tuple[str, str], str]:
    text = resources.files("radimt").joinpath("data/pyradiomics_to_ibsi_mapping.csv").read_text()
    codes: dict[tuple[str, str], list[str]] = {}
    for row in csv.DictReader(text.splitlines()):
        note = {"minus3": "; pyradiomics' value is IBSI's + 3"}.get(row["transform"], "")
        codes.setdefault((row["pyradiomics_class"], row["pyradiomics_feature"]), []).append(
            f"{row['ibsi_code']} ({row['ibsi_tag']}{note})"
        )
    return {key: ", ".join(values) for key, values in codes.items()}


def describe(column: str, intensity_units: Mapping[str, str] | None = None) -> ColumnEntry | None:
    """The dictionary entry of one column, or ``None`` for a column radimt does not write (a
    column carried from the manifest).

    Parameters
    ----------
    column
        The column's name.
    intensity_units
        The unit of each role's image as the features saw it (a preset that normalises gives
        ``z-score × 100``); :data:`INTENSITY_UNITS` by default.

    Examples
    --------
    >>> describe("adc_median_um2_ms").unit
    'µm²/ms'
    >>> entry = describe("dce_original_glcm_Contrast")
    >>> entry.role, entry.pyradiomics, entry.ibsi
    ('dce', 'original_glcm_Contrast', 'ACUI (cm.contrast)')
    >>> describe("kinetic_suspicious_curve_type").meaning
    'most suspicious region: Kuhl curve type: I persistent, II plateau, III washout'
    """
    units = {**INTENSITY_UNITS, **(intensity_units or {})}
    if column in _IDENTITY:
        unit, meaning = _IDENTITY[column]
        return ColumnEntry(column, unit, meaning)
    if column in _CANDIDATE:
        unit, meaning = _CANDIDATE[column]
        return ColumnEntry(column, unit, meaning, "dce", "DCE phases (radimt propose)")
    if column.startswith("diagnostics_"):
        return ColumnEntry(column, "", f"pyradiomics diagnostic {column[len('diagnostics_') :]}", "image")
    if column.startswith("lesion_") and column[len("lesion_") :] in _SIZE:
        unit, meaning = _SIZE[column[len("lesion_") :]]
        return ColumnEntry(column, unit, meaning, "", "the image the lesion was delineated on")
    if match := re.fullmatch(rf"{_KEYS}_lesion_(?P<name>\w+)", column):
        if match["name"] in _SIZE:
            unit, meaning = _SIZE[match["name"]]
            return ColumnEntry(column, unit, meaning, match["key"], SOURCES[match["key"]])
    if match := re.fullmatch(r"kinetic_(?P<suspicious>suspicious_)?(?P<name>\w+)", column):
        name, worst = match["name"], bool(match["suspicious"])
        if name in _CURVE:
            unit, meaning = _CURVE[name]
            where = "most suspicious region: " if worst else "whole-lesion mean curve: "
            return ColumnEntry(column, unit, where + meaning if worst else meaning, "dce", "DCE phases")
        if name in _KINETIC and not worst:
            unit, meaning = _KINETIC[name]
            return ColumnEntry(column, unit, meaning, "dce", "DCE phases")
    if column.startswith("adc_") and column[len("adc_") :] in _ADC:
        unit, meaning = _ADC[column[len("adc_") :]]
        return ColumnEntry(column, unit, meaning, "adc", SOURCES["adc"])
    rim = rf"{_KEYS}_(?P<name>rim_mean|core_mean|rim_minus_core)_(?P<unit>pct|hu)"
    if match := re.fullmatch(rim, column):
        unit = {"pct": "%", "hu": "HU"}[match["unit"]]
        what = "initial enhancement" if match["unit"] == "pct" else "attenuation"
        source = "DCE initial enhancement map" if match["key"] == "dce" else SOURCES.get(match["key"], "")
        return ColumnEntry(column, unit, f"{what}: {_RIM[match['name']]}", match["key"], source)
    if match := re.fullmatch(rf"{_KEYS}_(?P<name>rim_core_ratio|rim_fraction)", column):
        unit, meaning = _RIM_PLAIN[match["name"]]
        return ColumnEntry(column, unit, meaning, match["key"], SOURCES.get(match["key"], ""))
    if match := re.fullmatch(rf"{_KEYS}_margin_sharpness_per_(?P<unit>mm|px)", column):
        meaning = "mean boundary gradient over the lesion-to-surroundings contrast (sharper margin: higher)"
        return ColumnEntry(column, f"1/{match['unit']}", meaning, match["key"], SOURCES[match["key"]])
    if match := _RADIOMIC.match(column):
        return _radiomic(column, match, units)
    return None


def _radiomic(column: str, match: re.Match[str], units: Mapping[str, str]) -> ColumnEntry:
    key = match["key"] or ""
    role = key.split("_")[0] if key else ""
    family, feature, image_type = match["family"], match["feature"], match["image_type"]
    if family.startswith("shape"):
        unit = _SHAPE_UNITS.get(feature, "")
    elif family == "firstorder":
        unit = _FIRSTORDER_UNITS.get(feature, "").format(unit=units.get(role, "image units"))
        if unit and image_type != "original":
            unit = f"filter response, {unit}"
    else:
        unit = ""  # texture features are functions of grey-level indices
    source = SOURCES.get(key or "image", "")
    meaning = f"{feature} (pyradiomics {family}) of {_image_type_words(image_type)}"
    ibsi = _ibsi_codes().get(("shape" if family == "shape2D" else family, feature), "")
    return ColumnEntry(column, unit, meaning, key, source, ibsi, f"{image_type}_{family}_{feature}")


def dictionary(
    columns: Iterable[str], intensity_units: Mapping[str, str] | None = None, carried: Iterable[str] = ()
) -> list[ColumnEntry]:
    """An entry for each of ``columns``, in their order; ``carried`` columns (from the manifest)
    are described as such, any other column radimt does not know as :data:`UNDESCRIBED`."""
    carried = set(carried)
    entries = []
    for column in columns:
        entry = describe(column, intensity_units)
        if entry is None:
            meaning = CARRIED if column in carried else UNDESCRIBED
            entry = ColumnEntry(column, "", meaning)
        entries.append(entry)
    return entries


CARRIED = "carried unchanged from the manifest"
UNDESCRIBED = "not described: radimt does not know this column (please report it)"


def write_dictionary(entries: Iterable[ColumnEntry], path: str | os.PathLike[str]) -> None:
    """Write ``features.dictionary.csv`` (atomically)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([f.name for f in fields(ColumnEntry)])
        writer.writerows(astuple(e) for e in entries)


def dictionary_markdown() -> str:
    """``docs/data_dictionary.md``: every non-radiomic column radimt writes, how radiomic columns
    are named, and every pyradiomics feature with its unit and IBSI identifier."""
    lines = [
        "# Data dictionary of `features.csv`",
        "",
        "Generated by `radimt.dictionary.dictionary_markdown()`; every run also writes",
        "`features.dictionary.csv` with one entry per column it wrote. Units are in the names:",
        "`_mm`, `_mm2`, `_mm3`, `_cm3`, `_s`, `_pct` (percent of the pre-contrast signal), `_pct_s`,",
        "`_hu`, `_per_mm`, `_um2_ms` (µm²/ms = 10⁻³ mm²/s). Other modalities' size columns are",
        "`<key>_lesion_*` with `<key>` one of `us`, `mg_cc`, `mg_mlo`, `ct`, ...",
        "",
        "## Rows, sizes, kinetics, diffusion, domain features",
        "",
        "| column | unit | meaning | role |",
        "| --- | --- | --- | --- |",
    ]
    names = [
        *_IDENTITY,
        *_CANDIDATE,
        *(f"lesion_{k}" for k in _SIZE),
        *(f"kinetic_{k}" for k in _CURVE),
        *(f"kinetic_suspicious_{k}" for k in _CURVE),
        *(f"kinetic_{k}" for k in _KINETIC),
        *(f"adc_{k}" for k in _ADC),
        *(f"dce_{k}_pct" for k in _RIM),
        "dce_rim_core_ratio",
        "dce_rim_fraction",
        "dce_margin_sharpness_per_mm",
        *(f"ct_{k}_hu" for k in _RIM),
        "ct_rim_core_ratio",
        "ct_rim_fraction",
        "ct_margin_sharpness_per_mm",
    ]
    for name in names:
        entry = describe(name)
        assert entry is not None
        lines.append(f"| `{name}` | {entry.unit} | {entry.meaning} | {entry.role} |")
    lines += [
        "",
        "## Radiomic features",
        "",
        "`<role>_<image type>_<family>_<feature>` (pyradiomics' own name after the role, e.g.",
        "`dce_original_glcm_Contrast`; `--pyradiomics-names` drops the role). Image types:",
        "`original`, `log-sigma-<σ>-mm-3D` (pyradiomics' σ²-scaled LoG), `wavelet-<LLH...>`, and",
        "pyradiomics' other filters. First-order features are in the role's intensity unit (after",
        "normalisation where the preset normalises: MR presets z-score × 100); texture features are",
        "functions of grey-level indices (no unit). The IBSI identifier is given where pyradiomics'",
        "feature is IBSI's (with how the value differs, where it does).",
        "",
        "| family | feature | unit | IBSI |",
        "| --- | --- | --- | --- |",
    ]
    from radiomics import getFeatureClasses

    for family, feature_class in sorted(getFeatureClasses().items()):
        names = feature_class.getFeatureNames()  # name -> deprecated
        for feature in sorted(name for name, deprecated in names.items() if not deprecated):
            entry = describe(f"dce_original_{family}_{feature}", {"dce": "intensity"})
            assert entry is not None
            lines.append(f"| {family} | {feature} | {entry.unit} | {entry.ibsi} |")
    return "\n".join(lines) + "\n"
