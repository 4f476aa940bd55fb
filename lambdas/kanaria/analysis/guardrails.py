"""Guardrail checks of one treatment: a bound passes only when the (1 − alpha) interval proves it.

pass: the whole interval is within the bound; fail: the whole interval is beyond it (significant);
inconclusive: the interval straddles the bound; insufficient_data / missing: no interval at all.
Only "pass" counts towards a promotion; "fail" triggers a rollback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from kanaria.analysis import catalogue
from kanaria.analysis.comparisons import Evaluated
from kanaria.analysis.schema import Guardrail, VariantAggregate
from kanaria.stats.frequentist import finite_or_none

Status = Literal["pass", "fail", "inconclusive", "insufficient_data", "missing"]
_SEVERITY: dict[str, int] = {"pass": 0, "inconclusive": 1, "insufficient_data": 2, "missing": 3, "fail": 4}


@dataclass(frozen=True)
class Check:
    """One bound of a guardrail: its limit, the estimate and interval it was judged on, and the verdict."""

    bound: Literal["max", "min", "max_degradation"]
    limit: float | None
    status: Status
    estimate: float | None = None
    interval: tuple[float, float] | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        body: dict[str, Any] = {"bound": self.bound, "limit": finite_or_none(self.limit), "status": self.status,
                                "estimate": finite_or_none(self.estimate)}
        if self.interval is not None:
            body["ci"] = [finite_or_none(self.interval[0]), finite_or_none(self.interval[1])]
        if self.note:
            body["note"] = self.note
        return body


@dataclass(frozen=True)
class GuardrailResult:
    """All checks of one guardrail on one treatment; status is the worst check's."""

    metric: str
    checks: list[Check] = field(default_factory=list)

    @property
    def status(self) -> Status:
        """fail > missing > insufficient_data > inconclusive > pass."""
        return max((c.status for c in self.checks), key=_SEVERITY.__getitem__, default="missing")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"metric": self.metric, "status": self.status, "checks": [c.to_dict() for c in self.checks]}


def _judge(low: float, high: float, limit: float, upper_bound: bool) -> Status:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "insufficient_data"
    if upper_bound:
        return "pass" if high <= limit else "fail" if low > limit else "inconclusive"
    return "pass" if low >= limit else "fail" if high < limit else "inconclusive"


def _p99_checks(g: Guardrail, control: VariantAggregate, treatment: VariantAggregate) -> list[Check]:
    t_lat, c_lat = treatment.means.get("latency_ms"), control.means.get("latency_ms")
    if t_lat is None or t_lat.p99 is None:
        return _unavailable(g, "missing", "no p99 for the treatment").checks
    if t_lat.n < catalogue.P99_MIN_N:
        return _unavailable(g, "insufficient_data", f"p99 needs n >= {catalogue.P99_MIN_N}").checks
    checks = []
    if g.max is not None:
        checks.append(Check("max", g.max, "pass" if t_lat.p99 <= g.max else "fail", t_lat.p99))
    if g.min is not None:
        checks.append(Check("min", g.min, "pass" if t_lat.p99 >= g.min else "fail", t_lat.p99))
    if g.max_degradation is not None:
        if c_lat is None or c_lat.p99 is None or c_lat.n < catalogue.P99_MIN_N:
            checks.append(Check("max_degradation", g.max_degradation, "insufficient_data", note="control p99 unknown"))
        else:
            limit = c_lat.p99 * (1 + g.max_degradation) if g.relative else c_lat.p99 + g.max_degradation
            checks.append(Check("max_degradation", limit, "pass" if t_lat.p99 <= limit else "fail", t_lat.p99))
    return checks


def _rate_or_mean_checks(g: Guardrail, ev: Evaluated, higher: bool) -> list[Check]:
    """Bounds judged on the fixed-level intervals computed with the comparison (CP / t for the treatment's own
    value, Newcombe / Welch for the difference)."""
    checks = []
    estimate = ev.treatment_value
    if g.max is not None:
        checks.append(Check("max", g.max, _judge(*ev.treatment_interval, g.max, True), estimate, ev.treatment_interval))
    if g.min is not None:
        checks.append(Check("min", g.min, _judge(*ev.treatment_interval, g.min, False), estimate, ev.treatment_interval))
    if g.max_degradation is not None:
        if ev.job.control.n == 0 or ev.control_value is None:
            checks.append(Check("max_degradation", None, "missing", note="no control data"))
        else:
            low, high = ev.difference_interval
            worse = (-high, -low) if higher else (low, high)  # interval of the worsening
            effect = (ev.treatment_value or 0.0) - ev.control_value
            margin = g.max_degradation * abs(ev.control_value) if g.relative else g.max_degradation
            checks.append(Check("max_degradation", margin, _judge(*worse, margin, True), -effect if higher else effect,
                                worse))
    return checks


def _unavailable(g: Guardrail, status: Status, note: str) -> GuardrailResult:
    bound, limit = (("max", g.max) if g.max is not None else ("min", g.min) if g.min is not None
                    else ("max_degradation", g.max_degradation))
    return GuardrailResult(g.metric, [Check(bound, limit, status, note=note)])  # type: ignore[arg-type]


def evaluate_guardrail(
    g: Guardrail, control: VariantAggregate | None, treatment: VariantAggregate | None,
    evaluated: Mapping[str, Evaluated], lower_is_better: frozenset[str] = frozenset(),
) -> GuardrailResult:
    """Judge one guardrail for one treatment; `evaluated` holds that treatment's overall comparisons by metric."""
    if treatment is None or control is None:
        return _unavailable(g, "missing", "variant has no aggregates")
    if g.metric == catalogue.P99_METRIC:
        return GuardrailResult(g.metric, _p99_checks(g, control, treatment))
    ev = evaluated.get(g.metric)
    if ev is None:
        return _unavailable(g, "missing", "metric not reported by both control and treatment")
    if ev.job.treatment.n == 0:
        return _unavailable(g, "missing", "no observations")
    return GuardrailResult(g.metric, _rate_or_mean_checks(g, ev, catalogue.higher_is_better(g.metric, lower_is_better)))


def all_pass(results: list[GuardrailResult]) -> bool:
    """True only when every guardrail passed (missing or insufficient data never passes)."""
    return bool(results) and all(r.status == "pass" for r in results)

