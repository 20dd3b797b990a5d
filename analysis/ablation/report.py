"""The ``## Ablations`` section of a study's report: every linked ablation, its tables and figures.

An ablation study (``sweeplab ablate``) lives in the same database as the study it ablates and
names it in its user attribute ``sweeplab_parent``; ``sweeplab_ablation`` says how it was run
(mode, baseline, seeds...). :func:`render_ablation_sections` finds them all, writes each one's
tables and figures under ``out_dir/ablations/<ablation study>/`` and returns the Markdown that
shows them, with links relative to ``out_dir``. Same database, same bytes: studies in name
order, no timestamps, deterministic figures.
"""

from __future__ import annotations

import re
from pathlib import Path

import optuna

from sweeplab.analysis._frames import trials_frame
from sweeplab.analysis._markdown import code
from sweeplab.analysis.ablation.charts import ablation_bar_chart, ablation_path_chart
from sweeplab.analysis.ablation.path import ablation_path
from sweeplab.analysis.ablation.seeds import seed_variance, seed_variance_markdown
from sweeplab.analysis.ablation.stats import ablation_metric, ablation_table
from sweeplab.analysis.ablation.tables import (
    path_to_markdown,
    to_markdown,
    write_ablation_tables,
    write_path_tables,
)
from sweeplab.studies import records
from sweeplab.studies.storage import load_study, storage_of

__all__ = ["ABLATIONS_DIR", "linked_ablations", "render_ablation_sections"]

#: Where, under the report's folder, each ablation's files go (one folder per ablation study).
ABLATIONS_DIR = "ablations"


def linked_ablations(
    storage: str | optuna.storages.BaseStorage, study_name: str
) -> list[tuple[str, records.AblationRecord]]:
    """The ablation studies of ``study_name`` in ``storage``, by name: ``(name, how)`` pairs."""
    # Through load_study: a misspelt name or a missing SQLite file fails clearly, creates nothing.
    backend = storage_of(load_study(storage, study_name, read_only=True))
    out = []
    for s in backend.get_all_studies():
        how = records.AblationRecord.from_attr(s.user_attrs.get(records.ABLATION))
        if s.user_attrs.get(records.PARENT) == study_name and how is not None:
            out.append((s.study_name, how))
    return sorted(out, key=lambda x: x[0])


def _folder(name: str) -> str:
    # A study name is free text; a folder name must not climb out of the report or hide.
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".")
    return safe or "ablation"


def _describe(how: records.AblationRecord) -> str:
    mode, trial = how.mode, how.baseline_trial
    baseline = "the default configuration" if trial is None else f"trial #{trial}"
    if how.baseline == "best" and trial is not None:
        baseline += " (the best of the search)"
    described = records.ABLATION_MODES.get(mode, mode)
    parts = [f"Mode {code(mode)}: {described}", f"baseline {baseline}"]
    parts.append(f"{how.seeds} seed(s) per configuration, full budget, no pruning")
    components = how.components
    if components:
        parts.append("components " + ", ".join(code(str(c)) for c in components))
    return "; ".join(parts) + "."


def _image(rel: Path, alt: str) -> str:
    return f"![{alt}]({rel.as_posix()})"


