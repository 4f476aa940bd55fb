"""The simulated deployment: the in-memory AWS the real adapters talk to, the real RolloutServices built over it,
Lambda invocations of the real handlers, and the oracle that checks the protocol's invariants after every step.

Invariants (docs/rollouts.md "Rollback guarantees"):
  (a) once a rollback has begun (a rollback wrote the listener to primary-only, or the rollout's META says it is
      rolling back), the canary weight is never raised again; a stage write already in flight is undone before
      its step returns;
  (b) a rollout ends exactly one of completed / rolled back: META never leaves completed or rolled_back, the
      candidate history never holds both COMPLETED and ROLLBACK for it, the execution SUCCEEDS only if completed;
  (c) every rollback is paged (or its page failure recorded and retried until sent); a page says a rollback was
      done only once the listener is primary-only; "on-call was paged" only after a page went out;
  (d) at rest the listener matches the record (rolled back: primary-only; completed: 100% canary) and the
      listener's active-rollout slot is free;
  (e) no page and no stored item carries the warm-up's secret header;
  (f) a transient CloudWatch error never rolls a rollout back.
"""

from __future__ import annotations

import contextlib
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from kanaria.domain.rollout import forward_of
from tests.support.simulation import fake_aws
from tests.support.simulation.asl import Execution
from tests.support.simulation.scheduler import Chooser, Crashed, Scheduler, SimulationError

ROOT = Path(__file__).resolve().parents[3]
ASL = json.loads((ROOT / "state_machines" / "canary_rollout.asl.json").read_text())
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
ACCOUNT = "123456789012"
LISTENER = f"arn:aws:elasticloadbalancing:ap-northeast-1:{ACCOUNT}:listener/app/demo/1/2"
PRIMARY = f"arn:aws:elasticloadbalancing:ap-northeast-1:{ACCOUNT}:targetgroup/primary/1"
CANARY = f"arn:aws:elasticloadbalancing:ap-northeast-1:{ACCOUNT}:targetgroup/canary/2"
STATE_MACHINE = f"arn:aws:states:ap-northeast-1:{ACCOUNT}:stateMachine:kanaria-canary-rollout"
EXECUTION_PREFIX = f"arn:aws:states:ap-northeast-1:{ACCOUNT}:execution:kanaria-canary-rollout:"
TOPIC = f"arn:aws:sns:ap-northeast-1:{ACCOUNT}:kanaria-alerts"
QUEUE = f"https://sqs.ap-northeast-1.amazonaws.com/{ACCOUNT}/kanaria-rollback-failures"
ROLLOUTS_TABLE = "kanaria-rollouts"
CRITICAL = "kanaria-canary-critical"
WARNING = "kanaria-canary-warning"
SECRET = "Bearer s3cr3t-warmup-token-0123456789"
WARMUP_PARAMETER = "/kanaria/warmup/chatbot-token"  # the SSM SecureString holding SECRET
ROLLBACK_PAGE = "[Kanaria] ROLLBACK "
CLAIMS_DONE_EXCLUDED = (
    "[Kanaria] ROLLBACK FAILED",
    "[Kanaria] ROLLBACK INVOCATION FAILED",
    "[Kanaria] ROLLBACK REPAIRED",
)


@dataclass
class InvokeResult:
    """What a Lambda invocation returned (payload) or how it failed (errorType, errorMessage)."""

    ok: bool
    payload: Any = None
    error_type: str = ""
    message: str = ""


@dataclass
class Page:
    subject: str
    message: str
    step: int
    canary_weight: int


@dataclass
class Oracle:
    """What the invariants remember between steps."""

    rollback_begun_step: int | None = None
    in_flight: set[tuple[str, int]] = field(default_factory=set)  # (actor, invocation) with a raise after begun
    statuses: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


