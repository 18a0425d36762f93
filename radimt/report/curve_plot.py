"""A lesion's time-intensity plot as a PNG (``tic.png``), cheaply enough for every lesion of a batch.

:meth:`radimt.KineticCurve.plot` draws it; this module draws each curve into one figure kept per
thread: the axes, their ticks and the laid-out texts are made once, and a lesion's plot only
replaces the curves, the shaded bands and the legend. A new figure took 1.6-1.9 times a redraw's
time (matplotlib makes every tick and measures every text on a figure's first draw), and the PNG
is the same, pixel for pixel (tested).
"""

from __future__ import annotations

import os
import threading

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from radimt.io.atomic import atomic_path
from radimt.kinetics import PLOT_DPI, PLOT_INCHES, PLOT_MARGINS, KineticCurve

_KEPT = threading.local()  # matplotlib's figures are not for sharing between threads


def write_curve_png(curve: KineticCurve, path: str | os.PathLike[str]) -> None:
    """Write ``curve``'s plot (:meth:`radimt.KineticCurve.plot`) to ``path`` as PNG, atomically."""
    figure = getattr(_KEPT, "figure", None)
    if figure is None:
        figure = Figure(figsize=PLOT_INCHES, dpi=PLOT_DPI)
        FigureCanvasAgg(figure)
        figure.subplots_adjust(**PLOT_MARGINS)
        figure.add_subplot()
        _KEPT.figure = figure
    ax = figure.axes[0]
    _clear_curves(ax)
    curve.plot(ax)
    with atomic_path(path) as tmp:  # zlib's fastest level, as the overlays: 4 % larger
        figure.savefig(tmp, format="png", pil_kwargs={"compress_level": 1})


def _clear_curves(ax) -> None:
    """The axes as a new one would be for :meth:`KineticCurve.plot`: its lines, bands and legend
    gone, its data limits forgotten and both axes autoscaled again (the plot sets what it needs)."""
    for artist in [*ax.lines, *ax.patches]:
        artist.remove()
    legend = ax.get_legend()
    if legend is not None:
        legend.remove()
    ax.relim()  # no artist with data is left: the limits of an empty axes
    ax.set_autoscale_on(True)
