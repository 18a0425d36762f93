"""Reading and writing masks (NIfTI, NRRD, DICOM SEG, RTSTRUCT) and seeds (CSV, Slicer markups).

Examples
--------
>>> import tempfile, os, radimt
>>> study, truth = radimt.synth.example_study()
>>> mask = radimt.segment_from_seed(radimt.subtraction(study.dce), truth["seed_lps"])
>>> path = os.path.join(tempfile.mkdtemp(), "lesion.nii.gz")
>>> radimt.io.write_mask(mask, path)
>>> back = radimt.io.read_mask(path, study.dce.phases[0])   # onto the DCE grid
>>> radimt.mask_volume_mm3(back) == radimt.mask_volume_mm3(mask)
True
"""

from radimt.io.masks import (
    mask_source,
    read_dicom_mask,
    read_dicom_seg,
    read_mask,
    read_rtstruct,
    write_dicom_seg,
    write_kinetic_map_seg,
    write_mask,
)
from radimt.io.seeds import Seed, read_seeds, read_seeds_csv, read_slicer_markups

__all__ = [
    "Seed",
    "mask_source",
    "read_dicom_mask",
    "read_dicom_seg",
    "read_mask",
    "read_rtstruct",
    "read_seeds",
    "read_seeds_csv",
    "read_slicer_markups",
    "write_dicom_seg",
    "write_kinetic_map_seg",
    "write_mask",
]
