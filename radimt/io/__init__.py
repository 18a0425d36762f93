"""Reading and writing masks (NIfTI, NRRD, DICOM SEG, RTSTRUCT) and seeds (CSV, Slicer markups)."""

from radimt.io.masks import read_dicom_seg, read_mask, read_rtstruct, write_dicom_seg, write_mask
from radimt.io.seeds import Seed, read_seeds, read_seeds_csv, read_slicer_markups

__all__ = [
    "Seed",
    "read_dicom_seg",
    "read_mask",
    "read_rtstruct",
    "read_seeds",
    "read_seeds_csv",
    "read_slicer_markups",
    "write_dicom_seg",
    "write_mask",
]
