"""Guardrail checks of one treatment: a bound *passes* only when a fixed-level (1 − alpha) interval proves it and
*fails* only when a one-sided always-valid test shows the harm (valid however often the experiment is read).

pass: the interval is within the bound (required of every guardrail for a promotion);
fail: the harm test rejects at the experiment's harm level (ROLLBACK); inconclusive: neither;
insufficient_data / missing: no interval or test at all. Missing data never passes.

Bounds (see docs/analysis.md, Guardrails):
- max_degradation: worsening vs control in the metric's bad direction; in points (absolute) for rates unless
  relative, a fraction of the control's value for means and the p99 unless `relative: false`. A relative margin m
  is judged on D = T̄ − (1+m)·C̄ (or (1−m)·C̄ − T̄ when lower is worse) with the delta-method variance
  V(T̄) + (1±m)²·V(C̄): the control's own uncertainty counts.
- max / min: a ceiling/floor on the treatment's own value. It *fails* only when the treatment is beyond the bound
  AND worse than control (an intersection–union test: p = max of the two one-sided p-values), so an A/A test whose
  arms both sit above a ceiling is not rolled back; it *passes* only when the treatment is proven within it.
- latency_p99_ms: distribution-free order-statistic intervals on the latency histogram (kanaria.stats.quantiles):
  fixed-n binomial ranks for pass, time-uniform ranks for fail; a bucket's edges bound its order statistics.
Defaults and the experiment's own guardrails on the same metric combine by the stricter bound (`resolve`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, Mapping

from kanaria.analysis import catalogue
from kanaria.analysis.comparisons import Evaluated
from kanaria.analysis.schema import Guardrail, MeanAggregate, VariantAggregate
from kanaria.domain.observation import bucket_bounds
from kanaria.stats import distributions as dist
from kanaria.stats.frequentist import finite_or_none
from kanaria.stats.quantiles import quantile_rank_bounds_sequential, quantile_rank_interval
from kanaria.stats.sequential import msprt_one_sided

Status = Literal["pass", "fail", "inconclusive", "insufficient_data", "missing"]
BoundKind = Literal["max", "min", "max_degradation"]
_SEVERITY: dict[str, int] = {"pass": 0, "inconclusive": 1, "insufficient_data": 2, "missing": 3, "fail": 4}
P99 = 0.99


@dataclass(frozen=True)
class Bound:
    """One resolved bound of a guardrail and where it came from."""

    kind: BoundKind
    limit: float
    relative: bool = False
    source: str = "default"


@dataclass(frozen=True)
class ResolvedGuardrail:
    """Every bound on one metric after combining the defaults with the experiment's own guardrails."""

    metric: str
    bounds: tuple[Bound, ...]


def _stricter(kind: BoundKind, a: Bound, b: Bound) -> Bound:
    if kind == "min":
        keep = a if a.limit >= b.limit else b
    else:
        keep = a if a.limit <= b.limit else b
    other = b if keep is a else a
    if keep.source == other.source:
        return keep
    note = (
        f"{keep.source} (stricter than the {other.source}'s {other.limit:g})" if keep.limit != other.limit else "both"
    )
    return Bound(keep.kind, keep.limit, keep.relative, note)


def resolve(defaults: list[Guardrail], own: list[Guardrail]) -> list[ResolvedGuardrail]:
    """Combine guardrails on the same metric by the stricter bound: the lowest max, the highest min, the smallest
    margin of each kind (absolute and relative margins cannot be compared in general: both are kept)."""
    by_metric: dict[str, dict[tuple[str, bool], Bound]] = {}
    for source, guardrails in (("default", defaults), ("experiment", own)):
        for g in guardrails:
            bounds = by_metric.setdefault(g.metric, {})
            for kind, limit, relative in (
                ("max", g.max, False),
                ("min", g.min, False),
                ("max_degradation", g.max_degradation, g.is_relative),
            ):
                if limit is None:
                    continue
                new = Bound(kind, float(limit), relative, source)  # type: ignore[arg-type]
                key = (kind, relative)
                bounds[key] = _stricter(kind, bounds[key], new) if key in bounds else new  # type: ignore[arg-type]
    return [ResolvedGuardrail(metric, tuple(bounds.values())) for metric, bounds in by_metric.items()]


@dataclass(frozen=True)
class Check:
    """One bound of a guardrail: its limit, the estimate and interval it was judged on, the harm test, verdict."""

    bound: BoundKind
    limit: float | None
    status: Status
    estimate: float | None = None
    interval: tuple[float, float] | None = None
    note: str | None = None
    relative: bool = False
    source: str = "default"
    harm: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        body: dict[str, Any] = {
            "bound": self.bound,
            "limit": finite_or_none(self.limit),
            "status": self.status,
            "estimate": finite_or_none(self.estimate),
            "relative": self.relative,
            "source": self.source,
        }
        if self.interval is not None:
            body["ci"] = [finite_or_none(self.interval[0]), finite_or_none(self.interval[1])]
        if self.harm is not None:
            body["harm"] = self.harm
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


