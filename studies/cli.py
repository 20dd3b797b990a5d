"""The ``sweeplab`` command line: run, resume, ablate and inspect studies.

Every command that fails for a reason the user can fix prints one message naming what is
wrong and exits with status 2, without a traceback. The commands use sweeplab's public API
only (:mod:`sweeplab.studies`, :mod:`sweeplab.studies.storage`, :mod:`sweeplab.analysis`), each
importing what it needs when it runs, so ``sweeplab --help`` and ``sweeplab init`` import no
Optuna, Ray, torch or pandas; an argument the library rejects (:class:`InvalidArgument`) is named
by its command-line option.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from sweeplab import studies
from sweeplab.studies import (
    ABLATION_MODES,
    DatabaseFault,
    InvalidArgument,
    SweeplabError,
    UsageError,
    records,
)
from sweeplab.studies._clock import format_duration

DEFAULT_STORAGE = "sqlite:///sweeplab.db"
# The library names a bad argument as its Python parameter; the command line, as its option.
_OPTIONS = {
    "baseline": "--baseline",
    "components": "--components",
    "mode": "--mode",
    "seeds": "--seeds",
    "n_trials": "--n-trials",
    "max_epochs": "--max-epochs",
    "seed": "--seed",
    "name": "--name",
    "storage": "--storage",
}
# Logs and pipes get wide lines rather than rich's 80-column default. No emoji codes: a user's
# "nets:train:" must not print as a train.
_out = Console(
    highlight=False, soft_wrap=True, emoji=False, width=None if sys.stdout.isatty() else 200
)
_err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

_storage_option = click.option(
    "--storage",
    envvar="SWEEPLAB_STORAGE",
    default=DEFAULT_STORAGE,
    show_default=True,
    help="Study database URL (env SWEEPLAB_STORAGE).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sweeplab", message="sweeplab %(version)s")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Hyperparameter search and ablation studies for PyTorch.

    \b
    Quick start:
      sweeplab run quickstart        # a 20-trial study on bundled digits data
      sweeplab status quickstart     # the trial table
      sweeplab report quickstart -o report/
    """
    if ctx.invoked_subcommand not in _WITHOUT_OPTUNA:
        import optuna

        # Optuna's INFO lines ("A new study created in RDB...") are noise on a terminal.
        optuna.logging.set_verbosity(optuna.logging.WARNING)


# Commands that never open a study, so pay for no Optuna import.
_WITHOUT_OPTUNA = ("init", "presets")


# --- running ----------------------------------------------------------------------------------


@cli.command()
@click.argument("spec")
@click.option("--name", help="Study name (default: the spec's [study] name).")
@click.option(
    "--storage", envvar="SWEEPLAB_STORAGE", help="Study database URL (default: the spec's)."
)
@click.option("--n-trials", type=click.IntRange(min=1), help="Trials with a result to end with.")
@click.option("--max-epochs", type=click.IntRange(min=1), help="Epochs per trial at most.")
@click.option("--seed", type=click.IntRange(min=0, max=2**31 - 1), help="Study seed.")
@click.option(
    "--address", help="Attach to a running Ray cluster (e.g. 10.0.0.5:6379 or ray://...)."
)
def run(spec: str, address: str | None, **overrides: Any) -> None:
    """Run the study SPEC (a TOML file or a preset name), or continue it if it exists."""
    from sweeplab.studies.storage import describe_storage

    study_spec = studies.load_spec(spec).with_overrides(**overrides)
    where = describe_storage(study_spec.study.storage)
    _err.print(
        f"study [bold]{study_spec.study.name}[/bold] in {where}: "
        f"{study_spec.budget.n_trials} trials x {study_spec.budget.max_epochs} epochs, "
        f"{study_spec.search.sampler} + {study_spec.search.scheduler}, "
        f"concurrency {study_spec.search.concurrency}"
    )
    try:
        summary = studies.run_study(study_spec, address=address, console=_err)
    except studies.SpecConflict as e:
        raise studies.SpecConflict(f"{e} (here: --name NEW)") from e
    _print_summary(summary)
    _exit_unless_done(summary, study_spec.study.storage)


