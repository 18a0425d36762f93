"""tic.png drawn into a kept figure is the plot a new figure gives, pixel for pixel."""

from __future__ import annotations

import dataclasses
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from radimt.kinetics import kinetic_curve
from radimt.report.curve_plot import write_curve_png
from tests.test_kinetics import synthetic_dce

# Curves of every type and initial class, with and without the most suspicious curve, on two
# time grids: each one's plot must forget everything of the one before it (limits, bands, legend).
CASES = [
    (150.0, -0.3, False, None),
    (35.0, 0.3, False, None),
    (75.0, 0.0, True, None),
    (300.0, -0.5, False, (0.0, 60.0, 120.0, 400.0, 800.0)),
    (60.0, 0.1, False, None),
]


def _curves():
    for initial, delayed, drop_suspicious, times in CASES:
        dce, mask = synthetic_dce(initial, delayed, **({"times": times} if times else {}))
        curve = kinetic_curve(dce, mask)
        yield dataclasses.replace(curve, most_suspicious=None) if drop_suspicious else curve


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGBA"))


def test_a_kept_figure_draws_what_a_new_figure_draws(tmp_path):
    curves = list(_curves())
    assert len({c.curve_type for c in curves}) == 3  # the cases cover every type
    for k, curve in enumerate(curves):
        write_curve_png(curve, tmp_path / f"kept_{k}.png")
        fig = curve.plot()
        fig.savefig(tmp_path / f"new_{k}.png", format="png")
        plt.close(fig)
    for k in range(len(curves)):
        kept, new = _pixels(tmp_path / f"kept_{k}.png"), _pixels(tmp_path / f"new_{k}.png")
        assert kept.shape == new.shape == (350, 500, 4)
        differing = np.count_nonzero((kept != new).any(axis=2))
        assert differing == 0, f"curve {k}: {differing} pixels differ"
    # the plots differ from each other: the comparison above can fail
    assert not np.array_equal(_pixels(tmp_path / "kept_0.png"), _pixels(tmp_path / "kept_1.png"))


def test_a_plot_that_failed_half_drawn_leaves_nothing_in_the_next(tmp_path):
    good, other = list(_curves())[:2]
    nan = np.full(len(good.times), np.nan)
    broken = dataclasses.replace(good, mean=dataclasses.replace(good.mean, enhancement=nan))
    write_curve_png(other, tmp_path / "before.png")
    with pytest.raises(ValueError), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's all-NaN warning, whether or not given
        write_curve_png(broken, tmp_path / "broken.png")  # its bands drawn, then its limits refused
    assert not (tmp_path / "broken.png").exists()
    write_curve_png(good, tmp_path / "tic.png")
    fig = good.plot()
    fig.savefig(tmp_path / "new.png", format="png")
    plt.close(fig)
    assert np.array_equal(_pixels(tmp_path / "tic.png"), _pixels(tmp_path / "new.png"))
