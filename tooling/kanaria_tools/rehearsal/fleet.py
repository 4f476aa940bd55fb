"""The chatbot service behind the load balancer during a rollout: it routes each request by the deployed
listener's current weights (with session stickiness), draws the response from the configuration its target
group runs, and publishes what the ALB and the service publish in AWS: per-target-group RequestCount /
HTTPCode_Target_5XX_Count / TargetResponseTime, and the Kanaria metrics with the single dimension
{target: canary|primary} that the canary alarms and gates read.
"""

from __future__ import annotations

import math
import random
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from kanaria import names
from kanaria_tools.rehearsal.scenario import Fault, Scenario
from kanaria_tools.rehearsal.traffic import Response, ResponseModel, fault_state, pick_intent, poisson

ALB_NAMESPACE = "AWS/ApplicationELB"
MAX_VALUES_PER_DATUM = 150
MAX_DATA_PER_CALL = 500


@dataclass
class SideStats:
    """Running totals of one side (canary / primary) for the progress table and the report."""

    requests: int = 0
    errors: int = 0
    throttles: int = 0
    hallucinations: int = 0
    latencies: list[float] = field(default_factory=list)
    qualities: list[float] = field(default_factory=list)

    def add(self, response: Response) -> None:
        self.requests += 1
        self.errors += response.error
        self.throttles += response.throttled
        self.hallucinations += response.hallucination
        self.latencies.append(response.latency_ms)
        if response.quality is not None:
            self.qualities.append(response.quality)

    def p99(self) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]

    def quality(self) -> float | None:
        return sum(self.qualities) / len(self.qualities) if self.qualities else None


@dataclass
class TargetGroup:
    """A target group of the listener and the configuration it runs."""

    side: str  # "primary" | "canary"
    arn: str
    full_name: str
    configuration: str


@dataclass
class MinuteSample:
    """Per scenario minute, per side: what the report plots."""

    minute: float
    side: str
    requests: int
    p99_ms: float | None
    error_rate: float | None
    quality: float | None
    weight: int


