"""A moto world for rollout tests: ALB listener with primary/canary target groups, the tables, the alert topic
(read through an SQS subscription), the rollout state machine from the real ASL, and both rollout handlers
running in-process. Metrics are scripted (moto's GetMetricData has no percentiles)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import pytest
from moto import mock_aws

from kanaria import names
from kanaria.domain.rollout import Forward, forward_of
from kanaria.domain.rollout_gates import MetricSnapshot, SideMetrics
from kanaria.domain.rollout_status import StoredRollout
from kanaria_tools.rehearsal.moto_adaptations import atomic_dynamodb_writes
from tests.support.moto_lambda import MOCK_CONFIG, early_callback_outcomes, function_arn, in_process_lambdas

ROOT = Path(__file__).resolve().parents[2]
ASL_FILE = ROOT / "state_machines" / "canary_rollout.asl.json"
PREFIX = names.DEFAULT_PREFIX
REGION = "ap-northeast-1"
STEPS_FUNCTION = names.function_name(PREFIX, "rollout-steps")
ROLLBACK_FUNCTION = names.function_name(PREFIX, "rollback")
CRITICAL_ALARM = names.alarm_name(PREFIX, names.ALARM_CANARY_CRITICAL)
WARNING_ALARM = names.alarm_name(PREFIX, names.ALARM_CANARY_WARNING)


def side(
    observations: float | None = 1000,
    errors: float | None = 1,
    latency: float | None = 1000,
    hallucinations: float | None = 5,
    throttles: float | None = 0,
    csat: float | None = 3.5,
    csat_count: float | None = 100,
    quality: float | None = 0.85,
) -> SideMetrics:
    """One side's aggregates (None = no datapoints)."""
    return SideMetrics(
        observations=observations,
        errors=errors,
        throttles=throttles,
        hallucinations=hallucinations,
        latency_p99_ms=latency,
        csat_sum=None if csat is None or csat_count is None else csat * csat_count,
        csat_count=csat_count,
        quality_sum=None if quality is None or observations is None else quality * observations,
        quality_count=observations if quality is not None else None,
    )


def snapshot(
    canary: SideMetrics | None = None, primary: SideMetrics | None = None, alarms: dict[str, str] | None = None
) -> MetricSnapshot:
    """A snapshot, healthy on both sides unless told otherwise; both composite alarms OK."""
    now = datetime.now(timezone.utc)
    return MetricSnapshot(
        window_start=(now - timedelta(minutes=5)).isoformat(timespec="seconds"),
        window_end=now.isoformat(timespec="seconds"),
        canary=canary or side(),
        primary=primary or side(),
        alarms=alarms if alarms is not None else {CRITICAL_ALARM: "OK", WARNING_ALARM: "OK"},
        critical_alarm=CRITICAL_ALARM,
        warning_alarm=WARNING_ALARM,
    )


MISSING = snapshot(
    canary=side(
        observations=None, errors=None, latency=None, hallucinations=None, throttles=None, csat=None, quality=None
    )
)


class ScriptedMetrics:
    """MetricsReader returning the scripted items in order (the last one repeats); an exception item is raised."""

    def __init__(self, *items: MetricSnapshot | Exception | Callable[[], MetricSnapshot]):
        self.items = list(items) or [snapshot()]
        self.reads = 0
        self.critical_state = "OK"

    def critical_alarm_state(self) -> tuple[str, str] | None:
        return CRITICAL_ALARM, self.critical_state

    def read(self, start: datetime, end: datetime) -> MetricSnapshot:
        item = self.items[min(self.reads, len(self.items) - 1)]
        self.reads += 1
        if isinstance(item, Exception):
            raise item
        return item() if callable(item) else item


class FastClock:
    """The rollout clock running `speed` times faster than the wall (the judge reads whole minutes)."""

    def __init__(self, speed: float = 120.0):
        self._origin = datetime.now(timezone.utc)
        self._wall = time.monotonic()
        self.speed = speed

    def __call__(self) -> datetime:
        return self._origin + timedelta(seconds=(time.monotonic() - self._wall) * self.speed)


MIX = {
    "recommendation": 0.24,
    "product_search": 0.2,
    "manga_qa": 0.18,
    "order_status": 0.16,
    "shipping_info": 0.12,
    "chitchat": 0.1,
}
HEALTHY_RATES = {
    "errors": 0.001,
    "throttles": 0.002,
    "hallucinations": 0.01,
    "safety_stops": 0.003,
    "slow_responses": 0.05,
    "poor_quality": 0.10,
    "dissatisfied": 0.15,
}


