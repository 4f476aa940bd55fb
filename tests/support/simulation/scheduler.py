"""A cooperative scheduler that owns every port call of the rollout protocol.

Each actor (the state machine execution, the alarm's Lambda, `kanaria rollout abort`, the reconciler, a human
approver, ...) runs the real code in its own cooperative thread (a greenlet: a switch costs microseconds where an
OS-thread handoff on a loaded machine costs a millisecond) and blocks at every AWS call, sleep or wait until the
scheduler lets it go; exactly one runs at a time, so a run is a pure function of the scheduler's choices. At each step
the scheduler asks its chooser which parked actor proceeds and how its call ends: as asked, throttled (no effect),
applied twice (the SDK retried a call whose first response was lost), applied with its response lost (the caller
sees a read timeout), the Lambda around it crashing there (no effect, nothing after it runs), or the whole service
going down for a while. After every step the world's invariants are checked."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Protocol

from greenlet import greenlet

TICK = 0.1  # virtual seconds each granted step takes
MAX_STEPS = 6000


class Fault(str, Enum):
    """How a granted call ends."""

    OK = "ok"
    THROTTLE = "throttle"  # refused before its effect (after the SDK's own retries)
    DUPLICATE = "duplicate"  # applied, response lost, applied again by the SDK's retry (whose answer the caller gets)
    LOST = "lost"  # applied, the caller sees a read timeout
    CRASH = "crash"  # the Lambda running the call dies here (timeout, OOM): no effect, none of its later calls run
    OUTAGE = "outage"  # the service refuses every call for OUTAGE_SECONDS from here
    CANCEL = "cancel"  # (internal) an actor waiting for something that never happened is dismissed at the end


OUTAGE_SECONDS = 300.0
WRITE_FAULTS = (Fault.THROTTLE, Fault.DUPLICATE, Fault.LOST, Fault.CRASH, Fault.OUTAGE)
READ_FAULTS = (Fault.THROTTLE, Fault.LOST, Fault.CRASH, Fault.OUTAGE)


class Crashed(BaseException):
    """The Lambda invocation died (no finally block of it may reach AWS any more)."""


class Cancelled(BaseException):
    """The actor is dismissed: what it waited for never happened."""


class SimulationError(AssertionError):
    """An invariant broke, or the run did not come to rest."""


@dataclass(frozen=True)
class Point:
    """Where a parked actor waits: a call (faultable), a sleep until `wake`, or a wait for `ready` (until
    `deadline`, when given)."""

    kind: str  # "call" | "sleep" | "wait"
    label: str
    wake: float = 0.0
    service: str | None = None
    faults: tuple[Fault, ...] = ()
    ready: Callable[[], bool] | None = None
    deadline: float | None = None

    def runnable(self) -> bool:
        if self.kind != "wait":
            return self.ready is None or self.ready()
        return (self.ready is not None and self.ready()) or self.deadline is not None

    def when(self, now: float) -> float:
        """The virtual time at which granting this point happens."""
        if self.kind == "wait" and not (self.ready is not None and self.ready()):
            return max(now, self.deadline if self.deadline is not None else now)
        return max(now, self.wake)


@dataclass(frozen=True)
class Option:
    """One thing the scheduler may do next."""

    actor: str
    label: str
    fault: Fault
    preempts: bool  # not the earliest actor in line

    def __str__(self) -> str:
        return f"{self.actor}: {self.label}" + ("" if self.fault is Fault.OK else f" [{self.fault.value}]")


class Chooser(Protocol):
    """Picks the next option (index into `options`; options[0] is the default: earliest actor, call as asked)."""

    def choose(self, step: int, options: list[Option]) -> int: ...


@dataclass
class Actor:
    """A thread of the simulation, running one role's real code."""

    name: str
    order: int
    body: Callable[[], None]
    point: Point | None = None
    finished: bool = False
    error: BaseException | None = None
    granted: Fault = Fault.OK
    in_lambda: bool = False  # a crash needs a Lambda around the call
    dead: bool = False  # the current Lambda invocation crashed
    invocation: int = 0
    cancelled: bool = False
    thread: Any = None  # its greenlet


