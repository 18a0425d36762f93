"""radimt: breast imaging radiomics from DICOM studies.

The public API is a set of plain functions::

    import radimt
    study = radimt.load_study("path/to/study")
    study.dce.phases, study.dce.times
"""

from radimt.dicom import DCE, DWI, PlanarImage, SeriesInfo, Study, load_study, scan
from radimt.errors import RadimtError

__version__ = "0.1.0"

__all__ = [
    "DCE",
    "DWI",
    "PlanarImage",
    "RadimtError",
    "SeriesInfo",
    "Study",
    "__version__",
    "load_study",
    "scan",
]
