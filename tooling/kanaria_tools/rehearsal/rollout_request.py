"""What the rehearsal asks `kanaria rollout start` for: a scenario rollout phase as a rollout request (stage
durations on the scenario clock), and its stage 0 — the offline evaluation of the candidate stored where the
deployed prepare step reads it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kanaria import names
from kanaria.errors import ValidationError
from kanaria_tools.rehearsal.clock import RehearsalClock
from kanaria_tools.rehearsal.context import RunContext
from kanaria_tools.rehearsal.scenario import OfflineEvaluationSpec, RolloutPhase, Scenario


@dataclass(frozen=True)
class Evaluated:
    """The configuration stage 0 evaluated: the rollout request names it."""

    config_hash: str
    model_id: str
    intents: tuple[str, ...] | None


def judge_settings(clock: RehearsalClock, phase: RolloutPhase) -> dict[str, Any]:
    """The judge on the scenario clock: its period is the CloudWatch period nearest one scenario minute (1 s
    at 60x), read half a period after it ended (the fleet publishes every <= 30 scenario seconds)."""
    minute = clock.wall_seconds(60)
    period = min((1, 5, 10, 30, 60), key=lambda p: abs(p - minute))
    return {"period_seconds": period, "settle_seconds": period / 2, **phase.judge}


def _stages(clock: RehearsalClock, phase: RolloutPhase) -> list[dict[str, Any]]:
    wall = clock.wall_seconds
    # The judge decides; point gates only where the scenario sets them. Its minimum per stage (canary requests).
    gates = {"min_observations": 200, "min_csat_responses": 5, **phase.gates}
    return [
        {
            "name": f"canary-{stage.percent}",
            "percent": stage.percent,
            "min_duration_seconds": max(1, round(wall(stage.minutes * 60))),
            "check_interval_seconds": max(1, round(wall(phase.check_minutes * 60))),
            "max_hold_seconds": max(1, round(wall(stage.minutes * 60))),
            "gates": {**gates, **stage.gates},
        }
        for stage in phase.stages
    ]


def _candidate(scenario: Scenario, phase: RolloutPhase, evaluated: Evaluated | None) -> dict[str, Any]:
    from kanaria.domain.profiles import config_hash

    candidate = scenario.configurations[phase.candidate]
    # The deployment's identity: the configuration, and the warm-up step when there is one (a redeploy with a
    # warm-up is a new deployment for the anti-flapping history).
    digest = config_hash(
        {
            "model_id": candidate.model_id,
            **candidate.overrides(),
            "scenario": scenario.name,
            "configuration": phase.candidate,
            **({"warmup_requests": phase.warmup_requests} if phase.warmup_requests else {}),
        }
    )
    model_id, intents = candidate.model_id, None
    if evaluated is not None:
        # Stage 0 reads the stored evaluation by this hash: the evaluated configuration's own hash.
        digest, model_id, intents = evaluated.config_hash, evaluated.model_id, evaluated.intents
    return {
        "target_group": "default",
        "model_id": model_id,
        "config_id": phase.candidate,
        "config_hash": digest,
        "description": candidate.description[:500],
        **({"intents": list(intents)} if intents else {}),
        **(
            {"experiment_id": scenario.experiment.id, "variant": phase.candidate}
            if phase.link_experiment and scenario.experiment
            else {}
        ),
    }


def _warmup(phase: RolloutPhase, warmup_url: str | None) -> dict[str, Any]:
    if not phase.warmup_requests:
        return {}
    return {
        "warmup": {
            "url": warmup_url,
            "requests": phase.warmup_requests,
            "concurrency": 8,
            "timeout_seconds": 10,
            "deadline_seconds": 120,
        }
    }


def rollout_request(
    scenario: Scenario,
    clock: RehearsalClock,
    phase: RolloutPhase,
    rollout_id: str,
    evaluated: Evaluated | None = None,
    warmup_url: str | None = None,
) -> dict[str, Any]:
    """The rollout request (JSON, as `kanaria rollout start` reads it) of one scenario rollout phase."""
    wall = clock.wall_seconds
    candidate = _candidate(scenario, phase, evaluated)
    # Without an offline_evaluation in the scenario the request claims a pass (nothing is stored for the hash, so
    # stage 0 accepts the claim); with one it claims nothing and stage 0 reads the stored result.
    claimed = {
        "passed": True,
        "report_uri": f"scenarios/{scenario.name}.json#configurations.{phase.candidate}",
        "config_hash": candidate["config_hash"],
    }
    return {
        "rollout_id": rollout_id,
        "candidate": candidate,
        "plan": {
            "stages": _stages(clock, phase),
            "approval": {"timeout_seconds": max(2, round(wall(4 * 3600)))},
            "stickiness_seconds": max(1, round(wall(3600))),
            "judge": judge_settings(clock, phase),
        },
        **({} if evaluated is not None else {"offline_evaluation": claimed}),
        "requested_by": "kanaria-rehearsal",
        **_warmup(phase, warmup_url),
    }


def _evaluation_config(scenario: Scenario, phase: RolloutPhase) -> Any:
    """The candidate as an offline-evaluation configuration: its experiment-variant overrides with the model
    id answered by the offline adapter. Its config_hash is the rollout request's config_hash."""
    from kanaria.evaluation.configs import OFFLINE_PREFIX, is_offline, parse_configuration

    candidate = scenario.configurations[phase.candidate]
    overrides = candidate.overrides()
    if not is_offline(overrides["model_id"]):
        overrides["model_id"] = OFFLINE_PREFIX + overrides["model_id"]
    return parse_configuration(
        {"name": phase.candidate, "description": candidate.description[:500], "overrides": overrides},
        where=f"rollouts.{phase.name}.offline_evaluation",
    )


