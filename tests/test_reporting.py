"""How a trial's epochs reach Ray Tune: batched between rungs, every epoch delivered once.

``run_trial`` is run in this process with Tune's ``report`` replaced by a recorder, so that the
batching rule can be read off exactly; the end-to-end tests check the same epochs arriving in
the study database through a real Tune run.
"""

from __future__ import annotations

import pytest
import ray.tune

import sweeplab.studies._tune.trainable as trainable
from sweeplab.studies._tune.messages import EARLIER_EPOCHS
from sweeplab.trainer import DataSettings, FitSettings, ModelSettings


def run(monkeypatch, *, epochs: int, rungs=frozenset(), interval: float | None = None) -> list:
    reports: list[dict] = []
    monkeypatch.setattr(ray.tune, "report", lambda metrics: reports.append(metrics))
    monkeypatch.setattr(trainable, "worker_facts", lambda version: {"pid": 1, "run_started_at": 0})
    if interval is not None:
        monkeypatch.setattr(trainable, "REPORT_INTERVAL_S", interval)
    template = trainable.TrialTemplate(
        data=DataSettings(dataset="digits"),
        model=ModelSettings(kind="mlp", hidden=(16,)),
        fit=FitSettings(max_epochs=epochs, device="cpu"),
        cpus=1,
        sweeplab_version="test",
        rungs=rungs,
    )
    trainable.run_trial({"params": {"lr": 3e-3}, "seed": 0}, template)
    return reports


def epochs_of(report: dict) -> list[int]:
    return [e["epoch"] for e in report.get(EARLIER_EPOCHS, [])] + [report["epoch"]]


def test_short_epochs_are_batched_but_every_epoch_arrives_once_in_order(monkeypatch) -> None:
    rungs = frozenset({2, 4, 8, 16, 32})
    reports = run(monkeypatch, epochs=40, rungs=rungs, interval=3600.0)
    # The first epoch (where the trial runs), each rung (where ASHA judges: the report's own
    # epoch is the rung, not a later one) and the last epoch; nothing in between.
    assert [r["epoch"] for r in reports] == [1, 2, 4, 8, 16, 32, 40]
    assert [e for r in reports for e in epochs_of(r)] == list(range(1, 41))
    assert reports[-1]["is_last"] and "wall_time_s" in reports[-1]
    assert all(r["pid"] == 1 for r in reports)
    batch = reports[-1][EARLIER_EPOCHS]
    assert [e["epoch"] for e in batch] == list(range(33, 40))
    assert all("val_acc" in e and "epoch_seconds" in e for e in batch)


def test_with_no_interval_every_epoch_is_its_own_report(monkeypatch) -> None:
    reports = run(monkeypatch, epochs=5, interval=0.0)
    assert [r["epoch"] for r in reports] == [1, 2, 3, 4, 5]
    assert not any(EARLIER_EPOCHS in r for r in reports)


def test_epochs_before_a_failure_are_sent_before_the_error(monkeypatch) -> None:
    reports: list[dict] = []
    monkeypatch.setattr(ray.tune, "report", lambda metrics: reports.append(metrics))
    monkeypatch.setattr(trainable, "worker_facts", lambda version: {"pid": 1, "run_started_at": 0})
    monkeypatch.setattr(trainable, "REPORT_INTERVAL_S", 3600.0)
    real_fit = trainable.trainer.fit

    def fit_then_fail(data, model, params, settings, on_epoch, checkpointing=None):
        def failing(report):
            on_epoch(report)
            if report.epoch == 3:
                raise RuntimeError("boom")

        return real_fit(data, model, params, settings, failing, checkpointing=checkpointing)

    monkeypatch.setattr(trainable.trainer, "fit", fit_then_fail)
    template = trainable.TrialTemplate(
        data=DataSettings(dataset="digits"),
        model=ModelSettings(kind="mlp", hidden=(16,)),
        fit=FitSettings(max_epochs=6, device="cpu"),
        cpus=1,
        sweeplab_version="test",
    )
    trainable.run_trial({"params": {"lr": 3e-3}, "seed": 0}, template)
    assert [epochs_of(r) for r in reports[:-1]] == [[1], [2, 3]]
    assert reports[-1]["error"] == "RuntimeError: boom" and reports[-1]["epoch"] == 3


@pytest.mark.parametrize(
    ("grace", "rf", "max_t"), [(2, 2.0, 8), (2, 2.5, 20), (1, 3.0, 27), (3, 4.0, 10), (2, 3.0, 18)]
)
def test_rungs_are_the_epochs_ray_asha_judges(grace: int, rf: float, max_t: int) -> None:
    from ray.tune.schedulers.async_hyperband import _Bracket

    from sweeplab.studies.asha import asha_rungs

    # Ray's own bracket: its rungs' milestones, judged at the first epoch at or past each.
    milestones = [rung[0] for rung in _Bracket(min_t=grace, max_t=max_t, reduction_factor=rf,
                                               s=0)._rungs]  # fmt: skip
    assert asha_rungs(grace, rf, max_t) == [-int(-m // 1) for m in reversed(milestones)]
