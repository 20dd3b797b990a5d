"""Search analysis and the HTML report, on a small fixed quickstart-like study in real SQLite.

The study is written with plain Optuna in sweeplab's storage schema, with a stored spec (ASHA:
grace period 2, reduction factor 3, 18 epochs, so rungs at epochs 2, 6 and 18) and curves laid
out so every number below can be computed by hand: the ranking at epoch 2 is shuffled by epoch 6
(Spearman ρ = 2/21, below the warning threshold) and kept from epoch 6 to 18 (ρ = 1).
The report is generated once, through the CLI, and then read as text and in headless Chromium.
"""

from __future__ import annotations

import base64
import html as html_lib
import io
import itertools
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from PIL import Image

from sweeplab import analysis
from sweeplab.analysis._isolation import isolation_table, plot_generalization_gap, plot_isolation
from sweeplab.analysis._params import bucket, param_scales
from sweeplab.analysis._report_html import render_html
from sweeplab.analysis._rungs import MIN_TRUSTWORTHY_RHO, rung_correlations
from sweeplab.analysis._search_plots import (
    plot_importance_comparison,
    plot_interactions,
    plot_marginal_effects,
    plot_parallel_coordinates,
)
from sweeplab.studies.asha import asha_rungs, rungs_from_spec
from sweeplab.studies.cli import main

STUDY = "quick-fixed"
SECRET = "s3cret-pw"
SPEC = {
    "study": {"name": STUDY, "objective": "val_acc", "storage": f"postgresql://me:{SECRET}@h/db"},
    "search": {"scheduler": "asha", "grace_period": 2, "reduction_factor": 3},
    "budget": {"max_epochs": 18},
}
# Objective at the rungs (epochs 2, 6, 18) of the eight trials that reached epoch 6, listed in
# their order at epoch 2. Their ranks at epoch 6 are 3 8 1 6 2 7 4 5 (1 = worst): Σd² = 76, so
# ρ(2→6) = 1 − 6·76 / (8·63) = 2/21. The six that go on to epoch 18 keep their epoch-6 order.
AT_RUNGS: dict[int, tuple[float, float, float | None]] = {
    0: (0.30, 0.52, 0.60),
    1: (0.32, 0.90, 0.95),
    2: (0.34, 0.40, None),  # pruned at epoch 6
    3: (0.36, 0.70, 0.80),
    4: (0.38, 0.45, None),  # pruned at epoch 6
    5: (0.40, 0.80, 0.88),
    6: (0.42, 0.55, 0.65),
    7: (0.44, 0.60, 0.70),
}
PRUNED_AT_2 = {8: 0.20, 9: 0.22, 10: 0.25}  # stopped at the first rung
FAILED, RUNNING = 11, 12


def params_of(n: int) -> dict[str, Any]:
    optimizer = ("sgd", "adam", "adamw")[n % 3]
    p: dict[str, Any] = {
        "lr": (1e-4, 1e-3, 1e-2, 0.1)[n % 4],
        "batch_size": (32, 64, 128)[n % 3],
        "init": ("default", "xavier_uniform", "kaiming_normal", "orthogonal")[(n // 2) % 4],
        "optimizer": optimizer,
        "dropout": round(0.05 * (n % 6), 2),
        "augment.crop": n % 2 == 0,
        "augment.mixup": n % 3 == 1,
    }
    if optimizer == "sgd":
        p["momentum"] = 0.5 + 0.1 * (n % 4)
    return p


def _suggest(trial: optuna.Trial) -> None:
    trial.suggest_float("lr", 1e-4, 0.3, log=True)
    trial.suggest_categorical("batch_size", [32, 64, 128])
    trial.suggest_categorical("init", ["default", "xavier_uniform", "kaiming_normal", "orthogonal"])
    if trial.suggest_categorical("optimizer", ["sgd", "adam", "adamw"]) == "sgd":
        trial.suggest_float("momentum", 0.5, 0.99)
    trial.suggest_float("dropout", 0.0, 0.5)
    trial.suggest_categorical("augment.crop", [False, True])
    trial.suggest_categorical("augment.mixup", [False, True])


def curve_of(n: int) -> list[float]:
    """val_acc per epoch: linear between the rung values, epoch 1 a little below epoch 2."""
    if n in PRUNED_AT_2:
        return [PRUNED_AT_2[n] - 0.05, PRUNED_AT_2[n]]
    if n == RUNNING:
        return [0.2, 0.3, 0.35]
    v2, v6, v18 = AT_RUNGS[n]
    points = [(1, v2 - 0.05), (2, v2), (6, v6)] + ([(18, v18)] if v18 is not None else [])
    out = []
    for (e0, a), (e1, b) in itertools.pairwise(points):
        out += [round(a + (b - a) * (e - e0) / (e1 - e0), 6) for e in range(e0, e1)]
    return [*out, points[-1][1]]


def complete() -> dict[int, float]:
    return {n: v[2] for n, v in AT_RUNGS.items() if v[2] is not None}


def build(url: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=url, study_name=STUDY, direction="maximize")
    study.set_user_attr("objective", "val_acc")
    study.set_user_attr("sweeplab_spec", SPEC)
    for n in range(RUNNING + 1):
        study.enqueue_trial(params_of(n))
        trial = study.ask()
        _suggest(trial)
        acc = curve_of(n) if n != FAILED else [0.1]
        for epoch, value in enumerate(acc, start=1):
            trial.report(value, step=epoch)
        if n == RUNNING:
            continue  # still training: no lists yet, as sweeplab writes them at the end
        trial.set_user_attr("val_acc", acc)
        trial.set_user_attr("train_acc", [round(a + 0.02 + 0.01 * (n % 3), 6) for a in acc])
        trial.set_user_attr("epochs_run", len(acc))
        if n in complete():
            trial.set_user_attr("best_epoch", len(acc))
            trial.set_user_attr("test_acc", round(acc[-1] - 0.01, 6))
            study.tell(trial, acc[-1])
        elif n == FAILED:
            trial.set_user_attr("fail_reason", "error")
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, state=TrialState.PRUNED)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'study.db'}"
    build(url)
    return url


