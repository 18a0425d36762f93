"""Digitised film mammograms in the layout of the CBIS-DDSM archive (TCIA), synthetic.

What its files hold, as observed on the collection: every image is a Secondary Capture of
Modality MG (ConversionType WSD, BodyPartExamined BREAST, MONOCHROME2, 16 bits stored) with no
PixelSpacing or ImagerPixelSpacing; the view only in PatientOrientation; the laterality only in
PatientID; each view filed as its own "patient" and study (``Mass-Test_P_00173_LEFT_CC``); the
lesion's ROI mask and cropped lesion further Secondary Captures ("ROI mask images",
"cropped images") whose PatientID adds the abnormality number (``..._LEFT_CC_1``).
"""

from __future__ import annotations

import os

import numpy as np
from pydicom.uid import generate_uid

from radimt.dicom.uids import derived_uid
from radimt.synth.phantom import disk_fraction
from radimt.synth.studies import _mammogram
from radimt.synth.writer import SeriesSpec, _base

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def _write_sc(path: str, spec: SeriesSpec, pixels: np.ndarray, instance_key: str) -> str:
    ds = _base(spec, SECONDARY_CAPTURE, derived_uid(spec.study_id, instance_key))  # BREAST already
    ds.ConversionType = "WSD"
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    bits = 8 if pixels.dtype == np.uint8 else 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.PixelData = pixels.astype(np.uint8 if bits == 8 else np.uint16).tobytes()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_cbis_ddsm_case(
    folder: str,
    patient: str = "P_00173",
    collection: str = "Mass-Test",
    diameter_px: float = 90.0,
    shape: tuple[int, int] = (440, 280),
    seed: int = 0,
) -> dict:
    """Four film views of one patient (left and right, CC and MLO) with a mass in the left breast,
    the left CC's ROI mask and cropped lesion, in CBIS-DDSM's layout below ``folder``.

    Returns the truth: per view its file and the mass' centre (row, column) and diameter in
    pixels; the ROI mask's file and its pixels; the cropped image's file.
    """
    rng = np.random.default_rng(seed)
    truth: dict = {"patient": patient, "views": {}}
    lesion_at = {"LEFT_CC": (230.0, 110.0), "LEFT_MLO": (250.0, 100.0)}
    for side in ("LEFT", "RIGHT"):
        for view in ("CC", "MLO"):
            key = f"{side}_{view}"
            identity = f"{collection}_{patient}_{key}"
            centre = lesion_at.get(key, (-1000.0, -1000.0))  # the right breast has no mass
            brightness = _mammogram(shape, centre, diameter_px / 2, rng, flip=side == "RIGHT")
            pixels = (brightness.astype(np.float64) * 16).clip(0, 65535).astype(np.uint16)  # 16 bits
            spec = SeriesSpec(
                identity,
                "full",
                1,
                "full mammogram images",
                "MG",
                {
                    "PatientID": identity,
                    "PatientName": identity,
                    "StudyInstanceUID": generate_uid(entropy_srcs=[identity, "study"]),
                    "PatientOrientation": [view],
                },
            )
            path = os.path.join(folder, identity, "full.dcm")
            _write_sc(path, spec, pixels, "full")
            truth["views"][key] = {"file": path, "centre_rc": list(centre), "diameter_px": diameter_px}
    roi = f"{collection}_{patient}_LEFT_CC_1"
    centre = lesion_at["LEFT_CC"]
    inside = disk_fraction(shape, centre, diameter_px / 2, irregular=0.12, seed=3) >= 0.5
    mask_pixels = np.where(inside, 255, 0).astype(np.uint8)
    for name, description, content in (
        ("mask", "ROI mask images", mask_pixels),
        ("crop", "cropped images", _crop(truth["views"]["LEFT_CC"]["file"], centre, diameter_px)),
    ):
        spec = SeriesSpec(
            roi,
            name,
            2 if name == "mask" else 3,
            description,
            "MG",
            {
                "PatientID": roi,
                "PatientName": roi,
                "StudyInstanceUID": generate_uid(entropy_srcs=[roi, "study"]),
                "PatientOrientation": ["CC"],
            },
        )
        path = os.path.join(folder, roi, f"{name}.dcm")
        _write_sc(path, spec, content, name)
        truth[name] = {"file": path}
    truth["mask"]["pixels"] = mask_pixels
    return truth


def _crop(full: str, centre: tuple[float, float], diameter_px: float) -> np.ndarray:
    import pydicom

    pixels = pydicom.dcmread(full).pixel_array
    half = int(diameter_px)
    r, c = (int(round(v)) for v in centre)
    return pixels[max(0, r - half) : r + half, max(0, c - half) : c + half].copy()
