"""Synthetic breast studies written as DICOM, each with a JSON of its ground truth.

``write_mr_study`` writes a breast MRI (localizer, T2, DWI, ADC map, DCE in one of the three
layouts scanners use); ``write_ct_series``, ``write_mammograms`` and ``write_ultrasound_image``
add the other modalities; ``write_published_case`` puts them together as the case this project
grew from; ``write_sample_dicom`` writes the small set shipped in ``sample_dicom/``.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage

from radimt.synth import kinetics_truth as kt
from radimt.synth.phantom import (
    Lesion,
    breast_tissue,
    disk_fraction,
    enhancement_curve,
    lesion_fraction,
    lesion_shell,
)
from radimt.synth.writer import (
    Grid,
    SeriesSpec,
    clock,
    write_enhanced_mr,
    write_mammogram,
    write_secondary_capture,
    write_ultrasound,
    write_volume,
)

DCE_LAYOUTS = ("single", "per_phase", "pre_post", "enhanced")
ADC_UNITS = {"micro": 1e3, "milli": 1.0, "si": 1e-3}  # stored value per 10⁻³ mm²/s
DCE_START_S = 600.0


@dataclass
class MRStudySpec:
    """Everything that defines one synthetic breast MRI.

    Intensities are arbitrary MR units; enhancement in percent; ADC in 10⁻³ mm²/s.
    """

    study_id: str
    lesion: Lesion
    initial_enhancement: float = 80.0
    delayed_change: float = 0.0
    lesion_adc: float = 1.0
    gland_adc: float = 1.9
    dce_layout: str = "single"
    b_convention: str = "standard"
    b_values: tuple[float, ...] = (0.0, 800.0)
    adc_units: str = "micro"
    times: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0, 360.0, 450.0)
    grid: Grid = field(default_factory=lambda: Grid((96, 96, 24), (1.0, 1.0, 2.5), (42.0, -48.0, -30.0)))
    noise: float = 6.0
    lesion_t1: float = 120.0
    lesion_t2: float = 330.0
    lesion_dwi_b0: float = 320.0
    seed: int = 0
    extras: bool = True  # a localizer and a secondary capture beside the real series
    # Phase times in TriggerTime as well as AcquisitionTime, as some scanners export DCE; the MR
    # Image module allows TriggerTime only for gated acquisitions, so dciodvfy flags it.
    trigger_time: bool = True


@dataclass
class BreastModel:
    """Breast support, glandular fraction and the lesion's partial-volume fraction on a grid."""

    grid: Grid
    breast: np.ndarray
    gland: np.ndarray
    lesion: np.ndarray


def breast_model(grid: Grid, lesion: Lesion, rng: np.random.Generator) -> BreastModel:
    """The synthetic left breast used by every MR/CT study (chest wall at y = +40 mm)."""
    breast, gland = breast_tissue(
        grid,
        chest_wall_y=40.0,
        nipple_y=-45.0,
        centre_x=90.0,
        centre_z=0.0,
        half_width=46.0,
        half_height=30.0,
        rng=rng,
    )
    return BreastModel(grid, breast, gland, lesion_fraction(grid, lesion))


def _mix(model: BreastModel, air: float, fat: float, gland: float, lesion: float) -> np.ndarray:
    tissue = np.where(model.breast, fat + (gland - fat) * model.gland, air)
    return (tissue * (1 - model.lesion) + lesion * model.lesion).astype(np.float32)


