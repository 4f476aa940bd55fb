"""This engine's decision rules re-expressed on arrays: every read of every simulated run at once.

`new_codes` is the scheduled analysis's whole rule (primary metric, every default guardrail, the revenue-critical
intents, the horizon); `statistics.verify` checks it against `analyze_snapshot` on sampled reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy import stats

from kanaria_tools.bench.decision_sim import (
    ALPHA,
    CRITICAL_INTENTS,
    FINAL,
    INTENT_SHARES,
    MIN_N,
    NONE,
    PROMOTE,
    REVIEW,
    ROLLBACK,
    Arm,
    Scenario,
    bucket_value,
    clopper_pearson_vs,
    newcombe,
    welch,
)
from kanaria_tools.bench.old_rules import current_codes

PLANNED_LOOKS = 4


LOOK_SPACING = 1e-3


def new_obf_schedule(scenario: Scenario, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray, list[list[float]]]:
    """Per read: whether it is an efficacy look, its nominal alpha, and the look history it carries in (the
    engine's planned-look rule: a read is the look when n/planned reaches the next j/4 within 0.001)."""
    from kanaria.stats.sequential import obf_look

    is_look = np.zeros(scenario.reads, dtype=bool)
    nominal = np.zeros(scenario.reads)
    carried: list[list[float]] = []
    looks: list[float] = []
    for k in range(scenario.reads):
        carried.append(list(looks))
        t = min((k + 1) / scenario.planned_n, 1.0)
        last = looks[-1] if looks else 0.0
        grid = next(
            (j / PLANNED_LOOKS for j in range(1, PLANNED_LOOKS + 1) if j / PLANNED_LOOKS > last + LOOK_SPACING), None
        )
        if grid is not None and t >= grid - LOOK_SPACING:
            look = obf_look(t, looks, alpha, PLANNED_LOOKS)
            is_look[k], nominal[k] = True, look.nominal_alpha
            looks = list(look.fractions)
    return is_look, nominal, carried


_SCHEDULES: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, list[list[float]]]] = {}


_RANKS: dict[tuple[int, float, float, bool], tuple[np.ndarray, np.ndarray]] = {}


def _schedule(scenario: Scenario) -> tuple[np.ndarray, np.ndarray, list[list[float]]]:
    key = (scenario.planned_n, scenario.reads)
    if key not in _SCHEDULES:
        _SCHEDULES[key] = new_obf_schedule(scenario)
    return _SCHEDULES[key]


def _ranks(reads: int, alpha_low: float, alpha_high: float, sequential: bool) -> tuple[np.ndarray, np.ndarray]:
    """p99 ranks (l, u) for n = 1 … reads, as the engine's p99 guardrail computes them."""
    from kanaria.stats.quantiles import quantile_rank_bounds_sequential, quantile_rank_interval

    key = (reads, alpha_low, alpha_high, sequential)
    if key not in _RANKS:
        n = np.arange(1, reads + 1)
        if sequential:
            _RANKS[key] = quantile_rank_bounds_sequential(n, 0.99, alpha_low, alpha_high)
        else:
            low = quantile_rank_interval(n, 0.99, 2 * alpha_low)[0] if alpha_low > 0 else np.zeros(reads, np.int64)
            high = quantile_rank_interval(n, 0.99, 2 * alpha_high)[1] if alpha_high > 0 else n + 1
            _RANKS[key] = (low, high)
    return _RANKS[key]


def one_sided(effect: np.ndarray, variance: np.ndarray, tau: Any) -> np.ndarray:
    """kanaria.stats.sequential.msprt_one_sided p-values (nan where undefined)."""
    from kanaria.stats.sequential import msprt_one_sided

    tau = np.asarray(tau, dtype=float)
    return msprt_one_sided(effect, variance, tau * tau).p_value


def _ac(x: np.ndarray, n: Any) -> tuple[np.ndarray, np.ndarray]:
    rate = (x + 1.0) / (n + 2.0)
    return rate, rate * (1 - rate) / (n + 2.0)