@pytest.fixture(scope="module")
def fr(url: str) -> analysis.Frames:
    return analysis.frames(url, STUDY)


@pytest.fixture(scope="module")
def report_dir(url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    with pytest.raises(SystemExit) as code:  # as a person would: through the CLI
        main(["report", STUDY, "--storage", url, "-o", str(out)])
    assert code.value.code == 0
    return out


FIGURES = [
    "generalization_gap", "interactions", "isolation", "learning_curves", "marginal_effects",
    "optimization_history", "parallel_coordinates", "param_importances",
]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Rungs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grace", "eta", "max_t", "rungs"),
    [(2, 3, 18, [2, 6, 18]), (2, 3, 17, [2, 6]), (1, 2, 8, [1, 2, 4, 8]), (4, 3, 4, [4]),
     (2, 2.5, 20, [2, 5, 13])],
)  # fmt: skip
def test_asha_rungs_match_ray(grace: int, eta: float, max_t: int, rungs: list[int]) -> None:
    from ray.tune.schedulers.async_hyperband import _Bracket

    assert asha_rungs(grace, eta, max_t) == rungs
    bracket = _Bracket(min_t=grace, max_t=max_t, reduction_factor=eta, s=0)
    assert sorted(math.ceil(m) for m, _ in bracket._rungs) == rungs


def test_rungs_from_spec() -> None:
    assert rungs_from_spec(SPEC) == [2, 6, 18]
    assert rungs_from_spec({**SPEC, "search": {"scheduler": "none"}}) is None
    assert rungs_from_spec({"study": {}}) is None and rungs_from_spec(None) is None


def test_rung_correlations_by_hand(fr: analysis.Frames) -> None:
    table = rung_correlations(fr.curves, [2, 6, 18])
    assert table[["rung", "next_rung", "n_trials"]].to_numpy().tolist() == [[2, 6, 8], [6, 18, 6]]
    assert table["spearman_rho"].tolist() == pytest.approx([2 / 21, 1.0])
    assert table["trustworthy"].tolist() == [False, True]
    assert MIN_TRUSTWORTHY_RHO > 2 / 21  # the fixture is built to trip the warning


def test_rung_correlations_too_few_trials_is_na() -> None:
    curves = pd.DataFrame({"number": [0, 0, 1, 1], "epoch": [1, 2, 1, 2],
                           "objective": [0.1, 0.2, 0.3, 0.1]})  # fmt: skip
    row = rung_correlations(curves, [1, 2, 4]).iloc[0]
    assert row["n_trials"] == 2 and math.isnan(row["spearman_rho"]) and pd.isna(row["trustworthy"])
    # 4 trials with the order at epoch 2 reversed: ρ = -1 is shown, but 4 are too few to judge
    curves = pd.DataFrame({"number": [0, 0, 1, 1, 2, 2, 3, 3], "epoch": [1, 2] * 4,
                           "objective": [0.1, 0.4, 0.2, 0.3, 0.3, 0.2, 0.4, 0.1]})  # fmt: skip
    row = rung_correlations(curves, [1, 2]).iloc[0]
    assert row["spearman_rho"] == pytest.approx(-1.0) and pd.isna(row["trustworthy"])