class ChatbotFleet:
    """The chatbot service behind the deployed listener (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        rng: random.Random,
        *,
        elbv2: Any,
        cloudwatch: Any,
        listener_arn: str,
        load_balancer_full_name: str,
        primary: TargetGroup,
        canary: TargetGroup,
        wall_datetime: Callable[[float], datetime],
        stickiness_seconds: float = 3600,
    ):
        self.scenario = scenario
        self._rng = rng
        self._model = ResponseModel(rng)
        self._elbv2 = elbv2
        self._cloudwatch = cloudwatch
        self.listener_arn = listener_arn
        self._lb = load_balancer_full_name
        self.groups = {"primary": primary, "canary": canary}
        self._by_arn = {primary.arn: primary, canary.arn: canary}
        self._wall_datetime = wall_datetime
        self._stickiness = stickiness_seconds
        self._sticky: dict[str, tuple[str, float]] = {}
        self.served: dict[str, int] = defaultdict(int)  # requests per side since the phase started (warm-up too)
        self.warmed: dict[str, int] = defaultdict(int)  # warm-up requests per side in this phase
        self.lock = threading.Lock()
        self.totals: dict[str, SideStats] = {"primary": SideStats(), "canary": SideStats()}
        self.stage_totals: dict[str, SideStats] = {"primary": SideStats(), "canary": SideStats()}
        self.samples: list[MinuteSample] = []
        self.weights: dict[str, int] = {"primary": 100, "canary": 0}
        self.weights_history: list[tuple[float, int]] = []
        self.faults: tuple[Fault, ...] = ()
        self.phase_start = 0.0
        self.suppressed_minutes: set[int] = set()

    def start_phase(self, faults: tuple[Fault, ...], now: float) -> None:
        """A new rollout: its faults, its clock origin, fresh counters."""
        self.faults = faults
        self.phase_start = now
        with self.lock:
            self.served.clear()
            self.warmed.clear()
        self.totals = {"primary": SideStats(), "canary": SideStats()}
        self.new_stage()

    def new_stage(self) -> None:
        self.stage_totals = {"primary": SideStats(), "canary": SideStats()}

    def read_weights(self, now: float) -> dict[str, int]:
        """The listener's forward weights, as the ALB would apply them."""
        listener = self._elbv2.describe_listeners(ListenerArns=[self.listener_arn])["Listeners"][0]
        weights = {"primary": 0, "canary": 0}
        for action in listener.get("DefaultActions", []):
            if action.get("Type") != "forward":
                continue
            groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or (
                [{"TargetGroupArn": action["TargetGroupArn"], "Weight": 1}] if action.get("TargetGroupArn") else []
            )
            for group in groups:
                target = self._by_arn.get(group["TargetGroupArn"])
                if target is not None:
                    weights[target.side] = int(group.get("Weight", 1))
        if weights != self.weights or not self.weights_history:
            self.weights_history.append((now, self._percent(weights)))
        self.weights = weights
        return weights

    @staticmethod
    def _percent(weights: dict[str, int]) -> int:
        total = weights["primary"] + weights["canary"]
        return round(100 * weights["canary"] / total) if total else 0

    def _route(self, session: str, now: float, weights: dict[str, int]) -> str:
        sticky = self._sticky.get(session)
        if sticky and sticky[1] > now and weights.get(sticky[0], 0) > 0:
            return sticky[0]
        total = weights["primary"] + weights["canary"]
        side = "canary" if total and self._rng.random() * total < weights["canary"] else "primary"
        self._sticky[session] = (side, now + self._stickiness)
        return side

    def serve(self, start: float, end: float) -> None:
        """Serve the requests of scenario interval [start, end) and publish their metrics minute by minute."""
        weights = self.read_weights(end)
        rpm = self.scenario.traffic.requests_per_minute
        minute_start = start
        while minute_start < end - 1e-9:
            minute_end = min(end, (math.floor(minute_start / 60) + 1) * 60)
            count = poisson(self._rng, rpm * (minute_end - minute_start) / 60)
            per_side: dict[str, list[Response]] = {"primary": [], "canary": []}
            for _ in range(count):
                session = f"s{self._rng.randrange(self.scenario.traffic.sessions)}"
                side = self._route(session, minute_start, weights)
                phase_minute = (minute_start - self.phase_start) / 60
                intent = pick_intent(self._rng, self.scenario.traffic.intent_mix)
                faults = fault_state(self.faults, side, phase_minute, self.served[side], intent)
                config = self.scenario.configurations[self.groups[side].configuration]
                response = self._model.draw(config, intent, faults)
                with self.lock:
                    self.served[side] += 1
                per_side[side].append(response)
                self.totals[side].add(response)
                self.stage_totals[side].add(response)
            self._publish(minute_start, minute_end, per_side)
            minute_start = minute_end

    def _publish(self, start: float, end: float, per_side: dict[str, list[Response]]) -> None:
        stamp = self._wall_datetime((start + end) / 2)
        percent = self._percent(self.weights)
        for side, responses in per_side.items():
            stats = SideStats()
            for r in responses:
                stats.add(r)
            self.samples.append(
                MinuteSample(
                    start / 60,
                    side,
                    stats.requests,
                    stats.p99(),
                    stats.errors / stats.requests if stats.requests else None,
                    stats.quality(),
                    percent,
                )
            )
            if not responses:
                continue
            phase_minute = (start - self.phase_start) / 60
            if fault_state(self.faults, side, phase_minute, self.served[side]).metrics_missing:
                self.suppressed_minutes.add(int(start // 60))
                continue
            self._put(ALB_NAMESPACE, self._alb_data(side, responses, stamp))
            self._put(names.METRIC_NAMESPACE, self._kanaria_data(side, responses, stamp))

    def _alb_data(self, side: str, responses: list[Response], stamp: datetime) -> list[dict[str, Any]]:
        dims = [
            {"Name": "TargetGroup", "Value": self.groups[side].full_name},
            {"Name": "LoadBalancer", "Value": self._lb},
        ]
        errors = sum(1 for r in responses if r.error)
        seconds = [r.latency_ms / 1000 for r in responses]
        return [
            {
                "MetricName": "RequestCount",
                "Dimensions": dims,
                "Timestamp": stamp,
                "Value": len(responses),
                "Unit": "Count",
            },
            {
                "MetricName": "HTTPCode_Target_5XX_Count",
                "Dimensions": dims,
                "Timestamp": stamp,
                "Value": errors,
                "Unit": "Count",
            },
            {
                "MetricName": "TargetResponseTime",
                "Dimensions": dims,
                "Timestamp": stamp,
                "Unit": "Seconds",
                "StatisticValues": {
                    "SampleCount": len(seconds),
                    "Sum": sum(seconds),
                    "Minimum": min(seconds),
                    "Maximum": max(seconds),
                },
            },
        ]

    def _kanaria_data(self, side: str, responses: list[Response], stamp: datetime) -> list[dict[str, Any]]:
        """The Kanaria metrics of one side and minute, as the observations function's EMF has them: {target} for
        every response and {target, intent} for the judged intents."""
        data = self._kanaria_set([{"Name": names.DIM_TARGET, "Value": side}], responses, stamp)
        by_intent: dict[str, list[Response]] = defaultdict(list)
        for response in responses:
            if response.intent in names.DEFAULT_JUDGED_INTENTS:
                by_intent[response.intent].append(response)
        for intent, group in sorted(by_intent.items()):
            dims = [{"Name": names.DIM_TARGET, "Value": side}, {"Name": names.DIM_INTENT, "Value": intent}]
            data += self._kanaria_set(dims, group, stamp)
        return data

    @staticmethod
    def _kanaria_set(dims: list[dict[str, str]], responses: list[Response], stamp: datetime) -> list[dict[str, Any]]:
        def total(name: str, value: float, unit: str = "Count") -> dict[str, Any]:
            return {"MetricName": name, "Dimensions": dims, "Timestamp": stamp, "Value": value, "Unit": unit}

        data = [
            total(names.METRIC_OBSERVATIONS, len(responses)),
            total(names.METRIC_ERRORS, sum(1 for r in responses if r.error)),
            total(names.METRIC_THROTTLES, sum(1 for r in responses if r.throttled)),
            total(names.METRIC_HALLUCINATIONS, sum(1 for r in responses if r.hallucination)),
            total(names.METRIC_SAFETY_STOPS, sum(1 for r in responses if r.safety_filtered)),
        ]
        costs = [r.cost_usd for r in responses]
        if costs:  # a statistic set: alarms and gates read its Sum, SampleCount and Average
            data.append(
                {
                    "MetricName": names.METRIC_COST,
                    "Dimensions": dims,
                    "Timestamp": stamp,
                    "Unit": "None",
                    "StatisticValues": {
                        "SampleCount": float(len(costs)),
                        "Sum": float(sum(costs)),
                        "Minimum": float(min(costs)),
                        "Maximum": float(max(costs)),
                    },
                }
            )
        # Raw values (as EMF sends them) where a percentile or a percentile rank is read: latency p99 and the
        # judge's cut-offs, quality and CSAT ranks.
        for name, values, unit in (
            (names.METRIC_LATENCY, [float(round(r.latency_ms)) for r in responses], "Milliseconds"),
            (names.METRIC_QUALITY, [round(r.quality, 3) for r in responses if r.quality is not None], "None"),
            (names.METRIC_CSAT, [float(r.csat) for r in responses if r.csat is not None], "None"),
        ):
            counted: dict[float, int] = defaultdict(int)
            for v in values:
                counted[float(v)] += 1
            items = sorted(counted.items())
            for i in range(0, len(items), MAX_VALUES_PER_DATUM):
                chunk = items[i : i + MAX_VALUES_PER_DATUM]
                data.append(
                    {
                        "MetricName": name,
                        "Dimensions": dims,
                        "Timestamp": stamp,
                        "Unit": unit,
                        "Values": [v for v, _ in chunk],
                        "Counts": [float(c) for _, c in chunk],
                    }
                )
        return data

    def _put(self, namespace: str, data: list[dict[str, Any]]) -> None:
        for i in range(0, len(data), MAX_DATA_PER_CALL):
            self._cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[i : i + MAX_DATA_PER_CALL])
