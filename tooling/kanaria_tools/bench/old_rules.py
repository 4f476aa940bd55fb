"""Array copies of rules Kanaria no longer has, kept only to reproduce the comparison rows of docs/benchmarks.md.

- Statistics section, the *current* rows: the scheduled analysis's rules of commit c97cfe9 (main before the
  whole-rule redesign), `current_codes`; checked against that commit's own engine (`git archive`, a subprocess).
- Canary judge section, the *today's rules* columns: the gates and 5-minute alarms before the canary judge,
  `TodaysRules`.

Nothing else uses them; delete a rule here together with the rows it reproduces.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from scipy import special

from kanaria_tools.bench import canary_sim as sim
from kanaria_tools.bench.common import root as checkout_root
from kanaria_tools.bench.decision_sim import (
    ALPHA,
    CRITICAL_INTENTS,
    INTENT_SHARES,
    MIN_N,
    NONE,
    PROMOTE,
    REVIEW,
    ROLLBACK,
    Arm,
    Scenario,
    clopper_pearson_vs,
    histogram_p99,
    msprt_two_sided,
    newcombe,
    welch,
)


def _stored_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    """The look history as the engine stores it: each information fraction rounded to 12 places."""
    return tuple(round(float(f), 12) for f in fractions)


def _current_obf_nominal(scenario: Scenario, alpha: float) -> np.ndarray:
    """The nominal alpha of each read's O'Brien–Fleming look as the scheduled analysis of c97cfe9 computes it:
    obf_look(n / planned, looks stored by the previous read, alpha, 20), the history starting empty. A read whose
    look schedule equals the previous read's (a re-read of the capped final look) has the same boundary."""
    from kanaria.stats.sequential import information_schedule, obf_look

    nominal = np.empty(scenario.reads)
    looks: tuple[float, ...] = ()
    last: tuple[tuple[float, ...], float] | None = None
    for k in range(scenario.reads):
        fractions = _stored_fractions(information_schedule((k + 1) / scenario.planned_n, list(looks), 20))
        if last is not None and last[0] == fractions:
            nominal[k] = last[1]
        else:
            look = obf_look((k + 1) / scenario.planned_n, list(looks), alpha, 20)
            assert look.fractions == fractions
            nominal[k] = look.nominal_alpha
            last = (fractions, look.nominal_alpha)
        looks = fractions
    return nominal


_NOMINAL_CACHE: dict[tuple[int, int, float], np.ndarray] = {}


def current_obf_nominal(scenario: Scenario, alpha: float = ALPHA) -> np.ndarray:
    """Cached per (planned n, reads, alpha)."""
    key = (scenario.planned_n, scenario.reads, alpha)
    if key not in _NOMINAL_CACHE:
        _NOMINAL_CACHE[key] = _current_obf_nominal(scenario, alpha)
    return _NOMINAL_CACHE[key]


