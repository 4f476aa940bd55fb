"""Treatment-vs-control comparisons of one snapshot, evaluated in one vectorised batch per metric kind.

The experiment's method decides how a comparison is read: "fixed" (Welch t / two-proportion z at alpha),
"obf" (the same statistics against the current group-sequential boundary) or "always_valid" (mSPRT).
Each comparison also carries the fixed-level intervals the guardrails are judged on, so that a snapshot costs
one scipy call per distribution rather than one per metric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from kanaria.analysis.schema import BinaryAggregate, MeanAggregate
from kanaria.stats import ComparisonResult, SequentialLook, msprt_normal, newcombe_difference_interval, z_critical
from kanaria.stats import distributions as dist
from kanaria.stats.frequentist import finite_or_none, two_proportion_statistics, welch_from_moments

Interval = tuple[float, float]


@dataclass(frozen=True)
class Design:
    """How comparisons are read: method, per-comparison alpha, the current look and the mSPRT scale."""

    method: Literal["fixed", "obf", "always_valid"]
    alpha: float
    min_n: int
    look: SequentialLook | None = None
    tau_per_sd: float = 0.1  # mSPRT mixing SD in units of the metric's control SD
    primary_metric: str = ""
    primary_tau: float | None = None  # the primary metric's mixing SD: the experiment's mde
    guardrail_alpha: float = 0.05  # level of the fixed intervals guardrails are judged on
    is_look: bool = True  # obf: whether this read is one of the planned looks (between looks nothing is tested)


@dataclass(frozen=True)
class Job:
    """One comparison to run: a metric of one treatment against control, overall or within an intent."""

    scope: str
    metric: str
    variant: str
    control: MeanAggregate | BinaryAggregate
    treatment: MeanAggregate | BinaryAggregate

    @property
    def is_binary(self) -> bool:
        """Whether the metric is a proportion."""
        return isinstance(self.control, BinaryAggregate)


@dataclass(frozen=True)
class Evaluated:
    """A job's result plus what guardrails and intent rules need: values and fixed-level intervals."""

    job: Job
    result: ComparisonResult
    control_value: float | None
    treatment_value: float | None
    difference_interval: Interval  # treatment − control at guardrail_alpha (Welch; Newcombe for rates)
    treatment_interval: Interval  # the treatment's own value at guardrail_alpha (t; Clopper–Pearson for rates)
    control_var_mean: float = math.nan  # variance of the control's estimate (s²/n; rates: Agresti–Caffo p̃(1−p̃)/(n+2))
    treatment_var_mean: float = math.nan
    control_sd: float = math.nan  # SD of one control observation (rates: of the Agresti–Caffo rate)

    @property
    def n(self) -> int:
        """The smaller arm's sample size."""
        return min(self.job.control.n, self.job.treatment.n)

    @property
    def relative_effect(self) -> float | None:
        """(treatment − control) / |control|; None when control is 0 or unknown."""
        if self.control_value in (None, 0.0) or self.treatment_value is None:
            return None
        return (self.treatment_value - self.control_value) / abs(self.control_value)


@dataclass(frozen=True)
class _Batch:
    """Arrays of one metric kind's statistics, aligned with its jobs."""

    jobs: list[Job]
    test: str
    control_value: np.ndarray
    treatment_value: np.ndarray
    effect: np.ndarray
    se: np.ndarray  # SE of the difference used for intervals (unpooled for rates)
    statistic: np.ndarray
    p_value: np.ndarray  # fixed-horizon two-sided p-value
    valid: np.ndarray
    df: np.ndarray | None
    control_sd: np.ndarray
    fixed_half: np.ndarray  # half-width of the fixed CI at the design's alpha
    difference_interval: tuple[np.ndarray, np.ndarray]
    treatment_interval: tuple[np.ndarray, np.ndarray]
    var_mean: tuple[np.ndarray, np.ndarray]  # variance of the control's and the treatment's estimate
    ci: tuple[np.ndarray, np.ndarray] | None = None  # the method's interval when not effect ± crit·se (rates)


def moments(aggregates: list[MeanAggregate]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, mean, unbiased variance) arrays from the aggregates (variance from the exact second moment m2)."""
    n = np.array([a.n for a in aggregates], dtype=float)
    total = np.array([a.sum for a in aggregates], dtype=float)
    m2 = np.array([a.m2 for a in aggregates], dtype=float)
    mean = np.divide(total, n, out=np.full(n.shape, np.nan), where=n > 0)
    var = np.divide(m2, n - 1, out=np.full(n.shape, np.nan), where=n > 1)
    return n, mean, var


def agresti_caffo(successes: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rate with one success and one failure added, and its variance p̃(1 − p̃)/(n + 2): never 0, so 0/50 vs
    0/50 or 1/1 vs 0/1 keep an honest uncertainty in the normal approximations (Agresti & Caffo 2000)."""
    rate = (successes + 1.0) / (n + 2.0)
    return rate, rate * (1.0 - rate) / (n + 2.0)