def _noisy(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Rician-like magnitude noise, rounded to stored unsigned integers."""
    real = signal + rng.normal(0, sigma, signal.shape)
    imag = rng.normal(0, sigma, signal.shape)
    return np.clip(np.round(np.hypot(real, imag)), 0, 65535).astype(np.uint16)


def _series(spec: MRStudySpec, name: str, number: int, description: str, **attrs) -> SeriesSpec:
    attrs.setdefault("PatientAge", "052Y")
    return SeriesSpec(spec.study_id, name, number, description, "MR", attrs, frame_of_reference="mr")


def write_mr_study(folder: str, spec: MRStudySpec) -> dict:
    """Write one synthetic breast MRI below ``folder`` and return its ground truth."""
    rng = np.random.default_rng(spec.seed)
    grid = spec.grid
    model = breast_model(grid, spec.lesion, rng)
    mr = os.path.join(folder, "MR")

    if spec.extras:
        loc_grid = Grid((64, 64, 1), (3.0, 3.0, 5.0), (90.0, -96.0, 96.0), (0, 0, -1, 1, 0, 0, 0, -1, 0))
        loc = _noisy(np.full((1, 64, 64), 80.0), 5, rng)
        write_volume(
            os.path.join(mr, "loc"),
            _series(
                spec,
                "loc",
                1,
                "localizer",
                ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"],
                AcquisitionTime=clock(0),
            ),
            loc,
            loc_grid,
        )

    t2 = _noisy(_mix(model, 0, 300, 200, spec.lesion_t2), spec.noise, rng)
    write_volume(
        os.path.join(mr, "t2"),
        _series(spec, "t2", 2, "t2_tse_tra", EchoTime=90, RepetitionTime=4000, AcquisitionTime=clock(60)),
        t2,
        grid,
    )

    # Diffusion: one series holding every b-value, b-value tags in the chosen vendor convention.
    lesion_adc, gland_adc, fat_adc = spec.lesion_adc, spec.gland_adc, 0.6
    dwi_volumes = []
    for b in spec.b_values:
        fat_s = 40 * np.exp(-b * fat_adc * 1e-3)
        gland_s = 220 * np.exp(-b * gland_adc * 1e-3)
        lesion_s = spec.lesion_dwi_b0 * np.exp(-b * lesion_adc * 1e-3)
        dwi_volumes.append(_noisy(_mix(model, 0, fat_s, gland_s, lesion_s), spec.noise / 2, rng))
    n = grid.size[2]
    per_slice = [
        {"b_value": (b, spec.b_convention), "AcquisitionTime": clock(300)}
        for b in spec.b_values
        for _ in range(n)
    ]
    write_volume(
        os.path.join(mr, "dwi"),
        _series(
            spec,
            "dwi",
            3,
            "ep2d_diff_tra",
            EchoTime=70,
            RepetitionTime=5000,
            ImageType=["ORIGINAL", "PRIMARY", "DIFFUSION", "TRACEW"],
        ),
        np.concatenate(dwi_volumes),
        grid,
        per_slice=per_slice,
    )

    adc = np.where(model.breast, fat_adc + (gland_adc - fat_adc) * model.gland, 0.0)
    adc = adc * (1 - model.lesion) + lesion_adc * model.lesion
    adc = np.where(model.breast | (model.lesion > 0), adc + rng.normal(0, 0.03, adc.shape), 0)
    unit = ADC_UNITS[spec.adc_units]
    slope = 1.0 if spec.adc_units == "micro" else (1e-3 if spec.adc_units == "milli" else 1e-6)
    stored = np.clip(np.round(np.clip(adc, 0, None) * unit / slope), 0, 65535).astype(np.uint16)
    write_volume(
        os.path.join(mr, "adc"),
        _series(
            spec,
            "adc",
            4,
            "ep2d_diff_tra_ADC",
            ImageType=["DERIVED", "PRIMARY", "DIFFUSION", "ADC"],
            AcquisitionTime=clock(300),
        ),
        stored,
        grid,
        slope=slope,
    )

    truth_times = _write_dce(mr, spec, model, rng)

    if spec.extras:
        shot = (np.clip(t2[grid.size[2] // 2] / 4, 0, 255)).astype(np.uint8)
        write_secondary_capture(
            os.path.join(mr, "sc", "screen"), SeriesSpec(spec.study_id, "sc", 99, "Screen Save", "OT"), shot
        )

    rim, core = lesion_shell(model.lesion, grid, 2.0)
    return {
        "study_id": spec.study_id,
        "lesion": {
            "centre_lps": list(spec.lesion.centre),
            "diameter_mm": spec.lesion.diameter,
            "shape": spec.lesion.shape,
            "volume_mm3": float(model.lesion.sum() * np.prod(grid.spacing)),
        },
        "kinetics": {
            "times_s": list(truth_times),
            "initial_enhancement_pct": spec.initial_enhancement,
            "initial_phase": kt.initial_class(spec.initial_enhancement),
            "delayed_change": spec.delayed_change,
            "curve_type": kt.delayed_class(spec.delayed_change),
            "kuhl_type": kt.KUHL_TYPE[kt.delayed_class(spec.delayed_change)],
            "relative_enhancement_pct": [
                float(x)
                for x in enhancement_curve(
                    np.array(truth_times), spec.initial_enhancement, spec.delayed_change
                )
            ],
        },
        "adc": {
            "lesion_1e-3_mm2_s": lesion_adc,
            "gland_1e-3_mm2_s": gland_adc,
            "stored_units": spec.adc_units,
        },
        "dwi": {"b_values": list(spec.b_values), "b_value_convention": spec.b_convention},
        "dce": {"layout": spec.dce_layout},
        "grid": {"size": list(grid.size), "spacing": list(grid.spacing), "origin": list(grid.origin)},
        "rim_voxels": int(rim.sum()),
        "core_voxels": int(core.sum()),
    }


def _write_dce(mr: str, spec: MRStudySpec, model: BreastModel, rng: np.random.Generator) -> list[float]:
    times = np.asarray(spec.times, float)
    lesion_re = enhancement_curve(times, spec.initial_enhancement, spec.delayed_change)
    gland_re = enhancement_curve(times, 15.0, 0.3)  # mild persistent background enhancement
    phases = []
    for re_lesion, re_gland in zip(lesion_re, gland_re, strict=True):
        gland = 150 * (1 + re_gland / 100)
        phases.append(
            _noisy(_mix(model, 0, 90, gland, spec.lesion_t1 * (1 + re_lesion / 100)), spec.noise, rng)
        )
    grid = spec.grid
    n = grid.size[2]
    seq = dict(EchoTime=1.8, RepetitionTime=4.5, FlipAngle=10)
    layout = spec.dce_layout
    if layout == "single":
        per_slice = [
            {
                "TemporalPositionIdentifier": p + 1,
                **({"TriggerTime": f"{t * 1000:.1f}"} if spec.trigger_time else {}),
                "AcquisitionTime": clock(DCE_START_S + t),
            }
            for p, t in enumerate(times)
            for _ in range(n)
        ]
        write_volume(
            os.path.join(mr, "dce"),
            _series(
                spec,
                "dce",
                5,
                "t1_fl3d_tra_dynaVIEWS",
                NumberOfTemporalPositions=len(times),
                ContrastBolusAgent="Gadobutrol",
                **seq,
            ),
            np.concatenate(phases),
            grid,
            per_slice=per_slice,
        )
    elif layout == "per_phase":
        for p, (t, phase) in enumerate(zip(times, phases, strict=True)):
            desc = "Ph1/dyn_pre" if p == 0 else f"Ph{p + 1}/dyn"
            extra = {} if p == 0 else {"ContrastBolusAgent": "Gadoterate"}
            write_volume(
                os.path.join(mr, f"dce{p + 1}"),
                _series(
                    spec,
                    f"dce{p}",
                    10 + p,
                    desc,
                    AcquisitionTime=clock(DCE_START_S + t),
                    SeriesTime=clock(DCE_START_S + t),
                    **seq,
                    **extra,
                ),
                phase,
                grid,
            )
    elif layout == "pre_post":
        write_volume(
            os.path.join(mr, "pre"),
            _series(spec, "pre", 10, "t1 fl3d tra fs", AcquisitionTime=clock(DCE_START_S + times[0]), **seq),
            phases[0],
            grid,
        )
        per_slice = [
            {
                "TemporalPositionIdentifier": p + 1,
                **({"TriggerTime": f"{(t - times[1]) * 1000:.1f}"} if spec.trigger_time else {}),
                "AcquisitionTime": clock(DCE_START_S + t),
            }
            for p, t in enumerate(times[1:])
            for _ in range(n)
        ]
        write_volume(
            os.path.join(mr, "post"),
            _series(
                spec,
                "post",
                11,
                "t1 fl3d tra fs dynamic post",
                NumberOfTemporalPositions=len(times) - 1,
                ContrastBolusAgent="Gadobutrol",
                **seq,
            ),
            np.concatenate(phases[1:]),
            grid,
            per_slice=per_slice,
        )
    elif layout == "enhanced":
        write_enhanced_mr(
            os.path.join(mr, "dce_enhanced.dcm"),
            _series(spec, "dce", 5, "dyn_eTHRIVE", ContrastBolusAgent="Gadobutrol", **seq),
            phases,
            grid,
            frame_times_s=[DCE_START_S + t for t in times],
        )
    else:
        raise ValueError(f"unknown DCE layout {layout!r}; use one of {DCE_LAYOUTS}")
    return [float(t) for t in times]


def write_ct_series(
    folder: str,
    study_id: str,
    lesion: Lesion,
    seed: int = 0,
    grid: Grid | None = None,
    rim_hu: float = 130.0,
    core_hu: float = 80.0,
) -> dict:
    """A contrast CT of the same breast: the lesion with a rim enhancing more than its core."""
    rng = np.random.default_rng(seed)
    grid = grid or Grid((96, 96, 30), (1.0, 1.0, 2.0), (42.0, -48.0, -30.0))
    model = breast_model(grid, lesion, rng)
    rim, core = lesion_shell(model.lesion, grid, 2.0)
    hu = np.where(model.breast, -100 + 130 * model.gland, -1000.0)
    # Heterogeneous rim: the shell enhances patchily, the core stays low.
    patches = ndimage.gaussian_filter(rng.standard_normal(hu.shape), 1.5)
    patches /= patches.std() + 1e-9
    lesion_hu = np.where(rim, rim_hu + 12.0 * patches, core_hu)
    hu = hu * (1 - model.lesion) + lesion_hu * model.lesion + rng.normal(0, 10, hu.shape)
    stored = np.clip(np.round(hu + 1024), 0, 4095).astype(np.uint16)
    spec = SeriesSpec(
        study_id,
        "ct",
        20,
        "CT chest C+ 2mm",
        "CT",
        {
            "KVP": 120,
            "ConvolutionKernel": "B30f",
            "AcquisitionTime": clock(3600),
            "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
        },
        frame_of_reference="ct",
    )
    write_volume(os.path.join(folder, "CT"), spec, stored, grid, slope=1.0, intercept=-1024.0)
    return {
        "rim_hu": rim_hu,
        "core_hu": core_hu,
        "centre_lps": list(lesion.centre),
        "diameter_mm": lesion.diameter,
        "grid": {"size": list(grid.size), "spacing": list(grid.spacing)},
    }


def _mammogram(
    shape: tuple[int, int],
    lesion_rc: tuple[float, float],
    radius_px: float,
    rng: np.random.Generator,
    flip: bool,
) -> np.ndarray:
    rows, cols = shape
    rr, cc = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    # Breast: half-ellipse against the chest wall (left edge for a left breast in this phantom).
    inside = ((cc / (0.85 * cols)) ** 2 + ((rr - rows / 2) / (0.48 * rows)) ** 2) <= 1
    texture = ndimage.gaussian_filter(rng.standard_normal(shape), 6)
    texture = (texture - texture.mean()) / texture.std()
    thickness = np.sqrt(np.clip(1 - (cc / (0.85 * cols)) ** 2 - ((rr - rows / 2) / (0.48 * rows)) ** 2, 0, 1))
    density = np.where(inside, 900 + 900 * thickness + 180 * texture, 80)
    lesion = disk_fraction(shape, lesion_rc, radius_px, irregular=0.12, seed=3)
    lesion = ndimage.gaussian_filter(lesion, 2.0)  # a focal asymmetric density has soft edges
    image = density + 700 * lesion + rng.normal(0, 25, shape)
    image = np.clip(np.round(image), 0, 4095).astype(np.uint16)
    return image[:, ::-1].copy() if flip else image


def write_mammograms(
    folder: str,
    study_id: str,
    diameter_mm: float = 12.0,
    seed: int = 0,
    spacing_mm: float = 0.25,
    shape: tuple[int, int] = (400, 320),
) -> dict:
    """CC and MLO views of the left breast with a focal asymmetric density (12-bit MONOCHROME1)."""
    rng = np.random.default_rng(seed)
    views = {}
    radius_px = diameter_mm / 2 / spacing_mm
    for i, (view, rc) in enumerate((("CC", (250.0, 170.0)), ("MLO", (275.0, 150.0)))):
        image = _mammogram(shape, rc, radius_px, rng, flip=False)
        spec = SeriesSpec(
            study_id, f"mg_{view}", 30 + i, f"L {view}", "MG", {"AcquisitionTime": clock(-1800)}
        )
        write_mammogram(
            os.path.join(folder, "MG", f"L_{view}.dcm"),
            spec,
            image,
            pixel_spacing_mm=spacing_mm,
            laterality="L",
            view=view,
        )
        views[view] = {"centre_rc": list(rc), "diameter_mm": diameter_mm, "spacing_mm": spacing_mm}
    return views


def ultrasound_frame(
    shape: tuple[int, int],
    centre_rc: tuple[float, float],
    radius_px: float,
    rng: np.random.Generator,
    echo_tissue: float = 110.0,
    echo_lesion: float = 35.0,
) -> np.ndarray:
    """A B-mode frame: speckled tissue with a hypoechoic, well-circumscribed mass."""
    lesion = disk_fraction(shape, centre_rc, radius_px, irregular=0.04, seed=1)
    layers = ndimage.gaussian_filter(rng.standard_normal(shape), (12, 40)) * 15
    echo = echo_tissue + layers
    echo = echo * (1 - lesion) + echo_lesion * lesion
    speckle = rng.rayleigh(1.0, shape) / np.sqrt(np.pi / 2)
    speckle = ndimage.gaussian_filter(speckle, (1.2, 0.6))
    speckle /= speckle.mean()
    frame = echo * speckle
    frame[:30] = 0  # the console's text band, outside the calibrated region
    return np.clip(frame, 0, 255)


def write_ultrasound_image(
    folder: str,
    study_id: str,
    diameter_mm: float = 12.0,
    seed: int = 0,
    spacing_mm: float = 0.1,
    shape: tuple[int, int] = (300, 400),
    cine_frames: int = 1,
) -> dict:
    """An ultrasound image (or cine loop) of the lesion, RGB, calibrated in cm by its region."""
    rng = np.random.default_rng(seed)
    centre = (shape[0] * 0.55, shape[1] * 0.5)
    radius_px = diameter_mm / 2 / spacing_mm
    frames = np.stack([ultrasound_frame(shape, centre, radius_px, rng) for _ in range(cine_frames)])
    spec = SeriesSpec(study_id, "us", 40, "Breast US L 4 o'clock", "US", {"AcquisitionTime": clock(-900)})
    write_ultrasound(
        os.path.join(folder, "US", "us_1.dcm"),
        spec,
        frames,
        pixel_spacing_mm=spacing_mm,
        region=(0, 30, shape[1] - 1, shape[0] - 1),
    )
    return {
        "centre_rc": list(centre),
        "diameter_mm": diameter_mm,
        "spacing_mm": spacing_mm,
        "frames": cine_frames,
    }


PUBLISHED_CASE = {
    "age": 52,
    "size_mm": 12.0,
    "location": "lower outer quadrant, left breast",
    "mammography": "focal asymmetric density (CC and MLO)",
    "ultrasound": "1.2 cm hypoechoic, relatively well-circumscribed mass, scant flow",
    "mri": "mildly high T2; high DWI with low ADC; DCE medium initial enhancement, delayed plateau (type II)",
    "ct": "solitary mass with heterogeneous rim enhancement",
    "diagnosis": "inflammatory myofibroblastic tumour (IMT)",
}


def write_published_case(
    folder: str, study_id: str = "imt_case", seed: int = 7, trigger_time: bool = False
) -> dict:
    """The case this project grew from, as a multi-modality synthetic study (with its truth).

    ``trigger_time`` also writes the DCE phase times into TriggerTime, as some scanners do (the
    shipped sample does not: the MR Image module allows it only for gated acquisitions).
    """
    lesion = Lesion(centre=(108.0, 0.0, -10.0), diameter=12.0, shape="oval")
    spec = MRStudySpec(
        study_id,
        lesion,
        initial_enhancement=80.0,
        delayed_change=0.0,
        lesion_adc=1.0,
        dce_layout="single",
        b_convention="siemens",
        adc_units="micro",
        seed=seed,
        trigger_time=trigger_time,
    )
    truth = write_mr_study(folder, spec)
    truth["ct"] = write_ct_series(folder, study_id, lesion, seed=seed + 1)
    truth["mg"] = write_mammograms(folder, study_id, seed=seed + 2)
    truth["us"] = write_ultrasound_image(folder, study_id, seed=seed + 3)
    truth["published_case"] = PUBLISHED_CASE
    truth["label"] = "IMT"
    return truth


def sample_specs() -> list[tuple[MRStudySpec, str]]:
    """The MR-only sample studies beside the published case, with their labels."""
    return [
        (
            MRStudySpec(
                "carcinoma_washout",
                Lesion((100.0, -6.0, 4.0), 14.0, "spiculated"),
                initial_enhancement=150.0,
                delayed_change=-0.3,
                lesion_adc=0.85,
                dce_layout="per_phase",
                b_convention="ge",
                adc_units="micro",
                seed=11,
                extras=False,
            ),
            "carcinoma",
        ),
        (
            MRStudySpec(
                "fibroadenoma_persistent",
                Lesion((80.0, -10.0, 6.0), 16.0, "oval"),
                initial_enhancement=40.0,
                delayed_change=0.35,
                lesion_adc=1.6,
                dce_layout="pre_post",
                b_convention="philips",
                adc_units="si",
                seed=12,
                extras=False,
                trigger_time=False,
            ),
            "fibroadenoma",
        ),
    ]


def _write_json(path: str, payload: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(payload, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def write_sample_dicom(out: str) -> list[dict]:
    """Write the shipped sample studies, their truth files and ``manifest.csv`` into ``out``."""
    os.makedirs(out, exist_ok=True)
    truths = []
    case_dir = os.path.join(out, "imt_case")
    truth = write_published_case(case_dir)
    _write_json(os.path.join(case_dir, "truth.json"), truth)
    truths.append(truth)
    for spec, label in sample_specs():
        folder = os.path.join(out, spec.study_id)
        truth = write_mr_study(folder, spec)
        truth["label"] = label
        truth["spec"] = {
            k: v for k, v in asdict(spec).items() if k in ("dce_layout", "b_convention", "adc_units")
        }
        _write_json(os.path.join(folder, "truth.json"), truth)
        truths.append(truth)
    with open(os.path.join(out, "manifest.csv"), "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(
            ["study_id", "path", "lesion_id", "seed_x", "seed_y", "seed_z", "label", *OTHER_SEEDS]
        )
        for t in truths:
            x, y, z = t["lesion"]["centre_lps"]
            writer.writerow([t["study_id"], t["study_id"], "1", x, y, z, t["label"], *_other_seeds(t)])
    return truths


#: Per-modality seed columns of the sample manifest: the published case's lesion on ultrasound
#: and on both mammographic views (pixel column, row) and on CT (LPS mm, its own frame).
OTHER_SEEDS = (
    "us_seed_i",
    "us_seed_j",
    "mg_cc_seed_i",
    "mg_cc_seed_j",
    "mg_mlo_seed_i",
    "mg_mlo_seed_j",
    "ct_seed_x",
    "ct_seed_y",
    "ct_seed_z",
)


def _other_seeds(truth: dict) -> list:
    """A study's per-modality seeds from its truth (empty cells for the MR-only studies)."""
    if "us" not in truth:
        return [""] * len(OTHER_SEEDS)
    us_row, us_col = truth["us"]["centre_rc"]
    cc_row, cc_col = truth["mg"]["CC"]["centre_rc"]
    mlo_row, mlo_col = truth["mg"]["MLO"]["centre_rc"]
    return [us_col, us_row, cc_col, cc_row, mlo_col, mlo_row, *truth["ct"]["centre_lps"]]