def _section(
    storage: str | optuna.storages.BaseStorage,
    name: str,
    how: records.AblationRecord,
    out_dir: Path,
) -> list[str]:
    rel_dir = Path(ABLATIONS_DIR) / _folder(name)
    folder = out_dir / rel_dir
    lines = [f"### {code(name)}", "", _describe(how), ""]
    study = load_study(storage, name, read_only=True)
    trials = trials_frame(study)
    mode = how.mode
    empty = ["No trial of this ablation has completed yet.", ""]

    if mode == "path":
        path = ablation_path(storage, name)
        if path.empty:
            return [*lines, *empty]
        write_path_tables(path, folder, stem="path")
        ablation_path_chart(path, folder / "path.png")
        return [
            *lines,
            path_to_markdown(path),
            _image(rel_dir / "path.png", f"Ablation path of {name}"),
            "",
            f"Tables: [Markdown]({(rel_dir / 'path.md').as_posix()}), "
            f"[LaTeX]({(rel_dir / 'path.tex').as_posix()}), "
            f"[CSV]({(rel_dir / 'path.csv').as_posix()}), "
            f"[HTML]({(rel_dir / 'path.html').as_posix()}); figure also as "
            f"[SVG]({(rel_dir / 'path.svg').as_posix()}).",
            "",
        ]

    reference = how.reference or "baseline"
    try:
        objective = study.user_attrs.get(records.OBJECTIVE, "objective")
        metric = ablation_metric(trials, objective)
        table = ablation_table(trials, baseline=reference, metric=metric)
    except ValueError:  # no complete trial of the reference variant yet
        return [*lines, *empty]
    write_ablation_tables(table, folder, stem="ablation")
    out = [*lines]
    if mode == "seeds":
        objective = study.user_attrs.get(records.OBJECTIVE)
        spread = seed_variance(
            trials, objective=objective if isinstance(objective, str) else "objective"
        )
        (folder / "seeds.md").write_text(
            seed_variance_markdown(spread), encoding="utf-8", newline="\n"
        )
        spread.to_csv(folder / "seeds.csv", index=False, lineterminator="\n")
        out += [seed_variance_markdown(spread)]
    else:
        out += [to_markdown(table)]
    links = (
        f"Tables: [Markdown]({(rel_dir / 'ablation.md').as_posix()}), "
        f"[LaTeX]({(rel_dir / 'ablation.tex').as_posix()}), "
        f"[CSV]({(rel_dir / 'ablation.csv').as_posix()}), "
        f"[HTML]({(rel_dir / 'ablation.html').as_posix()})"
    )
    if len(table) > 1:
        ablation_bar_chart(table, folder / "ablation.png")
        out += [
            _image(rel_dir / "ablation.png", f"Ablation of {name}: difference from {reference}"),
            "",
            links + f"; figure also as [SVG]({(rel_dir / 'ablation.svg').as_posix()}).",
            "",
        ]
    else:
        out += [links + ".", ""]
    return out


def render_ablation_sections(
    storage: str | optuna.storages.BaseStorage, study_name: str, out_dir: Path
) -> str:
    """Write every linked ablation's tables and figures and return the report's Markdown for them.

    For each ablation study of ``study_name`` (in name order), under
    ``out_dir/ablations/<ablation study>/``: the ablation table as ``ablation.{md,tex,csv,html}``
    and its bar chart ``ablation.{png,svg}`` (modes loo, add, grid, seeds); for the path mode
    ``path.{md,tex,csv,html}`` and the path chart ``path.{png,svg}``; for the seeds mode also
    ``seeds.{md,csv}``.

    Args:
        storage: the database (URL or storage object) holding the study and its ablations.
        study_name: the ablated study.
        out_dir: the report's folder; image and table links in the returned text are relative
            to it.

    Raises:
        StorageError, StudyNotFound: no such database, or no study ``study_name`` in it.

    Returns:
        A ``## Ablations`` section (one ``###`` subsection per ablation study: a line on how it
        was run, its table inline, its figure), ending in a newline; ``""`` when no ablation
        study is linked to ``study_name``.

    Example:
        >>> import tempfile
        >>> s = optuna.storages.InMemoryStorage()
        >>> _ = optuna.create_study(storage=s, study_name="demo")
        >>> with tempfile.TemporaryDirectory() as d:
        ...     render_ablation_sections(s, "demo", Path(d))
        ''
    """
    linked = linked_ablations(storage, study_name)
    if not linked:
        return ""
    # One connection for every section.
    storage = storage_of(load_study(storage, study_name, read_only=True))
    out_dir = Path(out_dir)
    lines = [
        "## Ablations",
        "",
        f"{len(linked)} ablation stud{'y' if len(linked) == 1 else 'ies'} of "
        f"{code(study_name)} in this database (`sweeplab ablate`).",
        "",
    ]
    for name, how in linked:
        lines += _section(storage, name, how, out_dir)
    return "\n".join(lines).rstrip("\n") + "\n"
