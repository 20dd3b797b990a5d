"""The random-labels page's figure: memorisation (train accuracy) against generalisation.

Reads a finished ``random-labels`` study with ``analysis.frames`` and draws (left) training
accuracy on the noisy labels per epoch, and (right) last-epoch train and validation accuracy
against the label-noise fraction, one line per weight decay. Usage::

    python docs/presets/random_labels_figure.py sqlite:///sweeplab.db out.png
"""

from __future__ import annotations

import sys

import matplotlib
from matplotlib.figure import Figure

from sweeplab import analysis

STYLES = ("-", "--", ":", "-.")


def main(storage: str, out: str) -> None:
    trials, curves = analysis.frames(storage, "random-labels")
    params = trials[["number", "param.label_noise", "param.weight_decay"]]
    curves = curves.merge(params, on="number")
    last = curves[curves["epoch"] == curves.groupby("number")["epoch"].transform("max")]
    palette = matplotlib.colormaps["viridis"]
    fig = Figure(figsize=(10, 4), dpi=90, layout="constrained")  # no pyplot, no global state
    left, right = fig.subplots(1, 2)
    noises = sorted(curves["param.label_noise"].unique())
    for i, noise in enumerate(noises):
        c = curves[(curves["param.label_noise"] == noise) & (curves["param.weight_decay"] == 0)]
        colour = palette(i / max(1, len(noises) - 1))
        left.plot(c["epoch"], c["train_acc"], color=colour, label=f"noise {noise:g}")
    left.set(xlabel="epoch", ylabel="train accuracy (on the noisy labels)", ylim=(0, 1.02))
    left.set_title("Fitting the training labels (weight decay 0)")
    left.legend(fontsize=8)
    for style, wd in zip(STYLES, sorted(last["param.weight_decay"].unique()), strict=False):
        rows = last[last["param.weight_decay"] == wd].sort_values("param.label_noise")
        right.plot(rows["param.label_noise"], rows["train_acc"], style, color="C0", marker="o",
                   label=f"train, wd {wd:g}")  # fmt: skip
        right.plot(rows["param.label_noise"], rows["val_acc"], style, color="C1", marker="s",
                   label=f"validation (clean), wd {wd:g}")  # fmt: skip
    right.axhline(0.1, color="grey", lw=0.8)
    right.annotate("chance", (0.0, 0.11), color="grey", fontsize=8)
    right.set(xlabel="label-noise fraction", ylabel="accuracy at the last epoch", ylim=(0, 1.02))
    right.set_title("Memorised, not learned")
    right.legend(fontsize=7)
    fig.savefig(out)


if __name__ == "__main__":
    main(*sys.argv[1:3])
