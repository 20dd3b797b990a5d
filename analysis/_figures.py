"""What every figure of the package shares: its style, its constructors, its colours, its saver.

The plotting modules (:mod:`sweeplab.analysis._plots`, :mod:`sweeplab.analysis._search_plots`,
:mod:`sweeplab.analysis._isolation`, :mod:`sweeplab.analysis.ablation.charts`) draw their own
axes; this module is where they get the rest from, so that every figure looks alike and is
written the same way:

- :func:`style` (seaborn's white grid at notebook font sizes) for the duration of one figure;
  :func:`one_panel` and :func:`panel_grid` build a :class:`matplotlib.figure.Figure` with
  constrained layout, never through ``pyplot``: no backend is picked, no window opened, no
  global figure left behind.
- :func:`state_style` and :func:`state_colour` tell trial states apart by line style and marker
  as well as by colour (seaborn's colour-blind palette); :func:`metric_label` gives an axis label
  with its unit.
- :func:`save_figure` is the one saver: a PNG at the path given and an SVG with the same stem
  next to it, both byte-identical for the same data.

matplotlib and seaborn are imported inside the functions, so importing this module (and the
package) stays free of side effects.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "STATE_STYLE",
    "metric_label",
    "one_panel",
    "panel_grid",
    "save_figure",
    "state_colour",
    "state_style",
    "style",
]

#: Resolution of every PNG.
DPI = 150

# Settings of the SVG writer, applied by save_figure only. svg.hashsalt fixes the ids matplotlib
# writes into SVGs (random by default), so the same data gives the same bytes; svg.fonttype
# "none" keeps text as text: editable in a paper's figure, and much smaller and cheaper to write
# than glyph outlines.
_SVG_RC = {"svg.hashsalt": "sweeplab", "svg.fonttype": "none"}

# Axis labels with units for the metrics sweeplab records; losses are PyTorch cross-entropy
# (natural log, so nats).
_METRIC_LABELS = {
    "val_acc": "Validation accuracy (fraction correct)",
    "train_acc": "Training accuracy (fraction correct)",
    "test_acc": "Test accuracy (fraction correct)",
    "val_loss": "Validation loss (cross-entropy, nats)",
    "train_loss": "Training loss (cross-entropy, nats)",
    "test_loss": "Test loss (cross-entropy, nats)",
}

#: Trial state -> (index into seaborn's "colorblind" palette, line style, marker).
STATE_STYLE: dict[str, tuple[int, str, str]] = {
    "COMPLETE": (0, "-", "o"),
    "PRUNED": (1, "--", "X"),
    "FAIL": (4, ":", "v"),
    "RUNNING": (2, "-.", "s"),
    "WAITING": (7, ":", "."),
}
_OTHER_STATE = (7, "-", ".")


def metric_label(name: str) -> str:
    """Axis label, with its unit, for a metric name; unknown names are returned unchanged.

    Example:
        >>> metric_label("val_acc")
        'Validation accuracy (fraction correct)'
    """
    return _METRIC_LABELS.get(name, name)


def state_style(state: str) -> tuple[int, str, str]:
    """``(palette index, line style, marker)`` of a trial state; grey and solid for others.

    Example:
        >>> state_style("PRUNED"), state_style("UNKNOWN")
        ((1, '--', 'X'), (7, '-', '.'))
    """
    return STATE_STYLE.get(state, _OTHER_STATE)


def state_colour(state: str) -> tuple[float, float, float]:
    """The RGB colour of a trial state in seaborn's colour-blind palette."""
    import seaborn as sns

    return sns.color_palette("colorblind")[state_style(state)[0]]


@contextmanager
def style() -> Iterator[None]:
    """seaborn's white grid at notebook font sizes, for one figure (restored on exit)."""
    import seaborn as sns

    with sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
        yield


@contextmanager
def one_panel(width: float, height: float) -> Iterator[tuple[Figure, Axes]]:
    """A figure of ``width`` x ``height`` inches with one axes, in :func:`style`.

    Example:
        >>> with one_panel(4.0, 3.0) as (fig, ax):
        ...     fig.get_size_inches().tolist(), len(fig.axes)
        ([4.0, 3.0], 1)
    """
    from matplotlib.figure import Figure

    with style():
        fig = Figure(figsize=(width, height), layout="constrained")
        yield fig, fig.subplots()


def panel_grid(n: int, ncols: int, panel: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    """A figure of ``n`` panels of ``panel`` inches each, ``ncols`` to a row (fewer when ``n`` is
    smaller); the axes come flat, the unused ones of the last row hidden. Call it in
    :func:`style`, which must be active when the axes are made.

    Example:
        >>> with style():
        ...     fig, axes = panel_grid(5, 3, (2.0, 1.5))
        >>> len(axes), sum(ax.get_visible() for ax in axes), fig.get_size_inches().tolist()
        (6, 5, [6.0, 3.0])
    """
    import numpy as np
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as ``path`` (PNG, :data:`DPI`) and as SVG beside it; return the PNG's path.

    Both files depend on the figure only: no "Software"/"Creator" tag, no date, fixed SVG ids,
    text kept as text. Parent folders are created.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d, one_panel(3.0, 2.0) as (fig, ax):
        ...     _ = ax.plot([0, 1], [1, 0])
        ...     png = save_figure(fig, f"{d}/line.png")
        ...     png.name, png.with_suffix(".svg").exists()
        ('line.png', True)
    """
    import matplotlib as mpl

    png = Path(path)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=DPI, format="png", metadata={"Software": None})
    # The layout is settled by the first save; freezing it halves the work of the second one.
    fig.set_layout_engine("none")
    with mpl.rc_context(_SVG_RC):
        fig.savefig(png.with_suffix(".svg"), format="svg", metadata={"Creator": None, "Date": None})
    return png