def _current_guardrails(control: Arm, treatment: Arm, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """c97cfe9's guardrails at every read (fixed-level intervals at alpha): (any fails, all pass, cost review)."""
    a = ALPHA
    p99 = histogram_p99(treatment.tail_le)
    p99_fail = (n >= 1000) & (p99 > 5000.0)
    p99_pass = (n >= 1000) & (p99 <= 5000.0)
    err_pass, err_fail = clopper_pearson_vs(treatment.error, control.n, 0.005, a)
    fails = [p99_fail, err_fail]
    passes = [p99_pass, err_pass]
    for metric, margin in (("hallucination", 0.01), ("safety", 0.005)):
        low, high = newcombe(getattr(control, metric).astype(float), n, getattr(treatment, metric).astype(float), n, a)
        fails.append(low > margin)
        passes.append(high <= margin)
    c = welch(n, *control.cost, n, *treatment.cost, p_value=False)
    crit = special.stdtrit(np.where(c["valid"], c["df"], 1.0), 1 - a / 2)
    low, high = c["effect"] - crit * c["se"], c["effect"] + crit * c["se"]
    margin = 0.5 * np.abs(c["mean_c"])
    fails.append(c["valid"] & (low > margin))
    passes.append(c["valid"] & (high <= margin))
    cost_review = (c["mean_t"] - c["mean_c"]) / np.abs(c["mean_c"]) > 0.10
    return np.logical_or.reduce(fails), np.logical_and.reduce(passes), cost_review


def _current_intents(
    control: Arm, treatment: Arm, shape: tuple[int, ...], significant: Callable[..., np.ndarray], p_value: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """c97cfe9's revenue-critical intents and composite: (intent rollback, intent block, composite ok)."""
    from kanaria.analysis.catalogue import default_intent_weight

    intent_rollback = np.zeros(shape, dtype=bool)
    intent_block = np.zeros(shape, dtype=bool)
    weighted = np.zeros(shape)
    total = np.zeros(shape)
    for intent in INTENT_SHARES:
        nc, sc, qc = control.intents[intent]
        nt, st, qt = treatment.intents[intent]
        wi = welch(nc, sc, qc, nt, st, qt, p_value=p_value)
        n_min = np.minimum(nc, nt)
        sig = significant(wi, n_min)
        with np.errstate(divide="ignore", invalid="ignore"):
            improvement = (wi["mean_t"] - wi["mean_c"]) / np.abs(wi["mean_c"])
        has = np.isfinite(improvement)
        weight = default_intent_weight(intent)
        weighted += np.where(has, weight * np.where(has, improvement, 0.0), 0.0)
        total += np.where(has, weight, 0.0)
        if intent in CRITICAL_INTENTS:
            insufficient = ~has | (n_min < MIN_N)
            blocked = ~insufficient & (-improvement > 0.05)
            intent_block |= insufficient | blocked
            intent_rollback |= blocked & sig & (wi["effect"] < 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        composite_ok = np.where(total > 0, weighted / np.where(total > 0, total, 1.0) > 0, True)
    return intent_rollback, intent_block, composite_ok


def current_codes(control: Arm, treatment: Arm, scenario: Scenario, method: str) -> np.ndarray:
    """Decision codes at every read by the rules of c97cfe9 (defaults; one treatment), shape (runs, reads)."""
    n = control.n.astype(float)
    a = ALPHA
    w = welch(n, *control.quality, n, *treatment.quality, p_value=method != "always_valid")
    nominal = current_obf_nominal(scenario) if method == "obf" else None

    def significant(test: dict[str, np.ndarray], n_min: np.ndarray) -> np.ndarray:
        if method == "fixed":
            sig = test["p"] < a
        elif method == "obf":
            sig = test["p"] <= nominal
        else:
            sig = msprt_two_sided(test["effect"], test["se"] ** 2, scenario.mde**2) <= a
        return sig & test["valid"] & (n_min >= MIN_N)

    primary_sig = significant(w, n)
    worse = primary_sig & (w["effect"] < 0)
    better = primary_sig & (w["effect"] > 0)
    at_horizon = n >= scenario.planned_n
    guardrail_fail, guardrails_pass, cost_review = _current_guardrails(control, treatment, n)
    intent_rollback = np.zeros_like(worse)
    intent_block = np.zeros_like(worse)
    composite_ok = np.ones_like(worse)
    if treatment.intents:
        intent_rollback, intent_block, composite_ok = _current_intents(
            control, treatment, w["effect"].shape, significant, method != "always_valid"
        )
    rollback = guardrail_fail | worse | intent_rollback
    win = better & (at_horizon if method == "fixed" else True) & ~intent_block & composite_ok & guardrails_pass
    return np.where(rollback, ROLLBACK, np.where(win, np.where(cost_review, REVIEW, PROMOTE), NONE))


def current_looks_at(scenario: Scenario, reads: set[int], alpha: float = ALPHA) -> dict[int, list[float]]:
    """The look history the c97cfe9 scheduled analysis carries into each of `reads` (what the previous read stored:
    the fractions of its obf_look, i.e. its information schedule)."""
    from kanaria.stats.sequential import information_schedule

    out: dict[int, list[float]] = {}
    looks: list[float] = []
    for k in range(max(reads) + 1):
        if k in reads:
            out[k] = list(looks)
        looks = list(_stored_fractions(information_schedule((k + 1) / scenario.planned_n, looks, 20)))
    return out


def current_engine_decisions(snapshots: list[dict[str, Any]]) -> list[str] | str:
    """Decisions of c97cfe9's analyze_snapshot on the snapshots (its tree from git, in a subprocess), or why not."""
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    root = checkout_root()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", CURRENT_COMMIT, "lambdas/kanaria"], capture_output=True
        )
        if archive.returncode != 0:
            return f"git archive {CURRENT_COMMIT} failed: {archive.stderr.decode().strip()[:200]}"
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        code = (
            "import json, sys\nfrom kanaria.analysis import analyze_snapshot\n"
            "for line in sys.stdin:\n    print(analyze_snapshot(json.loads(line))['decision'])\n"
        )
        env = {"PYTHONPATH": str(Path(tmp) / "lambdas"), "PATH": "/usr/bin:/bin"}
        run = subprocess.run(
            [sys.executable, "-c", code],
            input="\n".join(json.dumps(s) for s in snapshots),
            capture_output=True,
            text=True,
            env=env,
        )
        if run.returncode != 0:
            return f"the c97cfe9 engine failed: {run.stderr.strip()[-300:]}"
        return run.stdout.split()


CURRENT_COMMIT = "c97cfe9"


# ---------------------------------------------------------------- the canary rules before the judge


class TodaysRules:
    """The stage gates every `check_minutes` and the 5-minute / 15-minute alarms (the rules before the judge)."""

    def __init__(self, check_minutes: int = 5):
        self.check = check_minutes
        self.name = f"today's rules (gates every {check_minutes} min + 5-min alarms)"
        self.stage = -1
        self.window: list[sim.Minute] = []  # the rollout's minutes (alarm windows)
        self.stage_minutes: list[sim.Minute] = []
        self.next_check = 0
        self.elapsed = self.minimum = 0  # its own stage clock (it may hold where the shared schedule advanced)
        self.holding = False
        self.p99_breaches: list[bool] = []
        self.quality_breaches: list[bool] = []
        self.warning = False
        self.detail = ""

    def observe(self, minute: sim.Minute, elapsed: int, minimum: int) -> str | None:
        if minute.stage != self.stage:
            self.stage = minute.stage
            if not self.holding:  # a holding rollout would still be in its stage: it keeps its own clock
                self.stage_minutes, self.elapsed, self.minimum = [], 0, minimum
                self.next_check = min(self.check, minimum)
        self.elapsed += 1
        self.window.append(minute)
        self.stage_minutes.append(minute)
        if (minute.index + 1) % 5 == 0:
            rates, latency = self._critical_alarm(self.window[-5:]), self._latency_alarm(self.window[-5:])
            if rates or latency:
                self.detail = rates or "p99 alarm"
                return "harm"
        if (minute.index + 1) % 15 == 0:
            self.warning = self._warning_alarm(self.window[-15:])
        if self.elapsed < self.next_check:
            return None
        outcome = self._gates()
        if outcome.startswith("fail"):
            self.detail = outcome.removeprefix("fail: ")
            return "harm"
        elapsed, minimum, bound = self.elapsed, self.minimum, 2 * self.minimum
        self.holding = outcome != "pass" and elapsed >= minimum
        if elapsed < minimum:
            self.next_check = elapsed + min(self.check, minimum - elapsed)
        elif outcome == "pass":
            self.next_check = elapsed + self.check  # passed: the stage would advance; later checks only fail
        elif elapsed >= bound:
            self.detail = "inconclusive (a warning alarm) up to the hold bound"
            return "hold"
        else:
            self.next_check = elapsed + min(self.check, bound - elapsed)
        return None

    @staticmethod
    def _critical_alarm(window: list[sim.Minute]) -> str:
        for metric, limit in (("errors", 0.02), ("throttles", 0.05)):
            events = sum(sim.overall_counts(m.canary, metric)[0] for m in window)
            requests = sum(m.canary.requests for m in window)
            if requests >= 20 and events >= 5 and events / requests > limit:
                return f"{metric} alarm"
        return ""

    def _latency_alarm(self, window: list[sim.Minute]) -> bool:
        canary = np.concatenate([m.canary.latencies for m in window])
        primary = np.concatenate([m.primary.latencies for m in window])
        ratio = (sim.p99(canary) or 0) / (sim.p99(primary) or 1) if len(canary) >= 20 and len(primary) else 0.0
        self.p99_breaches.append(ratio > 2.0)
        return sum(self.p99_breaches[-3:]) >= 2

    def _warning_alarm(self, window: list[sim.Minute]) -> bool:
        events = sum(sim.overall_counts(m.canary, "hallucinations")[0] for m in window)
        requests = sum(m.canary.requests for m in window)
        hallucinations = requests >= 20 and events >= 5 and events / requests > 0.03
        scored_c = sum(sim.overall_counts(m.canary, "poor_quality")[1] for m in window)
        scored_p = sum(sim.overall_counts(m.primary, "poor_quality")[1] for m in window)
        drop = 0.0
        if scored_c >= 20 and scored_p > 0:
            canary = sum(m.canary.quality_sum for m in window) / scored_c
            primary = sum(m.primary.quality_sum for m in window) / scored_p
            drop = 100 * (primary - canary) / primary
        self.quality_breaches.append(drop > 5.0)
        return hallucinations or (len(self.quality_breaches) >= 2 and all(self.quality_breaches[-2:]))

    def _gates(self) -> str:
        stage = self.stage_minutes
        n_c = sum(m.canary.requests for m in stage)
        n_p = sum(m.primary.requests for m in stage)
        if n_c < 30 or n_p < 30:
            return "inconclusive"
        if sum(sim.overall_counts(m.canary, "errors")[0] for m in stage) / n_c >= 0.02:
            return "fail: error_rate gate"
        canary = sim.p99(np.concatenate([m.canary.latencies for m in stage])) or 0.0
        primary = sim.p99(np.concatenate([m.primary.latencies for m in stage])) or 0.0
        if canary > 2.0 * primary:
            return "fail: latency_p99 gate"
        h_c = sum(sim.overall_counts(m.canary, "hallucinations")[0] for m in stage) / n_c
        h_p = sum(sim.overall_counts(m.primary, "hallucinations")[0] for m in stage) / n_p
        if h_c - h_p > 0.01:
            return "fail: hallucination_rate gate"
        return "inconclusive" if self.warning else "pass"
