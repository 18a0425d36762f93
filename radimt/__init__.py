"""radimt: breast imaging radiomics from DICOM studies.

The public API is a set of plain functions::

    import radimt
    study = radimt.load_study("path/to/study")
    mask = radimt.segment_from_seed(radimt.subtraction(study.dce, phase=1), seed_lps)
    adc_mask = radimt.resample_mask(mask, study.adc)
    curve = radimt.kinetic_curve(study.dce, mask)        # curve.curve_type, curve.to_dict()
    radimt.adc_stats(study.adc, adc_mask)
    row = radimt.lesion_features(study, {"dce": mask})   # one flat row for a features CSV
    result = radimt.analyse_lesion(study, radimt.LesionInput(seed=seed_lps))  # all of it at once

Every public name has an example that runs, built on :func:`radimt.synth.example_study`.
"""

from radimt import io, synth
from radimt._version import __version__
from radimt.analysis import (
    AnalysisConfig,
    FeatureConfig,  # noqa: F401 - deprecated name of AnalysisConfig, kept for one release
    LesionInput,
    LesionResult,
    ModalitySeed,
    analyse_lesion,
    lesion_features,
)
from radimt.dicom import DCE, DWI, PlanarImage, SeriesInfo, Study, load_study, scan
from radimt.diffusion import adc_map, adc_stats, study_adc
from radimt.errors import RadimtError
from radimt.features import extract_features
from radimt.kinetics import KineticCurve, KineticMaps, KineticOptions, kinetic_curve, kinetic_maps
from radimt.measure import longest_diameter_mm, mask_volume_mm3
from radimt.propose import ProposeOptions, propose
from radimt.robustness import robustness
from radimt.segment import SegmentOptions, resample_mask, segment_from_seed, subtraction

__all__ = [
    "AnalysisConfig",
    "DCE",
    "DWI",
    "KineticCurve",
    "KineticMaps",
    "KineticOptions",
    "PlanarImage",
    "ProposeOptions",
    "RadimtError",
    "SegmentOptions",
    "SeriesInfo",
    "Study",
    "LesionInput",
    "LesionResult",
    "ModalitySeed",
    "__version__",
    "analyse_lesion",
    "adc_map",
    "adc_stats",
    "extract_features",
    "io",
    "kinetic_curve",
    "kinetic_maps",
    "lesion_features",
    "load_study",
    "longest_diameter_mm",
    "mask_volume_mm3",
    "propose",
    "resample_mask",
    "robustness",
    "scan",
    "segment_from_seed",
    "study_adc",
    "subtraction",
    "synth",
]
