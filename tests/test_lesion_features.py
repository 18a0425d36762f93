"""Domain features on known phantoms, and the one-row-per-lesion assembly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

import radimt
from radimt.analysis import AnalysisConfig, lesion_features
from radimt.domain import kinetic_heterogeneity, margin_sharpness, rim_core
from radimt.synth.phantom import Lesion, lesion_fraction
from radimt.synth.writer import Grid
from tests.conftest import SAMPLE_DICOM

GRID = Grid((40, 40, 40), (0.5, 0.5, 0.5), (0.0, 0.0, 0.0))
LESION = Lesion((10.0, 10.0, 10.0), 12.0)


def _image(values: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(values.astype(np.float32))
    image.SetSpacing(GRID.spacing)
    return image


@pytest.fixture(scope="module")
def sphere():
    fraction = lesion_fraction(GRID, LESION)
    mask = _image(fraction >= 0.5)
    return fraction, sitk.Cast(mask, sitk.sitkUInt8)


def test_rim_core_on_a_lesion_with_a_2mm_bright_rim(sphere):
    fraction, mask = sphere
    from scipy import ndimage

    depth = ndimage.distance_transform_edt(fraction >= 0.5, sampling=0.5)
    values = np.where(depth <= 2.0, 120.0, 40.0) * (fraction >= 0.5)
    result = rim_core(_image(values), mask, thickness_mm=2.0)
    assert result["rim_mean"] == pytest.approx(120.0) and result["core_mean"] == pytest.approx(40.0)
    assert result["rim_core_ratio"] == pytest.approx(3.0) and 0 < result["rim_fraction"] < 1


def test_margin_sharpness_separates_sharp_from_blurred_edges(sphere):
    fraction, mask = sphere
    sharp = margin_sharpness(_image(100 * fraction), mask)
    from scipy import ndimage

    blurred = margin_sharpness(_image(ndimage.gaussian_filter(100 * fraction, 4.0)), mask)  # 2 mm blur
    assert sharp > 2 * blurred
    assert 0.1 < blurred < 0.5  # about 1 / edge width in mm


def test_kinetic_heterogeneity_measures_spread(sphere):
    _, mask = sphere
    rng = np.random.default_rng(0)
    pe = _image(rng.normal(100, 15, (40, 40, 40)))
    ser = _image(rng.normal(1.0, 0.2, (40, 40, 40)))
    result = kinetic_heterogeneity(pe, ser, mask)
    assert result["pe_sd_pct"] == pytest.approx(15, rel=0.1)
    assert result["ser_sd"] == pytest.approx(0.2, rel=0.1)
    assert result["pe_iqr_pct"] == pytest.approx(1.349 * 15, rel=0.1)


def test_one_row_for_the_published_case():
    study = radimt.load_study(SAMPLE_DICOM / "imt_case")
    truth = json.loads((SAMPLE_DICOM / "imt_case" / "truth.json").read_text())
    centre = truth["lesion"]["centre_lps"]
    dce_mask = radimt.segment_from_seed(radimt.subtraction(study.dce, 1), centre)
    ct_mask = radimt.segment_from_seed(study.ct, truth["ct"]["centre_lps"], modality="ct")
    row = lesion_features(
        study,
        {"dce": dce_mask, "ct": ct_mask},
        AnalysisConfig(roles=("dce", "adc"), image_types=["Original"]),
    )
    assert abs(row["lesion_longest_diameter_mm"] - 12.0) <= 1.5
    assert row["kinetic_curve_type"] == "II" and row["kinetic_initial_phase"] == "medium"
    assert row["adc_median_um2_ms"] < 1.3
    assert row["ct_rim_core_ratio"] > 1.2  # heterogeneous rim enhancement
    assert "dce_original_glcm_Contrast" in row and "adc_original_firstorder_Median" in row
    assert not any(k.startswith("dce_log") for k in row)
    assert set(row.provenance["roles"]) == {"dce", "adc"}
    # Deterministic: the same inputs give the same row, in the same order.
    again = lesion_features(
        study,
        {"dce": dce_mask, "ct": ct_mask},
        AnalysisConfig(roles=("dce", "adc"), image_types=["Original"]),
    )
    assert list(again.items()) == list(row.items())


_THREADED_ROW = """
import json, sys
import SimpleITK as sitk
import radimt
from radimt.analysis import AnalysisConfig, lesion_features
case = sys.argv[1]
study = radimt.load_study(case)
truth = json.load(open(case + "/truth.json"))
mask = radimt.segment_from_seed(radimt.subtraction(study.dce, 1), truth["lesion"]["centre_lps"])
sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(sys.argv[2]))
config = AnalysisConfig(roles=("dce", "t2", "adc"), image_types=["Original", "LoG"])
row = list(lesion_features(study, mask, config).items())
assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == int(sys.argv[2])  # restored
print(json.dumps(row))
"""


def test_roles_on_two_threads_give_the_serial_row_from_a_cold_start():
    """The roles' features computed on two threads equal those computed one after the other, bit
    for bit and in the same order, in fresh processes: there both threads build pyradiomics'
    extractors at once, whose parameter validation is not thread-safe (without radimt's lock
    most such runs failed). The roles' threads run SimpleITK's filters on one thread each, and
    SimpleITK's setting is the caller's again afterwards."""
    import subprocess
    import sys

    def row(threads: int) -> list:
        done = subprocess.run(
            [sys.executable, "-c", _THREADED_ROW, str(SAMPLE_DICOM / "imt_case"), str(threads)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.splitlines()[-1])

    serial = row(1)
    assert len(serial) > 300 and any(key.startswith("t2_log") for key, _ in serial)
    for _ in range(2):
        assert row(2) == serial


def test_other_frame_of_reference_is_left_out_with_the_reason():
    study = radimt.load_study(SAMPLE_DICOM / "imt_case")
    truth = json.loads((SAMPLE_DICOM / "imt_case" / "truth.json").read_text())
    dce_mask = radimt.segment_from_seed(radimt.subtraction(study.dce, 1), truth["lesion"]["centre_lps"])
    row = lesion_features(study, dce_mask, AnalysisConfig(roles=("dce",), image_types=["Original"]))
    assert "frame of reference" in row.provenance["skipped_roles"]["ct"]
    assert not any(k.startswith("ct_") for k in row)


def test_feature_rows_give_byte_identical_csv(tmp_path):
    from radimt.io.tables import write_table

    study = radimt.load_study(SAMPLE_DICOM / "carcinoma_washout")
    truth = json.loads((SAMPLE_DICOM / "carcinoma_washout" / "truth.json").read_text())
    config = AnalysisConfig(roles=("dce",), image_types=["Original"])
    outputs = []
    for attempt in range(2):
        mask = radimt.segment_from_seed(radimt.subtraction(study.dce, 1), truth["lesion"]["centre_lps"])
        row = {
            "study_id": "carcinoma_washout",
            "lesion_id": "1",
            "label": "carcinoma",
            **lesion_features(study, mask, config),
        }
        path = tmp_path / f"features{attempt}.csv"
        columns = write_table([row], path)
        outputs.append(path.read_bytes())
    assert outputs[0] == outputs[1]
    assert columns[:3] == ["study_id", "lesion_id", "label"] and columns[3:] == sorted(columns[3:])
    assert b"nan" not in outputs[0].lower()


def _padded(image, factor: int = 4):
    """``image`` in a field of view ``factor`` times larger per axis, same physical place."""
    import SimpleITK as sitk

    extra = [n * (factor - 1) // 2 for n in image.GetSize()]
    return sitk.ConstantPad(image, extra, extra, 0)


def test_per_lesion_domain_features_follow_the_lesion_not_the_field_of_view():
    """Timing-free: the same lesion in a 4x larger field of view gives the same values, and the
    arrays numpy allocates do not grow with it (rim/core, margin sharpness, kinetic spread, ADC
    statistics, longest diameter)."""
    import tracemalloc

    from radimt.domain import kinetic_heterogeneity, margin_sharpness, rim_core
    from radimt.synth.phantom import lesion_image

    image, mask, _ = lesion_image("sphere", 6.0, size=(40, 40, 30))
    big_image, big_mask = _padded(image), _padded(mask)
    assert big_image.GetSize() == (160, 160, 120)

    def measured(function, *args):
        tracemalloc.start()
        value = function(*args)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return value, peak

    from radimt.diffusion import adc_stats
    from radimt.measure import longest_diameter_mm

    def adc(i, m):  # an ADC-like map: every lesion voxel usable
        return adc_stats(sitk.Abs(i) + 0.1, m)

    for function in (
        rim_core,
        margin_sharpness,
        lambda i, m: kinetic_heterogeneity(i, i, m),
        adc,
        lambda i, m: longest_diameter_mm(m),
    ):
        small, small_peak = measured(function, image, mask)
        large, large_peak = measured(function, big_image, big_mask)
        if isinstance(small, dict):
            assert large.keys() == small.keys()
            for key in small:
                assert large[key] == pytest.approx(small[key], rel=1e-6, nan_ok=True), key
        else:
            assert large == pytest.approx(small, rel=1e-6)
        assert large_peak < 1.5 * small_peak + 1_000_000, (function, small_peak, large_peak)


def test_the_dce_subtraction_is_computed_once_per_study():
    study = radimt.load_study(SAMPLE_DICOM / "imt_case")
    first = radimt.subtraction(study.dce, 1)
    assert radimt.subtraction(study.dce, 1) is first and radimt.subtraction(study.dce, 2) is not first
    mask = radimt.segment_from_seed(first, (108.0, 0.0, -10.0))
    lesion_features(study, {"dce": mask}, AnalysisConfig(roles=("dce",)))
    assert [k for k in study.dce.derived] == [("subtraction", 1, 0), ("subtraction", 2, 0)]
