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

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from radimt._version import __version__
from radimt.errors import RadimtError

#: Public name -> the module that defines it. Modules load on first use (PEP 562), so
#: ``import radimt`` and ``radimt --help`` do not pull in pyradiomics, highdicom, matplotlib,
#: pandas or dask; a test keeps it so.
_LAZY = {
    "AnalysisConfig": "radimt.analysis",
    "FeatureConfig": "radimt.analysis",  # deprecated name of AnalysisConfig, kept for one release
    "LesionInput": "radimt.analysis",
    "LesionResult": "radimt.analysis",
    "ModalitySeed": "radimt.analysis",
    "analyse_lesion": "radimt.analysis",
    "lesion_features": "radimt.analysis",
    "DCE": "radimt.dicom",
    "DWI": "radimt.dicom",
    "PlanarImage": "radimt.dicom",
    "SeriesInfo": "radimt.dicom",
    "Study": "radimt.dicom",
    "load_study": "radimt.dicom",
    "scan": "radimt.dicom",
    "adc_map": "radimt.diffusion",
    "adc_stats": "radimt.diffusion",
    "study_adc": "radimt.diffusion",
    "extract_features": "radimt.features",
    "KineticCurve": "radimt.kinetics",
    "KineticMaps": "radimt.kinetics",
    "KineticOptions": "radimt.kinetics",
    "kinetic_curve": "radimt.kinetics",
    "kinetic_maps": "radimt.kinetics",
    "longest_diameter_mm": "radimt.measure",
    "mask_volume_mm3": "radimt.measure",
    "ProposeOptions": "radimt.propose",
    "propose": "radimt.propose",
    "robustness": "radimt.robustness",
    "SegmentOptions": "radimt.segment",
    "resample_mask": "radimt.segment",
    "segment_from_seed": "radimt.segment",
    "subtraction": "radimt.segment",
}

if TYPE_CHECKING:  # what type checkers and editors see: the names, eagerly
    from radimt import io, synth
    from radimt.analysis import (
        AnalysisConfig,
        FeatureConfig,  # noqa: F401 - deprecated, kept for one release
        LesionInput,
        LesionResult,
        ModalitySeed,
        analyse_lesion,
        lesion_features,
    )
    from radimt.dicom import DCE, DWI, PlanarImage, SeriesInfo, Study, load_study, scan
    from radimt.diffusion import adc_map, adc_stats, study_adc
    from radimt.features import extract_features
    from radimt.kinetics import KineticCurve, KineticMaps, KineticOptions, kinetic_curve, kinetic_maps
    from radimt.measure import longest_diameter_mm, mask_volume_mm3
    from radimt.propose import ProposeOptions, propose
    from radimt.robustness import robustness
    from radimt.segment import SegmentOptions, resample_mask, segment_from_seed, subtraction


def __getattr__(name: str) -> Any:
    """A public name or a submodule (``radimt.io``, ``radimt.dicom``...), imported on first use."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        try:
            module = importlib.import_module(f"radimt.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"radimt.{name}":
                raise
        else:
            globals()[name] = module
            return module
    raise AttributeError(f"module 'radimt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "io", "synth"})


#: Public functions named as their module (``radimt.propose`` the function, in
#: ``radimt/propose.py``): importing the module later must not put the module in their place.
_NAMED_AS_MODULE = {name for name, module in _LAZY.items() if module == f"radimt.{name}"}


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _NAMED_AS_MODULE and isinstance(value, types.ModuleType):
            return  # the import system binding a submodule: the public name stays the function
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


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