class Scheduler:
    """Runs actors one at a time; every AWS call, sleep and wait is a step chosen by the chooser."""

    def __init__(self, chooser: Chooser, fault_budget: int, check: Callable[[], None], max_steps: int = MAX_STEPS):
        self.chooser = chooser
        self.fault_budget = fault_budget
        self.faults_used = 0
        self.check = check
        self.max_steps = max_steps
        self.now = 0.0
        self.steps = 0
        self.actors: list[Actor] = []
        self.trace: list[str] = []
        self.outages: dict[str, float] = {}
        self.faults_enabled = True
        self._main: Any = greenlet.getcurrent()
        self._by_greenlet: dict[int, Actor] = {}
        self._last: Actor | None = None

    # --- inside actor threads --------------------------------------------------------------------------------

    def current(self) -> Actor:
        actor = self._by_greenlet.get(id(greenlet.getcurrent()))
        if actor is None:
            raise SimulationError("a port was called outside any actor")
        return actor

    def park(self, point: Point) -> Fault:
        """Block the calling actor at `point` until the scheduler grants it; the fault it chose."""
        actor = self.current()
        if actor.cancelled:
            raise Cancelled()
        if actor.dead:
            raise Crashed()
        actor.point = point
        actor.granted = self._main.switch()
        if actor.granted is Fault.CANCEL:
            raise Cancelled()
        if actor.granted is Fault.CRASH:
            actor.dead = True
            raise Crashed()
        return actor.granted

    def sleep(self, seconds: float, label: str = "sleep") -> None:
        """Sleep `seconds` of virtual time (other actors may run meanwhile)."""
        self.park(Point("sleep", label, wake=self.now + max(0.0, seconds)))

    def wait(self, label: str, ready: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait until `ready()` (True) or the timeout (False); without a timeout, possibly forever (dismissed)."""
        deadline = None if timeout is None else self.now + timeout
        self.park(Point("wait", label, ready=ready, deadline=deadline))
        return ready()

    def in_outage(self, service: str) -> bool:
        return self.faults_enabled and self.outages.get(service, -1.0) > self.now

    # --- the driver ------------------------------------------------------------------------------------------

    def spawn(self, name: str, body: Callable[[], None]) -> Actor:
        """Start an actor; it runs until its first point before anything else happens."""
        actor = Actor(name=name, order=len(self.actors), body=body)
        self.actors.append(actor)

        def run(granted: Fault) -> None:
            try:
                if granted is not Fault.CANCEL:
                    body()
            except (Cancelled, Crashed):
                pass
            except Exception as exc:  # noqa: BLE001 - a harness bug or an escaped error: reported by _resume()
                actor.error = exc
            finally:
                actor.finished = True
                actor.point = None

        actor.thread = greenlet(run, parent=self._main)
        self._by_greenlet[id(actor.thread)] = actor
        actor.point = Point("sleep", "start", wake=self.now)
        return actor

    def _resume(self, actor: Actor, fault: Fault) -> None:
        actor.point = None
        actor.thread.switch(fault)
        if actor.error is not None:
            error, actor.error = actor.error, None
            raise SimulationError(f"actor {actor.name} raised {type(error).__name__}: {error}") from error

    def options(self) -> list[Option]:
        """What may happen next, the default first (earliest actor in line, its call as asked)."""
        parked = [a for a in self.actors if not a.finished and a.point is not None and a.point.runnable()]
        # the earliest first; at the same time the actor that ran last goes on (switching away is a preemption)
        parked.sort(key=lambda a: (a.point.when(self.now), a is not self._last, a.order))  # type: ignore[union-attr]
        options: list[Option] = []
        budget_left = self.faults_enabled and self.faults_used < self.fault_budget
        for position, actor in enumerate(parked):
            point = actor.point
            assert point is not None
            options.append(Option(actor.name, point.label, Fault.OK, position > 0))
            if not budget_left or point.kind != "call" or (point.service and self.in_outage(point.service)):
                continue
            for fault in point.faults:
                if fault is Fault.CRASH and not actor.in_lambda:
                    continue
                options.append(Option(actor.name, point.label, fault, position > 0))
        return options

    def run(self) -> None:
        """Drive every actor to its end (or dismiss those waiting for what never came), checking after each step."""
        while True:
            live = [a for a in self.actors if not a.finished]
            if not live:
                return
            options = self.options()
            if not options:
                for actor in live:  # waiting for an event that can no longer happen
                    self._resume(actor, Fault.CANCEL)
                continue
            if self.steps >= self.max_steps:
                raise SimulationError(f"no rest after {self.steps} steps (livelock?)")
            chosen = options[self.chooser.choose(self.steps, options)]
            actor = next(a for a in self.actors if a.name == chosen.actor)
            assert actor.point is not None
            self.now = actor.point.when(self.now) + TICK
            if chosen.fault is not Fault.OK:
                self.faults_used += 1
            if chosen.fault is Fault.OUTAGE and actor.point.service:
                self.outages[actor.point.service] = self.now + OUTAGE_SECONDS
            self.steps += 1
            self.trace.append(f"{self.now:9.1f}  {chosen}")
            self._last = actor
            self._resume(actor, chosen.fault)
            self.check()

    def abort(self) -> None:
        """Dismiss every actor still alive (after a violation), so that no thread is left behind."""
        for actor in self.actors:
            actor.cancelled = True
        for actor in self.actors:
            if not actor.finished:
                try:
                    self._resume(actor, Fault.CANCEL)
                except SimulationError:
                    pass

    def heal(self) -> None:
        """No more faults and no outage from here (the run settles)."""
        self.faults_enabled = False
        self.outages.clear()