class World:
    """One run's deployment, scheduler and oracle."""

    def __init__(self, chooser: Chooser, fault_budget: int, seed: int = 0, max_steps: int = 6000):
        self.sched = Scheduler(chooser, fault_budget, self.check_step, max_steps=max_steps)
        self.rng = random.Random(seed)
        self.tables = {ROLLOUTS_TABLE: fake_aws.Table(ROLLOUTS_TABLE, "rollout_id", "record")}
        shipped = {
            "TargetGroups": [{"TargetGroupArn": PRIMARY, "Weight": 100}, {"TargetGroupArn": CANARY, "Weight": 0}],
            "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 3600},
        }
        self.listeners: dict[str, list[dict[str, Any]]] = {LISTENER: [{"Type": "forward", "ForwardConfig": shipped}]}
        self.executions: dict[str, Execution] = {}
        self.alarms = {CRITICAL: "OK", WARNING: "OK"}
        self.canary_weights_written: list[int] = []  # the canary weight of every applied ModifyListener
        self.canary_unhealthy = False  # the canary's error rate in GetMetricData (the gates fail on it)
        self.pages: list[Page] = []
        self.queue: dict[str, dict[str, Any]] = {}  # message id -> {"body", "receipt", "visible_at"}
        self.oracle = Oracle()
        self.interpreters: list[Any] = []
        self.invocations: dict[tuple[str, int], tuple[str, int]] = {}  # (actor, invocation) -> (role, first step)
        self.rollout_id: str | None = None
        self._tokens = 0
        self._owners = 0
        self._messages = 0
        self.warmup = _Warmup()
        self.services = self._services()
        self.deployment = self._deployment()

    # --- wiring ------------------------------------------------------------------------------------------------

    def clock(self) -> datetime:
        return T0 + timedelta(seconds=self.sched.now)

    def _owner(self) -> str:
        self._owners += 1
        return f"owner-{self._owners}"

    def _services(self) -> Any:
        from kanaria.dal.elb import ElbListenerGateway
        from kanaria.dal.messaging import SfnExecutions, SnsNotifier
        from kanaria.dal.metrics import CloudWatchMetricsReader
        from kanaria.dal.retry import Backoff
        from kanaria.dal.rollouts import DynamoRolloutStore
        from kanaria.logic.rollout_services import RolloutServices

        return RolloutServices(
            store=DynamoRolloutStore(ROLLOUTS_TABLE, dynamodb_resource=fake_aws.FakeDynamoResource(self)),
            listener=ElbListenerGateway(
                client=fake_aws.FakeElb(self), sleep=lambda s: self.sched.sleep(s, "ELB backoff"), max_attempts=2
            ),
            metrics=CloudWatchMetricsReader(
                "Kanaria",
                CRITICAL,
                WARNING,
                client=fake_aws.FakeCloudWatch(self),
                backoff=Backoff(sleep=lambda s: self.sched.sleep(s, "CloudWatch backoff"), max_attempts=2),
            ),
            notifier=SnsNotifier(TOPIC, client=fake_aws.FakeSns(self)),
            executions=SfnExecutions(client=fake_aws.FakeStepFunctions(self)),
            clock=self.clock,
            warmup=self.warmup,
            new_owner=self._owner,
        )

    def _deployment(self) -> Any:
        from kanaria.logic.rollout_services import Deployment

        return Deployment(LISTENER, PRIMARY, CANARY)

    def failed_invocations(self) -> Any:
        from kanaria.dal.messaging import SqsFailedInvocations

        return SqsFailedInvocations(QUEUE, client=fake_aws.FakeSqs(self), max_batches=2)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """The handlers' environment-built services replaced by this world's (for the run), their logs quiet."""
        from kanaria.handlers import rollback, rollout_steps

        saved = []
        for module in (rollout_steps, rollback):
            saved.append((module, module.rollout_services, module.deployment, module.logger.log_level))
            module.rollout_services = lambda: self.services  # type: ignore[assignment]
            module.deployment = lambda: self.deployment  # type: ignore[assignment]
            module.logger.setLevel("CRITICAL")
        try:
            yield
        finally:
            for module, services, deployment, level in saved:
                module.rollout_services, module.deployment = services, deployment
                module.logger.setLevel(level)
                module.metrics.clear_metrics()

    # --- Lambda ------------------------------------------------------------------------------------------------

    def invoke(self, function: Callable[[Any], Any], event: Any, kind: str, role: str = "steps") -> InvokeResult:
        """One invocation of a handler in the calling actor (a JSON round trip each way, as Lambda does)."""
        actor = self.sched.current()
        actor.invocation += 1
        actor.in_lambda, actor.dead = True, False
        self.invocations[(actor.name, actor.invocation)] = (role, self.sched.steps)
        try:
            payload = function(json.loads(json.dumps(event)))
            return InvokeResult(True, json.loads(json.dumps(payload)))
        except Crashed:
            return InvokeResult(False, error_type="Sandbox.Timedout", message="Task timed out after 60.00 seconds")
        except Exception as exc:  # noqa: BLE001 - Lambda reports any error by its type name
            return InvokeResult(False, error_type=type(exc).__name__, message=str(exc))
        finally:
            crashed = actor.dead
            actor.in_lambda, actor.dead = False, False
            self._invocation_ended(actor.name, actor.invocation, crashed)
            from kanaria.handlers import rollback, rollout_steps

            rollout_steps.metrics.clear_metrics()
            rollback.metrics.clear_metrics()

    def new_token(self, execution: Execution) -> str:
        self._tokens += 1
        token = f"token-{self._tokens}"
        execution.tokens[token] = None
        return token

    def answer_token(self, token: str, answer: Any) -> dict[str, Any]:
        for execution in self.executions.values():
            if token in execution.tokens:
                if execution.tokens[token] is not None:
                    break
                execution.tokens[token] = answer
                return {}
        raise fake_aws.client_error("TaskDoesNotExist", "Task does not exist anymore", "SendTaskSuccess")

    # --- SQS (the rollback function's on-failure destination) ---------------------------------------------------

    def queue_send(self, body: Any) -> None:
        self._messages += 1
        self.queue[f"msg-{self._messages}"] = {"body": json.dumps(body), "receipt": "", "visible_at": 0.0}

    def queue_receive(self, limit: int, visibility: int) -> list[dict[str, Any]]:
        out = []
        for message_id, message in self.queue.items():
            if len(out) >= limit:
                break
            if message["visible_at"] <= self.sched.now:
                self._messages += 1
                message["receipt"] = f"rh-{self._messages}"
                message["visible_at"] = self.sched.now + visibility
                out.append({"MessageId": message_id, "ReceiptHandle": message["receipt"], "Body": message["body"]})
        return out

    def queue_delete(self, receipt: str) -> dict[str, Any]:
        for message_id, message in list(self.queue.items()):
            if message["receipt"] == receipt:
                del self.queue[message_id]
        return {}

    # --- the oracle ----------------------------------------------------------------------------------------------

    def canary_weight(self) -> int:
        forward = forward_of(self.listeners[LISTENER])
        return forward.weight(CANARY) if forward else 0

    def meta(self) -> dict[str, Any] | None:
        return self.tables[ROLLOUTS_TABLE].items.get((self.rollout_id, "META")) if self.rollout_id else None

    def _role(self) -> tuple[str, int, str, int]:
        actor = self.sched.current()
        role, started = self.invocations.get((actor.name, actor.invocation), ("none", -1))
        return actor.name, actor.invocation, role if actor.in_lambda else "none", started

    def listener_written(self, arn: str, actions: list[dict[str, Any]]) -> None:
        """ModifyListener applied (called inside the effect, before the new actions are stored)."""
        before = self.canary_weight()
        forward = forward_of(actions)
        after = forward.weight(CANARY) if forward else 0
        self.listeners[arn] = actions
        self.canary_weights_written.append(after)
        name, invocation, role, started = self._role()
        if role in {"rollback", "reconciler"} and after == 0 and self.oracle.rollback_begun_step is None:
            self.oracle.rollback_begun_step = self.sched.steps
        begun = self.oracle.rollback_begun_step
        if after > before and begun is not None:
            if started > begun or role == "none":
                self.violate(
                    f"(a) {name} raised the canary weight {before} -> {after} in a step that started after the "
                    f"rollback began (step {begun})"
                )
            else:
                self.oracle.in_flight.add((name, invocation))

    def _invocation_ended(self, name: str, invocation: int, crashed: bool) -> None:
        if (name, invocation) in self.oracle.in_flight:
            self.oracle.in_flight.discard((name, invocation))
            if not crashed and self.canary_weight() > 0:
                self.violate(
                    f"(a) {name}'s stage write was in flight when the rollback began and its step returned with the "
                    f"canary still at {self.canary_weight()}"
                )

    def page_published(self, subject: str, message: str) -> None:
        self.pages.append(Page(subject, message, self.sched.steps, self.canary_weight()))
        claims_done = subject.startswith(ROLLBACK_PAGE) and not subject.startswith(CLAIMS_DONE_EXCLUDED)
        if claims_done and self.canary_weight() > 0:
            self.violate(
                f"(c) page {subject!r} says the rollback was done while the canary still gets {self.canary_weight()}%"
            )

    def violate(self, message: str) -> None:
        self.oracle.violations.append(f"step {self.sched.steps} t={self.sched.now:.1f}: {message}")

    def check_step(self) -> None:
        """After every step: (a) and (b) as far as they can be seen mid-run."""
        meta = self.meta()
        if meta is not None:
            status = str(meta.get("status"))
            history = self.oracle.statuses
            if not history or history[-1] != status:
                if history and history[-1] in {"completed", "rolled_back"}:
                    self.violate(f"(b) the rollout's status went {history[-1]} -> {status}")
                history.append(status)
            if status in {"rolling_back", "rolled_back"} and self.oracle.rollback_begun_step is None:
                self.oracle.rollback_begun_step = self.sched.steps
        if self.rollout_id is not None:
            records = {sk for (pk, sk) in self.tables[ROLLOUTS_TABLE].items if str(pk).startswith("CANDIDATE#")}
            if f"COMPLETED#{self.rollout_id}" in records and f"ROLLBACK#{self.rollout_id}" in records:
                self.violate("(b) the candidate's history holds both COMPLETED and ROLLBACK for the rollout")
        if self.oracle.violations:
            raise SimulationError(self.oracle.violations[0])

    def check_final(self) -> None:
        """At rest: (b), (c), (d), (e), (f)."""
        self.check_step()
        items = self.tables[ROLLOUTS_TABLE].items
        meta = self.meta()
        status = None if meta is None else meta.get("status")
        record = items.get((self.rollout_id, "ROLLBACK"))
        self._check_outcome(status, record)
        self._check_pages(status, record)
        self._check_secrets()
        if record is not None:
            trigger = json.loads(record["body"])["trigger"]
            if trigger["kind"] == "task_failed" and "CloudWatch" in json.dumps(trigger):
                self.violate(f"(f) a transient CloudWatch error rolled the rollout back: {trigger['summary'][:200]}")
        if self.oracle.violations:
            raise SimulationError(self.oracle.violations[0])

    def _execution(self) -> Execution | None:
        return self.executions.get(EXECUTION_PREFIX + (self.rollout_id or ""))

    def _check_outcome(self, status: str | None, record: dict[str, Any] | None) -> None:
        execution = self._execution()
        forward = forward_of(self.listeners[LISTENER])
        weights = forward.weights if forward else {}
        begun = self.oracle.rollback_begun_step is not None
        if status is not None and status not in {"completed", "rolled_back"}:
            self.violate(f"(b) the rollout rests in status {status!r} (neither completed nor rolled back)")
        if execution is not None and execution.status == "SUCCEEDED" and (status != "completed" or record is not None):
            self.violate(
                f"(b) the pipeline was told the rollout succeeded, but its status is {status} (record: {record is not None})"
            )
        if status == "completed" and (begun or record is not None):
            self.violate("(b) completed although a rollback began")
        if status == "completed" and weights != {CANARY: 100}:
            self.violate(f"(d) completed but the listener sends {weights}")
        if status != "completed" and weights.get(CANARY, 0) > 0:
            self.violate(
                f"(d) not completed ({status}) but the canary still gets weight {weights.get(CANARY)} ({weights})"
            )
        active = self.tables[ROLLOUTS_TABLE].items.get((f"ACTIVE#{LISTENER}", "ACTIVE"))
        if active is not None:
            self.violate(f"(d) the listener's slot is still held by {active.get('active_rollout_id')} at rest")

    def _check_pages(self, status: str | None, record: dict[str, Any] | None) -> None:
        rollback_pages = [p for p in self.pages if p.subject.startswith(f"{ROLLBACK_PAGE}{self.rollout_id} ")]
        if (status == "rolled_back" or record is not None) and not rollback_pages:
            self.violate("(c) the rollout was rolled back but no rollback page was ever sent (nor is one pending)")
        execution = self._execution()
        failed_paged = any(p.subject.startswith("[Kanaria] ROLLBACK FAILED") for p in self.pages)
        if execution is not None and execution.error == "Kanaria.RollbackFailed" and not failed_paged:
            self.violate("(c) the execution says on-call was paged about the failed rollback; no page went out")

    def _check_secrets(self) -> None:
        for page in self.pages:
            if SECRET in page.message or SECRET in page.subject:
                self.violate(f"(e) page {page.subject!r} carries the warm-up's secret header")
        for key, item in self.tables[ROLLOUTS_TABLE].items.items():
            if SECRET in json.dumps(item, default=str):
                self.violate(f"(e) stored item {key} carries the warm-up's secret header")

    def fingerprint(self) -> str:
        """Everything a sweep could change (to tell when the reconciler has nothing left to do)."""
        items = sorted(
            (str(k), json.dumps(v, default=str, sort_keys=True)) for k, v in self.tables[ROLLOUTS_TABLE].items.items()
        )
        return json.dumps([items, self.listeners, len(self.pages), sorted(self.queue)], default=str)


class _Warmup:
    """WarmupSender: the real sender's secret-header resolution over an in-memory SSM (holding SECRET), then every
    synthetic request succeeds; `sent_headers` is what the requests would have carried."""

    def __init__(self) -> None:
        self.sent_headers: list[dict[str, str]] = []

    def send(self, warmup: Any) -> dict[str, Any]:
        from kanaria.dal.warmup import HttpWarmupSender

        secret = HttpWarmupSender("/kanaria/warmup/", resolve={WARMUP_PARAMETER: SECRET}.__getitem__).secret_headers(
            warmup
        )
        self.sent_headers.append({**warmup.headers, **secret})
        return {"sent": warmup.requests, "succeeded": warmup.requests, "failed": 0, "failure_rate": 0.0, "seconds": 1.0}