def _mean_batch(jobs: list[Job], design: Design) -> _Batch:
    c = [j.control for j in jobs]
    t = [j.treatment for j in jobs]
    n_c, mean_c, var_c = moments(c)  # type: ignore[arg-type]
    n_t, mean_t, var_t = moments(t)  # type: ignore[arg-type]
    w = welch_from_moments(n_c, mean_c, var_c, n_t, mean_t, var_t)
    # one t.ppf call for: the design's CI, the guardrails' difference CI and the treatment-mean CI
    k = len(jobs)
    q = np.concatenate([np.full(k, 1 - design.alpha / 2), np.full(2 * k, 1 - design.guardrail_alpha / 2)])
    df = np.concatenate([w.df, w.df, n_t - 1])
    ok = np.isfinite(df) & (df > 0)
    crit = np.where(ok, dist.t_ppf(q, np.where(ok, df, 1.0)), np.nan)
    treatment_half = crit[2 * k :] * np.sqrt(var_t / np.where(n_t > 0, n_t, np.nan))
    return _Batch(
        jobs,
        "welch_t",
        w.mean_control,
        w.mean_treatment,
        w.effect,
        w.se,
        w.statistic,
        w.p_value,
        w.valid,
        w.df,
        np.sqrt(var_c),
        crit[:k] * w.se,
        (w.effect - crit[k : 2 * k] * w.se, w.effect + crit[k : 2 * k] * w.se),
        (w.mean_treatment - treatment_half, w.mean_treatment + treatment_half),
        (var_c / n_c, var_t / n_t),
    )