# ---------------------------------------------------------------------------------------------
# Importance, isolation, buckets
# ---------------------------------------------------------------------------------------------


def test_ped_anova_importances(url: str) -> None:
    study = optuna.load_study(study_name=STUDY, storage=url)
    ped = analysis.param_importances(study, method="ped_anova")
    assert ped.attrs["method"] == "PED-ANOVA" and ped.attrs["n_trials"] == len(complete())
    assert ped.sum() == pytest.approx(1.0) and "momentum" not in ped.index  # conditional
    assert ped.equals(analysis.param_importances(study, method="ped_anova"))
    with pytest.raises(ValueError, match="method must be one of"):
        analysis.param_importances(study, method="shap")


def test_isolation_table_by_hand(fr: analysis.Frames) -> None:
    table = isolation_table(fr.trials, maximize=True, scales={"lr": "log"})
    done = complete()
    for value in ("sgd", "adam", "adamw"):
        had = {n: v for n, v in done.items() if params_of(n)["optimizer"] == value}
        row = table[(table["param"] == "optimizer") & (table["value"] == value)].iloc[0]
        assert row["n_trials"] == len(had)
        assert row["best"] == max(had.values())
        assert row["best_trial"] == max(had, key=had.get)
    crop = table[table["param"] == "augment.crop"]
    assert crop["value"].tolist() == ["false", "true"] and crop["n_trials"].sum() == len(done)
    # minimise: the best per value is the lowest objective
    low = isolation_table(fr.trials, maximize=False)
    row = low[(low["param"] == "optimizer") & (low["value"] == "sgd")].iloc[0]
    assert row["best"] == min(v for n, v in done.items() if params_of(n)["optimizer"] == "sgd")


def test_bucket_edges_and_scales(fr: analysis.Frames) -> None:
    x = pd.Series([1e-4, 1e-3, 1e-2, 0.1, 0.3])
    # log-width edges 1e-4 · 3000^(k/4): 1e-4, 7.40e-4, 5.48e-3, 4.05e-2, 0.3
    assert bucket(x, "log").astype(str).tolist() == [
        "[0.0001, 0.00074)", "[0.00074, 0.00548)", "[0.00548, 0.0405)", "[0.0405, 0.3]",
        "[0.0405, 0.3]",
    ]  # fmt: skip
    assert bucket(pd.Series([0.5, 0.5000001, 0.6]), "linear").astype(str).tolist() == [
        "0.5", "0.5000001", "0.6",
    ]  # fmt: skip
    scales = param_scales(fr.trials)
    assert scales["optimizer"] == "categorical" and scales["augment.crop"] == "categorical"
    assert scales["lr"] == "log" and scales["dropout"] == "linear"


# ---------------------------------------------------------------------------------------------
# Each figure function alone: PNG and SVG written, byte-stable, refusing empty input
# ---------------------------------------------------------------------------------------------


def _draw_all(fr: analysis.Frames, out: Path) -> list[Path]:
    t = fr.trials
    imp = pd.Series({"lr": 0.6, "dropout": 0.3, "optimizer": 0.1})
    return [
        plot_importance_comparison({"fANOVA": imp, "PED-ANOVA": imp[::-1]}, out / "imp.png"),
        plot_marginal_effects(t, out / "marg.png", objective="val_acc", scales={"lr": "log"}),
        plot_interactions(t, out / "inter.png", ranking=["lr", "optimizer", "dropout"]),
        plot_parallel_coordinates(t, out / "par.png", objective="val_acc"),
        plot_generalization_gap(t, out / "gap.png"),
        plot_isolation(isolation_table(t), out / "iso.png", objective="val_acc"),
    ]


