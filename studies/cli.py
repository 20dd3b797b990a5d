"""The ``sweeplab`` command line: run, resume, ablate and inspect studies.

Every command that fails for a reason the user can fix prints one message naming what is
wrong and exits with status 2, without a traceback.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import click
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sweeplab.studies._ablation_plan import MODES
from sweeplab.studies._spec import load_spec, preset_names, preset_text
from sweeplab.studies.errors import SweeplabError, UsageError
from sweeplab.studies.storage import describe_storage, load_study, storage_of

DEFAULT_STORAGE = "sqlite:///sweeplab.db"
# Logs and pipes get wide lines rather than rich's 80-column default.
_out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

_storage_option = click.option(
    "--storage",
    envvar="SWEEPLAB_STORAGE",
    default=DEFAULT_STORAGE,
    show_default=True,
    help="Study database URL (env SWEEPLAB_STORAGE).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sweeplab", message="sweeplab %(version)s")
def cli() -> None:
    """Hyperparameter search and ablation studies for PyTorch.

    \b
    Quick start:
      sweeplab run quickstart        # a 20-trial study on bundled digits data
      sweeplab status quickstart     # the trial table
      sweeplab report quickstart -o report/
    """


# --- running ----------------------------------------------------------------------------------


@cli.command()
@click.argument("spec")
@click.option("--name", help="Study name (default: the spec's [study] name).")
@click.option(
    "--storage", envvar="SWEEPLAB_STORAGE", help="Study database URL (default: the spec's)."
)
@click.option("--n-trials", type=click.IntRange(min=1), help="Trials with a result to end with.")
@click.option("--max-epochs", type=click.IntRange(min=1), help="Epochs per trial at most.")
@click.option("--seed", type=click.IntRange(min=0), help="Study seed.")
@click.option(
    "--address", help="Attach to a running Ray cluster (e.g. 10.0.0.5:6379 or ray://...)."
)
def run(spec: str, address: str | None, **overrides: Any) -> None:
    """Run the study SPEC (a TOML file or a preset name), or continue it if it exists."""
    from sweeplab.studies._run import run_study

    study_spec = load_spec(spec).with_overrides(**overrides)
    where = describe_storage(study_spec.study.storage)
    _err.print(
        f"study [bold]{study_spec.study.name}[/bold] in {where}: "
        f"{study_spec.budget.n_trials} trials x {study_spec.budget.max_epochs} epochs, "
        f"{study_spec.search.sampler} + {study_spec.search.scheduler}, "
        f"concurrency {study_spec.search.concurrency}"
    )
    _print_summary(run_study(study_spec, address=address, console=_err))


@cli.command()
@click.argument("name")
@_storage_option
@click.option("--n-trials", type=click.IntRange(min=1), help="Raise (or lower) the trial budget.")
@click.option("--address", help="Attach to a running Ray cluster.")
def resume(name: str, storage: str, n_trials: int | None, address: str | None) -> None:
    """Continue study NAME from the database: interrupted trials run again, finished ones stay."""
    from sweeplab.studies._run import run_study
    from sweeplab.studies._study import stored_spec

    spec = stored_spec(storage, name)
    spec = spec.with_overrides(n_trials=n_trials)
    _print_summary(run_study(spec, address=address, console=_err))


@cli.command()
@click.argument("name")
@_storage_option
@click.option(
    "--baseline",
    default="best",
    show_default=True,
    help="The configuration to ablate: best (the best complete trial), default "
    "(every component off) or a trial number.",
)
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Trials per variant, one per seed (the same seeds for every variant).",
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="loo",
    show_default=True,
    help="loo: the baseline and each component reverted; add: the defaults and each "
    "component switched on alone; path: the greedy path from the defaults to the baseline, "
    "one component per step (1 + d(d+1)/2 configurations for d components: cap d with "
    "--components); grid: every on/off combination of the components; seeds: the baseline "
    "alone, once per seed (run-to-run noise).",
)
@click.option(
    "--components",
    help="Comma-separated components, e.g. dropout,augment.crop (default: every "
    "searched entry, each subset element apart).",
)
@click.option("--address", help="Attach to a running Ray cluster.")
def ablate(
    name: str,
    storage: str,
    baseline: str,
    seeds: int,
    mode: str,
    components: str | None,
    address: str | None,
) -> None:
    """Train variants of a configuration of study NAME over seeds: which choices matter?

    \b
    A component is a searched hyperparameter (off = the trainer's default: dropout 0,
    optimizer adam, lr 0.001...) or one element of a subset (augment.crop: on/off); a
    conditional hyperparameter follows its parent. The variants run at the full epoch
    budget, without pruning, in the study NAME.ablation-MODE-trialN (or -default) of the
    same database; running the command again runs only what is missing (the path continues
    from the last step the database has decided).
    """
    from sweeplab import analysis
    from sweeplab.studies._ablate import run_ablation

    names = [c.strip() for c in components.split(",") if c.strip()] if components else None
    summary = run_ablation(
        name,
        storage=storage,
        mode=mode,
        baseline=baseline,
        seeds=seeds,
        components=names,
        address=address,
        console=_err,
    )
    run = summary.run
    c = run.counts
    _out.print(
        f"ablation {run.study_name} of {summary.parent} ({summary.plan.mode} from "
        f"{summary.baseline}): {c['complete']} complete, {c['fail']} failed "
        f"({run.n_trials} variant x seed pairs); this run started {run.ran} trial(s) in "
        f"{run.wall_time_s:.1f}s" + (f"; stopped: {run.stop_reason}" if run.stop_reason else "")
    )
    study = load_study(storage, run.study_name)
    if mode == "path":
        path = analysis.ablation_path(storage_of(study), run.study_name)
        if path.empty:
            _out.print(
                "the default configuration has no complete trial for every seed yet: no path"
            )
            return
        click.echo(analysis.path_to_markdown(path), nl=False)
        return
    reference = summary.plan.reference
    try:
        table = analysis.ablation_table(
            analysis.trials_frame(study), baseline=reference, metric="test_acc"
        )
    except ValueError:  # no complete trial of the reference variant yet
        _out.print(f"no complete trial of the {reference!r} variant yet: no table")
        return
    if mode == "seeds":
        objective = study.user_attrs.get("objective", "objective")
        spread = analysis.seed_variance(analysis.trials_frame(study), objective=objective)
        click.echo(analysis.seed_variance_markdown(spread), nl=False)
        return
    click.echo(analysis.to_markdown(table), nl=False)


def _print_summary(summary: Any) -> None:
    c = summary.counts
    _out.print(
        f"study {summary.study_name}: {c['complete']} complete, {c['pruned']} pruned, "
        f"{c['fail']} failed (budget {summary.n_trials}); this run started {summary.ran} "
        f"trial(s) in {summary.wall_time_s:.1f}s"
        + (f"; stopped: {summary.stop_reason}" if summary.stop_reason else "")
    )
    if summary.best_number is None:
        _out.print("no complete trial yet")
        return
    attrs = summary.best_attrs
    _out.print(
        f"best trial {summary.best_number}: value {summary.best_value:.4f}, "
        f"test_acc {_fmt(attrs.get('test_acc'))}, epochs {attrs.get('epochs_run', '?')}"
    )
    _out.print("  " + ", ".join(f"{k}={_fmt(v)}" for k, v in summary.best_params.items()))


# --- inspecting -------------------------------------------------------------------------------


def _frames(storage: str, name: str) -> tuple[Any, Any, Any]:
    from sweeplab import analysis

    study = load_study(storage, name)
    return study, analysis.trials_frame(study), analysis.curves_frame(study)


@cli.command()
@click.argument("name")
@_storage_option
def status(name: str, storage: str) -> None:
    """The trial table of study NAME: state, objective, epochs, parameters."""
    study, trials, _ = _frames(storage, name)
    counts = trials["state"].value_counts().to_dict() if len(trials) else {}
    _out.print(
        f"study {name} ({study.direction.name.lower()} {study.user_attrs.get('objective', 'value')}"
        f"): {len(trials)} trials; "
        + ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
    )
    params = [c for c in trials.columns if c.startswith("param.")]
    table = Table(show_edge=False)
    for column in ("trial", "state", "value", "epochs", "test_acc", "seconds", "parameters"):
        table.add_column(column, overflow="fold")
    for _, row in trials.iterrows():
        table.add_row(
            str(row["number"]),
            str(row["state"]),
            _fmt(row.get("value")),
            _fmt(row.get("epochs_run")),
            _fmt(row.get("test_acc")),
            _fmt(row.get("duration_s")),
            _params_text(row, params),
        )
    _out.print(table)


@cli.command()
@click.argument("name")
@_storage_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def best(name: str, storage: str, as_json: bool) -> None:
    """The best complete trial of study NAME: its configuration and metrics."""
    from sweeplab.studies import records

    study = load_study(storage, name)
    try:
        trial = study.best_trial
    except ValueError as e:
        raise UsageError(f"study {name!r} has no complete trial yet") from e
    config = dict(trial.params)
    if records.SPEC in study.user_attrs:
        from sweeplab.studies._study import stored_spec

        config = stored_spec(storage_of(study), name).space.config_from_params(trial.params)
    metrics = {
        k: trial.user_attrs.get(k) for k in ("train_acc", "val_acc", "test_acc", "test_loss")
    }
    for key in ("train_acc", "val_acc"):
        curve, at = metrics[key], trial.user_attrs.get("best_epoch")
        if isinstance(curve, list) and curve:
            metrics[key] = curve[at - 1] if at else curve[-1]
    out = {
        "study": name,
        "number": trial.number,
        "value": trial.value,
        "objective": study.user_attrs.get("objective"),
        "params": config,
        "metrics": metrics,
        "best_epoch": trial.user_attrs.get("best_epoch"),
        "epochs_run": trial.user_attrs.get("epochs_run"),
        "seed": trial.user_attrs.get("seed"),
    }
    if as_json:
        click.echo(json.dumps(out, indent=2, sort_keys=True))
        return
    _out.print(f"best trial {out['number']} of {name}: {out['objective']} = {_fmt(out['value'])}")
    for key, value in {**config, **metrics}.items():
        _out.print(f"  {key:<14} {_fmt(value)}")


@cli.command()
@click.argument("name")
@_storage_option
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="FILE.csv or FILE.parquet")  # fmt: skip
def export(name: str, storage: str, output: Path) -> None:
    """Write one row per trial of study NAME (state, params, metrics, durations)."""
    if output.suffix not in (".csv", ".parquet"):
        raise UsageError(f"{output}: the export format is chosen by the suffix: .csv or .parquet")
    _, trials, _ = _frames(storage, name)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".csv":
        trials.to_csv(output, index=False)
    else:
        trials.to_parquet(output, index=False)
    _out.print(f"wrote {len(trials)} trials to {output}")


@cli.command()
@click.argument("name")
@_storage_option
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for report.md, report.html and the figures.")  # fmt: skip
def report(name: str, storage: str, output: Path) -> None:
    """Write report.md, a self-contained report.html and figures for study NAME (works while it
    runs)."""
    from sweeplab import analysis

    load_study(storage, name)  # a clear error if it is absent
    path = analysis.write_report(storage, name, output)
    _out.print(f"wrote {path} and {path.with_name('report.html')} (self-contained)")


@cli.command()
def presets() -> None:
    """List the study specs shipped with sweeplab."""
    for name in preset_names():
        spec = load_spec(name)
        first = preset_text(name).splitlines()[0].lstrip("# ").strip()
        _out.print(f"{name:<21} {spec.data.dataset}/{spec.model.kind}, "
                   f"{spec.budget.n_trials} trials: {first}")  # fmt: skip


@cli.command()
@click.argument("preset", default="quickstart")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(preset: str, output: Path, force: bool) -> None:
    """Write the commented spec PRESET to a file, to edit and run."""
    if preset not in preset_names():
        raise UsageError(f"unknown preset {preset!r}; presets: {', '.join(preset_names())}")
    if output.exists() and not force:
        raise UsageError(f"{output} exists; pass --force to overwrite it")
    output.write_text(preset_text(preset), encoding="utf-8")
    _out.print(f"wrote {output}; run it with: sweeplab run {output}")


def _params_text(row: Any, columns: list[str]) -> str:
    """``lr=0.01 augment=crop+noise``: subset flags folded back into one list per name."""
    parts: dict[str, str] = {}
    for column in columns:
        name, value = column.removeprefix("param."), row[column]
        if _fmt(value) == "":
            continue
        if "." in name:  # a subset flag such as augment.crop
            base, element = name.split(".", 1)
            items = parts.get(base, "none").split("+")
            items = [i for i in items if i != "none"] + ([element] if value is True else [])
            parts[base] = "+".join(items) or "none"
        else:
            parts[name] = _fmt(value)
    return " ".join(f"{k}={v}" for k, v in parts.items())


def _fmt(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "+".join(map(str, value)) or "none"
    return str(value)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: domain errors become one message and an exit status."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        cli.main(args=argv, prog_name="sweeplab", standalone_mode=False)
    except SweeplabError as e:
        _err.print(f"[red]error:[/red] {escape(str(e))}", markup=True, highlight=False)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        _err.print("aborted")
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        _err.print("interrupted; resume with: sweeplab resume NAME")
        sys.exit(130)
    sys.exit(0)


if __name__ == "__main__":
    main()