class ScriptedMinutes:
    """CanaryMinutesReader drawing each minute of 600 requests at the listener's canary share.

    `canary_rates(minute_index, metric, intent)` gives the canary's rate (None: the primary's healthy rate);
    `percent()` the canary share in effect."""

    def __init__(
        self,
        percent: Callable[[], int],
        canary_rates: Callable[[int, str, str], float | None] | None = None,
        seed: int = 11,
    ):
        import numpy as np

        self._rng = np.random.default_rng(seed)
        self._percent = percent
        self._canary_rates = canary_rates or (lambda *_: None)
        self.minutes_read = 0

    def read_minutes(self, start: datetime, end: datetime, settings: Any) -> list[Any]:
        from kanaria.canary.judge import OVERALL, Counts, MinuteCounts, stream_key

        minutes, at = [], start
        while at < end:
            streams = {}
            share = self._percent() / 100
            for metric in settings.metrics:
                total = [0.0, 0.0, 0.0, 0.0]
                for intent, weight in MIX.items():
                    requests = self._rng.poisson(600 * weight)
                    n_c = int(self._rng.binomial(requests, share))
                    n_p = requests - n_c
                    base = HEALTHY_RATES[metric.value]
                    rate = self._canary_rates(self.minutes_read, metric.value, intent)
                    counts = [
                        float(self._rng.binomial(n_c, base if rate is None else rate)),
                        float(n_c),
                        float(self._rng.binomial(n_p, base)),
                        float(n_p),
                    ]
                    if intent in settings.intents:
                        streams[stream_key(metric, intent)] = Counts(
                            canary_events=counts[0],
                            canary_trials=counts[1],
                            primary_events=counts[2],
                            primary_trials=counts[3],
                        )
                    total = [a + b for a, b in zip(total, counts)]
                streams[stream_key(metric, OVERALL)] = Counts(
                    canary_events=total[0], canary_trials=total[1], primary_events=total[2], primary_trials=total[3]
                )
            minutes.append(MinuteCounts(minute=at, streams=streams))
            self.minutes_read += 1
            at += timedelta(minutes=1)
        return minutes


