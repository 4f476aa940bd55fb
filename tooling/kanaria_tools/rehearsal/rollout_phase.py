"""The rollout phases: each scenario rollout started through `kanaria rollout start` (as an operator would) and
watched until the deployed state machine ends it, while the fleet serves traffic by the listener's weights, the
scenario's faults fire, the alarms tick and the on-call queue is read. A phase's outcome (completed, refused,
rolled back) is then checked against the scenario's expectation."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from kanaria import names
from kanaria.errors import KanariaError
from kanaria_tools.rehearsal.alarm_tick import AlarmTick
from kanaria_tools.rehearsal.alert_text import fault_text
from kanaria_tools.rehearsal.clock import fmt_duration
from kanaria_tools.rehearsal.context import RunContext
from kanaria_tools.rehearsal.fleet import ChatbotFleet
from kanaria_tools.rehearsal.fleet_setup import reset_listener
from kanaria_tools.rehearsal.function_faults import RollbackFunctionFaults
from kanaria_tools.rehearsal.judged_streams import judged_streams
from kanaria_tools.rehearsal.results import PhaseResult, Reaction
from kanaria_tools.rehearsal.rollout_request import Evaluated, offline_evaluation, rollout_request
from kanaria_tools.rehearsal.rollout_view import render_rollout
from kanaria_tools.rehearsal.scenario import SYSTEM_FAULT_KINDS, RolloutPhase

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
ROLLBACK_INVOCATION_FAILED = "[Kanaria] ROLLBACK INVOCATION FAILED"
SETTLE_SECONDS = 120  # served after the execution ended, so the alarms settle and the alert arrives
PATIENCE_SECONDS = 600  # at most this long for a rollback or a page that has not come yet


@dataclass
class RolloutWatch:
    """What the watch of one started rollout has seen so far (scenario seconds)."""

    rollout_id: str
    execution_arn: str | None
    started: float
    deadline: float
    invocations_before: int  # the invocation log's length at the start: reaction times are read after it
    seen: int  # the invocation log read up to here for the safety net's lines
    stage_percent: dict[str, int]
    fault_times: list[float]
    last: float  # traffic served up to here
    fault_logged: set[int] = field(default_factory=set)
    status: dict[str, Any] = field(default_factory=dict)  # `kanaria rollout status`'s last answer
    stage: str | None = None
    decision_seen: str | None = None
    approved: bool = False
    ended_at: float | None = None
    rollback_at: float | None = None
    restored_by: str | None = None  # what restored the listener: the rollback function or the reconciler
    reactions: list[Reaction] = field(default_factory=list)
    plan: dict[str, Any] = field(default_factory=dict)  # the requested plan (the judge's settings for the tiles)
    stages: list[tuple[float, str, int]] = field(default_factory=list)  # (started, stage, canary percent)


def _outcome(status: dict[str, Any]) -> str:
    final = status.get("status", "unknown")
    execution_status = status.get("execution_status")
    if execution_status == "SUCCEEDED" and final.lower() == "completed":
        return "completed"
    if status.get("refused"):
        return "refused"
    if status.get("rollback") or "roll" in final.lower():
        return "rolled_back"
    return f"{final}/{execution_status}"


class RolloutPhases:
    """Runs the scenario's rollout phases, one after the other, on one fleet."""

    def __init__(
        self,
        ctx: RunContext,
        tick: AlarmTick,
        fleet: ChatbotFleet,
        faults: RollbackFunctionFaults,
        warmup_url: str | None,
    ):
        self._ctx = ctx
        self._tick = tick
        self._fleet = fleet
        self._faults = faults
        self._warmup_url = warmup_url
        self._sfn = ctx.client("stepfunctions")

    def run(self, phase: RolloutPhase) -> None:
        """One rollout phase, start to end; its result appended to the rehearsal's."""
        ctx, fleet = self._ctx, self._fleet
        reactions: list[Reaction] = []
        self._prepare(phase, reactions)
        rollout_id = f"{ctx.scenario.name}-{phase.name}-{uuid.uuid4().hex[:6]}"[:80]
        evaluated = self._stage0(phase, reactions)
        request = rollout_request(ctx.scenario, ctx.clock, phase, rollout_id, evaluated, self._warmup_url)
        stage_percent = {stage["name"]: stage["percent"] for stage in request["plan"]["stages"]}
        stage_percent["full"] = 100
        started = ctx.clock.now()
        fleet.start_phase(phase.faults, started)
        self._faults.arm(phase.faults, started, ctx.clock.now)
        for fault in phase.faults:
            ctx.progress.line(
                f"fault scheduled at +{fmt_duration(fault.at_minute * 60)}: {fault_text(fault)}"
                + (f" ({fault.description})" if fault.description else ""),
                at=started,
            )
        answer = self._start(phase, request, started, reactions)
        if answer is None:
            return
        seen = len(ctx.invocations)
        watch = RolloutWatch(
            rollout_id=rollout_id,
            execution_arn=answer.get("execution_arn"),
            started=started,
            deadline=started + phase.max_minutes * 60,
            invocations_before=len(ctx.invocations),
            seen=seen,
            stage_percent=stage_percent,
            fault_times=[started + f.at_minute * 60 for f in phase.faults],
            last=started,
            reactions=reactions,
            plan=request["plan"],
        )
        self._watch(phase, watch)
        self._finish(phase, watch)

    # --- before the start ------------------------------------------------------------------------------------

    def _prepare(self, phase: RolloutPhase, reactions: list[Reaction]) -> None:
        """The target groups run the phase's configurations, the listener is at primary 100 and the critical
        alarm is OK."""
        ctx, fleet = self._ctx, self._fleet
        ctx.progress.section(
            f"Rollout {phase.name}: {phase.candidate} over {phase.baseline} "
            f"({' -> '.join(f'{s.percent}%' for s in phase.stages)} -> approval -> 100%)"
        )
        if phase.description:
            ctx.progress.line(phase.description)
        if fleet.groups["primary"].configuration != phase.baseline:
            fleet.groups["primary"].configuration = phase.baseline
            ctx.progress.line(f"primary target group now runs {phase.baseline}")
        fleet.groups["canary"].configuration = phase.candidate
        weights = fleet.read_weights(ctx.clock.now())
        if weights["canary"] or not weights["primary"]:
            reset_listener(ctx, fleet, "listener reset to primary 100 / canary 0 (deployment pipeline step)")
        self._wait_for_clean_alarms(reactions)

    def _wait_for_clean_alarms(self, reactions: list[Reaction], limit: float = 3600) -> None:
        """As an operator would: no new rollout while the critical composite is still in ALARM from the last one
        (its children keep their breaching datapoints until they leave the evaluation range)."""
        ctx = self._ctx
        name = names.alarm_name(ctx.prefix, names.ALARM_CANARY_CRITICAL)
        status = self._tick.evaluator.status.get(name)
        if status is None or status.state != "ALARM":
            return
        started = last = ctx.clock.now()
        ctx.progress.line(f"waiting for {name} to return to OK before the next rollout", at=started)
        while status.state == "ALARM" and ctx.clock.now() - started < limit:
            time.sleep(max(0.05, min(0.5, ctx.clock.wall_seconds(30))))
            now = ctx.clock.now()
            self._fleet.serve(last, now)
            self._tick(now, reactions)
            last = now
        ctx.progress.line(
            f"{name} is {status.state} after {fmt_duration(ctx.clock.now() - started)}", at=ctx.clock.now()
        )

    def _stage0(self, phase: RolloutPhase, reactions: list[Reaction]) -> Evaluated | None:
        """The scenario's offline evaluation of the candidate, stored for the deployed stage 0; None without one."""
        if phase.offline_evaluation is None:
            return None
        at = self._ctx.clock.now()
        evaluated, line = offline_evaluation(self._ctx, phase, phase.offline_evaluation)
        self._ctx.progress.line(line, at=at)
        reactions.append(Reaction(at, line, "stage 0"))
        return evaluated

    def _start(
        self, phase: RolloutPhase, request: dict[str, Any], started: float, reactions: list[Reaction]
    ) -> dict[str, Any] | None:
        """`kanaria rollout start`'s answer; None when it refused (the phase's result recorded)."""
        from kanaria_tools import rollout_control

        ctx = self._ctx
        try:
            # a request claiming no evaluation is started too: the deployed prepare step's stage 0 decides on the
            # stored one
            answer = rollout_control.start(ctx.prefix, request)
        except KanariaError as exc:
            ctx.progress.line(f"REFUSED by `kanaria rollout start`: {exc}", at=started)
            reaction = Reaction(started, f"rollout refused before any traffic moved: {exc}", "gate")
            ok = phase.expect == "refused"
            ctx.result.phases.append(
                PhaseResult(
                    phase.name,
                    "rollout",
                    phase.expect,
                    "refused",
                    ok,
                    started,
                    ctx.clock.now(),
                    detail={"refused": str(exc)},
                    reactions=sorted([*reactions, reaction], key=lambda r: r.at),
                )
            )
            ctx.progress.line(
                f"rollout result: refused (expected {phase.expect}) -> {'as expected' if ok else 'NOT as expected'}"
            )
            return None
        ctx.progress.line(
            f"rollout {request['rollout_id']} started: StartExecution on "
            f"{names.rollout_state_machine_name(ctx.prefix)} (stages of "
            f"{', '.join(fmt_duration(s.minutes * 60) for s in phase.stages)}; checks every "
            f"{fmt_duration(phase.check_minutes * 60)})",
            at=started,
        )
        return answer

    # --- the watch -------------------------------------------------------------------------------------------

    def _watch(self, phase: RolloutPhase, watch: RolloutWatch) -> None:
        """Serve, tick and poll the rollout's status until it has ended and settled, or the deadline."""
        ctx = self._ctx
        while True:
            time.sleep(max(0.05, min(0.5, ctx.clock.wall_seconds(30))))
            now = ctx.clock.now()
            self._fleet.serve(watch.last, now)
            self._log_faults(phase, watch, now)
            self._tick(now, watch.reactions)
            self._report_safety_net(watch)
            watch.last = now
            if not self._poll(phase, watch, now):
                break
            self._on_stage(watch, now)
            self._on_decision(watch, now)
            render_rollout(ctx.progress, self._fleet, self._tick, phase, watch.status, now)
            self._on_rollback(watch)
            self._on_approval(phase, watch, now)
            if watch.status.get("execution_status") in TERMINAL and watch.ended_at is None:
                watch.ended_at = now
            if self._settled(phase, watch, now):
                break
            if now > watch.deadline:
                ctx.progress.line(f"giving up after {fmt_duration(phase.max_minutes * 60)} of scenario time", at=now)
                break

    def _log_faults(self, phase: RolloutPhase, watch: RolloutWatch, now: float) -> None:
        """The scenario's faults that have begun by `now`, each once."""
        for index, at in enumerate(watch.fault_times):
            if at <= now and index not in watch.fault_logged:
                watch.fault_logged.add(index)
                fault = phase.faults[index]
                self._ctx.progress.line(f"FAULT {fault_text(fault)}", at=at)
                watch.reactions.append(Reaction(at, f"fault: {fault_text(fault)}", "fault"))

    def _poll(self, phase: RolloutPhase, watch: RolloutWatch, now: float) -> bool:
        """`kanaria rollout status`; before the rollout is recorded, the execution's. False when the execution
        ended before the rollout was recorded (the prepare step refused it)."""
        from kanaria_tools import rollout_control

        try:
            watch.status = rollout_control.status(self._ctx.prefix, watch.rollout_id)
            return True
        except KanariaError:
            execution = self._sfn.describe_execution(executionArn=watch.execution_arn)
        watch.status = {"status": "preparing", "execution_status": execution["status"]}
        if execution["status"] not in TERMINAL:
            return True
        cause = execution.get("cause") or execution.get("error") or ""
        watch.status.update(status="refused", refused=True, cause=cause)
        self._ctx.progress.line(
            f"execution {execution['status']} before the rollout was recorded: {cause[:300]}", at=now
        )
        if phase.offline_evaluation is not None and "stage 0" in cause:
            what = "stage 0 (deployed prepare step) refused the rollout from the stored evaluation"
            watch.reactions.append(Reaction(now, what, "stage 0"))
        return False

    def _on_stage(self, watch: RolloutWatch, now: float) -> None:
        stage = watch.status.get("stage")
        if stage == watch.stage or not stage:
            return
        watch.stage = stage
        self._fleet.new_stage()
        self._ctx.progress.freeze()
        percent = watch.stage_percent.get(stage, watch.status.get("percent"))
        self._ctx.progress.line(f"stage {stage}: canary {percent}%", at=now)
        watch.reactions.append(Reaction(now, f"stage {stage} ({percent}% canary)", "stage"))
        watch.stages.append((now, stage, int(percent or 0)))

    def _on_decision(self, watch: RolloutWatch, now: float) -> None:
        """A hold or rollback, or a failed gate: its reasons, at the time the rollout-steps function decided."""
        gate = watch.status.get("gate") or {}
        decision = watch.status.get("decision")
        if decision == watch.decision_seen or not decision:
            return
        watch.decision_seen = decision
        outcome = gate.get("outcome")
        if not outcome or (decision not in {"hold", "rollback"} and outcome != "FAIL"):
            return
        reasons = "; ".join(
            c.get("gate", "") + ": " + c.get("reason", "") for c in gate.get("checks", []) if c.get("outcome") != "PASS"
        )
        ctx = self._ctx
        decided = ctx.invocations.decided_at(watch.invocations_before, watch.rollout_id, decision) or now
        ctx.progress.freeze()
        ctx.progress.line(f"GATE {outcome} -> {decision}: {reasons[:300]}", at=decided)
        watch.reactions.append(Reaction(decided, f"gate {outcome} -> {decision}: {reasons}", "gate"))

    def _on_rollback(self, watch: RolloutWatch) -> None:
        rolled = self._ctx.invocations.rollback_done(watch.invocations_before)
        if rolled is None or watch.rollback_at is not None:
            return
        watch.rollback_at, watch.restored_by = rolled
        self._ctx.progress.freeze()
        self._ctx.progress.line(f"{watch.restored_by} finished: listener back to primary 100 / canary 0", at=rolled[0])
        watch.reactions.append(Reaction(rolled[0], f"{watch.restored_by} restored primary 100 / canary 0", "rollback"))

    def _on_approval(self, phase: RolloutPhase, watch: RolloutWatch, now: float) -> None:
        """The human approval, as the scenario says: approved or rejected through the CLI's calls."""
        from kanaria_tools import rollout_control

        if not watch.status.get("awaiting_approval") or watch.approved:
            return
        watch.approved = True
        ctx = self._ctx
        ctx.progress.freeze()
        if phase.approval == "auto":
            rollout_control.approve(ctx.prefix, watch.rollout_id, None, comment="rehearsal: automatic approval")
            ctx.progress.line(
                "approval requested (task token) -> approved automatically (kanaria rollout approve)", at=now
            )
            watch.reactions.append(Reaction(now, "human approval: approved (automatic)", "gate"))
        else:
            rollout_control.reject(ctx.prefix, watch.rollout_id, None, reason="rehearsal: rejected by scenario")
            ctx.progress.line("approval requested -> rejected (kanaria rollout reject)", at=now)

    def _settled(self, phase: RolloutPhase, watch: RolloutWatch, now: float) -> bool:
        """Ended a while ago: the alarms settled and the alert arrived (and, when the rollback function is
        broken, the reconciler paged the invocation Lambda gave up on)."""
        if watch.ended_at is None or now - watch.ended_at < SETTLE_SECONDS:
            return False
        waited_long = now - watch.ended_at >= PATIENCE_SECONDS
        paged = any(
            at >= watch.started and subject.startswith(ROLLBACK_INVOCATION_FAILED)
            for at, subject, _ in self._ctx.result.alerts
        )
        rolled_back = phase.expect != "rolled_back" or watch.rollback_at is not None or waited_long
        return rolled_back and (not self._faults.armed or paged or waited_long)

    def _report_safety_net(self, watch: RolloutWatch) -> None:
        """Progress lines and reactions for failed rollback invocations and what the reconciler did, from the
        in-process invocation log since the last look."""
        ctx = self._ctx
        items, watch.seen = ctx.invocations.since(watch.seen)
        for at, name, inv in items:
            if name == ctx.function(names.FUNCTION_ROLLBACK) and inv.error:
                ctx.progress.line(f"rollback function FAILED: {inv.error[:200]}", at=at)
                watch.reactions.append(Reaction(at, f"rollback function failed: {inv.error[:200]}", "rollback failure"))
            if name == ctx.function(names.FUNCTION_RECONCILER) and isinstance(inv.result, dict):
                self._report_reconciler(watch, at, inv.result)

    def _report_reconciler(self, watch: RolloutWatch, at: float, result: dict[str, Any]) -> None:
        progress = self._ctx.progress
        done, paged = result.get("rolled_back"), result.get("failed_invocations_paged") or []
        if done:
            progress.line(f"RECONCILER found {done['rollout_id']} stranded ({done['found']}): {done['status']}", at=at)
            watch.reactions.append(Reaction(at, f"reconciler: {done['found']} -> {done['status']}", "reconciler"))
        if paged:
            progress.line(
                f"RECONCILER paged {len(paged)} failed rollback invocation(s) (rollout "
                f"{', '.join(str(r) for r in paged)})",
                at=at,
            )
            what = f"reconciler paged {len(paged)} failed rollback invocation(s) from the on-failure queue"
            watch.reactions.append(Reaction(at, what, "alert"))

    # --- the end ---------------------------------------------------------------------------------------------

    def _finish(self, phase: RolloutPhase, watch: RolloutWatch) -> None:
        """The phase's outcome against the expectation, recorded; a promotion is deployed to the primary."""
        ctx, fleet = self._ctx, self._fleet
        ctx.progress.freeze()
        outcome = _outcome(watch.status)
        weights = fleet.read_weights(ctx.clock.now())
        if outcome == "rolled_back" and weights["canary"] == 0 and watch.rollback_at is None:
            watch.rollback_at = next((at for at, p in fleet.weights_history if at >= watch.started and p == 0), None)
        rollback_alerts = [
            a
            for a in ctx.result.alerts
            if a[0] >= watch.started and a[1].startswith(f"[Kanaria] ROLLBACK {watch.rollout_id} ")
        ]
        ok = self._as_expected(phase, watch, outcome, weights, len(rollback_alerts))
        self._faults.disarm()
        result = self._result(phase, watch, outcome, ok, weights, len(rollback_alerts))
        ctx.result.phases.append(result)
        ctx.progress.line(
            f"rollout result: {outcome} (expected {phase.expect}) -> {'as expected' if ok else 'NOT as expected'}; "
            f"weights now primary {weights['primary']} / canary {weights['canary']}",
            at=ctx.clock.now(),
        )
        if result.fault_to_rollback is not None:
            ctx.progress.line(
                f"time from fault to completed rollback: {fmt_duration(result.fault_to_rollback)} (scenario clock)"
            )
        if outcome == "completed":
            fleet.groups["primary"].configuration = phase.candidate
            reset_listener(
                ctx,
                fleet,
                f"promotion done: primary target group redeployed with {phase.candidate}; listener "
                "reset to primary 100 / canary 0 (deployment pipeline step)",
            )
        ctx.result.samples = list(fleet.samples)
        ctx.result.weights = list(fleet.weights_history)

    def _as_expected(
        self, phase: RolloutPhase, watch: RolloutWatch, outcome: str, weights: dict[str, int], rollback_alerts: int
    ) -> bool:
        """The expected outcome; a rollback also restored the listener and alerted, and, with the rollback
        function broken, was recorded once (one alert) and the failure paged."""
        alerts = self._ctx.result.alerts
        ok = outcome == phase.expect
        if phase.expect != "rolled_back":
            return ok
        ok = ok and weights["canary"] == 0 and any(a[0] >= watch.started for a in alerts)
        if self._faults.armed:
            page = f"{ROLLBACK_INVOCATION_FAILED} {watch.rollout_id}"[:100]
            pages = [a for a in alerts if a[0] >= watch.started and a[1] == page]
            ok = ok and rollback_alerts == 1 and len(pages) >= 1
        return ok

    def _result(
        self,
        phase: RolloutPhase,
        watch: RolloutWatch,
        outcome: str,
        ok: bool,
        weights: dict[str, int],
        rollback_alerts: int,
    ) -> PhaseResult:
        # the incident is the traffic fault; a fault of the rollback function is what the rollback must survive
        incident = [watch.started + f.at_minute * 60 for f in phase.faults if f.kind not in SYSTEM_FAULT_KINDS]
        fault_at = min(incident) if incident else None
        return PhaseResult(
            phase.name,
            "rollout",
            phase.expect,
            outcome,
            ok,
            watch.started,
            self._ctx.clock.now(),
            detail={
                "rollout_id": watch.rollout_id,
                "status": watch.status.get("status", "unknown"),
                "execution_status": watch.status.get("execution_status"),
                "weights_after": weights,
                "rollback": watch.status.get("rollback"),
                "execution_arn": watch.execution_arn,
                "rollback_alerts": rollback_alerts,
                "restored_by": watch.restored_by,
                "stages": watch.stages,
                "streams": judged_streams(self._ctx, watch.plan, watch.started, self._ctx.clock.now()),
            },
            reactions=sorted(watch.reactions, key=lambda r: r.at),
            fault_at=fault_at,
            rollback_completed_at=watch.rollback_at if fault_at is not None else None,
        )
