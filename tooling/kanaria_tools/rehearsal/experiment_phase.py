"""The experiment phase: the scenario's experiment created and started through the deployed experiments API,
sessions assigned and observed through the deployed functions, the scheduled analysis invoked every
analysis_every_minutes until it decides (or detects a sample-ratio mismatch)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from kanaria import names
from kanaria.domain.analysis_result import StoredResult
from kanaria_tools.rehearsal.alarm_tick import AlarmTick
from kanaria_tools.rehearsal.alert_text import fmt_quality, scheduled_event
from kanaria_tools.rehearsal.context import RunContext
from kanaria_tools.rehearsal.experiment_traffic import ExperimentTraffic
from kanaria_tools.rehearsal.results import PhaseResult, Reaction
from kanaria_tools.rehearsal.scenario import ExperimentPhase, Scenario

UNDECIDED = {"CONTINUE", "NO_DECISION"}


def experiment_definition(scenario: Scenario, e: ExperimentPhase) -> dict[str, Any]:
    """The POST /experiments body of the scenario's experiment: control and treatment at 50/50."""
    control, treatment = scenario.configurations[e.control], scenario.configurations[e.treatment]
    return {
        "id": e.id,
        "description": e.description,
        "hypothesis": e.hypothesis,
        "intents": list(e.intents),
        "unit": "session",
        "traffic": {"default": 1.0},
        "control": e.control,
        "variants": [
            {
                "id": e.control,
                "weight": 0.5,
                "description": control.description or control.model_id,
                "overrides": control.overrides(),
            },
            {
                "id": e.treatment,
                "weight": 0.5,
                "description": treatment.description or treatment.model_id,
                "overrides": treatment.overrides(),
            },
        ],
        "primary_metric": e.primary_metric,
        "guardrails": list(e.guardrails),
        "decision": {
            "alpha": e.alpha,
            "power": 0.8,
            "mde": e.mde,
            "method": e.method,
            "planned_n_per_variant": e.planned_n_per_variant,
        },
        "tier": e.tier,
    }


@dataclass
class ExperimentWatch:
    """What the analysis rounds have seen so far (scenario seconds)."""

    started: float
    rows: list[list[Any]] = field(default_factory=list)  # the progress table, one row per analysis
    decision: str | None = None
    srm: bool = False
    paused: bool = False
    reasons: list[str] = field(default_factory=list)
    reactions: list[Reaction] = field(default_factory=list)
    # per analysis look: {label, minute, stored: the stored result as `kanaria report --json` prints it}
    looks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def settled(self) -> bool:
        """A sample-ratio mismatch or a decision other than continuing: the experiment phase ends."""
        return self.srm or bool(self.decision and self.decision not in UNDECIDED)


