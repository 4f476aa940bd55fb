"""One tick of the rehearsal's background: the alarms evaluated up to now (their actions run), the reconciler's
schedule fired when due, the on-call queue read. The phases call it between their own steps."""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

from kanaria import names
from kanaria_tools.rehearsal.alarm_wiring import AlarmActionSink, StackResolver
from kanaria_tools.rehearsal.alarms import AlarmDefinition, AlarmEvaluator, EmulatorHooks, MetricStore, load_definitions
from kanaria_tools.rehearsal.alert_text import scheduled_event
from kanaria_tools.rehearsal.context import RunContext
from kanaria_tools.rehearsal.oncall import OnCall
from kanaria_tools.rehearsal.results import Reaction


def _emulator_hooks(ctx: RunContext) -> EmulatorHooks:
    """The evaluator's alarms mirrored into moto, so DescribeAlarms shows them and their states."""
    from kanaria_tools.rehearsal import moto_adaptations

    account, region = ctx.account, ctx.region

    def record_state(definition: AlarmDefinition, state: str, reason: str, data: dict[str, Any], at: float) -> None:
        moto_adaptations.record_alarm_state(
            account, region, definition.name, state, reason, data, ctx.clock.wall_datetime(at)
        )

    return EmulatorHooks(
        register=lambda d: moto_adaptations.register_alarm(account, region, d.properties),
        record_state=record_state,
        actions_enabled=lambda name: moto_adaptations.alarm_actions_enabled(account, region, name),
    )


def start_alarm_evaluator(ctx: RunContext, deployment: Any) -> AlarmEvaluator:
    """The alarms of the synthesized templates, evaluated on the scenario clock (moto neither creates nor
    evaluates them), their actions run into the emulator."""
    from kanaria_tools.rehearsal import moto_adaptations

    resolver = StackResolver(deployment, ctx.client("cloudformation"), ctx.account, ctx.region)
    definitions = load_definitions(deployment.templates(), resolver, ctx.account, ctx.region)
    account, region, clock = ctx.account, ctx.region, ctx.clock
    store = MetricStore(lambda start: moto_adaptations.metric_datums(account, region, start))
    sink = AlarmActionSink(ctx.aws, sleep=lambda seconds: time.sleep(clock.wall_seconds(seconds)))
    evaluator = AlarmEvaluator(
        definitions,
        store,
        to_wall=clock.to_wall,
        sink=sink,
        account=account,
        region=region,
        hooks=_emulator_hooks(ctx),
        wall_datetime=clock.wall_datetime,
    )
    metric = [d for d in definitions if not d.composite]
    composite = [d for d in definitions if d.composite]
    ctx.progress.line(
        f"alarm evaluator: {len(metric)} metric alarms and {len(composite)} composite alarms read "
        "from the synthesized templates (moto does not create or evaluate them)"
    )
    for d in composite:
        actions = ", ".join(a.split(":")[2] + ":" + a.rsplit(":", 1)[-1] for a in d.alarm_actions) or "none"
        rule = d.rule or ""
        ctx.progress.line(f"  {d.name}: {rule[:90]}{'...' if len(rule) > 90 else ''} -> {actions}")
    return evaluator


class ReconcilerSchedule:
    """The reconciler's EventBridge schedule (every RECONCILE_EVERY_MINUTES on the scenario clock), which moto
    does not fire: invoked asynchronously like EventBridge does, one at a time (its reserved concurrency is 1)."""

    def __init__(self, ctx: RunContext, function: str):
        self._ctx = ctx
        self._function = function
        self._next = 0.0
        self._running = threading.Lock()

    @classmethod
    def of(cls, ctx: RunContext) -> "ReconcilerSchedule | None":
        """The schedule when the reconciler is deployed."""
        function = ctx.deployed(names.FUNCTION_RECONCILER)
        if function is None:
            return None
        ctx.progress.line(
            f"reconciler: {function} every {names.RECONCILE_EVERY_MINUTES} scenario minute(s) "
            "(its EventBridge schedule, which moto does not fire)"
        )
        return cls(ctx, function)

    def fire_if_due(self, now: float) -> None:
        """Invoke the reconciler when its next period has begun and the previous run has ended."""
        if now < self._next:
            return
        period = names.RECONCILE_EVERY_MINUTES * 60
        self._next = (math.floor(now / period) + 1) * period
        if not self._running.acquire(blocking=False):
            return  # the previous run is still going: throttled, as with reserved concurrency 1
        threading.Thread(target=self._run, daemon=True, name="reconciler").start()

    def _run(self) -> None:
        ctx = self._ctx
        try:
            ctx.caller.invoke(self._function, scheduled_event(ctx.account, ctx.region, self._function))
        except Exception as exc:  # noqa: BLE001 - the function's failure is in the invocation log
            logging.getLogger("kanaria_tools.rehearsal").info("reconciler failed: %s", exc)
        finally:
            self._running.release()


class AlarmTick:
    """Advances the background to a scenario time: alarms, the reconciler's schedule, the on-call queue."""

    def __init__(
        self, ctx: RunContext, evaluator: AlarmEvaluator, oncall: OnCall, reconciler: ReconcilerSchedule | None
    ):
        self._ctx = ctx
        self.evaluator = evaluator
        self._oncall = oncall
        self._reconciler = reconciler

    def __call__(self, now: float, reactions: list[Reaction]) -> float:
        """Alarms up to `now` (their transitions appended to `reactions`), then the reconciler and the alerts.
        Returns now."""
        for t in self.evaluator.run_until(now):
            kind = "composite" if t.composite else "alarm"
            actions = (
                f" -> {', '.join(a.split(':')[2] + ' ' + a.rsplit(':', 1)[-1] for a in t.actions)}" if t.actions else ""
            )
            self._ctx.progress.line(f"ALARM {t.alarm}: {t.old} -> {t.new}{actions}", at=t.at)
            reactions.append(Reaction(t.at, f"{t.alarm} {t.old} -> {t.new}{actions}", kind))
        if self._reconciler is not None:
            self._reconciler.fire_if_due(now)
        self._oncall.poll()
        return now

    def alarm_state(self, kind: str) -> str | None:
        """The current state of one of the deployment's alarms (names.ALARM_*), None when it is not defined."""
        status = self.evaluator.status.get(names.alarm_name(self._ctx.prefix, kind))
        return status.state if status is not None else None
