"""Loader benchmark: header scan, volume assembly and peak memory on a full-size study.

Writes (once, into benchmarks/data/, reused afterwards) a 512x512x160 MR series and a 6-phase
DCE of the same size (960 files), then prints median times over repeated runs:

- ``scan`` of the DCE folder (files per second),
- assembling the 160-slice MR volume: radimt, SimpleITK's ImageSeriesReader, and the raw read
  of the same files (``numpy.fromfile`` of every file) as the floor,
- ``load_study`` with every phase and the MR volume read,
- peak memory of ``load_study`` (in a fresh process) against the size of the decoded images.

Run: ``python benchmarks/bench_load.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from timing import median_time

import radimt
from radimt.dicom import read_volume
from radimt.dicom.header import read_frames
from radimt.dicom.scan import group_stacks
from radimt.synth.writer import Grid, SeriesSpec, clock, write_volume

DATA = Path(__file__).resolve().parent / "data" / "load_study"
SIZE = (512, 512, 160)
PHASES = 6


def write_data() -> None:
    marker = DATA / ".complete"
    if marker.exists():
        return
    print(f"writing benchmark study to {DATA} (once) ...", flush=True)
    rng = np.random.default_rng(0)
    grid = Grid(SIZE, (0.7, 0.7, 1.0), (-180.0, -180.0, -80.0))
    base = np.linspace(50, 400, SIZE[0], dtype=np.float32)[None, None, :]
    volume = lambda: np.clip(base + rng.normal(0, 20, SIZE[::-1]), 0, 4095).astype(np.uint16)  # noqa: E731
    t1 = SeriesSpec("bench", "t2", 2, "t2_tse_tra", "MR", {"EchoTime": 90}, frame_of_reference="mr")
    write_volume(str(DATA / "t2"), t1, volume(), grid)
    n = SIZE[2]
    phases = np.concatenate([volume() for _ in range(PHASES)])
    per_slice = [
        {
            "TemporalPositionIdentifier": p + 1,
            "TriggerTime": f"{p * 60000.0:.1f}",
            "AcquisitionTime": clock(600 + 60 * p),
        }
        for p in range(PHASES)
        for _ in range(n)
    ]
    dce = SeriesSpec("bench", "dce", 5, "t1_fl3d_dyn", "MR", {"EchoTime": 1.8}, frame_of_reference="mr")
    write_volume(str(DATA / "dce"), dce, phases, grid, per_slice=per_slice)
    marker.touch()


def raw_read(files: list[str]) -> None:
    for f in files:
        np.fromfile(f, dtype=np.uint8)


def raw_into_new_volume(series) -> np.ndarray:
    """The files' pixel bytes read into one new array of the volume's size: the least any
    reader that returns a fresh volume must do (no header parsing, no geometry)."""
    frames = series.frames
    out = np.empty((len(frames), frames[0].rows, frames[0].columns), np.int16)
    for k, frame in enumerate(frames):
        with open(frame.header.path, "rb") as fh:
            fh.seek(frame.header.pixel_offset)
            fh.readinto(out[k])
    return out


def sitk_read(files: list[str]) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    return reader.Execute()


PEAK_SCRIPT = """
import re, sys, radimt
def rss(field):
    return int(re.search(field + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024
base = rss("VmRSS")
study = radimt.load_study(sys.argv[1])
images = study.dce.phases + [study.t2]
decoded = sum(im.GetNumberOfPixels() * im.GetSizeOfPixelComponent() for im in images)
print(rss("VmHWM") - base, decoded)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    write_data()
    dce_files = sorted(str(p) for p in (DATA / "dce").iterdir())
    t2_files = sorted(str(p) for p in (DATA / "t2").iterdir())
    raw_read(dce_files + t2_files)  # warm the page cache for every contender alike

    t_scan, _ = median_time(lambda: radimt.scan(DATA / "dce"), args.repeats)
    t_full, _ = median_time(
        lambda: group_stacks([f for p in dce_files for f in read_frames(p)]), args.repeats
    )
    [t2_series] = [s for s in radimt.scan(DATA / "t2")]
    gdcm_order = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(DATA / "t2"))
    t_raw, _ = median_time(lambda: raw_read(t2_files), args.repeats)
    t_ours, _ = median_time(lambda: read_volume(t2_series), args.repeats)
    t_sitk, _ = median_time(lambda: sitk_read(list(gdcm_order)), args.repeats)
    t_fresh, _ = median_time(lambda: raw_into_new_volume(t2_series), args.repeats)
    t_alloc, _ = median_time(lambda: sitk.Image(list(SIZE), sitk.sitkInt16), args.repeats)
    t_study, _ = median_time(
        lambda: (lambda s: (s.dce, s.t2))(radimt.load_study(DATA)), max(1, args.repeats // 2)
    )
    t_raw_all, _ = median_time(lambda: raw_read(dce_files + t2_files), max(1, args.repeats // 2))

    ours_image, sitk_image = read_volume(t2_series), sitk_read(list(gdcm_order))
    same = np.array_equal(sitk.GetArrayFromImage(ours_image), sitk.GetArrayFromImage(sitk_image))
    peak, decoded = map(int, subprocess.check_output([sys.executable, "-c", PEAK_SCRIPT, str(DATA)]).split())

    print(
        f"\nradimt {radimt.__version__}, SimpleITK {sitk.Version.VersionString()}, "
        f"{os.cpu_count()} cores; medians of {args.repeats} runs (page cache warm)\n"
    )
    rows = [
        (
            "scan DCE folder (960 files, headers)",
            t_scan,
            f"{len(dce_files) / t_scan:,.0f} files/s (target >= 3,000)",
        ),
        (
            "  every header read in full (pydicom per file)",
            t_full,
            f"{len(dce_files) / t_full:,.0f} files/s; the series templates {t_full / t_scan:.1f}x faster",
        ),
        ("raw read of the MR files (np.fromfile)", t_raw, "1.00x raw (baseline)"),
        ("radimt read_volume, MR 512x512x160", t_ours, f"{t_ours / t_raw:.2f}x raw (target <= 3x)"),
        (
            "  floor: raw read into one new volume buffer",
            t_fresh,
            f"{t_fresh / t_raw:.2f}x raw (a fresh 80 MB); read_volume {t_ours / t_fresh:.2f}x this",
        ),
        (
            "  of which SimpleITK allocates the image",
            t_alloc,
            "SimpleITK zero-fills every new image; radimt's copy into it adds the rest",
        ),
        (
            "SimpleITK ImageSeriesReader, same files",
            t_sitk,
            f"{t_sitk / t_raw:.2f}x raw; radimt {t_sitk / t_ours:.1f}x faster",
        ),
        ("raw read of all 1,120 study files", t_raw_all, "1.00x raw (baseline)"),
        ("load_study + 6 DCE phases + MR", t_study, f"{t_study / t_raw_all:.2f}x raw"),
    ]
    print(f"{'step':<44} {'median s':>9}  ratio")
    print("-" * 100)
    for name, t, note in rows:
        print(f"{name:<44} {t:>9.3f}  {note}")
    print(
        f"\npeak memory of load_study: {peak / 2**20:,.0f} MiB for {decoded / 2**20:,.0f} MiB "
        f"of decoded images = {peak / decoded:.2f}x (target <= 1.5x)"
    )
    print(f"radimt volume equals SimpleITK's: {same}")


if __name__ == "__main__":
    main()
