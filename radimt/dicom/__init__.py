"""DICOM input: header scan, series splitting, volume assembly, role assignment."""

from radimt.dicom.scan import SeriesInfo, SkippedFile
from radimt.dicom.study import DCE, DWI, Study, load_study, scan
from radimt.dicom.volume import PlanarImage, read_planar, read_volume

__all__ = [
    "DCE",
    "DWI",
    "PlanarImage",
    "SeriesInfo",
    "SkippedFile",
    "Study",
    "load_study",
    "read_planar",
    "read_volume",
    "scan",
]