class ExperimentPhaseRun:
    """Runs the scenario's experiment phase on the deployed app."""

    def __init__(self, ctx: RunContext, tick: AlarmTick, phase: ExperimentPhase):
        self._ctx = ctx
        self._tick = tick
        self._phase = phase
        self._analysis = ctx.deployed("analysis")

    def run(self) -> PhaseResult:
        """The phase, start to decision; its result."""
        ctx, e = self._ctx, self._phase
        ctx.progress.section(f"Experiment {e.id}: {e.control} (control) vs {e.treatment}")
        watch = ExperimentWatch(started=ctx.clock.now())
        definition = experiment_definition(ctx.scenario, e)
        self._create(definition, watch.started)
        observe = ctx.deployed("observations")
        if observe is None or self._analysis is None:
            ctx.progress.line(
                "the observations/analysis functions are not deployed in this build: assignments only, no decision"
            )
        traffic = ExperimentTraffic(
            ctx.scenario,
            ctx.rng,
            ctx.caller,
            assign_function=ctx.function("assign"),
            observe_function=observe,
            definition=definition,
        )
        rounds = max(1, math.ceil(e.minutes / e.analysis_every_minutes))
        per_round = max(10, math.ceil(e.max_observations / rounds))
        for round_index in range(rounds):
            self._round(watch, traffic, round_index, per_round)
            if watch.settled:
                break
        ctx.progress.freeze()
        return self._result(watch, traffic)

    def _create(self, definition: dict[str, Any], at: float) -> None:
        experiments, experiment_id = self._ctx.function("experiments"), self._phase.id
        caller = self._ctx.caller
        caller.http(experiments, "POST", "/experiments", definition, route_key="POST /experiments")
        caller.http(
            experiments,
            "POST",
            f"/experiments/{experiment_id}/transitions",
            {"action": "start"},
            route_key="POST /experiments/{experiment_id}/transitions",
            path_parameters={"experiment_id": experiment_id},
        )
        self._ctx.progress.line(
            f"created and started through {experiments} (POST /experiments, POST .../transitions)", at=at
        )

    def _round(self, watch: ExperimentWatch, traffic: ExperimentTraffic, round_index: int, per_round: int) -> None:
        """One period of traffic, then the scheduled analysis."""
        e, progress = self._phase, self._ctx.progress
        minute = (round_index + 1) * e.analysis_every_minutes
        traffic.run(per_round, minute - e.analysis_every_minutes / 2, datetime.now(timezone.utc))
        outcome = self._analyse(self._analysis) if self._analysis else {}
        previous_decision = watch.decision
        watch.decision = outcome.get("decision") or watch.decision
        stored = self._latest_analysis() if self._analysis else None
        watch.reasons = _reasons(stored)
        watch.srm, watch.paused = bool(outcome.get("srm_mismatch")), bool(outcome.get("paused"))
        now = self._tick(self._ctx.clock.now(), watch.reactions)
        label = f"{round_index + 1} ({minute:g} min)"
        watch.rows.append(self._row(watch, traffic, label))
        if stored is not None and stored.result is not None:
            watch.looks.append({"label": label, "minute": minute, "stored": stored.as_dict()})
        progress.table(
            f"experiment {e.id} (scheduled analysis every {e.analysis_every_minutes:g} scenario minutes)",
            [
                "analysis (traffic)",
                f"units {e.control}",
                f"units {e.treatment}",
                f"quality {e.control}",
                f"quality {e.treatment}",
                "decision",
                "SRM",
            ],
            watch.rows[-8:],
            at=now,
        )
        if watch.srm:
            paused = "paused" if watch.paused else "not paused"
            watch.reactions.append(Reaction(now, f"analysis: sample-ratio mismatch (experiment {paused})", "srm"))
        if watch.decision != previous_decision:
            progress.freeze()
            why = "; ".join(watch.reasons)
            progress.line(f"analysis decision {previous_decision or 'none'} -> {watch.decision}: {why[:300]}", at=now)
            watch.reactions.append(Reaction(now, f"analysis decision: {watch.decision} ({why})", "decision"))

    def _row(self, watch: ExperimentWatch, traffic: ExperimentTraffic, label: str) -> list[Any]:
        e, progress = self._phase, traffic.progress
        means = {v: (sum(q) / len(q) if q else None) for v, q in progress.quality.items()}
        return [
            label,
            progress.assigned.get(e.control, 0),
            progress.assigned.get(e.treatment, 0),
            fmt_quality(means.get(e.control)),
            fmt_quality(means.get(e.treatment)),
            watch.decision or "-",
            "MISMATCH" if watch.srm else "ok",
        ]

    def _result(self, watch: ExperimentWatch, traffic: ExperimentTraffic) -> PhaseResult:
        ctx, e = self._ctx, self._phase
        ended = ctx.clock.now()
        self._tick(ended, watch.reactions)
        outcome_text, expected_text, ok = self._judged(watch)
        sessions = traffic.progress
        ctx.progress.line(
            f"experiment result: {outcome_text} (expected {expected_text or 'any decision'}) -> "
            f"{'as expected' if ok else 'NOT as expected'}; {sessions.sessions} sessions, "
            f"{sum(sessions.observed.values())} observations recorded, "
            f"{sessions.skipped_assignments} assignment calls skipped by the client bug",
            at=ended,
        )
        if watch.reasons:
            ctx.progress.line(f"  why: {'; '.join(watch.reasons)[:400]}")
        result = PhaseResult(
            e.id,
            "experiment",
            expected_text,
            outcome_text,
            ok,
            watch.started,
            ended,
            detail={
                "rows": watch.rows,
                "sessions": sessions.sessions,
                "observed": dict(sessions.observed),
                "skipped_assignments": sessions.skipped_assignments,
                "decision": watch.decision,
                "srm": watch.srm,
                "paused": watch.paused,
                "control": e.control,
                "treatment": e.treatment,
                "mde": e.mde,
                "looks": watch.looks,
                "analysis": watch.looks[-1]["stored"] if watch.looks else None,
            },
            reactions=watch.reactions,
        )
        fault_minutes = [f.at_minute for f in e.faults]
        if fault_minutes:
            result.fault_at = watch.started + min(fault_minutes) * 60
        return result

    def _judged(self, watch: ExperimentWatch) -> tuple[str, str | None, bool]:
        """(outcome, expected outcome, as expected): a mismatch when the scenario injects the assignment bug,
        otherwise one of the expected decisions."""
        e = self._phase
        if any(f.kind == "srm_assignment_bug" for f in e.faults):
            return ("srm_detected" if watch.srm else f"decision {watch.decision}"), "srm_detected", watch.srm
        outcome_text = watch.decision or ("no analysis" if self._analysis is None else "no decision")
        ok = self._analysis is not None and (not e.expect_decision or watch.decision in e.expect_decision)
        return outcome_text, " or ".join(e.expect_decision) if e.expect_decision else None, ok

    def _latest_analysis(self) -> StoredResult | None:
        """The latest stored analysis result of the experiment (what the decision rests on)."""
        from kanaria.dal.observations import DynamoAnalysisStore

        store = DynamoAnalysisStore(names.table_name(self._ctx.prefix, "aggregates"))
        return store.latest_result(self._phase.id)

    def _analyse(self, function: str) -> dict[str, Any]:
        """The scheduled analysis, invoked as its EventBridge rule does; this experiment's outcome."""
        ctx = self._ctx
        result = ctx.caller.invoke(function, scheduled_event(ctx.account, ctx.region, function))
        for outcome in (result or {}).get("analysed", []):
            if outcome.get("experiment_id") == self._phase.id:
                return dict(outcome)
        return {}


def _reasons(stored: StoredResult | None) -> list[str]:
    """The reasons of a stored analysis result."""
    if stored is None or stored.result is None:
        return []
    reasons = stored.result.evidence.get("reasons")
    return [str(r) for r in reasons] if isinstance(reasons, list) else []
