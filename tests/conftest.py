"""Shared fixtures: real DICOM from installed packages, and small synthetic studies."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from radimt.synth.phantom import Lesion
from radimt.synth.studies import MRStudySpec
from radimt.synth.writer import Grid

PYDICOM_DATA = Path(pydicom.__file__).parent / "data" / "test_files"
NIBABEL_DATA = Path(nibabel.__file__).parent / "nicom" / "tests" / "data"
REPO = Path(__file__).resolve().parents[1]
SAMPLE_DICOM = REPO / "sample_dicom"


def small_spec(study_id: str = "t", **overrides) -> MRStudySpec:
    """A quick MR study: 48x48x12 voxels of 2x2x4 mm, a 16 mm lesion in the breast."""
    values = dict(
        lesion=Lesion((100.0, -4.0, -4.0), 16.0, "sphere"),
        grid=Grid((48, 48, 12), (2.0, 2.0, 4.0), (42.0, -48.0, -24.0)),
        extras=False,
        seed=3,
    )
    values.update(overrides)
    return MRStudySpec(study_id, **values)


def keep_enhanced_frames(path: Path, keep) -> None:
    """Rewrite an enhanced multi-frame file with only the frames whose index ``keep(i)`` accepts
    (per-frame functional groups and pixel data alike), as a sparse or interrupted export."""
    from pydicom.sequence import Sequence as DicomSequence

    ds = pydicom.dcmread(path)
    frames = ds.pixel_array
    kept = [i for i in range(len(frames)) if keep(i)]
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(
        [ds.PerFrameFunctionalGroupsSequence[i] for i in kept]
    )
    ds.NumberOfFrames = len(kept)
    ds.PixelData = np.ascontiguousarray(frames[kept]).tobytes()
    ds.save_as(path)


def ball_mean(image: sitk.Image, centre_lps, radius_mm: float) -> float:
    """Mean of an image within a ball around an LPS point."""
    arr = sitk.GetArrayViewFromImage(image)
    zi, yi, xi = np.indices(arr.shape)
    idx = np.stack([xi, yi, zi], -1).astype(float)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    pts = (idx * image.GetSpacing()) @ direction.T + image.GetOrigin()
    inside = np.linalg.norm(pts - np.asarray(centre_lps), axis=-1) <= radius_mm
    return float(arr[inside].mean())


@pytest.fixture(scope="session")
def siemens_dwi_dir(tmp_path_factory) -> Path:
    """nibabel's real Siemens diffusion files (b=0 and b=1000 of one acquisition), unzipped."""
    out = tmp_path_factory.mktemp("siemens_dwi")
    for name in ("siemens_dwi_0.dcm.gz", "siemens_dwi_1000.dcm.gz"):
        with gzip.open(NIBABEL_DATA / name) as src, open(out / name[:-3], "wb") as dst:
            shutil.copyfileobj(src, dst)
    return out


def highdicom_seg(folder: Path, labels: list[str]):
    """A BINARY SEG written by highdicom over a small MR series it writes in ``folder / "t2"``,
    one segment per label: segment 1 a 3x4x5 box (the truth), each further one a single voxel.
    Returns the SEG, the series read as the reference image, and the truth ((k, j, i) array)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    import radimt
    from radimt.synth.writer import SeriesSpec, write_volume

    grid = Grid((12, 10, 6), (0.9, 0.9, 2.0), (-5.0, 3.0, 10.0))
    spec = SeriesSpec("hd", "t2", 4, "t2", "MR", frame_of_reference="mr")
    paths = write_volume(str(folder / "t2"), spec, np.ones((6, 10, 12), np.uint16), grid)
    sources = sorted((pydicom.dcmread(p) for p in paths), key=lambda d: int(d.InstanceNumber))
    truth = np.zeros((6, 10, 12), np.uint8)
    truth[2:5, 3:7, 4:9] = 1
    planes = [truth] + [np.zeros_like(truth) for _ in labels[1:]]
    for n, plane in enumerate(planes[1:]):
        plane.flat[n % plane.size] = 1
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=np.stack(planes, axis=-1),
        segmentation_type="BINARY",
        segment_descriptions=[
            hd.seg.SegmentDescription(
                n, name, codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Lesion, "MANUAL"
            )
            for n, name in enumerate(labels, start=1)
        ],
        series_instance_uid=hd.UID(),
        series_number=50,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="1",
        device_serial_number="1",
    )
    reference = radimt.dicom.read_volume(radimt.scan(folder / "t2")[0])
    return seg, reference, truth