def _golden_dataset(ctx: RunContext, phase: RolloutPhase, spec: OfflineEvaluationSpec) -> tuple[Path, str]:
    path = Path(spec.dataset)
    if not path.is_absolute():
        path = ctx.app_dir / path
    try:
        return path, path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(
            f"golden dataset not found: {path}", field=f"rollouts.{phase.name}.offline_evaluation.dataset"
        ) from None


def offline_evaluation(ctx: RunContext, phase: RolloutPhase, spec: OfflineEvaluationSpec) -> tuple[Evaluated, str]:
    """Stage 0 for real: evaluate the candidate on the golden dataset with the offline adapter and store the
    report and summary where the deployed rollout-steps function's stage 0 reads them. Returns the evaluated
    configuration and what was evaluated (a progress line)."""
    from kanaria.dal.evaluations import EvaluationBucket, store_report
    from kanaria.evaluation.dataset import dataset_name, parse_dataset
    from kanaria.evaluation.pipeline import RunSettings, assemble_report, evaluate_all, iso, new_run_id
    from kanaria.evaluation.render import CHART_FILE, render_markdown
    from kanaria_tools.offline_model import offline_invoker
    from kanaria_tools.reports.evaluation_chart import render_svg

    path, text = _golden_dataset(ctx, phase, spec)
    settings = RunSettings.model_validate({"intents": tuple(spec.intents or ()), "concurrency": 4})
    dataset = parse_dataset(text, dataset_name(path.name)).only(settings.intents)
    configuration = _evaluation_config(ctx.scenario, phase)
    now = datetime.now(timezone.utc)
    run_id = new_run_id(now)
    records = evaluate_all(dataset, [configuration], offline_invoker(dataset), settings)
    report = assemble_report(run_id, iso(now), dataset, [configuration], records, settings)
    table = ctx.steps_environment()[names.ENV_EVALUATIONS_TABLE]
    bucket = names.evaluation_bucket_name(ctx.prefix, ctx.account, ctx.region)
    stored = store_report(
        EvaluationBucket(bucket),
        table,
        report,
        records,
        render_markdown(report, CHART_FILE),
        render_svg(report, records),
    )
    digest = configuration.config_hash()
    summary = stored.summaries[digest]
    wanted = list(spec.intents) if spec.intents else sorted(summary.per_intent)
    verdicts = ", ".join(
        f"{intent} {'PASS' if summary.per_intent[intent].passed else 'FAIL'} "
        f"({summary.per_intent[intent].pass_rate:.0%} of {summary.per_intent[intent].n} cases pass, "
        f"{summary.per_intent[intent].min_pass_rate:.0%} required)"
        if intent in summary.per_intent
        else f"{intent} not evaluated"
        for intent in wanted
    )
    line = (
        f"offline evaluation {run_id} of {configuration.name} ({configuration.overrides.model_id}) on "
        f"{dataset.version}, {len(dataset.cases)} cases: {verdicts}; stored in {stored.report_uri} and table "
        f"{table} for config_hash {digest}; stage 0 of the deployed rollout-steps function reads it"
    )
    evaluated = Evaluated(digest, configuration.overrides.model_id, tuple(spec.intents) if spec.intents else None)
    return evaluated, line
