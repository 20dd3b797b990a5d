"""The function Ray Tune runs for a pack: several Optuna trials in one Ray trial (search.pack).

Members that :func:`sweeplab.trainer.pack_key` puts together train as one stacked model
(:func:`sweeplab.trainer.fit_packed`); a member that packs with nobody trains alone through
:func:`sweeplab.trainer.fit`, in the same worker. Every epoch, one ``ray.tune.report`` carries
:data:`~sweeplab.studies._tune.messages.MEMBERS`: one ordinary per-trial report each (the
messages :func:`~sweeplab.studies._tune.trainable.run_trial` sends, plus the member's
:data:`~messages.NUMBER`), and :data:`~messages.MEMBER_DONE` on a member's final one. The
searcher turns each into that Optuna trial's intermediate value, curve and final state, so the
database sees ordinary trials. ASHA judges each member
(:class:`~sweeplab.studies._tune.member_asha.MemberAsha`); a stopped member leaves the stack and
the others go on.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sweeplab import trainer
from sweeplab.studies import records
from sweeplab.studies._tune import messages
from sweeplab.studies._tune.worker import (
    TrialTemplate,
    epoch_message,
    failure_message,
    worker_facts,
)


@dataclass(frozen=True)
class PackTemplate:
    """What every pack of a study shares, beyond :class:`TrialTemplate`.

    Attributes:
        trial: the per-trial template.
        storage_url: the study database (absolute), read for ASHA's rung values.
        study_name: the study.
        asha: ``(grace_period, reduction_factor)``, or ``None`` without a scheduler.
    """

    trial: TrialTemplate
    storage_url: str
    study_name: str
    asha: tuple[int, float] | None


class _Pruned(Exception):
    """Raised from a solo member's ``on_epoch`` to end it (ASHA stopped it)."""


def run_pack(config: dict[str, Any], template: PackTemplate) -> None:
    """Train the pack's members, reporting each one's epochs to Ray Tune."""
    from ray import tune

    tmpl = template.trial
    members = config[messages.MEMBERS]
    facts = {
        **worker_facts(tmpl.sweeplab_version),
        # Which pack trained the member (its first member's number) and how many it held.
        "pack_id": int(members[0][messages.NUMBER]),
        "pack_size": len(members),
    }
    settings = tmpl.fit_settings()
    asha = _member_asha(template, [int(m[messages.NUMBER]) for m in members])

    def result(member: dict, report: trainer.EpochReport, done: bool) -> dict:
        out = {**epoch_message(report, facts), **facts, messages.NUMBER: member[messages.NUMBER]}
        if done:
            out[messages.MEMBER_DONE] = True
        return out

    def failure(member: dict, error: Exception, epoch: int) -> dict:
        return {**failure_message(error, epoch, facts), messages.NUMBER: member[messages.NUMBER],
                messages.MEMBER_DONE: True}  # fmt: skip

    def stops(member: dict, report: trainer.EpochReport) -> bool:
        value = getattr(report, tmpl.fit.objective)
        return (
            not report.is_last
            and asha is not None
            and asha.should_stop(int(member[messages.NUMBER]), report.epoch, value)
        )

    # ---- group the members: one stacked run per pack key, the rest alone ------------------------
    groups: dict[Any, list[int]] = defaultdict(list)
    solo: list[int] = []
    for i, member in enumerate(members):
        key = trainer.pack_key(tmpl.model, member[messages.PARAMS])
        if key is None:
            solo.append(i)
        else:
            groups[key].append(i)

    for indices in groups.values():
        # A member's run starts with its stack, not with the pack (stacks run one by one).
        facts[records.RUN_STARTED_AT] = time.time()
        group = [members[i] for i in indices]
        last_epoch = {i: 0 for i in range(len(group))}
        done: set[int] = set()

        def on_epoch(reports: dict, group: list = group, last_epoch: dict = last_epoch,
                     done: set = done) -> set[int]:  # fmt: skip
            out, pruned = [], set()
            for i, report in reports.items():
                if isinstance(report, trainer.Diverged):
                    out.append(failure(group[i], report, report.epoch))
                    done.add(i)
                    continue
                last_epoch[i] = report.epoch
                stop = stops(group[i], report)
                if stop:
                    pruned.add(i)
                out.append(result(group[i], report, done=report.is_last or stop))
                if report.is_last or stop:
                    done.add(i)
            tune.report({messages.MEMBERS: out})
            return pruned

        try:
            trainer.fit_packed(
                tmpl.data,
                tmpl.model,
                [m[messages.PARAMS] for m in group],
                [int(m[messages.SEED]) for m in group],
                settings,
                on_epoch,
            )
        except Exception as e:  # the whole stack failed: every unfinished member fails with it
            left = [failure(group[i], e, last_epoch[i]) for i in range(len(group)) if i not in done]
            tune.report({messages.MEMBERS: left})

    for i in solo:
        facts[records.RUN_STARTED_AT] = time.time()
        member = members[i]
        last = 0

        def on_solo_epoch(report: trainer.EpochReport, member: dict = member) -> None:
            nonlocal last
            last = report.epoch
            stop = stops(member, report)
            tune.report({messages.MEMBERS: [result(member, report, done=report.is_last or stop)]})
            if stop:
                raise _Pruned

        solo_settings = tmpl.fit_settings(seed=int(member[messages.SEED]))
        try:
            trainer.fit(
                tmpl.data, tmpl.model, member[messages.PARAMS], solo_settings, on_solo_epoch
            )
        except _Pruned:
            pass
        except Exception as e:
            tune.report({messages.MEMBERS: [failure(member, e, last)]})


def _member_asha(template: PackTemplate, numbers: list[int]) -> Any:
    if template.asha is None:
        return None
    import optuna

    from sweeplab.studies._tune.member_asha import MemberAsha
    from sweeplab.studies.storage import open_storage

    try:
        study = optuna.load_study(
            study_name=template.study_name, storage=open_storage(template.storage_url)
        )
    except Exception:  # judge on the pack alone rather than lose the trials
        study = None
    grace, rf = template.asha
    return MemberAsha(
        study,
        grace_period=grace,
        reduction_factor=rf,
        max_epochs=template.trial.fit.max_epochs,
        maximize=template.trial.fit.direction == "maximize",
        pack=numbers,
    )
