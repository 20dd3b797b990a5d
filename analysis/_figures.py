"""What every figure of the package shares: its style, its constructors, its colours, its saver.

The plotting modules (:mod:`sweeplab.analysis._plots`, :mod:`sweeplab.analysis._search_plots`,
:mod:`sweeplab.analysis._isolation`, :mod:`sweeplab.analysis.ablation.charts`) draw their own
axes; this module is where they get the rest from, so that every figure looks alike and is
written the same way:

- :func:`style` (seaborn's white grid at notebook font sizes) for the duration of one figure;
  :func:`one_panel` and :func:`panel_grid` build a :class:`matplotlib.figure.Figure`, never
  through ``pyplot``: no backend is picked, no window opened, no global figure left behind.
- :func:`state_style` and :func:`state_colour` tell trial states apart by line style and marker
  as well as by colour (seaborn's colour-blind palette); :func:`metric_label` gives an axis label
  with its unit.
- :func:`save_figure` is the one saver: a PNG at the path given, and an SVG with the same stem
  next to it unless :func:`svg_copies` turned them off; both byte-identical for the same data.

Layout: the figures are made with constrained layout, but :func:`save_figure` replaces it by a
fixed layout wherever nothing needs the solver (no colour bar, no legend outside the axes). The
fixed layout takes each margin from the text that sits in it (tick labels, axis labels, titles),
measured once; constrained layout finds the same margins by laying every artist out twice before
the real draw, which made it half the cost of saving a figure.

matplotlib and seaborn are imported inside the functions, so importing this module (and the
package) stays free of side effects.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "STATE_STYLE",
    "fixed_layout",
    "metric_label",
    "one_panel",
    "panel_grid",
    "save_figure",
    "state_colour",
    "state_style",
    "style",
    "svg_copies",
]

#: Resolution of every PNG.
DPI = 150

# Settings of the SVG writer, applied by save_figure only. svg.hashsalt fixes the ids matplotlib
# writes into SVGs (random by default), so the same data gives the same bytes; svg.fonttype
# "none" keeps text as text: editable in a paper's figure, and much smaller and cheaper to write
# than glyph outlines.
_SVG_RC = {"svg.hashsalt": "sweeplab", "svg.fonttype": "none"}

# Whether save_figure writes the SVG beside the PNG. A context variable rather than a parameter:
# the format is a property of the output (a report writes PNGs only unless asked), while the
# figures are drawn by a dozen functions in several modules that should not each carry it.
_WRITE_SVG: ContextVar[bool] = ContextVar("sweeplab_write_svg", default=True)
# Room kept around the text of the fixed layout, in inches (about matplotlib's own padding).
_PAD_IN = 0.06

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


@contextmanager
def svg_copies(enabled: bool) -> Iterator[None]:
    """Within the block, :func:`save_figure` writes the SVG copy only when ``enabled``.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d, svg_copies(False), one_panel(3, 2) as (f, a):
        ...     png = save_figure(f, f"{d}/line.png")
        ...     png.exists(), png.with_suffix(".svg").exists()
        (True, False)
    """
    token = _WRITE_SVG.set(enabled)
    try:
        yield
    finally:
        _WRITE_SVG.reset(token)


def _needs_solver(fig: Figure) -> bool:
    """Whether the figure holds what only constrained layout places well: a colour bar, a
    figure legend, or axes that are not cells of one grid."""
    if fig.legends or any(hasattr(ax, "_colorbar") for ax in fig.axes):
        return True
    grids = {id(ax.get_subplotspec().get_gridspec()) if ax.get_subplotspec() else None
             for ax in fig.axes}  # fmt: skip
    return len(grids) != 1 or None in grids


def _text_extents(fig: Figure, ax: Axes, renderer: object) -> tuple[float, float, float, float]:
    """Inches of text outside ``ax`` on its left, bottom, top and right: tick labels, axis
    labels, title (each measured, rotation included, never laid out)."""
    dpi = fig.dpi

    def size(texts: list) -> tuple[float, float]:
        boxes = [t.get_window_extent(renderer) for t in texts if t.get_visible() and t.get_text()]
        if not boxes:
            return 0.0, 0.0
        return max(b.width for b in boxes) / dpi, max(b.height for b in boxes) / dpi

    ytick_w, _ = size(ax.get_yticklabels())
    xtick_w, xtick_h = size(ax.get_xticklabels())
    _, xlabel_h = size([ax.xaxis.label])
    ylabel_w, _ = size([ax.yaxis.label])
    _, title_h = size([ax.title, ax._left_title, ax._right_title])
    # Tick length and label padding (about 0.05 in each) separate ticks, labels and the axes.
    gap = 2 * _PAD_IN
    left = ytick_w + gap + (ylabel_w + _PAD_IN if ylabel_w else 0.0)
    bottom = xtick_h + gap + (xlabel_h + _PAD_IN if xlabel_h else 0.0)
    top = title_h + gap if title_h else _PAD_IN
    # Horizontal x tick labels are centred on their tick: the last one overhangs by half.
    rotated = any(t.get_rotation() % 180 for t in ax.get_xticklabels())
    right = _PAD_IN if rotated else xtick_w / 2 + _PAD_IN
    return left, bottom, top, right


def fixed_layout(fig: Figure) -> bool:
    """Place a grid of axes by fixed margins measured from its text; ``False`` (constrained
    layout kept) where the figure needs the solver or its text cannot fit the cells.

    Every cell gets the largest margins any axes needs, so the panels stay aligned and equal.

    Example:
        >>> with style():
        ...     fig, axes = panel_grid(2, 2, (3.0, 2.5))
        ...     _ = axes[0].set_ylabel("accuracy")
        ...     fixed_layout(fig), float(round(fig.subplotpars.left, 2))
        (True, 0.1)
    """
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    visible = [ax for ax in fig.axes if ax.get_visible()]
    if not visible or _needs_solver(fig):
        return False
    renderer = FigureCanvasAgg(fig).get_renderer()
    extents = [_text_extents(fig, ax, renderer) for ax in visible]
    left, bottom, top, right = (max(e[i] for e in extents) for i in range(4))
    nrows, ncols = visible[0].get_subplotspec().get_gridspec().get_geometry()
    width, height = fig.get_size_inches()
    suptitle = fig._suptitle
    head = 0.0
    if suptitle is not None and suptitle.get_text():
        head = suptitle.get_window_extent(renderer).height / fig.dpi + 2 * _PAD_IN
    # Text that hangs past the axes' sides is only known once the axes are placed: place,
    # measure, widen, place again (a wider margin narrows the axes, so a centred label needs a
    # few rounds to settle). An x label wider than its axes may reach under the neighbour's y
    # tick labels (they sit higher), not into the neighbour's own x label; an annotation by the
    # last point must clear the neighbour's tick labels.
    label = beside = 0.0
    for _ in range(8):
        outer_left, outer_right = max(left, label), max(right, label, beside)
        gap = max(left + max(right, beside), 2 * label)
        axes_w = (width - outer_left - outer_right - (ncols - 1) * gap) / ncols
        axes_h = (height - head - nrows * (top + bottom)) / nrows
        if axes_w < 0.35 * width / ncols or axes_h < 0.35 * (height - head) / nrows:
            break  # long labels: leave it to the solver rather than squash the plots
        # No layout engine at all (not even "none", a placeholder): with one, savefig draws
        # the whole figure once more, unrendered, before the real draw.
        with mpl.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
            fig.set_layout_engine(None)
        fig.subplots_adjust(
            left=outer_left / width, right=1 - outer_right / width, bottom=bottom / height,
            top=1 - (head + top) / height, wspace=gap / axes_w, hspace=(top + bottom) / axes_h,
        )  # fmt: skip
        new_label, new_beside = _overhang(fig, visible, renderer)
        if new_label <= label + 0.01 and new_beside <= beside + 0.01:
            if suptitle is not None:
                suptitle.set_y(1 - _PAD_IN / height)
            return True
        label, beside = max(label, new_label), max(beside, new_beside)
    fig.set_layout_engine("constrained")
    return False


def _overhang(fig: Figure, axes: list[Axes], renderer: object) -> tuple[float, float]:
    """Inches (padding included) by which placed axes' x labels reach past either side of
    their axes, and by which their annotations reach past the right side."""
    dpi = fig.dpi
    label = beside = 0.0
    for ax in axes:
        box = ax.get_window_extent(renderer)
        xlabel = ax.xaxis.label
        if xlabel.get_visible() and xlabel.get_text():
            extent = xlabel.get_window_extent(renderer)
            label = max(label, (box.x0 - extent.x0) / dpi + _PAD_IN,
                        (extent.x1 - box.x1) / dpi + _PAD_IN)  # fmt: skip
        for text in ax.texts:
            if text.get_visible() and text.get_text():
                extent = text.get_window_extent(renderer)
                beside = max(beside, (extent.x1 - box.x1) / dpi + _PAD_IN)
    return label, beside


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as ``path`` (PNG, :data:`DPI`) and, unless :func:`svg_copies` turned it
    off, as SVG beside it; return the PNG's path.

    The figure is first given a :func:`fixed_layout` where it can have one. Both files depend
    on the figure only: no "Software"/"Creator" tag, no date, fixed SVG ids, text kept as text.
    Parent folders are created.

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
    fixed_layout(fig)
    fig.savefig(png, dpi=DPI, format="png", metadata={"Software": None})
    if _WRITE_SVG.get():
        # The layout is settled by the first save; freezing it halves the work of the second.
        fig.set_layout_engine("none")
        with mpl.rc_context(_SVG_RC):
            fig.savefig(
                png.with_suffix(".svg"), format="svg", metadata={"Creator": None, "Date": None}
            )
    return png