@dataclass(frozen=True)
class Levels:
    """How a treatment's guardrails are judged: the pass level, the harm level per test and the mSPRT scale."""

    alpha: float  # two-sided level of the pass intervals (a pass is a one-sided claim at alpha/2)
    harm: float  # one-sided level of each harm test (the experiment's harm budget / number of harm tests)
    tau_per_sd: float
    min_n: int
    sequential_pass: bool = False  # pass needs a time-uniform bound (reads other than a planned look)


def hypotheses(guardrail: ResolvedGuardrail) -> int:
    """Harm tests a guardrail makes per treatment (one per bound)."""
    return len(guardrail.bounds)


def one_sided_p(excess: float, variance: float, tau: float) -> float | None:
    """Always-valid p-value of H0: excess ≤ 0 (None when undefined)."""
    if not (math.isfinite(excess) and math.isfinite(variance) and variance >= 0 and tau > 0):
        return None
    return float(msprt_one_sided(excess, variance, tau * tau).p_value)


def _harm(p: float | None, levels: Levels, enough: bool, test: str) -> tuple[bool, dict[str, Any]]:
    rejected = bool(enough and p is not None and p <= levels.harm)
    body: dict[str, Any] = {"test": test, "p_value": finite_or_none(p), "level": levels.harm, "rejected": rejected}
    if not enough:
        body["note"] = f"n below min_n_per_variant ({levels.min_n}): not acted on"
    return rejected, body


def _status(rejected: bool, proven: bool, has_interval: bool) -> Status:
    if rejected:
        return "fail"
    if not has_interval:
        return "insufficient_data"
    return "pass" if proven else "inconclusive"


# ---------------------------------------------------------------- rates and means


def _tau(ev: Evaluated, levels: Levels) -> float:
    sd = ev.control_sd if math.isfinite(ev.control_sd) and ev.control_sd > 0 else abs(ev.control_value or 0.0) or 1.0
    return levels.tau_per_sd * sd


def _own_variance(ev: Evaluated, limit: float) -> float:
    """Variance of the treatment's own estimate for a test against a fixed bound (rates: at the bound)."""
    if ev.job.is_binary:
        p = min(max(limit, 0.0), 1.0)
        return p * (1 - p) / ev.job.treatment.n if 0 < p < 1 else ev.treatment_var_mean
    return ev.treatment_var_mean


def _rate_or_mean_checks(g: ResolvedGuardrail, ev: Evaluated, higher: bool, levels: Levels) -> list[Check]:
    checks = []
    t, c = ev.treatment_value, ev.control_value
    enough = ev.n >= levels.min_n
    v_t, v_c = ev.treatment_var_mean, ev.control_var_mean
    tau = _tau(ev, levels)
    z = float(dist.norm_ppf(1 - levels.alpha / 2))
    for b in g.bounds:
        if t is None or c is None:
            checks.append(
                Check(b.kind, b.limit, "missing", note="no data in an arm", relative=b.relative, source=b.source)
            )
            continue
        if b.kind in ("max", "min"):
            up = b.kind == "max"  # the bad direction of this bound
            own_excess = (t - b.limit) if up else (b.limit - t)
            worse = (t - c) if up else (c - t)
            own_variance = _own_variance(ev, b.limit)
            own_sd = math.sqrt(own_variance * ev.job.treatment.n) if math.isfinite(own_variance) else math.nan
            p_own = one_sided_p(own_excess, own_variance, levels.tau_per_sd * own_sd if own_sd > 0 else tau)
            p_vs_control = one_sided_p(worse, v_t + v_c, tau)
            p = None if p_own is None or p_vs_control is None else max(p_own, p_vs_control)
            rejected, harm = _harm(
                p, levels, enough, "intersection-union of one-sided mSPRTs: beyond the bound AND worse than control"
            )
            harm.update(p_beyond_bound=finite_or_none(p_own), p_worse_than_control=finite_or_none(p_vs_control))
            low, high = ev.treatment_interval
            has = math.isfinite(low) and math.isfinite(high)
            proven = has and (high <= b.limit if up else low >= b.limit)
            if levels.sequential_pass:  # within the bound, shown by an always-valid one-sided test (mixing scale:
                # half the bound, the order of a healthy treatment's distance to it)
                pass_tau = abs(b.limit) / 2 if b.limit != 0 else tau
                p_within = one_sided_p(-own_excess, own_variance, pass_tau)
                proven = enough and p_within is not None and p_within <= levels.alpha / 2
                harm["p_within_bound"] = finite_or_none(p_within)
            status = _status(rejected, proven, has)
            note = None
            if status == "inconclusive" and has and (low > b.limit if up else high < b.limit):
                note = "beyond the bound, but not shown worse than control (a ceiling fails only then)"
            checks.append(Check(b.kind, b.limit, status, t, (low, high), note, False, b.source, harm))
            continue
        # max_degradation: worsening vs control in the metric's bad direction
        worsening = (c - t) if higher else (t - c)
        if b.relative:
            m = b.limit
            factor = (1 - m) if higher else (1 + m)
            excess = (factor * c - t) if higher else (t - factor * c)  # D: > 0 is harm
            variance = v_t + factor * factor * v_c
            margin = m * abs(c)
            half = z * math.sqrt(variance) if math.isfinite(variance) and variance >= 0 else math.nan
            interval = (excess - half + margin, excess + half + margin)  # of the worsening (D + m·C̄)
            test = "one-sided mSPRT on T − (1+m)·C (delta-method variance)"
        else:
            margin = b.limit
            excess = worsening - margin
            variance = v_t + v_c
            low, high = ev.difference_interval
            interval = (-high, -low) if higher else (low, high)
            test = "one-sided mSPRT on the worsening − margin"
        rejected, harm = _harm(one_sided_p(excess, variance, tau), levels, enough, test)
        has = all(math.isfinite(x) for x in interval)
        proven = has and interval[1] <= margin
        if levels.sequential_pass:  # within the margin, shown by an always-valid one-sided test (mixing scale:
            # the margin itself)
            p_within = one_sided_p(-excess, variance, margin if margin > 0 else tau)
            proven = enough and p_within is not None and p_within <= levels.alpha / 2
            harm["p_within_margin"] = finite_or_none(p_within)
        checks.append(
            Check(
                "max_degradation",
                margin,
                _status(rejected, proven, has),
                worsening,
                interval,
                None,
                b.relative,
                b.source,
                harm,
            )
        )
    return checks


