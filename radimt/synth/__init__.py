"""Synthetic studies with known ground truth: the phantoms behind ``sample_dicom/``, the tests,
the benchmarks and the examples in radimt's docstrings.

Everything here is deterministic and contains no patient data.

Examples
--------
>>> import radimt
>>> study, truth = radimt.synth.example_study()
>>> truth["kinetics"]["curve_type"], truth["lesion"]["diameter_mm"]
('washout', 14.0)
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from typing import Any

from radimt.dicom.study import Study, load_study
from radimt.synth.phantom import Lesion
from radimt.synth.studies import MRStudySpec, write_mr_study

__all__ = ["example_study", "example_study_folder"]


@lru_cache(maxsize=1)
def _example(folder: str | None) -> tuple[str, dict[str, Any]]:
    folder = folder or tempfile.mkdtemp(prefix="radimt-example-")
    spec = MRStudySpec(
        "example",
        Lesion((100.0, -6.0, 4.0), 14.0, "sphere"),
        initial_enhancement=150.0,
        delayed_change=-0.3,
        lesion_adc=0.85,
        seed=11,
        extras=False,
    )
    truth = write_mr_study(folder, spec)
    truth["seed_lps"] = tuple(truth["lesion"]["centre_lps"])
    truth["diameter_mm"] = truth["lesion"]["diameter_mm"]
    return folder, truth


def example_study_folder(folder: str | os.PathLike[str] | None = None) -> tuple[str, dict[str, Any]]:
    """Write the example breast MRI (once per process) and return its folder and ground truth.

    A 14 mm washout carcinoma (initial enhancement 150 %, delayed change -30 %, ADC 0.85 × 10⁻³
    mm²/s) in a 96 × 96 × 24 DCE (6 phases), DWI (b 0, 800), ADC and T2. ``truth["seed_lps"]``
    is the lesion's centre in LPS mm, ``truth["diameter_mm"]`` its diameter.
    """
    return _example(os.fspath(folder) if folder is not None else None)


def example_study(folder: str | os.PathLike[str] | None = None) -> tuple[Study, dict[str, Any]]:
    """The example breast MRI of :func:`example_study_folder`, loaded, and its ground truth.

    Examples
    --------
    >>> import radimt
    >>> study, truth = radimt.synth.example_study()
    >>> study.roles, truth["kinetics"]["curve_type"]
    (['dce', 'dwi', 'adc', 't1', 't2'], 'washout')
    """
    path, truth = example_study_folder(folder)
    return load_study(path), truth