def test_figure_functions_write_png_and_svg(fr: analysis.Frames, tmp_path: Path) -> None:
    paths = _draw_all(fr, tmp_path)
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width >= 600 and image.height >= 300
            assert len(image.convert("RGB").getcolors(1 << 20)) > 50  # not blank
        svg = path.with_suffix(".svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        assert "<dc:date>" not in svg  # no timestamp: the bytes depend on the data only


def test_figure_functions_refuse_too_little_data(fr: analysis.Frames, tmp_path: Path) -> None:
    one = fr.trials[fr.trials["number"] == 1]
    for draw in (
        lambda: plot_marginal_effects(one, tmp_path / "a.png"),
        lambda: plot_interactions(one, tmp_path / "b.png", ranking=["lr", "dropout"]),
        lambda: plot_parallel_coordinates(one, tmp_path / "c.png"),
        lambda: plot_generalization_gap(one, tmp_path / "d.png"),
        lambda: plot_isolation(isolation_table(one), tmp_path / "e.png"),
        lambda: plot_importance_comparison({"x": pd.Series(dtype=float)}, tmp_path / "f.png"),
    ):
        with pytest.raises(ValueError):
            draw()
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------


def test_report_files(report_dir: Path) -> None:
    names = sorted(p.name for p in report_dir.iterdir())
    assert names == sorted(["report.md", "report.html", *(f"{f}.png" for f in FIGURES)])


def test_report_svg_option_writes_svgs_too(url: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as code:
        main(["report", STUDY, "--storage", url, "-o", str(tmp_path), "--svg"])
    assert code.value.code == 0
    for figure in FIGURES:
        svg = (tmp_path / f"{figure}.svg").read_text()
        assert "<svg" in svg and "<dc:date>" not in svg
    assert "also written as SVG next to the PNG" in (tmp_path / "report.md").read_text()


def test_report_markdown_numbers(report_dir: Path) -> None:
    text = (report_dir / "report.md").read_text()
    best = max(complete(), key=complete().get)
    assert f"trial #{best}" in text and f"{100 * complete()[best]:.2f} %" in text
    assert "| COMPLETE | 6 |" in text and "| PRUNED | 5 |" in text and "| RUNNING | 1 |" in text
    assert (
        "| Parameter | fANOVA | fANOVA 90% interval | PED-ANOVA | PED-ANOVA 90% interval |" in text
    )
    assert "ASHA compared trials at epochs 2, 6, 18." in text
    assert "| 2 | 6 | 8 | 0.0952 |" in text and "| 6 | 18 | 6 | 1 |" in text
    assert "> **Warning:** between epochs 2 and 6 the rank correlation is ρ = 0.095 < 0.5" in text
    assert "between epochs 6 and 18" not in text
    assert "| `optimizer` | sgd |" in text
    for figure in FIGURES:
        assert f"]({figure}.png)" in text
    assert SECRET not in text and "me:***@h/db" in text


def _section(text: str, title: str) -> str:
    """The Markdown of one ``## `` section (up to the next one)."""
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 3)
    return text[start:] if end < 0 else text[start:end]


def test_html_tables_scroll_in_their_own_box(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text()
    before_trials_table = page.split("<h2>Trials</h2>", 1)[1].split("<table>", 1)[0]
    assert before_trials_table.rstrip().endswith('<div class="table-scroll">')
    assert page.count("<table>") == page.count('<div class="table-scroll"><table>') >= 6
    assert page.count("</table>") == page.count("</table></div>")
    assert re.search(r"\.table-scroll \{[^}]*overflow-x: auto", page)


def test_spec_is_collapsible_toml_of_the_stored_spec(report_dir: Path) -> None:
    import tomllib

    text = (report_dir / "report.md").read_text()
    section = _section(text, "Study spec")
    assert '<details markdown="1">' in section and "</details>" in section
    assert "```json" not in text
    toml_text = section.split("```toml\n", 1)[1].split("\n```", 1)[0]
    # The stored spec, as the report shows it: passwords masked.
    expected = json.loads(json.dumps(SPEC).replace(SECRET, "***"))
    assert tomllib.loads(toml_text) == expected
    page = (report_dir / "report.html").read_text()
    folded = page[page.index("<details>") : page.index("</details>")]
    assert "<summary>" in folded and '<code class="language-toml">' in folded


def test_accuracies_are_percent_everywhere(report_dir: Path) -> None:
    text = (report_dir / "report.md").read_text()
    best = max(complete(), key=complete().get)
    assert f"Best value: val_acc = {100 * complete()[best]:.2f} %" in text
    # Every accuracy cell of the best-configuration, trials and isolation tables is a percent.
    rows = [line for line in text.splitlines() if line.startswith("| `") and "_acc` |" in line]
    assert rows and all(re.fullmatch(r"\| `\w+_acc` \| \d+\.\d\d % \|", r) for r in rows)
    trials = [ln for ln in _section(text, "Trials").splitlines() if ln.startswith("| ")]
    header = [c.strip() for c in trials[0].strip("|").split("|")]
    acc = [i for i, h in enumerate(header) if h.endswith("_acc`")]
    assert len(acc) >= 2  # the objective and at least one other accuracy
    for line in trials[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        for i in acc:
            assert re.fullmatch(r"\(?\d+\.\d\d %\)?|–", cells[i]), line
    isolation = _section(text, "Search analysis").split("### Isolation", 1)[1]
    best_cells = [ln.split("|")[4].strip() for ln in isolation.splitlines() if ln.startswith("| `")]
    assert best_cells and all(c.endswith(" %") for c in best_cells)
    assert " pp (trial #" in text  # the generalisation gap, in percentage points
    assert not re.search(r"\| 0\.\d+ \|", _section(text, "Best configuration").split("Results")[1])


def test_parallel_coordinates_caption_names_its_axes(report_dir: Path) -> None:
    text = (report_dir / "report.md").read_text()
    caption = _section(text, "Search analysis").split("### Parallel coordinates", 1)[1]
    caption = caption.strip().splitlines()[0]
    named = re.findall(r"`([^`]+)`", caption)
    assert caption.startswith("The 6 most important (by fANOVA) of the 8 hyperparameters")
    assert len(named) == 6 and "momentum" not in named


def test_report_is_byte_identical(url: str, report_dir: Path, tmp_path: Path) -> None:
    analysis.write_report(url, STUDY, tmp_path)
    for path in sorted(report_dir.iterdir()):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_report_html_is_self_contained(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text()
    assert SECRET not in page
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    assert len(srcs) == len(FIGURES)
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as image:
            assert image.width >= 600
    # nothing fetched from anywhere: no scripts, no stylesheets, no remote URLs
    assert "<script" not in page and "<link" not in page
    assert not re.search(r'(src|href)="(https?:|//|file:)', page)


def test_html_embeds_only_files_inside_the_folder(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    Image.new("RGB", (4, 3)).save(tmp_path / "in" / "a.png")
    Image.new("RGB", (4, 3)).save(tmp_path / "b.png")
    page = render_html("![a](a.png)\n\n![b](../b.png)\n\n![c](missing.png)", tmp_path / "in",
                       title="<t>")  # fmt: skip
    assert 'src="data:image/png;base64,' in page
    assert 'src="../b.png"' in page and 'src="missing.png"' in page
    assert "<title>&lt;t&gt;</title>" in page


def test_report_without_complete_trials(tmp_path: Path) -> None:
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    study.set_user_attr("sweeplab_spec", SPEC)
    trial = study.ask()
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    trial.report(0.5, step=1)  # RUNNING, one epoch
    analysis.write_report(storage, "s", tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "Not drawn: a marginal-effect plot needs at least 2 COMPLETE trials; got 0." in text
    assert "| 2 | 6 | 0 | – |" in text  # no trial reached a rung yet
    assert (tmp_path / "report.html").exists()


# ---------------------------------------------------------------------------------------------
# As a person sees it: headless Chromium
# ---------------------------------------------------------------------------------------------

_PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images];
  document.body.setAttribute("data-probe", JSON.stringify({
    images: imgs.map(i => [i.src.slice(0, 22), i.complete, i.naturalWidth, i.naturalHeight]),
    tables: document.querySelectorAll("table").length,
    cells: [...document.querySelectorAll("td")].map(td => td.textContent.trim()),
    // Whether anything pushes the page sideways, and how each table's box scrolls instead.
    width: [document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth],
    boxes: [...document.querySelectorAll("table")].map(t => {
      const box = t.parentElement;
      return [box.className, box.scrollWidth, box.clientWidth, getComputedStyle(box).overflowX];
    }),
    details: [...document.querySelectorAll("details")].map(d => [d.open, d.offsetHeight]),
  }));
});
</script>"""


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):  # as tests/test_postgres.py: under CI, absence is a failure
            pytest.fail("CI=true but chromium is missing; .ci/run installs Debian's chromium.")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def test_html_report_in_headless_chromium(report_dir: Path, tmp_path: Path) -> None:
    chromium = _chromium()
    # A copy with a probe script that records what the browser laid out; the report itself has
    # no script. Same folder level, so it sees exactly what report.html sees.
    page = (report_dir / "report.html").read_text().replace("</body>", _PROBE + "</body>")
    probe = tmp_path / "probe.html"
    probe.write_text(page)
    flags = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000"]  # fmt: skip
    seen = _probe(flags, probe, width=1280)
    assert len(seen["images"]) == len(FIGURES)
    for src, complete_, width, height in seen["images"]:
        assert src.startswith("data:image/png") and complete_ and width >= 600 and height >= 300
    assert seen["tables"] >= 6
    cells = seen["cells"]
    best = max(complete(), key=complete().get)
    assert f"{100 * complete()[best]:.2f} %" in cells  # best value, best-configuration table
    assert "0.0952" in cells and "low" in cells  # the rung correlation and its verdict
    # The spec is folded away: a closed <details> of one summary line, not pages of JSON.
    assert seen["details"] and all(not is_open and h < 60 for is_open, h in seen["details"])

    # A window narrower than the trials table: the table's own box scrolls, the page does not.
    narrow = _probe(flags, probe, width=700)
    doc_width, body_width, inner = narrow["width"]
    assert doc_width <= inner and body_width <= inner, narrow["width"]
    assert all(c == "table-scroll" and o == "auto" for c, _, _, o in narrow["boxes"])
    assert any(scroll > client for _, scroll, client, _ in narrow["boxes"])  # the trials table

    shot = tmp_path / "shot.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1280,2400", probe.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    if os.environ.get("SWEEPLAB_SCREENSHOT"):  # to look at it: SWEEPLAB_SCREENSHOT=/tmp/r.png
        shutil.copy(shot, os.environ["SWEEPLAB_SCREENSHOT"])
    with Image.open(shot) as image:
        assert image.size == (1280, 2400)
        colours = image.convert("RGB").getcolors(1 << 24)
        assert colours is not None and len(colours) > 100  # text and figures, not a blank page


def _probe(flags: list[str], page: Path, *, width: int) -> dict[str, Any]:
    """What the probe script recorded of ``page`` laid out in a ``width``-pixel window."""
    dom = subprocess.run(
        [*flags, f"--window-size={width},2400", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found, dom[:2000]
    assert "PED-ANOVA" in dom and "Warning:" in dom
    return json.loads(html_lib.unescape(found[1]))


def test_ablation_sections_go_into_both_reports(url: str, tmp_path: Path) -> None:
    """A linked ablation study puts its section into report.md after the search analysis, and
    the bar chart it writes into the folder is embedded in report.html."""
    import shutil

    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    db = tmp_path / "with-ablation.db"
    shutil.copy(url.removeprefix("sqlite:///"), db)
    copy = f"sqlite:///{db}"
    name = f"{STUDY}.ablation-loo-trial0"
    ablation = optuna.create_study(storage=copy, study_name=name, direction="maximize")
    ablation.set_user_attr("objective", "val_acc")
    ablation.set_user_attr("sweeplab_parent", STUDY)
    how = {"mode": "loo", "baseline": "best", "baseline_trial": 0, "seeds": 2,
           "seed_values": [1, 2], "components": ["dropout"], "reference": "baseline"}  # fmt: skip
    ablation.set_user_attr("sweeplab_ablation", how)
    for variant, seed, acc in [("baseline", 1, 0.95), ("baseline", 2, 0.97),
                               ("-dropout", 1, 0.90), ("-dropout", 2, 0.92)]:  # fmt: skip
        attrs = {"variant": variant, "seed": seed, "test_acc": acc, "epochs_run": 2,
                 "train_acc": [0.9, 0.99], "val_acc": [acc - 0.1, acc], "best_epoch": 2}  # fmt: skip
        ablation.add_trial(
            create_trial(
                value=acc,
                params={"dropout": 0.1},
                distributions={"dropout": FloatDistribution(0.0, 0.5)},
                user_attrs=attrs,
            )
        )
    analysis.write_report(copy, STUDY, tmp_path / "out")
    text = (tmp_path / "out" / "report.md").read_text()
    assert "## Ablations" in text and name in text
    assert text.index("## Ablations") > text.index("## Is early stopping trustworthy?")
    assert "96.0 ± 1.4" in text and "91.0 ± 1.4" in text  # mean ± std over the two seeds
    page = (tmp_path / "out" / "report.html").read_text()
    assert "96.0 ± 1.4" in page and 'src="ablations/' not in page
    assert page.count('src="data:image/png;base64,') > len(FIGURES)