@cli.command()
@click.argument("name")
@_storage_option
@click.option("--n-trials", type=click.IntRange(min=1), help="Raise (or lower) the trial budget.")
@click.option("--address", help="Attach to a running Ray cluster.")
def resume(name: str, storage: str, n_trials: int | None, address: str | None) -> None:
    """Continue study NAME from the database: interrupted trials run again, finished ones stay."""
    spec = studies.stored_spec(storage, name).with_overrides(n_trials=n_trials)
    summary = studies.run_study(spec, address=address, console=_err)
    _print_summary(summary)
    _exit_unless_done(summary, storage)


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
    type=click.Choice(list(ABLATION_MODES)),
    default="loo",
    show_default=True,
    help="; ".join(f"{mode}: {what}" for mode, what in ABLATION_MODES.items())
    + ". The path costs up to 1 + d(d+1)/2 configurations for d components: cap d with "
    "--components.",
)
@click.option(
    "--components",
    help="Comma-separated components, e.g. dropout,augment.crop (default: every "
    "searched entry, each subset element apart).",
)
@click.option("--address", help="Attach to a running Ray cluster.")
@click.option(
    "--force",
    is_flag=True,
    help="Accept a PRUNED trial as --baseline (refused: it never trained the full budget).",
)
def ablate(
    name: str,
    storage: str,
    baseline: str,
    seeds: int,
    mode: str,
    components: str | None,
    address: str | None,
    force: bool,
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
    from sweeplab.studies.storage import load_study, storage_of

    names = [c.strip() for c in components.split(",") if c.strip()] if components else None
    summary = studies.run_ablation(
        name,
        storage=storage,
        mode=mode,
        baseline=baseline,
        seeds=seeds,
        components=names,
        address=address,
        console=_err,
        allow_pruned=force,
    )
    run = summary.run
    c = run.counts
    _out.print(
        f"ablation {run.study_name} of {summary.parent} ({summary.plan.mode} from "
        f"{summary.baseline}): {c['complete']} complete, {c['fail']} failed "
        f"({run.n_trials} variant x seed pairs); this run started {run.ran} trial(s) in "
        f"{format_duration(run.wall_time_s)}"
        + (f"; stopped: {run.stop_reason}" if run.stop_reason else "")
    )
    if run.interrupted:
        again = f"sweeplab ablate {shlex.quote(name)} --mode {mode} --baseline {baseline}"
        again += f" --seeds {seeds}" + (f" --components {components}" if components else "")
        again += f" --storage {shlex.quote(storage)}" if storage != DEFAULT_STORAGE else ""
        again += " --force" if force else ""
        _err.print(
            f"interrupted ({run.interrupted}): continue with the same command: {again}",
            markup=False,
        )
        sys.exit(EXIT_INTERRUPTED)
    study = load_study(storage, run.study_name, read_only=True)
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
    trials = analysis.trials_frame(study)
    metric = analysis.ablation_metric(trials, study.user_attrs.get(records.OBJECTIVE, "objective"))
    try:
        table = analysis.ablation_table(trials, baseline=reference, metric=metric)
    except ValueError:  # no complete trial of the reference variant yet
        _out.print(f"no complete trial of the {reference!r} variant yet: no table")
        return
    if mode == "seeds":
        objective = study.user_attrs.get(records.OBJECTIVE, "objective")
        spread = analysis.seed_variance(analysis.trials_frame(study), objective=objective)
        click.echo(analysis.seed_variance_markdown(spread), nl=False)
        return
    click.echo(analysis.to_markdown(table), nl=False)


#: Exit statuses of ``run`` and ``resume`` (README: Exit codes).
EXIT_DONE, EXIT_NOT_DONE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _resume_command(name: str, storage: str) -> str:
    """The exact command that continues study ``name`` (``--storage`` unless the default)."""
    command = f"sweeplab resume {shlex.quote(name)}"
    if storage != DEFAULT_STORAGE:
        command += f" --storage {shlex.quote(storage)}"
    return command


def _exit_unless_done(summary: Any, storage: str) -> None:
    """Exit 130 when a signal stopped the run; exit 1, saying why, when the run stopped before
    the study met its budget (too many failures, the time limit, a training function breaking
    its contract)."""
    resume = _resume_command(summary.study_name, storage)
    if summary.interrupted:
        queued = summary.counts["waiting"]
        _err.print(
            f"interrupted ({summary.interrupted}): {summary.ran} trial(s) started in this run; "
            f"{queued} queued to run again; continue with: {escape(resume)}",
            markup=False,
        )
        sys.exit(EXIT_INTERRUPTED)
    done = summary.counts["complete"] + summary.counts["pruned"]
    if done >= summary.n_trials:
        return
    why = summary.stop_reason or "trials failed"
    _err.print(
        f"[red]error:[/red] study {escape(summary.study_name)} has {done} of its "
        f"{summary.n_trials} trials with a result: {escape(why)}; fix the cause, then "
        f"{escape(resume)}",
        markup=True,
    )
    sys.exit(EXIT_NOT_DONE)


def _print_summary(summary: Any) -> None:
    c = summary.counts
    _out.print(
        f"study {summary.study_name}: {c['complete']} complete, {c['pruned']} pruned, "
        f"{c['fail']} failed"
        + (f", {c['interrupted']} interrupted" if c.get("interrupted") else "")
        + f" (budget {summary.n_trials}); this run started {summary.ran} "
        f"trial(s) in {format_duration(summary.wall_time_s)}"
        + (f"; stopped: {summary.stop_reason}" if summary.stop_reason else "")
    )
    if summary.pareto:
        _out.print(
            f"Pareto front: {len(summary.pareto)} trials ({', '.join(map(str, summary.pareto))});"
            f" sweeplab best {summary.study_name} lists them"
        )
        return
    if summary.best_number is None:
        _out.print("no complete trial yet")
        return
    attrs = summary.best_attrs
    # A training function's own final metrics where it returned some, else the test accuracy.
    final = attrs.get(records.FINAL_METRICS) or {records.TEST_ACC: attrs.get(records.TEST_ACC)}
    _out.print(
        f"best trial {summary.best_number}: value {summary.best_value:.4f}, "
        + "".join(f"{k} {_fmt(v)}, " for k, v in final.items())
        + f"epochs {attrs.get(records.EPOCHS_RUN, '?')}"
    )
    for line in _wrap_items([f"{k}={_fmt(v)}" for k, v in summary.best_params.items()]):
        _out.print(line)


# --- inspecting -------------------------------------------------------------------------------


def _frames(storage: str, name: str) -> tuple[Any, Any, Any]:
    from sweeplab import analysis
    from sweeplab.studies.storage import load_study

    study = load_study(storage, name, read_only=True)
    return study, analysis.trials_frame(study), analysis.curves_frame(study)


@cli.command()
@click.argument("name")
@_storage_option
@click.option("--trial", "number", type=click.IntRange(min=0), help="One trial in full: its "
              "parameters, metrics, error and traceback.")  # fmt: skip
def status(name: str, storage: str, number: int | None) -> None:
    """The trial table of study NAME: state, objective, epochs, parameters."""
    from rich.table import Table

    if number is not None:
        _one_trial(storage, name, number)
        return
    study, trials, _ = _frames(storage, name)
    counts = trials["state"].value_counts().to_dict() if len(trials) else {}
    _out.print(
        f"study {name} ({_objectives_text(study)}): {len(trials)} trials; "
        + ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
    )
    params = [c for c in trials.columns if c.startswith("param.")]
    # An ablation's trials say which variant and seed they train; a failed one, why it failed.
    ablation = "variant" in trials and trials["variant"].notna().any()
    failed = "fail_reason" in trials and trials["fail_reason"].notna().any()
    columns = ["trial", "state", *(["reason"] if failed else []), "value", "epochs", "test_acc",
               "seconds", *(["variant", "seed"] if ablation else []), "parameters"]  # fmt: skip
    table = Table(show_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for _, row in trials.iterrows():
        cells = [str(row["number"]), str(row["state"])]
        if failed:
            cells.append(_fmt(row.get("fail_reason")) if row["state"] == "FAIL" else "")
        cells.append(_value_cell(row))
        cells += [_fmt(row.get(k)) for k in ("epochs_run", "test_acc", "duration_s")]
        if ablation:
            cells += [_fmt(row.get("variant")), _fmt(row.get("seed"))]
        cells.append(_params_text(row, params))
        table.add_row(*cells)
    _out.print(table)
    usage = studies.weights.artifact_usage(study)
    if usage.location:
        _out.print(
            f"artifacts: {_size(usage.bytes)} in {usage.location} ({usage.weights} kept "
            f"weights, {usage.checkpoints} checkpoints of unfinished trials)"
        )


def _objectives_text(study: Any) -> str:
    """``maximize val_acc``, or ``maximize val_acc, minimize epochs`` for several."""
    from sweeplab import analysis

    names, directions = analysis.objective_names(study), analysis.directions_of(study)
    return ", ".join(f"{d} {n}" for d, n in zip(directions, names, strict=True))


def _value_cell(row: Any) -> str:
    """A trial's value; of several objectives, all of them, ``*`` marking the Pareto front."""
    if "pareto" not in row:
        return _fmt(row.get("value"))
    values = [row[k] for k in row.index if str(k).startswith("value.")]
    if all(v != v for v in values):  # NaN: not complete
        return ""
    return ", ".join(_fmt(v) for v in values) + (" *" if row["pareto"] else "")


def _size(n: int) -> str:
    """Bytes for a person: ``1.5 MB``."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover


@cli.command("studies")
@_storage_option
def list_studies(storage: str) -> None:
    """The studies of a database: their trials per state and best value."""
    from rich.table import Table

    from sweeplab import analysis
    from sweeplab.studies.storage import describe_storage, open_storage

    db = open_storage(storage, create=False, read_only=True)
    summaries = sorted(db.get_all_studies(), key=lambda s: s.study_name)
    if not summaries:
        _out.print(f"no studies in {describe_storage(db)}")
        return
    table = Table(show_edge=False)
    for column in ("study", "kind", "objective", "trials", "complete", "pruned", "failed",
                   "running", "best"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for summary in summaries:
        trials = db.get_all_trials(db.get_study_id_from_name(summary.study_name), deepcopy=False)
        states = [t.state.name for t in trials]
        parent = summary.user_attrs.get(records.PARENT)
        kind = f"ablation of {parent}" if parent else "search"
        objective = summary.user_attrs.get(records.OBJECTIVE, "value")
        directions = [d.name.lower() for d in summary.directions]
        if len(directions) > 1:
            front = analysis.pareto_numbers(list(trials), directions)
            what = ", ".join(f"{d} {n}" for d, n in zip(directions, objective, strict=False))
            best = f"{len(front)} on the Pareto front"
        else:
            values = [t.values[0] for t in trials if t.state.name == "COMPLETE" and t.values]
            pick = max if directions[0] == "maximize" else min
            best = _fmt(pick(values)) if values else _fmt(None)
            what = f"{directions[0]} {objective}"
        table.add_row(
            summary.study_name, kind, what,
            str(len(trials)), *(str(states.count(s)) for s in ("COMPLETE", "PRUNED", "FAIL")),
            str(states.count("RUNNING")), best,
        )  # fmt: skip
    _out.print(f"{len(summaries)} studies in {describe_storage(db)}")
    _out.print(table)


def _one_trial(storage: str, name: str, number: int) -> None:
    from sweeplab.studies.storage import load_study

    study = load_study(storage, name, read_only=True)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise UsageError(
            f"study {name!r} has no trial {number} (its trials are numbered 0 to {len(trials) - 1})"
        )
    trial, attrs = trials[number], trials[number].user_attrs
    value = ", ".join(_fmt(v) for v in trial.values or ())
    _out.print(f"trial {number} of {name}: {trial.state.name}, value {value}")
    for key, value in trial.params.items():
        _out.print(f"  {key:<22} {_fmt(value)}")
    curves = {*records.CURVE_KEYS, *(attrs.get(records.CURVE_NAMES) or ())}
    for key in sorted(attrs):
        if key in curves or key in (records.ERROR, records.TRACEBACK, records.FINAL_METRICS):
            continue
        _out.print(f"  {key:<22} {_fmt(attrs[key])}")
    for key, value in (attrs.get(records.FINAL_METRICS) or {}).items():
        _out.print(f"  {key:<22} {_fmt(value)}  (returned)")
    if attrs.get(records.ERROR):
        _out.print(f"error: {attrs[records.ERROR]}")
    if attrs.get(records.TRACEBACK):
        _out.print(attrs[records.TRACEBACK].rstrip())


@cli.command()
@click.argument("name")
@_storage_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--weights", "weights_to", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the best trial's trained weights (a state_dict, torch.save) to FILE; "
              "with --trial, that trial's.")  # fmt: skip
@click.option("--trial", "number", type=click.IntRange(min=0),
              help="With --weights: this trial's weights instead of the best's.")  # fmt: skip
def best(
    name: str, storage: str, as_json: bool, weights_to: Path | None, number: int | None
) -> None:
    """The best complete trial of study NAME: its configuration and metrics."""
    from sweeplab.studies.storage import load_study, storage_of

    study = load_study(storage, name, read_only=True)
    if weights_to is not None:
        _write_weights(study, number, weights_to)
        return
    if number is not None:
        raise UsageError("--trial goes with --weights (status --trial N shows one trial)")
    if len(study.directions) > 1:
        _pareto_front(study, as_json)
        return
    try:
        trial = study.best_trial
    except ValueError as e:
        raise UsageError(f"study {name!r} has no complete trial yet") from e
    config = dict(trial.params)
    if records.SPEC in study.user_attrs:
        spec = studies.stored_spec(storage_of(study), name)
        config = spec.space.config_from_params(trial.params)
    attrs = trial.user_attrs
    metrics = {
        k: attrs.get(k)
        for k in (records.TRAIN_ACC, records.VAL_ACC, records.TEST_ACC, records.TEST_LOSS)
    }
    own = attrs.get(records.CURVE_NAMES) or []
    metrics.update({name: attrs.get(name) for name in own})
    # train_acc as status/export/report show it (eval mode on the training split where measured)
    metrics[records.TRAIN_ACC] = records.train_accuracy(attrs)
    for key in (records.VAL_ACC, *own):
        curve, at = metrics[key], attrs.get(records.BEST_EPOCH)
        if isinstance(curve, list) and curve:
            metrics[key] = curve[at - 1] if at and at <= len(curve) else curve[-1]
    metrics.update(attrs.get(records.FINAL_METRICS) or {})
    metrics = {k: v for k, v in metrics.items() if v is not None}
    out = {
        "study": name,
        "number": trial.number,
        "value": trial.value,
        "objective": study.user_attrs.get(records.OBJECTIVE),
        "params": config,
        "metrics": metrics,
        "best_epoch": attrs.get(records.BEST_EPOCH),
        "epochs_run": attrs.get(records.EPOCHS_RUN),
        "seed": attrs.get(records.SEED),
    }
    schedule = attrs.get(records.PBT_SCHEDULE)
    if schedule:
        out["pbt_schedule"] = schedule
    if as_json:
        click.echo(json.dumps(out, indent=2, sort_keys=True))
        return
    _out.print(f"best trial {out['number']} of {name}: {out['objective']} = {_fmt(out['value'])}")
    for key, value in {**config, **metrics}.items():
        _out.print(f"  {key:<14} {_fmt(value)}")
    if schedule:
        # Population based training: the params above are the ones the trial started with.
        _out.print("  population based training (the params above are those it started with):")
        for step in schedule:
            changed = ", ".join(f"{k}={_fmt(v)}" for k, v in (step.get("params") or {}).items())
            _out.print(
                f"    after epoch {step.get('epoch')}: copied trial {step.get('from')}, {changed}"
            )


def _pareto_front(study: Any, as_json: bool) -> None:
    """``best`` of a multi-objective study: its Pareto front, one row per trial on it."""
    from rich.table import Table

    from sweeplab import analysis

    front = analysis.pareto_frame(study)
    names = analysis.objective_names(study)
    if not len(front):
        raise UsageError(f"study {study.study_name!r} has no complete trial yet")
    params = [c for c in front.columns if str(c).startswith("param.")]
    rows = [
        {
            "number": int(r["number"]),
            "values": {n: float(r[n]) for n in names},
            "params": {p.removeprefix("param."): r[p] for p in params if r[p] == r[p]},
        }
        for _, r in front.iterrows()
    ]
    if as_json:
        out = {"study": study.study_name, "objectives": names,
               "directions": analysis.directions_of(study), "pareto_front": rows}  # fmt: skip
        click.echo(json.dumps(out, indent=2, sort_keys=True, default=str))
        return
    _out.print(
        f"Pareto front of {study.study_name} ({_objectives_text(study)}): {len(rows)} trials "
        "that no other complete trial beats in every objective"
    )
    table = Table(show_edge=False)
    for column in ("trial", *names, "parameters"):
        table.add_column(column, overflow="fold")
    for row in rows:
        text = " ".join(f"{k}={_fmt(v)}" for k, v in row["params"].items())
        table.add_row(str(row["number"]), *(_fmt(v) for v in row["values"].values()), text)
    _out.print(table)


def _write_weights(study: Any, number: int | None, output: Path) -> None:
    import io

    import torch

    from sweeplab import trainer

    trial = studies.weights.kept_trial(study, number)
    data = studies.weights.weights_bytes(study, trial)
    try:
        weights = trainer.read_weights(data)
    except trainer.CheckpointError as e:
        raise UsageError(f"the weights of trial {trial.number}: {e}") from None
    buffer = io.BytesIO()
    torch.save(weights.state_dict, buffer)  # a plain state_dict: load_state_dict takes it
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(buffer.getvalue())
    except OSError as e:
        raise UsageError(f"--weights: cannot write {output}: {e.strerror or e}") from None
    _out.print(
        f"wrote the weights of trial {trial.number} (value {_fmt(trial.value)}, epoch "
        f"{weights.epoch}) to {output}; sweeplab.load_model({study.study_name!r}, ...) "
        "rebuilds the network"
    )


@cli.command()
@click.argument("name")
@_storage_option
@click.option("--yes", is_flag=True, help="Do not ask.")
def delete(name: str, storage: str, yes: bool) -> None:
    """Delete study NAME from its database, with its checkpoints and weights."""
    from sweeplab.studies.storage import load_study

    study = load_study(storage, name)
    n = len(study.get_trials(deepcopy=False))
    if not yes:
        click.confirm(f"delete study {name!r} ({n} trials) and its artifacts?", abort=True)
    freed = studies.delete_study(storage, name)
    _out.print(f"deleted study {name!r} ({n} trials; {_size(freed)} of artifacts)")


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
    with _writing(output):
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.suffix == ".csv":
            trials.to_csv(output, index=False)
        else:
            trials.to_parquet(output, index=False)
    _out.print(f"wrote {len(trials)} trials to {output}")


@contextmanager
def _writing(output: Path) -> Iterator[None]:
    """An ``OSError`` while writing ``output`` (a read-only folder, a file where a folder
    should be, ``/proc``) becomes one message, exit 2; what was created for it goes again."""
    made = [p for p in (output, *output.parents) if not p.exists() and not p.is_symlink()]
    try:
        yield
    except OSError as e:
        for path in made:  # deepest first
            with contextlib.suppress(OSError):
                path.unlink() if path.is_file() else path.rmdir()
        why = e.strerror or type(e).__name__
        where = f" ({e.filename})" if e.filename and str(e.filename) != str(output) else ""
        raise UsageError(f"cannot write {output}: {why}{where}") from None


@cli.command()
@click.argument("name")
@_storage_option
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for report.md, report.html and the figures.")  # fmt: skip
@click.option("--svg", is_flag=True, help="Also write each figure as SVG beside its PNG.")
def report(name: str, storage: str, output: Path, svg: bool) -> None:
    """Write report.md, a self-contained report.html and figures for study NAME (works while it
    runs)."""
    import gc

    from sweeplab import analysis
    from sweeplab.studies.storage import load_study

    # A one-shot process: the modules imported so far (pandas, Optuna, SQLAlchemy) live until
    # it exits, so full collections need not scan them again and again (frozen before, and
    # once more after: the interpreter's last collection at exit then skips scipy's,
    # scikit-learn's and matplotlib's objects too; together about a second of the report).
    gc.freeze()
    load_study(storage, name, read_only=True)  # a clear error if it is absent
    with _writing(output):
        path = analysis.write_report(storage, name, output, svg=svg)
    _out.print(f"wrote {path} and {path.with_name('report.html')} (self-contained)")
    gc.freeze()


@cli.command()
def presets() -> None:
    """List the study specs shipped with sweeplab."""
    for name in studies.preset_names():
        spec = studies.load_spec(name)
        first = studies.preset_text(name).splitlines()[0].lstrip("# ").strip()
        _out.print(f"{name:<21} {spec.data.dataset}/{spec.model.kind}, "
                   f"{spec.budget.n_trials} trials: {first}")  # fmt: skip


@cli.command()
@click.argument("preset", default="quickstart")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(preset: str, output: Path, force: bool) -> None:
    """Write the commented spec PRESET to a file, to edit and run."""
    names = studies.preset_names()
    if preset not in names:
        raise UsageError(f"unknown preset {preset!r}; presets: {', '.join(names)}")
    if output.exists() and not force:
        raise UsageError(f"{output} exists; pass --force to overwrite it")
    text = studies.preset_text(preset)
    # The copy is its own study, named after its file, so that `sweeplab status study` finds
    # what `sweeplab run study.toml` ran (and the preset's own study is left alone).
    name = output.stem
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}", name):
        text = re.sub(
            r'^name = ".*"$',
            f"{'name = ' + json.dumps(name):<36}# the study's name in the database",
            text,
            count=1,
            flags=re.MULTILINE,
        )
    else:
        name = preset
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"-o: cannot write {output}: {e.strerror or e}") from None
    _out.print(
        f"wrote {output} (study {name!r}); run it with: sweeplab run {output}, then "
        f"sweeplab status {name}"
    )


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


def _wrap_items(items: list[str], width: int | None = None, indent: str = "  ") -> list[str]:
    """``items`` joined by ", " into lines of at most ``width`` (the terminal's) columns,
    breaking only between items: a terminal's own wrap would cut a number in two.

    Example:
        >>> _wrap_items(["lr=0.005419", "optimizer=sgd", "momentum=0.9"], width=30)
        ['  lr=0.005419, optimizer=sgd,', '  momentum=0.9']
    """
    width = width or (_out.size.width if _out.is_terminal else 10**6)
    lines: list[str] = []
    line = ""
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else "")
        if line and len(indent) + len(line) + 1 + len(piece) > width:
            lines.append(indent + line)
            line = piece
        else:
            line = f"{line} {piece}" if line else piece
    if line:
        lines.append(indent + line)
    return lines


def _fmt(value: Any) -> str:
    # pandas' NA, recognised without importing pandas (commands that never read a frame, and
    # --help, do not pay for it).
    missing = value is None or type(value).__name__ == "NAType"
    if missing or (isinstance(value, float) and math.isnan(value)):
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
    try:
        cli.main(args=argv, prog_name="sweeplab", standalone_mode=False)
    except InvalidArgument as e:
        option = _OPTIONS.get(e.argument, e.argument)
        _err.print(f"[red]error:[/red] {escape(f'{option}: {e.problem}')}", markup=True)
        sys.exit(e.exit_code)
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
    except Exception as e:
        fault = _database_fault(e)
        if fault is None:
            raise
        _err.print(f"[red]error:[/red] {escape(fault)}", markup=True, highlight=False)
        sys.exit(DatabaseFault.exit_code)
    sys.exit(0)


def _database_fault(error: BaseException) -> str | None:
    """The one sentence for a database that failed under a command; ``None`` for any other
    error (a bug: its traceback is shown). Nothing is imported unless a database was used."""
    if "sqlalchemy" not in sys.modules:
        return None
    from sweeplab.studies.storage import database_fault

    return database_fault(error)


if __name__ == "__main__":
    main()