# ---------------------------------------------------------------- p99 on the latency histogram


def order_statistic_edges(histogram: Mapping[int, int], rank: int) -> tuple[float, float]:
    """[low, high) edges of the histogram bucket holding the rank-th smallest observation (1-based); (0, 0) for
    rank < 1 and (inf, inf) for rank > n."""
    if rank < 1:
        return 0.0, 0.0
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return bucket_bounds(index)
    return math.inf, math.inf


@lru_cache(maxsize=8192)
def _ranks(n: int, alpha_low: float, alpha_high: float, sequential: bool) -> tuple[int, int]:
    if sequential:
        low, high = quantile_rank_bounds_sequential(n, P99, alpha_low, alpha_high)
        return int(low), int(high)
    # fixed-n: each side from the exact equal-tailed interval whose tail on that side is the side's alpha
    low = int(quantile_rank_interval(n, P99, 2 * alpha_low)[0]) if alpha_low > 0 else 0
    high = int(quantile_rank_interval(n, P99, 2 * alpha_high)[1]) if alpha_high > 0 else n + 1
    return low, high


def p99_bounds(latency: MeanAggregate, alpha_low: float, alpha_high: float, sequential: bool) -> tuple[float, float]:
    """(lower, upper) bound of the p99 from the histogram: low edge of X_(l)'s bucket, high edge of X_(u)'s, each
    side missing the p99 with probability ≤ its alpha (at this n, or at any n when sequential); 0 = no bound."""
    assert latency.histogram is not None
    l, u = _ranks(latency.n, alpha_low, alpha_high, sequential)
    lower = order_statistic_edges(latency.histogram, l)[0] if alpha_low > 0 else 0.0
    upper = order_statistic_edges(latency.histogram, u)[1] if alpha_high > 0 else math.inf
    return lower, upper


