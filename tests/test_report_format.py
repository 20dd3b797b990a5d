"""How the report writes things down: the spec as TOML, numbers to four significant digits,
figures whose legend hides no point and whose text stays inside its own panel.

Real components throughout: tomllib reads the TOML back, the report is written from a real
Optuna study, the figures are laid out by matplotlib's Agg renderer and measured in pixels.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
import tomllib

from sweeplab import analysis, studies
from sweeplab.analysis._figures import fixed_layout, panel_grid, style
from sweeplab.analysis._plots import draw_optimization_history
from sweeplab.analysis._search_plots import (
    PARALLEL_AXES,
    draw_parallel_coordinates,
    parallel_axes,
)
from sweeplab.analysis._toml import to_toml

# ---------------------------------------------------------------------------------------------
# The spec as TOML
# ---------------------------------------------------------------------------------------------


def _without_none(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _without_none(v) for k, v in x.items() if v is not None}
    if isinstance(x, list):
        return [_without_none(v) for v in x]
    return x


@pytest.mark.parametrize("preset", studies.preset_names())
def test_every_preset_spec_round_trips_through_toml(preset: str) -> None:
    spec = studies.load_spec(preset).to_dict()
    text = to_toml(spec)
    assert tomllib.loads(text) == _without_none(spec)
    assert "# direction: not set" in text or spec["study"].get("direction") is not None
    assert all(f"\n[{section}]\n" in f"\n{text}" for section in spec)  # sections are tables


def test_toml_of_awkward_values_round_trips() -> None:
    data = {
        "top": 1,
        "s": {
            "quote": 'a "b" \\ c',
            "lines": "one\ntwo\ttab",
            "unicode": "ρ ≥ 0.5 — ü",
            "dotted.key": True,
            "with space": -3,
            "tiny": 1e-06,
            "huge": 1.5e300,
            "whole": 3.0,
            "inf": math.inf,
            "neg": -math.inf,
            "empty": {},
            "list": [1, 2.5, "x", [True, False]],
            "tables": [{"a": 1}, {"b": "c"}],
            "nested": {"deeper": {"x": 1}, "flat": 2},
            "unset": None,
        },
    }
    parsed = tomllib.loads(to_toml(data))
    assert parsed == _without_none(data)
    assert isinstance(parsed["s"]["whole"], float) and isinstance(parsed["top"], int)


def test_toml_refuses_what_it_cannot_write() -> None:
    with pytest.raises(TypeError, match="cannot write a set as TOML"):
        to_toml({"s": {"x": {1, 2}}})


# ---------------------------------------------------------------------------------------------
# Numbers in the report
# ---------------------------------------------------------------------------------------------


def _significant_digits(number: str) -> int:
    mantissa = re.split(r"[eE]", number.lstrip("-"))[0]
    digits = mantissa.replace(".", "").lstrip("0")
    return len(digits) if "." in mantissa else len(digits.rstrip("0")) or 1


def test_best_configuration_has_at_most_four_significant_digits(tmp_path: Any) -> None:
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    study.set_user_attr("objective", "val_acc")
    for lr, dropout, acc in [(0.00541942318, 0.123456789, 0.972154321), (0.0123, 0.2, 0.95)]:
        study.enqueue_trial({"lr": lr, "dropout": dropout})
        trial = study.ask()
        trial.suggest_float("lr", 1e-4, 0.1, log=True)
        trial.suggest_float("dropout", 0.0, 0.5)
        trial.report(acc, step=1)
        trial.set_user_attr("val_acc", [acc])
        trial.set_user_attr("train_acc", [acc + 0.0123456])
        trial.set_user_attr("val_loss", [0.123456789])
        trial.set_user_attr("epochs_run", 1)
        trial.set_user_attr("best_epoch", 1)
        study.tell(trial, acc)
    text = analysis.write_report(storage, "s", tmp_path).read_text()
    section = text.split("## Best configuration", 1)[1].split("\n## ", 1)[0]
    assert "| `lr` | 0.005419 |" in section and "| `dropout` | 0.1235 |" in section
    assert "| `val_acc` | 97.22 % |" in section and "| `val_loss` | 0.1235 |" in section
    numbers = re.findall(r"(?<![#\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", section)
    assert numbers and max(map(_significant_digits, numbers)) <= 4, numbers
    assert "Best value: val_acc = 97.22 %" in text


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def _history_trials() -> pd.DataFrame:
    """Points in every corner of the axes, where a legend inside them would sit."""
    rows = []
    for n, (state, value) in enumerate(
        [("COMPLETE", 0.95), ("PRUNED", 0.1), ("COMPLETE", 0.2), ("PRUNED", 0.92),
         ("COMPLETE", 0.5), ("PRUNED", 0.12), ("COMPLETE", 0.97), ("PRUNED", 0.15),
         ("PRUNED", 0.11), ("COMPLETE", 0.3)]
    ):  # fmt: skip
        complete = state == "COMPLETE"
        rows.append({"number": n, "state": state, "value": value if complete else None,
                     "best_intermediate": value})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_history_legend_hides_no_point(direction: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = draw_optimization_history(_history_trials(), direction=direction, objective="val_acc")
    canvas = FigureCanvasAgg(fig)
    with style():
        canvas.draw()  # lays the figure out as save_figure would (constrained layout)
    renderer = canvas.get_renderer()
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    assert len(legends) == 1
    box = legends[0].get_window_extent(renderer)
    ax = fig.axes[0]
    points = np.concatenate([ax.transData.transform(c.get_offsets()) for c in ax.collections])
    assert len(points) == len(_history_trials())
    inside = [p for p in points if box.x0 <= p[0] <= box.x1 and box.y0 <= p[1] <= box.y1]
    assert not inside, f"legend {box} covers {inside}"
    assert not box.overlaps(ax.get_window_extent(renderer))  # nor the plotted area


def _parallel_trials(n_params: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = {"number": range(12), "state": ["COMPLETE"] * 12, "value": rng.uniform(0.5, 1, 12)}
    for i in range(n_params):
        frame[f"param.p{i:02d}"] = rng.uniform(0, 1, 12)
    frame["param.constant"] = [1.0] * 12  # never an axis: it does not vary
    return pd.DataFrame(frame)


def test_parallel_coordinates_shows_at_most_k_parameter_axes() -> None:
    trials = _parallel_trials(14)
    ranking = ["p13", "constant", "p02", "p07"]
    axes = parallel_axes(trials, ranking)
    assert len(axes) == PARALLEL_AXES == 6
    assert axes == ["p13", "p02", "p07", "p00", "p01", "p03"]  # ranking first, then by name
    assert len(parallel_axes(trials, ranking, k=None)) == 14
    fig = draw_parallel_coordinates(trials, params=axes, objective="val_acc")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == [*axes, "val_acc"]  # k parameter axes and the objective's


def test_fixed_layout_keeps_each_panels_text_inside_its_cell() -> None:
    """Long categorical tick labels, an x label wider than its panel, a title per panel and a
    suptitle: no text leaves the figure or runs into another panel's axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    with style():
        fig, axes = panel_grid(5, 3, (4.2, 2.6))
        for i, ax in enumerate(axes[:5]):
            ax.barh(range(3), [1, 2, 3])
            ax.set_yticks(range(3), ["[0.0014, 0.0083)", "xavier_uniform", "b"])
            ax.set_xlabel("Best validation accuracy (fraction correct)")  # wider than its axes
            ax.set_ylabel("value" if i % 3 == 0 else "")
            ax.set_title(f"param {i}")
            ax.annotate("n=6 · #19", (3, 2), xytext=(5, 0), textcoords="offset points")
        fig.suptitle("A suptitle")
        assert fixed_layout(fig)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
    renderer = canvas.get_renderer()
    frame = fig.bbox
    visible = [ax for ax in axes if ax.get_visible()]
    for ax in visible:
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
        # Only the tick labels drawn: matplotlib keeps a few beyond the view limits, unshown.
        ticks = [t for t in ax.get_xticklabels() if x0 <= t.get_position()[0] <= x1]
        ticks += [t for t in ax.get_yticklabels() if y0 <= t.get_position()[1] <= y1]
        texts = [*ticks, ax.xaxis.label, ax.yaxis.label, ax.title, *ax.texts]
        for text in texts:
            if not text.get_text():
                continue
            box = text.get_window_extent(renderer)
            assert frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1, text.get_text()
            assert frame.y0 - 1 <= box.y0 and box.y1 <= frame.y1 + 1, text.get_text()
            for other in visible:
                if other is not ax:
                    assert not box.overlaps(other.get_window_extent(renderer)), text.get_text()
    suptitle = fig._suptitle.get_window_extent(renderer)
    assert all(not suptitle.overlaps(ax.title.get_window_extent(renderer)) for ax in visible)


def test_fixed_layout_leaves_what_it_cannot_fit_to_constrained_layout() -> None:
    with style():
        fig, axes = panel_grid(3, 3, (2.0, 2.0))
        for ax in axes:
            ax.set_xlabel("a label three times as wide as its little panel, or more")
        assert not fixed_layout(fig)
    assert fig.get_layout_engine().__class__.__name__ == "ConstrainedLayoutEngine"


def test_fixed_layout_leaves_colour_bars_to_constrained_layout() -> None:
    with style():
        fig, axes = panel_grid(2, 2, (3.0, 2.5))
        image = axes[0].imshow([[0, 1], [1, 0]])
        fig.colorbar(image, ax=list(axes))
        assert not fixed_layout(fig)
    assert fig.get_layout_engine().__class__.__name__ == "ConstrainedLayoutEngine"
