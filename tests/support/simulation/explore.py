"""Scenarios of the rollout protocol and their exploration: one run per schedule (a list of choices), exhaustive DFS
over the choices up to a fault and preemption budget, and seeded random walks beyond it. A run that breaks an
invariant reports the schedule (the trace of steps) that did it; a schedule replays exactly."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Callable

from tests.support.rollout_world import request
from tests.support.simulation import actors
from tests.support.simulation.scheduler import Fault, Option, SimulationError
from tests.support.simulation.world import WARMUP_PARAMETER, World

ROLLOUT = "r-sim"


@dataclass(frozen=True)
class Scenario:
    """Who acts in a run, besides the execution."""

    name: str
    setup: Callable[[World], None]


def document(warmup_secret: bool = False) -> dict:
    extra = {}
    if warmup_secret:  # the header by reference: its value (SECRET) is only in the SSM parameter
        secret = {"Authorization": WARMUP_PARAMETER}
        extra["warmup"] = {"url": "https://canary.internal/chat", "requests": 5, "secret_headers": secret}
    return request(approval_timeout=3600, **extra)


def _stage_reached(world: World, percent: int) -> Callable[[], bool]:
    return lambda: world.canary_weight() >= percent


def _stage_verified(world: World) -> Callable[[], bool]:
    """The first stage's weights were verified (its observation started)."""

    def verified() -> bool:
        meta = world.meta()
        return bool(meta and json.loads(meta["progress"]).get("stage_started_at"))

    return verified


def _status(world: World, *statuses: str) -> Callable[[], bool]:
    return lambda: (world.meta() or {}).get("status") in statuses


def _approval_pending(world: World) -> Callable[[], bool]:
    return lambda: bool((world.meta() or {}).get("approval_token"))


def alarm_during_approval(world: World) -> None:
    world.sched.spawn("execution", actors.execution(world, document(), ROLLOUT))
    world.sched.spawn("alarm", actors.alarm(world, _approval_pending(world)))
    world.sched.spawn("human", actors.approver(world, think=40.0))
    world.sched.spawn("reconciler", actors.reconciler(world))


def alarm_mid_stage(world: World) -> None:
    world.sched.spawn("execution", actors.execution(world, document(), ROLLOUT))
    world.sched.spawn("alarm", actors.alarm(world, _stage_reached(world, 5)))
    world.sched.spawn("human", actors.approver(world))
    world.sched.spawn("reconciler", actors.reconciler(world))


def abort_mid_stage(world: World) -> None:
    world.sched.spawn("execution", actors.execution(world, document(), ROLLOUT))
    world.sched.spawn("operator", actors.abort(world, _stage_verified(world), ROLLOUT))
    world.sched.spawn("human", actors.approver(world))
    world.sched.spawn("reconciler", actors.reconciler(world))


def abort_at_promotion(world: World) -> None:
    world.sched.spawn("execution", actors.execution(world, document(), ROLLOUT))
    world.sched.spawn("operator", actors.abort(world, _status(world, "promoting"), ROLLOUT))
    world.sched.spawn("human", actors.approver(world, think=5.0))
    world.sched.spawn("reconciler", actors.reconciler(world))


def console_stop_before_traffic(world: World) -> None:
    world.sched.spawn("execution", actors.execution(world, document(), ROLLOUT))
    world.sched.spawn("console", actors.console_stop(world, lambda: world.meta() is not None, ROLLOUT))
    world.sched.spawn("human", actors.approver(world))
    world.sched.spawn("reconciler", actors.reconciler(world))


def undisturbed(world: World) -> None:
    world.sched.spawn("execution", actors.execution(world, document(), ROLLOUT))
    world.sched.spawn("human", actors.approver(world))
    world.sched.spawn("reconciler", actors.reconciler(world))


def canary_fails_gate(world: World) -> None:
    world.canary_unhealthy = True
    world.sched.spawn("execution", actors.execution(world, document(), ROLLOUT))
    world.sched.spawn("human", actors.approver(world))
    world.sched.spawn("reconciler", actors.reconciler(world))


def warmup_secret(world: World) -> None:
    world.sched.spawn("execution", actors.execution(world, document(warmup_secret=True), ROLLOUT))
    world.sched.spawn("operator", actors.abort(world, _stage_reached(world, 5), ROLLOUT))
    world.sched.spawn("reconciler", actors.reconciler(world))


SCENARIOS = {
    s.name: s
    for s in [
        Scenario("undisturbed", undisturbed),
        Scenario("alarm_during_approval", alarm_during_approval),
        Scenario("alarm_mid_stage", alarm_mid_stage),
        Scenario("abort_mid_stage", abort_mid_stage),
        Scenario("abort_at_promotion", abort_at_promotion),
        Scenario("console_stop_before_traffic", console_stop_before_traffic),
        Scenario("canary_fails_gate", canary_fails_gate),
        Scenario("warmup_secret", warmup_secret),
    ]
}


# --- choosers -----------------------------------------------------------------------------------------------


