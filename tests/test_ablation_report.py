"""The report's ``## Ablations`` section, on a small fixed study written by hand in SQLite."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial
from test_ablation_path import _path_study

from sweeplab import analysis
from sweeplab.studies import StudyNotFound

LOO = "toy.ablation-loo-trial3"
PATH = "toy.ablation-path-trial3"
SEEDS = "toy.ablation-seeds-trial3"


def _trial(value: float, attrs: dict) -> optuna.trial.FrozenTrial:
    return create_trial(
        value=value,
        params={"lr": 0.01},
        distributions={"lr": FloatDistribution(1e-4, 1.0, log=True)},
        user_attrs=attrs,
    )


def _ablation(storage, name: str, how: dict, rows) -> None:
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    study.set_user_attr("objective", "val_acc")
    study.set_user_attr("sweeplab_parent", name.split(".")[0])
    study.set_user_attr("sweeplab_ablation", how)
    for variant, seed, test in rows:
        # As the searcher records them: per-epoch curves, read at the best epoch.
        curves = {"train_acc": [0.9, 0.99], "val_acc": [test - 0.1, test], "best_epoch": 2}
        attrs = {"variant": variant, "seed": seed, "test_acc": test, "epochs_run": 2}
        study.add_trial(_trial(test, {**attrs, **curves}))


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> str:
    tmp_path = tmp_path_factory.mktemp("fixed")
    url = f"sqlite:///{tmp_path / 'fixed.db'}"
    storage = optuna.storages.RDBStorage(url)
    parent = optuna.create_study(storage=storage, study_name="toy", direction="maximize")
    for value in (0.5, 0.7, 0.6, 0.9):
        parent.add_trial(_trial(value, {"test_acc": value}))
    common = {"baseline": "best", "baseline_trial": 3, "seeds": 3, "seed_values": [1, 2, 3]}
    _ablation(
        storage,
        LOO,
        {**common, "mode": "loo", "components": ["lr"], "reference": "baseline"},
        [
            *[("baseline", 1, 0.90), ("baseline", 2, 0.92), ("baseline", 3, 0.91)],
            *[("-lr", 1, 0.80), ("-lr", 2, 0.84), ("-lr", 3, 0.82)],
        ],
    )
    _ablation(
        storage,
        SEEDS,
        {**common, "mode": "seeds", "components": [], "reference": "baseline"},
        [("baseline", 1, 0.90), ("baseline", 2, 0.93), ("baseline", 3, 0.96)],
    )
    _path_study(storage, PATH)
    # An ablation of another study, and a plain study: neither belongs to the section.
    optuna.create_study(storage=storage, study_name="zzz")
    _ablation(storage, "other.ablation-loo-default", {**common, "mode": "loo"}, [])
    return url


@pytest.fixture(scope="module")
def rendered(url: str, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report")
    return out, analysis.render_ablation_sections(url, "toy", out)


def test_the_section_shows_every_linked_ablation_with_its_numbers(rendered) -> None:
    out, text = rendered
    assert text.startswith("## Ablations\n\n3 ablation studies of `toy` in this database")
    # One subsection each, in name order.
    headings = [line for line in text.splitlines() if line.startswith("### ")]
    assert headings == [f"### `{LOO}`", f"### `{PATH}`", f"### `{SEEDS}`"]
    assert "other.ablation" not in text and "zzz" not in text
    assert "Mode `loo`: leave-one-out" in text
    assert "baseline trial #3 (the best of the search)" in text
    assert "3 seed(s) per configuration" in text

    # loo: baseline 91.0 ± 1.0, -lr 82.0 ± 2.0: Δ −9.0 points, Welch's t = −6.97 on 2.94 degrees
    # of freedom, p = 0.006, interval −9.0 ± 3.18 × 1.29 = [−13.2, −4.8].
    assert "| `baseline` | 3 | 99.0 ± 0.0 | 91.0 ± 1.0 | 91.0 ± 1.0 |" in text
    assert (
        "| `-lr` | 3 | 99.0 ± 0.0 | 82.0 ± 2.0 | 82.0 ± 2.0 | 17.0 ± 2.0 | **−9.0**\\* | "
        "[−13.2, −4.8] | 0.006 | 2 |"
    ) in text
    # path: the hand-computed steps of test_ablation_path.
    assert "| 1 | `b` | sgd (momentum 0.8) | 2 | 72.0 ± 2.8 | +20.0 | +66.7 | 66.7 |" in text
    assert "| 3 | `aug.c` | on | 2 | 82.0 ± 1.4 | +1.0 | +3.3 | 100.0 |" in text
    # seeds: 0.90, 0.93, 0.96 -> mean 93.00, std 3.00, range 6.00.
    assert (
        "| validation accuracy (objective) (%) | 3 | 93.00 | 3.00 | 90.00 | 96.00 | 6.00 |" in text
    )

    # Images and tables linked relative to the report folder, and there.
    for link in (
        f"![Ablation of {LOO}: difference from baseline](ablations/{LOO}/ablation.png)",
        f"![Ablation path of {PATH}](ablations/{PATH}/path.png)",
        f"[SVG](ablations/{PATH}/path.svg)",
        f"[LaTeX](ablations/{LOO}/ablation.tex)",
    ):
        assert link in text
    assert str(out) not in text and str(out.parent) not in text
    for name, files in {
        LOO: ["ablation.csv", "ablation.html", "ablation.md", "ablation.png", "ablation.svg",
              "ablation.tex"],
        PATH: ["path.csv", "path.html", "path.md", "path.png", "path.svg", "path.tex"],
        SEEDS: ["ablation.csv", "ablation.html", "ablation.md", "ablation.tex", "seeds.csv",
                "seeds.md"],
    }.items():  # fmt: skip
        assert sorted(p.name for p in (out / "ablations" / name).iterdir()) == files


def test_the_same_database_gives_the_same_bytes(url: str, rendered, tmp_path: Path) -> None:
    first, text = rendered
    second = tmp_path / "again"
    assert analysis.render_ablation_sections(url, "toy", second) == text
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 18
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_no_linked_ablation_gives_no_section(url: str, tmp_path: Path) -> None:
    assert analysis.render_ablation_sections(url, "zzz", tmp_path / "r") == ""
    assert not (tmp_path / "r").exists()
    with pytest.raises(StudyNotFound):
        analysis.render_ablation_sections(url, "nope", tmp_path / "r")