def request(
    *,
    stages: list[dict[str, Any]] | None = None,
    experiment: bool = False,
    config_hash: str = "cfg-0001",
    approval_timeout: int = 60,
    judge: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A rollout request with second-scale stages (min duration 0, checked every second); point gates only
    unless `judge` settings are given (the judge needs whole minutes: see FastClock and ScriptedMinutes)."""
    candidate: dict[str, Any] = {"model_id": "anthropic.claude-3-5-sonnet-v2", "config_hash": config_hash}
    if experiment:
        candidate.update(experiment_id="exp-canary", variant="treatment")
    gates = {"max_error_rate": 0.005, "max_latency_p99_increase": 0.10}
    return {
        "candidate": candidate,
        "plan": {
            "stages": stages
            or [
                {
                    "name": "canary-5",
                    "percent": 5,
                    "min_duration_seconds": 0,
                    "check_interval_seconds": 1,
                    "max_hold_seconds": 30,
                    "gates": gates,
                },
                {
                    "name": "canary-25",
                    "percent": 25,
                    "min_duration_seconds": 0,
                    "check_interval_seconds": 1,
                    "max_hold_seconds": 30,
                    "gates": {
                        **gates,
                        "max_hallucination_rate_increase": 0.01,
                        "max_throttle_rate": 0.05,
                        "max_csat_drop": 0.01,
                    },
                },
                {
                    "name": "canary-50",
                    "percent": 50,
                    "min_duration_seconds": 0,
                    "check_interval_seconds": 1,
                    "max_hold_seconds": 30,
                    "gates": {**gates, "require_significance": experiment},
                },
            ],
            "approval": {"timeout_seconds": approval_timeout},
            "stickiness_seconds": 600,
            "judge": judge,
        },
        "offline_evaluation": {
            "passed": True,
            "report_uri": "s3://evals/cfg-0001/report.html",
            "per_intent": {"faq": {"passed": True, "score": 0.88}},
        },
        **extra,
    }


@dataclass
class World:
    """Handles on everything a rollout test touches."""

    listener_arn: str
    primary_tg: str
    canary_tg: str
    topic_arn: str
    queue_url: str
    state_machine_arn: str
    invocations: list[Any] = field(default_factory=list)
    _alerts: list[dict[str, Any]] = field(default_factory=list)

    # --- clients ---------------------------------------------------------------------------------------------

    @property
    def sfn(self) -> Any:
        return boto3.client("stepfunctions", region_name=REGION)

    @property
    def elb(self) -> Any:
        return boto3.client("elbv2", region_name=REGION)

    @staticmethod
    def table(kind: str) -> Any:
        return boto3.resource("dynamodb", region_name=REGION).Table(names.table_name(PREFIX, kind))

    @staticmethod
    def services() -> Any:
        from kanaria.handlers.rollout_env import rollout_services

        return rollout_services()

    # --- listener --------------------------------------------------------------------------------------------

    def forward(self) -> Forward | None:
        """The listener's default forward action as ELB reports it."""
        listener = self.elb.describe_listeners(ListenerArns=[self.listener_arn])["Listeners"][0]
        return forward_of(listener["DefaultActions"])

    def set_forward(self, weights: dict[str, int], sticky: bool = True) -> None:
        """Write the listener's forward action directly (test setup)."""
        config: dict[str, Any] = {
            "TargetGroups": [{"TargetGroupArn": a, "Weight": w} for a, w in weights.items()],
            "TargetGroupStickinessConfig": {"Enabled": sticky, **({"DurationSeconds": 3600} if sticky else {})},
        }
        self.elb.modify_listener(
            ListenerArn=self.listener_arn, DefaultActions=[{"Type": "forward", "ForwardConfig": config}]
        )

    # --- alerts ----------------------------------------------------------------------------------------------

    def alerts(self) -> list[dict[str, Any]]:
        """Every message published to the alert topic so far ({"Subject", "Message"})."""
        sqs = boto3.client("sqs", region_name=REGION)
        while True:
            batch = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return list(self._alerts)
            for message in batch:
                body = json.loads(message["Body"])
                self._alerts.append({"Subject": body.get("Subject"), "Message": body["Message"]})
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    # --- experiments and analysis ----------------------------------------------------------------------------

    def create_experiment(self, experiment_id: str = "exp-canary") -> None:
        """A running experiment with control and treatment."""
        from kanaria.dal.experiment_store import DynamoExperimentRepository
        from kanaria.logic.experiments import create_experiment, transition

        repo = DynamoExperimentRepository(names.table_name(PREFIX, "experiments"))
        now = datetime.now(timezone.utc)
        create_experiment(
            repo,
            {
                "id": experiment_id,
                "description": "canary of sonnet v2",
                "hypothesis": "v2 completes more tasks",
                "intents": ["*"],
                "control": "control",
                "variants": [{"id": "control", "weight": 0.5}, {"id": "treatment", "weight": 0.5}],
                "primary_metric": "task_completed",
                "decision": {"mde": 0.02},
            },
            "test",
            now,
        )
        transition(repo, experiment_id, "start", "test", now)

    def experiment(self, experiment_id: str = "exp-canary") -> Any:
        from kanaria.dal.experiment_store import DynamoExperimentRepository

        return DynamoExperimentRepository(names.table_name(PREFIX, "experiments")).get(experiment_id)

    def put_analysis(self, experiment_id: str, decision: str) -> None:
        """What the scheduled analysis writes as RESULT#LATEST."""
        self.table("aggregates").put_item(
            Item={
                "experiment_id": experiment_id,
                "sk": "RESULT#LATEST",
                "computed_at": "2026-01-01T00:00:00+00:00",
                "decision": decision,
                "result": json.dumps({"decision": decision}),
                "snapshot": "{}",
            }
        )

    # --- executions ------------------------------------------------------------------------------------------

    def start(self, document: dict[str, Any], name: str) -> str:
        """Start an execution with a unique name (moto's unnamed executions collide)."""
        return self.sfn.start_execution(stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(document))[
            "executionArn"
        ]

    def wait(
        self, execution_arn: str, timeout: float = 40.0, while_running: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """Poll until the execution ends; `while_running` is called on each poll (approve, trigger alarms...)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            described = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            if while_running is not None:
                while_running()
            time.sleep(0.1)
        raise AssertionError(f"execution {execution_arn} still RUNNING after {timeout}s")

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            page = self.sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def decisions(self, execution_arn: str) -> list[str]:
        """progress.decision after each EvaluateGate, in order."""
        out = []
        for event in self.history(execution_arn):
            details = event.get("stateExitedEventDetails")
            if details and details["name"] == "EvaluateGate":
                out.append(json.loads(details["output"])["progress"]["decision"])
        return out

    def meta(self, rollout_id: str) -> StoredRollout | None:
        return self.services().store.get(rollout_id)


def _build(monkeypatch: pytest.MonkeyPatch) -> World:
    ec2 = boto3.client("ec2", region_name=REGION)
    elb = boto3.client("elbv2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "c"))
    ]
    lb = elb.create_load_balancer(Name="kanaria-demo", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    primary, canary = (
        elb.create_target_group(Name=f"kanaria-{n}", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        for n in ("primary", "canary")
    )
    # As the demo ALB ships it: weighted 100/0 with stickiness.
    listener = elb.create_listener(
        LoadBalancerArn=lb,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": primary, "Weight": 100},
                        {"TargetGroupArn": canary, "Weight": 0},
                    ],
                    "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 3600},
                },
            }
        ],
    )["Listeners"][0]["ListenerArn"]
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for kind, pk, sk in (
        ("rollouts", "rollout_id", "record"),
        ("experiments", "experiment_id", "record"),
        ("aggregates", "experiment_id", "sk"),
    ):
        dynamodb.create_table(
            TableName=names.table_name(PREFIX, kind),
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": pk, "AttributeType": "S"},
                {"AttributeName": sk, "AttributeType": "S"},
            ],
        )
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name=f"{PREFIX}-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    definition = (
        ASL_FILE.read_text(encoding="utf-8")
        .replace("${RolloutStepsFunctionArn}", function_arn(STEPS_FUNCTION))
        .replace("${RollbackFunctionArn}", function_arn(ROLLBACK_FUNCTION))
        .replace("${AlertsTopicArn}", topic)
    )
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(
        name=names.rollout_state_machine_name(PREFIX),
        definition=definition,
        roleArn="arn:aws:iam::123456789012:role/kanaria-rollout",
    )["stateMachineArn"]
    for key, value in {
        names.ENV_LISTENER_ARN: listener,
        names.ENV_PRIMARY_TARGET_GROUP_ARN: primary,
        names.ENV_CANARY_TARGET_GROUP_ARN: canary,
        names.ENV_ROLLOUTS_TABLE: names.table_name(PREFIX, "rollouts"),
        names.ENV_EXPERIMENTS_TABLE: names.table_name(PREFIX, "experiments"),
        names.ENV_AGGREGATES_TABLE: names.table_name(PREFIX, "aggregates"),
        names.ENV_ALERTS_TOPIC_ARN: topic,
        names.ENV_STATE_MACHINE_ARN: machine,
        names.ENV_METRIC_NAMESPACE: names.METRIC_NAMESPACE,
        names.ENV_CRITICAL_ALARM_NAME: CRITICAL_ALARM,
        names.ENV_WARNING_ALARM_NAME: WARNING_ALARM,
    }.items():
        monkeypatch.setenv(key, value)
    return World(listener, primary, canary, topic, queue, machine)


def _end_executions(built: World, timeout: float = 15.0) -> None:
    """Stop what a test left running and wait until it ended, so no execution thread outlives the mock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = built.sfn.list_executions(stateMachineArn=built.state_machine_arn, statusFilter="RUNNING")[
            "executions"
        ]
        if not running:
            return
        for execution in running:
            try:
                built.sfn.stop_execution(executionArn=execution["executionArn"])
            except AttributeError:  # moto 5.2.5: stopping an execution whose worker has not started yet
                pass
        time.sleep(0.2)
    raise AssertionError(f"executions still running after the test: {running}")


def _clear_caches() -> None:
    from kanaria.handlers import rollout_env

    rollout_env.rollout_environment.cache_clear()
    rollout_env.rollout_services.cache_clear()
    rollout_env.deployment.cache_clear()
    rollout_env.failed_invocations.cache_clear()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Everything in moto, both handlers routed in-process, healthy scripted metrics by default."""
    from kanaria.handlers import rollback, rollout_steps

    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # the VPC needs no AMIs (saves ~3 s per test)
    with mock_aws(config=MOCK_CONFIG):
        built = _build(monkeypatch)
        _clear_caches()
        built.services().metrics = ScriptedMetrics()
        # Rollback triggers race each other in these tests: moto's conditional writes must be atomic, as DynamoDB's.
        with (
            atomic_dynamodb_writes(),
            early_callback_outcomes(),
            in_process_lambdas({STEPS_FUNCTION: rollout_steps.handler, ROLLBACK_FUNCTION: rollback.handler}) as calls,
        ):
            built.invocations = calls
            try:
                yield built
            finally:
                _end_executions(built)
        _clear_caches()