@dataclass
class Replay:
    """Replays `prefix`, then takes the default (options[0]); records every step's options."""

    prefix: list[int] = field(default_factory=list)
    chosen: list[int] = field(default_factory=list)
    seen: list[list[Option]] = field(default_factory=list)

    def choose(self, step: int, options: list[Option]) -> int:
        index = self.prefix[step] if step < len(self.prefix) else 0
        if index >= len(options):
            raise SimulationError(f"replay diverged at step {step}: {index} of {len(options)} options")
        self.chosen.append(index)
        self.seen.append(options)
        return index


Rule = Callable[[Option, list[Option]], bool]


@dataclass
class Scripted:
    """Chooses by rules: the first rule that accepts an option (given the options chosen so far) picks it, else
    the default. A schedule written down as intent ("throttle every Step Functions call of the alarm's Lambda")."""

    rules: list[Rule]
    chosen: list[int] = field(default_factory=list)
    seen: list[list[Option]] = field(default_factory=list)
    history: list[Option] = field(default_factory=list)

    def choose(self, step: int, options: list[Option]) -> int:
        index = 0
        for rule in self.rules:
            hits = [i for i, option in enumerate(options) if rule(option, self.history)]
            if hits:
                index = hits[0]
                break
        self.chosen.append(index)
        self.seen.append(options)
        self.history.append(options[index])
        return index


@dataclass
class RandomWalk:
    """Seeded: another actor than the earliest with probability `switch`, a fault with probability `fault`."""

    rng: random.Random
    switch: float = 0.3
    fault: float = 0.04
    chosen: list[int] = field(default_factory=list)
    seen: list[list[Option]] = field(default_factory=list)

    def choose(self, step: int, options: list[Option]) -> int:
        names = list(dict.fromkeys(o.actor for o in options))
        actor = names[0] if len(names) == 1 or self.rng.random() >= self.switch else self.rng.choice(names[1:])
        mine = [i for i, o in enumerate(options) if o.actor == actor]
        faults = [i for i in mine if options[i].fault is not Fault.OK]
        index = self.rng.choice(faults) if faults and self.rng.random() < self.fault else mine[0]
        self.chosen.append(index)
        self.seen.append(options)
        return index


# --- runs -------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One schedule's outcome."""

    scenario: str
    chosen: list[int]
    seen: list[list[Option]]
    trace: list[str]
    violation: str | None
    world: World

    def report(self, last: int = 60) -> str:
        steps = self.trace[-last:]
        return "\n".join(
            [
                f"scenario {self.scenario}: {self.violation}",
                f"schedule (last {len(steps)} of {len(self.trace)} steps):",
                *steps,
            ]
        )


def run(scenario: Scenario, chooser: Replay | Scripted | RandomWalk, fault_budget: int, seed: int = 0) -> Run:
    """One schedule of `scenario`, then faults off and the reconciler until nothing changes, then the final checks."""
    world = World(chooser, fault_budget, seed=seed)
    state = random.getstate()
    random.seed(seed)
    violation = None
    try:
        with world.installed():
            try:
                scenario.setup(world)
                world.sched.run()
                world.sched.heal()
                world.sched.spawn("reconciler-settling", actors.settle(world))
                world.sched.run()
                world.check_final()
            except SimulationError as exc:
                violation = str(exc)
                world.sched.abort()
    finally:
        random.setstate(state)
    return Run(scenario.name, chooser.chosen, chooser.seen, world.sched.trace, violation, world)


@dataclass
class Exploration:
    """How many schedules were explored and the first that broke an invariant."""

    schedules: int = 0
    failure: Run | None = None


def _cost(option: Option) -> tuple[int, int]:
    return (0 if option.fault is Fault.OK else 1), (1 if option.preempts else 0)


def dfs(scenario: Scenario, max_faults: int, max_preemptions: int, limit: int) -> Exploration:
    """Every schedule with at most `max_faults` faults and `max_preemptions` preemptions (up to `limit` runs)."""
    result = Exploration()
    prefix: list[int] = []
    while result.schedules < limit:
        outcome = run(scenario, Replay(prefix), max_faults)
        result.schedules += 1
        if outcome.violation is not None:
            result.failure = outcome
            return result
        prefix = _next_prefix(outcome, max_faults, max_preemptions)
        if prefix is None:
            return result
    return result


def _next_prefix(outcome: Run, max_faults: int, max_preemptions: int) -> list[int] | None:
    faults = [0]
    preemptions = [0]
    for index, options in zip(outcome.chosen, outcome.seen):
        f, p = _cost(options[index])
        faults.append(faults[-1] + f)
        preemptions.append(preemptions[-1] + p)
    for step in range(len(outcome.chosen) - 1, -1, -1):
        options = outcome.seen[step]
        for alternative in range(outcome.chosen[step] + 1, len(options)):
            f, p = _cost(options[alternative])
            if faults[step] + f <= max_faults and preemptions[step] + p <= max_preemptions:
                return [*outcome.chosen[:step], alternative]
    return None


def random_walks(scenario: Scenario, count: int, seed: int, fault_budget: int = 3) -> Exploration:
    """`count` seeded random schedules (seed, seed+1, ...)."""
    result = Exploration()
    for index in range(count):
        outcome = run(scenario, RandomWalk(random.Random(seed + index)), fault_budget, seed=seed + index)
        result.schedules += 1
        if outcome.violation is not None:
            result.failure = outcome
            return result
    return result