def _p99_checks(
    g: ResolvedGuardrail, control: VariantAggregate, treatment: VariantAggregate, levels: Levels
) -> list[Check]:
    t_lat, c_lat = treatment.means.get("latency_ms"), control.means.get("latency_ms")
    checks = []
    for b in g.bounds:

        def unavailable(status: Status, note: str) -> Check:
            return Check(b.kind, b.limit, status, t_lat.p99 if t_lat else None, None, note, b.relative, b.source)

        if t_lat is None or t_lat.histogram is None or t_lat.n == 0:
            checks.append(unavailable("missing", "no latency histogram for the treatment: a p99 needs one"))
            continue
        if c_lat is None or c_lat.histogram is None or c_lat.n == 0:
            checks.append(unavailable("missing", "no latency histogram for control"))
            continue
        enough = min(t_lat.n, c_lat.n) >= levels.min_n
        estimate = t_lat.p99
        half = levels.alpha / 2  # pass: one-sided 1 − α/2 claims, as the other guardrails' two-sided intervals
        if b.kind == "max_degradation":
            scale = (1 + b.limit) if b.relative else 1.0
            shift = 0.0 if b.relative else b.limit
            t_low, _ = p99_bounds(t_lat, levels.harm / 2, 0.0, sequential=True)
            _, c_high = p99_bounds(c_lat, 0.0, levels.harm / 2, sequential=True)
            rejected = enough and t_low > scale * c_high + shift
            t_low_fixed, t_high = p99_bounds(t_lat, half / 2, half / 2, sequential=levels.sequential_pass)
            c_low, _ = p99_bounds(c_lat, half / 2, 0.0, sequential=levels.sequential_pass)
            allowed = scale * c_low + shift  # the treatment's p99 must be proven at most this
            harm = {
                "test": "time-uniform order-statistic bounds: p99_T lower > (1+m)·p99_C upper (+ margin)",
                "level": levels.harm,
                "rejected": bool(rejected),
                "p99_treatment_lower": finite_or_none(t_low),
                "p99_control_upper": finite_or_none(c_high),
            }
            status = _status(rejected, math.isfinite(t_high) and t_high <= allowed, math.isfinite(t_high))
            note = (
                f"passes when the treatment's p99 upper bound ({t_high:,.0f} ms) is at most "
                f"{'(1+m)·' if b.relative else ''}control's lower bound{'' if b.relative else ' + margin'}"
                f" ({allowed:,.0f} ms)"
            )
            checks.append(
                Check(
                    "max_degradation",
                    b.limit,
                    status,
                    estimate,
                    (t_low_fixed, t_high),
                    note,
                    b.relative,
                    b.source,
                    harm,
                )
            )
            continue
        up = b.kind == "max"
        # fail: the treatment's p99 beyond the bound AND above/below control's (each at its share of the level)
        if up:
            own_low, _ = p99_bounds(t_lat, levels.harm, 0.0, sequential=True)
            t_low, _ = p99_bounds(t_lat, levels.harm / 2, 0.0, sequential=True)
            _, c_high = p99_bounds(c_lat, 0.0, levels.harm / 2, sequential=True)
            beyond, worse = own_low > b.limit, t_low > c_high
        else:
            _, own_high = p99_bounds(t_lat, 0.0, levels.harm, sequential=True)
            _, t_high_s = p99_bounds(t_lat, 0.0, levels.harm / 2, sequential=True)
            c_low_s, _ = p99_bounds(c_lat, levels.harm / 2, 0.0, sequential=True)
            beyond, worse = own_high < b.limit, t_high_s < c_low_s
        rejected = enough and beyond and worse
        low, high = p99_bounds(t_lat, half, half, sequential=levels.sequential_pass)
        proven = (high <= b.limit) if up else (low >= b.limit)
        has = math.isfinite(high) if up else low > 0
        harm = {
            "test": "time-uniform order-statistic bounds: beyond the bound AND beyond control's p99",
            "level": levels.harm,
            "rejected": bool(rejected),
            "beyond_bound": bool(beyond),
            "worse_than_control": bool(worse),
        }
        status = _status(rejected, proven, has)
        note = (
            "beyond the bound, but not shown worse than control (a ceiling fails only then)"
            if status == "inconclusive" and (low > b.limit if up else high < b.limit)
            else None
        )
        checks.append(Check(b.kind, b.limit, status, estimate, (low, high), note, False, b.source, harm))
    return checks


def evaluate_guardrail(
    g: ResolvedGuardrail,
    control: VariantAggregate | None,
    treatment: VariantAggregate | None,
    evaluated: Mapping[str, Evaluated],
    levels: Levels,
    lower_is_better: frozenset[str] = frozenset(),
) -> GuardrailResult:
    """Judge one guardrail for one treatment; `evaluated` holds that treatment's overall comparisons by metric."""
    if treatment is None or control is None:
        return GuardrailResult(
            g.metric,
            [
                Check(
                    b.kind, b.limit, "missing", note="variant has no aggregates", relative=b.relative, source=b.source
                )
                for b in g.bounds
            ],
        )
    if g.metric == catalogue.P99_METRIC:
        return GuardrailResult(g.metric, _p99_checks(g, control, treatment, levels))
    ev = evaluated.get(g.metric)
    if ev is None or ev.job.treatment.n == 0:
        note = "metric not reported by both control and treatment" if ev is None else "no observations"
        return GuardrailResult(
            g.metric,
            [Check(b.kind, b.limit, "missing", note=note, relative=b.relative, source=b.source) for b in g.bounds],
        )
    return GuardrailResult(
        g.metric, _rate_or_mean_checks(g, ev, catalogue.higher_is_better(g.metric, lower_is_better), levels)
    )


def all_pass(results: list[GuardrailResult]) -> bool:
    """True only when every guardrail passed (missing or insufficient data never passes)."""
    return bool(results) and all(r.status == "pass" for r in results)