def _binary_batch(jobs: list[Job], design: Design) -> _Batch:
    x_c = np.array([j.control.successes for j in jobs], dtype=float)  # type: ignore[union-attr]
    n_c = np.array([j.control.n for j in jobs], dtype=float)
    x_t = np.array([j.treatment.successes for j in jobs], dtype=float)  # type: ignore[union-attr]
    n_t = np.array([j.treatment.n for j in jobs], dtype=float)
    s = two_proportion_statistics(x_c, n_c, x_t, n_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = newcombe_difference_interval(x_c, n_c, x_t, n_t, design.guardrail_alpha)
    # Clopper–Pearson bounds of the treatment rate in one beta.ppf call
    a = design.guardrail_alpha
    shape_a = np.concatenate([np.maximum(x_t, 1e-300), x_t + 1])
    shape_b = np.concatenate([n_t - x_t + 1, np.maximum(n_t - x_t, 1e-300)])
    q = np.concatenate([np.full(len(jobs), a / 2), np.full(len(jobs), 1 - a / 2)])
    has_n = np.concatenate([n_t, n_t]) > 0
    bounds = np.where(has_n, dist.beta_ppf(q, shape_a, np.where(has_n, shape_b, 1.0)), np.nan)
    low = np.where(x_t > 0, bounds[: len(jobs)], np.where(n_t > 0, 0.0, np.nan))
    high = np.where(x_t < n_t, bounds[len(jobs) :], np.where(n_t > 0, 1.0, np.nan))
    rate_c, var_mean_c = agresti_caffo(x_c, n_c)
    _, var_mean_t = agresti_caffo(x_t, n_t)
    # the method's interval: Newcombe's score interval at the design's level (a Wald interval is [d, d] for
    # 1/1 vs 0/1); the mSPRT sequence uses the Agresti–Caffo variances (never 0)
    ci = None
    if design.method != "always_valid":
        level = (
            design.alpha if design.method == "fixed" else max(design.look.nominal_alpha if design.look else 0.0, 1e-300)
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            ci = newcombe_difference_interval(x_c, n_c, x_t, n_t, min(level, 0.999999))
    return _Batch(
        jobs,
        "two_proportion_z",
        s.rate_control,
        s.rate_treatment,
        s.effect,
        np.sqrt(var_mean_c + var_mean_t),
        s.statistic,
        s.p_value,
        s.valid,
        None,
        np.sqrt(rate_c * (1 - rate_c)),
        np.full(len(jobs), z_critical(design.alpha)) * s.se_unpooled,
        diff,
        (low, high),
        (var_mean_c, var_mean_t),
        ci,
    )


def _read(design: Design, batch: _Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """p-values, significance and CI bounds as the design's method reads them."""
    effect, se = batch.effect, batch.se
    if design.method == "always_valid":
        primary = np.array([j.metric == design.primary_metric for j in batch.jobs])
        taus = design.tau_per_sd * batch.control_sd
        if design.primary_tau is not None:
            taus = np.where(primary, design.primary_tau, taus)
        m = msprt_normal(effect, se**2, taus**2, design.alpha)
        return m.p_value, m.p_value <= design.alpha, m.ci_low, m.ci_high, {"tau": taus}
    if design.method == "obf":
        assert design.look is not None
        c = design.look.boundary_z
        half = c * se if math.isfinite(c) else np.full(se.shape, np.inf)
        low, high = batch.ci if batch.ci is not None else (effect - half, effect + half)
        if not math.isfinite(c):
            low, high = np.full(se.shape, -np.inf), np.full(se.shape, np.inf)
        significant = batch.p_value <= design.look.nominal_alpha if design.is_look else np.zeros(se.shape, dtype=bool)
        return batch.p_value, significant, low, high, {}
    low, high = batch.ci if batch.ci is not None else (effect - batch.fixed_half, effect + batch.fixed_half)
    return batch.p_value, batch.p_value < design.alpha, low, high, {}


def _evaluate_batch(design: Design, batch: _Batch) -> list[Evaluated]:
    p_arr, significant_arr, low_arr, high_arr, arrays = _read(design, batch)
    # plain lists: indexing numpy arrays element by element costs more than the statistics themselves
    p_value, significant, low, high = p_arr.tolist(), significant_arr.tolist(), low_arr.tolist(), high_arr.tolist()
    valid, statistic, effect, se = (
        batch.valid.tolist(),
        batch.statistic.tolist(),
        batch.effect.tolist(),
        batch.se.tolist(),
    )
    control_values, treatment_values = batch.control_value.tolist(), batch.treatment_value.tolist()
    df = batch.df.tolist() if batch.df is not None else None
    diff_low, diff_high = (x.tolist() for x in batch.difference_interval)
    own_low, own_high = (x.tolist() for x in batch.treatment_interval)
    taus = arrays["tau"].tolist() if "tau" in arrays else None
    name = "msprt" if design.method == "always_valid" else batch.test
    extra: dict[str, Any] = {}
    if design.method == "obf" and design.look is not None:
        extra = {"boundary_z": finite_or_none(design.look.boundary_z), "nominal_alpha": design.look.nominal_alpha}
        if not design.is_look:
            extra["look"] = False  # between planned looks: reported, not tested
    var_c, var_t = (x.tolist() for x in batch.var_mean)
    control_sd = batch.control_sd.tolist()
    out = []
    for i, job in enumerate(batch.jobs):
        ok = valid[i] and math.isfinite(p_value[i])
        enough = min(job.control.n, job.treatment.n) >= design.min_n
        control_value, treatment_value = finite_or_none(control_values[i]), finite_or_none(treatment_values[i])
        body = dict(extra)
        body.update(
            n_control=job.control.n,
            n_treatment=job.treatment.n,
            control_value=control_value,
            treatment_value=treatment_value,
        )
        if taus is not None:
            body["tau"] = finite_or_none(taus[i])
        if ok and not enough:
            body["note"] = f"n below min_n_per_variant ({design.min_n}): not acted on"
        result = ComparisonResult(
            test=name,
            statistic=statistic[i] if ok else None,
            p_value=p_value[i] if ok else None,
            effect=finite_or_none(effect[i]),
            ci=(low[i], high[i]) if ok else (None, None),
            significant=significant[i] if ok and enough else None,
            df=(df[i] if ok else None) if df is not None else None,
            se=finite_or_none(se[i]),
            extra=body,
        )
        out.append(
            Evaluated(
                job,
                result,
                control_value,
                treatment_value,
                (diff_low[i], diff_high[i]),
                (own_low[i], own_high[i]),
                var_c[i],
                var_t[i],
                control_sd[i],
            )
        )
    return out


def evaluate(jobs: list[Job], design: Design) -> list[Evaluated]:
    """Run every job (a handful of scipy calls for the whole list) and read it by the design's method."""
    by_job: dict[int, Evaluated] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for kind_jobs, make in (
            ([j for j in jobs if not j.is_binary], _mean_batch),
            ([j for j in jobs if j.is_binary], _binary_batch),
        ):
            if kind_jobs:
                for job, ev in zip(kind_jobs, _evaluate_batch(design, make(kind_jobs, design))):
                    by_job[id(job)] = ev
    return [by_job[id(j)] for j in jobs]