@dataclass(frozen=True)
class Guardrails:
    """The default guardrails at every read: any fails (harm shown), all pass at a fixed-level look, all pass
    by the always-valid tests, and whether the cost asks for a review."""

    fail: np.ndarray
    fixed_pass: np.ndarray
    sequential_pass: np.ndarray
    cost_review: np.ndarray


def _rate_guardrails(
    control: Arm, treatment: Arm, n: np.ndarray, level: float, tau_per_sd: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """The error ceiling and the hallucination / safety margins: (fails, fixed passes, sequential passes)."""
    a = ALPHA
    enough = n >= MIN_N
    rate = {}
    for metric in ("error", "hallucination", "safety"):
        x_c, x_t = getattr(control, metric).astype(float), getattr(treatment, metric).astype(float)
        rc, vc = _ac(x_c, n)
        _, vt = _ac(x_t, n)
        rate[metric] = (x_c / n, x_t / n, vc, vt, np.sqrt(rc * (1 - rc)), x_c, x_t)
    # error: ceiling 0.5% (intersection-union: above the ceiling AND worse than control)
    p_c, p_t, vc, vt, sd_c, x_c, x_t = rate["error"]
    limit = 0.005
    own_v = np.broadcast_to(limit * (1 - limit) / n, p_t.shape)
    tau_own = tau_per_sd * math.sqrt(limit * (1 - limit))
    p_own = one_sided(p_t - limit, own_v, tau_own)
    p_vs = one_sided(p_t - p_c, vc + vt, tau_per_sd * sd_c)
    fails = [enough & (np.maximum(p_own, p_vs) <= level)]
    err_pass, _ = clopper_pearson_vs(treatment.error, control.n, limit, a)
    passes = [err_pass]
    seq_passes = [enough & (one_sided(limit - p_t, own_v, limit / 2) <= a / 2)]
    for metric, margin in (("hallucination", 0.01), ("safety", 0.005)):
        p_c, p_t, vc, vt, sd_c, x_c, x_t = rate[metric]
        fails.append(enough & (one_sided(p_t - p_c - margin, vc + vt, tau_per_sd * sd_c) <= level))
        _, high = newcombe(x_c, n, x_t, n, a)
        passes.append(high <= margin)
        seq_passes.append(enough & (one_sided(margin - (p_t - p_c), vc + vt, margin) <= a / 2))
    return fails, passes, seq_passes


def _guardrails(
    control: Arm, treatment: Arm, scenario: Scenario, n: np.ndarray, level: float, tau_per_sd: np.ndarray
) -> Guardrails:
    """Every default guardrail: fail = one-sided always-valid harm at `level`; pass = fixed-level interval at a
    planned look, an always-valid one-sided test of "within the bound" at alpha/2 at every other read."""
    a = ALPHA
    enough = n >= MIN_N
    z = stats.norm.ppf(1 - a / 2)
    fails, passes, seq_passes = _rate_guardrails(control, treatment, n, level, tau_per_sd)
    c = welch(n, *control.cost, n, *treatment.cost, p_value=False)
    vcost_c, vcost_t = c["var_c"] / n, c["var_t"] / n
    d = c["mean_t"] - 1.5 * c["mean_c"]
    v = vcost_t + 2.25 * vcost_c
    tau_cost = tau_per_sd * np.sqrt(c["var_c"])
    fails.append(enough & (one_sided(d, v, tau_cost) <= level))
    passes.append(d + z * np.sqrt(v) <= 0)
    seq_passes.append(enough & (one_sided(-d, v, 0.5 * np.abs(c["mean_c"])) <= a / 2))
    # p99 ceiling 5,000 ms: beyond it (time-uniform lower bound at `level`) AND above control's p99 (level/2 each)
    own_l, _ = _ranks(scenario.reads, level, 0.0, True)
    t_l, _ = _ranks(scenario.reads, level / 2, 0.0, True)
    _, c_u = _ranks(scenario.reads, 0.0, level / 2, True)
    beyond = bucket_value(treatment.tail_le, own_l, "low") > 5000.0
    worse = bucket_value(treatment.tail_le, t_l, "low") > bucket_value(control.tail_le, c_u, "high")
    fails.append(enough & beyond & worse)
    _, pass_u = _ranks(scenario.reads, 0.0, a / 2, False)
    passes.append(bucket_value(treatment.tail_le, pass_u, "high") <= 5000.0)
    _, seq_u = _ranks(scenario.reads, 0.0, a / 2, True)
    seq_passes.append(bucket_value(treatment.tail_le, seq_u, "high") <= 5000.0)
    ratio = c["mean_t"] / c["mean_c"]
    cost_high = ratio - 1 + z * ratio * np.sqrt(vcost_t / c["mean_t"] ** 2 + vcost_c / c["mean_c"] ** 2)
    return Guardrails(
        np.logical_or.reduce(fails),
        np.logical_and.reduce(passes),
        np.logical_and.reduce(seq_passes),
        ~(cost_high <= 0.10),
    )


def _intents(
    control: Arm, treatment: Arm, scenario: Scenario, shape: tuple[int, ...], level: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The revenue-critical intents and the composite: (intent harm, intent block, composite ok)."""
    from kanaria.analysis.catalogue import default_intent_weight

    intent_harm = np.zeros(shape, dtype=bool)
    intent_block = np.zeros_like(intent_harm)
    weighted = np.zeros(shape)
    total = np.zeros(shape)
    for intent in INTENT_SHARES:
        nc, sc, qc = control.intents[intent]
        nt, st, qt = treatment.intents[intent]
        wi = welch(nc, sc, qc, nt, st, qt, p_value=False)
        n_min = np.minimum(nc, nt)
        with np.errstate(divide="ignore", invalid="ignore"):
            improvement = (wi["mean_t"] - wi["mean_c"]) / np.abs(wi["mean_c"])
            v_i = wi["var_t"] / nt + 0.95**2 * wi["var_c"] / nc
        has = np.isfinite(improvement)
        weight = default_intent_weight(intent)
        weighted += np.where(has, weight * np.where(has, improvement, 0.0), 0.0)
        total += np.where(has, weight, 0.0)
        if intent in CRITICAL_INTENTS:
            insufficient = ~has | (n_min < MIN_N)
            intent_block |= insufficient | (~insufficient & (-improvement > 0.05))
            p = one_sided(0.95 * wi["mean_c"] - wi["mean_t"], v_i, scenario.mde)
            intent_harm |= ~insufficient & (p <= level)
    with np.errstate(divide="ignore", invalid="ignore"):
        composite_ok = np.where(total > 0, weighted / np.where(total > 0, total, 1.0) > 0, True)
    return intent_harm, intent_block, composite_ok


def _efficacy(
    w: dict[str, np.ndarray], scenario: Scenario, method: str, enough: np.ndarray, v_q: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(whether each read is an efficacy look, whether the treatment is shown better at it) for the method."""
    a = ALPHA
    look = np.zeros(scenario.reads, dtype=bool)
    if method == "fixed":
        look[scenario.planned_n - 1] = True
        better = look & w["valid"] & enough & (w["p"] < a) & (w["effect"] > 0)
    elif method == "obf":
        is_look, nominal, _ = _schedule(scenario)
        look = is_look
        better = is_look & w["valid"] & enough & (w["p"] <= nominal) & (w["effect"] > 0)
    else:
        better = enough & (one_sided(w["mean_t"] - w["mean_c"], v_q, scenario.mde) <= a / 2)
    return look, better


def new_codes(
    control: Arm,
    treatment: Arm,
    scenario: Scenario,
    method: str,
    guardrails: bool = True,
    state: dict[str, Any] | None = None,
) -> np.ndarray:
    """Decision codes at every read by this engine's rules (defaults; one treatment), shape (runs, reads).
    Reads after the planned sample are cut off by the caller for fixed/obf (the decision there is final).
    guardrails=False: the primary-metric rule alone (no guardrail can fail or block, the harm level unchanged)."""
    n = control.n.astype(float)
    a = ALPHA
    enough = n >= MIN_N
    per_treatment = 1 + 5 + (len(CRITICAL_INTENTS) if control.intents else 0)
    level = (a / 2) / per_treatment
    w = welch(n, *control.quality, n, *treatment.quality, p_value=method != "always_valid")
    v_q = w["var_c"] / n + w["var_t"] / n
    sd_primary = np.sqrt(w["var_c"])
    tau_per_sd = np.where(sd_primary > 0, scenario.mde / np.where(sd_primary > 0, sd_primary, 1.0), 0.1)
    harm = enough & (one_sided(w["mean_c"] - w["mean_t"], v_q, scenario.mde) <= level)
    checks = _guardrails(control, treatment, scenario, n, level, tau_per_sd)
    shape = w["effect"].shape
    intent_harm, intent_block, composite_ok = np.zeros(shape, bool), np.zeros(shape, bool), np.ones(shape, bool)
    if treatment.intents:
        intent_harm, intent_block, composite_ok = _intents(control, treatment, scenario, shape, level)
    plan = scenario.planned_n - 1  # the read reaching the plan
    look, better = _efficacy(w, scenario, method, enough, v_q)
    shown = np.logical_or.accumulate(better, axis=1)  # a win shown at a look is kept (efficacy_shown)
    if state is not None:
        state["shown"] = shown
    if not guardrails:
        checks = Guardrails(np.array(False), np.array(True), np.array(True), np.array(False))
    guardrails_pass = np.where(look[None, :] & (method != "always_valid"), checks.fixed_pass, checks.sequential_pass)
    rollback = checks.fail | harm | intent_harm
    win = shown & ~intent_block & composite_ok & guardrails_pass
    codes = np.where(rollback, ROLLBACK, np.where(win, np.where(checks.cost_review, REVIEW, PROMOTE), NONE))
    if method != "always_valid":  # the plan's read is final unless a win waits for its guardrails
        ends = (codes[:, plan] == NONE) & ~shown[:, plan]
        codes[ends, plan] = FINAL
        codes[ends, plan + 1 :] = NONE
    return codes


def efficacy_shown_at(codes_shown: np.ndarray, run: int, read: int) -> dict[str, float]:
    """The efficacy_shown the scheduled analysis carries into `read` (shown at an earlier read)."""
    return {"B": 1.0} if read > 0 and codes_shown[run, read - 1] else {}


def final_read(method: str, scenario: Scenario) -> int | None:
    """The read whose decision is final (obf/fixed: the first at the planned sample), None for always_valid."""
    return None if method == "always_valid" else scenario.planned_n - 1


@dataclass(frozen=True)
class Rule:
    """A decision rule read on the simulated data: its codes function, method and where its decision is final."""

    label: str
    codes: Callable[..., np.ndarray]  # (control, treatment, scenario, state) -> codes; state gets "shown"
    method: str
    engine: str  # "current" (c97cfe9) or "new": which analyze_snapshot it is checked against
    final: bool  # decisions at the planned sample are final (reads after it ignored)


def rules(primary_only: bool = False) -> dict[str, Rule]:
    """The rules compared: each method under the current (c97cfe9) and the new rules."""
    out: dict[str, Rule] = {}
    for method in ("fixed", "obf", "always_valid"):
        out[f"current {method}"] = Rule(
            f"current `{method}` (c97cfe9)",
            lambda c, t, sc, st, m=method: current_codes(c, t, sc, m),
            method,
            "current",
            False,
        )
        out[f"new {method}"] = Rule(
            f"new `{method}`", lambda c, t, sc, st, m=method: new_codes(c, t, sc, m, state=st), method, "new", False
        )
        if primary_only:
            out[f"new {method} primary"] = Rule(
                f"new `{method}`, primary rule only (no guardrail; replica only)",
                lambda c, t, sc, st, m=method: new_codes(c, t, sc, m, guardrails=False, state=st),
                method,
                "none",
                False,
            )
    return out
