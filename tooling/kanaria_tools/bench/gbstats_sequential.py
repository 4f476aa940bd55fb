"""`make bench` section: statistical efficiency of the peeking-safe methods, by simulation (the section itself is
scripts/bench_decisions.py, the whole rule read every 5 minutes; this module keeps the per-test helpers).

Every scheduled analysis reads the experiment again. This section simulates that: paired runs of two arms with
quality ~ N(0.80, 0.15), read at equally spaced points, once without a difference (A/A: how often does a method
ever declare one?) and once with the true effect 0.02 added to the treatment's draws (same noise, so the two
scenarios are paired). Every method reads the same cumulative sufficient statistics:

- Kanaria: `kanaria.stats.welch_statistics` (fixed), `obf_look` (the engine's O'Brien–Fleming look, 20 planned
  looks, earlier looks assumed at j/20) and `msprt_normal` with τ = mde (the engine's always_valid primary read);
- GrowthBook: `gbstats.frequentist.tests.SequentialTwoSidedTTest` (gbstats' sequential testing), its own p_value
  code on its own `SampleMeanStatistic` objects.

Seeded, vectorised for Kanaria; gbstats is scalar (one `p_value` per run and read, ~20 µs each).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

ALPHA = 0.05
MEAN, SD = 0.80, 0.15
EFFECT = 0.02  # true effect of the power scenario = the minimum detectable effect of both designs
READS = 20  # scheduled reads up to the planned sample
RUN_ON = 4  # open-ended methods may keep reading up to RUN_ON × the planned sample
SEED = 20261123
GB_DEFAULT_TUNING = 5000.0  # gbstats SequentialConfig / AnalysisSettingsForStatsEngine default


def progress(message: str) -> None:
    """Progress on stderr (same format as scripts/bench.py)."""
    import sys

    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- simulation helpers (pure, unit-tested)


def read_schedule(planned_n: int, reads: int = READS, run_on: int = 1) -> np.ndarray:
    """Cumulative units per arm at each read: round(k · planned_n / reads) for k = 1 … reads · run_on."""
    k = np.arange(1, reads * run_on + 1)
    return np.rint(k * planned_n / reads).astype(np.int64)


def simulate_a_a(
    rng: np.random.Generator, runs: int, schedule: np.ndarray, mean: float = MEAN, sd: float = SD
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative (sum, sum of squares) of control and treatment at each read, both arms N(mean, sd): (runs, reads)."""
    out = [np.empty((runs, len(schedule))) for _ in range(4)]
    totals = [np.zeros(runs) for _ in range(4)]
    previous = 0
    for j, n in enumerate(schedule):
        block = int(n) - previous
        previous = int(n)
        for arm in range(2):
            x = rng.normal(mean, sd, size=(runs, block))
            totals[2 * arm] += x.sum(axis=1)
            totals[2 * arm + 1] += np.einsum("ij,ij->i", x, x)
            out[2 * arm][:, j] = totals[2 * arm]
            out[2 * arm + 1][:, j] = totals[2 * arm + 1]
    return out[0], out[1], out[2], out[3]


def shift(total: np.ndarray, squares: np.ndarray, n: np.ndarray, effect: float) -> tuple[np.ndarray, np.ndarray]:
    """Sufficient statistics of the same draws plus a constant: Σ(x + e) and Σ(x + e)² (exact)."""
    return total + n * effect, squares + 2.0 * effect * total + n * effect * effect


def first_decision(hits: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Index of the first read with a hit among the first `horizon` reads (horizon − 1 when none) and whether any."""
    window = hits[:, :horizon]
    any_hit = window.any(axis=1)
    return np.where(any_hit, window.argmax(axis=1), horizon - 1), any_hit


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson 95% interval of a Monte-Carlo proportion (kanaria.stats.wilson_interval)."""
    from kanaria.stats import wilson_interval

    low, high = wilson_interval(successes, n, z)
    return float(low), float(high)


@dataclass(frozen=True)
class Row:
    """One method's results on one design."""

    method: str
    false_positives: int
    runs: int
    power: float
    n_at_decision: np.ndarray  # per effect run: units per arm when the method stopped (decision or horizon)

    def cells(self, fixed_n: int) -> list[str]:
        """Markdown cells: FPR [CI], power, median / mean n per arm, ratios to the fixed-horizon n."""
        fpr = self.false_positives / self.runs
        low, high = wilson(self.false_positives, self.runs)
        median, mean = float(np.median(self.n_at_decision)), float(np.mean(self.n_at_decision))
        return [
            self.method,
            f"{fpr:.3f} [{low:.3f}, {high:.3f}]",
            f"{self.power:.3f}",
            f"{median:,.0f}",
            f"{mean:,.0f}",
            f"{median / fixed_n:.2f}",
            f"{mean / fixed_n:.2f}",
        ]


def stopping_row(
    method: str,
    hits_aa: np.ndarray,
    hits_effect: np.ndarray,
    positive_effect: np.ndarray,
    schedule: np.ndarray,
    horizon: int,
) -> Row:
    """A method that stops at its first hit within `horizon` reads: FPR, power (right direction) and n at stop."""
    _, any_aa = first_decision(hits_aa, horizon)
    index, any_effect = first_decision(hits_effect, horizon)
    right = any_effect & positive_effect[np.arange(len(index)), index]
    return Row(method, int(any_aa.sum()), len(any_aa), float(right.mean()), schedule[index])


# ---------------------------------------------------------------- the methods


@dataclass(frozen=True)
class Reads:
    """Cumulative sufficient statistics of one scenario at each read (arrays of shape (runs, reads))."""

    n: np.ndarray
    sum_c: np.ndarray
    sq_c: np.ndarray
    sum_t: np.ndarray
    sq_t: np.ndarray


def kanaria_reads(reads: Reads, planned_n: int, mde: float) -> dict[str, np.ndarray]:
    """Kanaria's statistics at every read: fixed p, OBF and always-valid hits, effect sign (the engine's reads)."""
    from kanaria.stats import msprt_normal, obf_look, welch_statistics

    w = welch_statistics(reads.n, reads.sum_c, reads.sq_c, reads.n, reads.sum_t, reads.sq_t)
    fractions = np.minimum(reads.n[0] / planned_n, 1.0).tolist()
    # as the scheduled analysis reads it: obf_look(n / planned_n, the earlier reads' fractions, alpha, 20);
    # OBF ends at the planned sample (t capped at 1), so later reads never reject
    nominal = np.array(
        [
            obf_look(t, fractions[:k], ALPHA, READS).nominal_alpha if n <= planned_n else 0.0
            for k, (t, n) in enumerate(zip(fractions, reads.n[0].tolist()))
        ]
    )
    msprt = msprt_normal(w.effect, w.se**2, np.full(w.se.shape, mde**2), ALPHA)  # τ = mde, as the engine reads primary
    return {
        "p": w.p_value,
        "fixed": w.p_value < ALPHA,
        "obf": w.p_value <= nominal[None, :],
        "always_valid": msprt.p_value <= ALPHA,
        "positive": w.effect > 0,
    }


class GbstatsSequential:
    """gbstats' sequential two-sided t test, evaluated read by read (scalar, its own code)."""

    def __init__(self, tuning: float, difference_type: str = "relative"):
        from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest
        from gbstats.models.statistics import SampleMeanStatistic

        self.config = SequentialConfig(alpha=ALPHA, sequential_tuning_parameter=tuning, difference_type=difference_type)
        self._a = SampleMeanStatistic(n=2, sum=0.0, sum_squares=1.0)
        self._b = SampleMeanStatistic(n=2, sum=0.0, sum_squares=1.0)
        # one test object per configuration; its statistics are updated in place for each read (construction and
        # pydantic validation cost 4× the p-value itself). check() compares with freshly built objects.
        self._test = SequentialTwoSidedTTest(self._a, self._b, self.config)
        self._fresh: Callable[..., float] = lambda n_c, s_c, q_c, n_t, s_t, q_t: (
            SequentialTwoSidedTTest(
                SampleMeanStatistic(n=n_c, sum=s_c, sum_squares=q_c),
                SampleMeanStatistic(n=n_t, sum=s_t, sum_squares=q_t),
                self.config,
            ).p_value
        )

    def p_value(self, n_c: int, s_c: float, q_c: float, n_t: int, s_t: float, q_t: float) -> float:
        """gbstats' sequential p-value for one read."""
        a, b = self._a, self._b
        a.n, a.sum, a.sum_squares = n_c, s_c, q_c
        b.n, b.sum, b.sum_squares = n_t, s_t, q_t
        return float(self._test.p_value)

    def hits(self, reads: Reads, stop_at_first: bool) -> np.ndarray:
        """p < alpha at each read; with stop_at_first the reads after a run's first hit are not evaluated."""
        runs, count = reads.n.shape
        out = np.zeros((runs, count), dtype=bool)
        n = reads.n[0].tolist()
        for r in range(runs):
            s_c, q_c, s_t, q_t = (x[r].tolist() for x in (reads.sum_c, reads.sq_c, reads.sum_t, reads.sq_t))
            for j in range(count):
                if self.p_value(n[j], s_c[j], q_c[j], n[j], s_t[j], q_t[j]) < ALPHA:
                    out[r, j] = True
                    if stop_at_first:
                        break
        return out

    def check(self, reads: Reads, rng: np.random.Generator, points: int = 200) -> float:
        """Largest |difference| between the in-place evaluation and freshly constructed gbstats objects."""
        runs, count = reads.n.shape
        worst = 0.0
        for r, j in zip(rng.integers(0, runs, points), rng.integers(0, count, points)):
            args = (
                int(reads.n[r, j]),
                float(reads.sum_c[r, j]),
                float(reads.sq_c[r, j]),
                int(reads.n[r, j]),
                float(reads.sum_t[r, j]),
                float(reads.sq_t[r, j]),
            )
            worst = max(worst, abs(self.p_value(*args) - self._fresh(*args)))
        return worst


# ---------------------------------------------------------------- one design


@dataclass(frozen=True)
class DesignResult:
    """The table of one design and its facts."""

    title: str
    planned_n: int
    rows: list[Row]
    notes: list[str]


def run_design(title: str, planned_n: int, runs: int, seed: int) -> DesignResult:
    """Simulate one design (A/A and effect, paired) and read it with every method."""
    rng = np.random.default_rng(seed)
    schedule = read_schedule(planned_n, READS, RUN_ON)
    horizon, run_on = READS, READS * RUN_ON
    progress(f"statistics: {title}: simulating {runs:,} paired runs, {run_on} reads up to {schedule[-1]:,} per arm")
    sum_c, sq_c, sum_t, sq_t = simulate_a_a(rng, runs, schedule)
    n = np.broadcast_to(schedule.astype(float), sum_c.shape)
    aa = Reads(n, sum_c, sq_c, sum_t, sq_t)
    effect_sum_t, effect_sq_t = shift(sum_t, sq_t, n, EFFECT)
    eff = Reads(n, sum_c, sq_c, effect_sum_t, effect_sq_t)

    k_aa, k_eff = kanaria_reads(aa, planned_n, EFFECT), kanaria_reads(eff, planned_n, EFFECT)
    positive = k_eff["positive"]
    rows: list[Row] = []

    # fixed horizon, read once at the planned sample (the reference the ratios are taken against)
    final = horizon - 1
    fixed_once_aa = k_aa["fixed"][:, final]
    fixed_once_power = (k_eff["fixed"][:, final] & positive[:, final]).mean()
    rows.append(
        Row(
            "fixed horizon, read once at n (reference)",
            int(fixed_once_aa.sum()),
            runs,
            float(fixed_once_power),
            np.full(runs, schedule[final]),
        )
    )
    rows.append(
        stopping_row(
            "fixed horizon read at every run, stop at first p < α (peeking)",
            k_aa["fixed"],
            k_eff["fixed"],
            positive,
            schedule,
            horizon,
        )
    )
    rows.append(kanaria_fixed_rule(k_aa, k_eff, schedule, horizon))
    rows.append(
        stopping_row(
            "Kanaria `obf` (O'Brien–Fleming spending, history of the reads)",
            k_aa["obf"],
            k_eff["obf"],
            positive,
            schedule,
            horizon,
        )
    )
    rows.append(
        stopping_row(
            "Kanaria `always_valid` (mSPRT, τ = mde), stop by n",
            k_aa["always_valid"],
            k_eff["always_valid"],
            positive,
            schedule,
            horizon,
        )
    )
    rows.append(
        stopping_row(
            f"Kanaria `always_valid`, reads continued to {RUN_ON}·n",
            k_aa["always_valid"],
            k_eff["always_valid"],
            positive,
            schedule,
            run_on,
        )
    )

    notes = []
    check_rng = np.random.default_rng(seed + 1)
    for label, tuning in (
        ("default tuning 5,000", GB_DEFAULT_TUNING),
        (f"tuning = 2·n = {2 * planned_n:,}", 2.0 * planned_n),
    ):
        gb = GbstatsSequential(tuning)
        started = time.perf_counter()
        gb_aa = gb.hits(aa, stop_at_first=True)
        gb_eff = gb.hits(eff, stop_at_first=True)
        elapsed = time.perf_counter() - started
        worst = gb.check(eff, check_rng)
        # gbstats' point estimate is relative, (t − c)/c; c > 0 here so its sign is Kanaria's effect sign
        rows.append(
            stopping_row(
                f"GrowthBook gbstats sequential, {label}, stop by n", gb_aa, gb_eff, positive, schedule, horizon
            )
        )
        rows.append(
            stopping_row(
                f"GrowthBook gbstats sequential, {label}, reads continued to {RUN_ON}·n",
                gb_aa,
                gb_eff,
                positive,
                schedule,
                run_on,
            )
        )
        notes.append(
            f"gbstats ({label}): {runs:,} A/A + {runs:,} effect runs, up to {run_on} reads each, evaluated in"
            f" {elapsed:.1f} s; in-place evaluation equals freshly built gbstats objects to {worst:.1e}"
            " on 200 random reads."
        )
    return DesignResult(title, planned_n, rows, notes)


def kanaria_fixed_rule(
    k_aa: dict[str, np.ndarray], k_eff: dict[str, np.ndarray], schedule: np.ndarray, horizon: int
) -> Row:
    """Kanaria's `fixed` decision rule: ROLLBACK on significant harm at any read, PROMOTE only at the planned n."""
    final = horizon - 1

    def outcome(k: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        harm = k["fixed"][:, :horizon] & ~k["positive"][:, :horizon]
        index, rolled_back = first_decision(harm, horizon)
        promoted = ~rolled_back & k["fixed"][:, final] & k["positive"][:, final]
        return rolled_back, promoted, schedule[index]

    rb_aa, promo_aa, _ = outcome(k_aa)
    _, promo_eff, n_eff = outcome(k_eff)
    return Row(
        "Kanaria `fixed` rule (harm acted on at any run, win only at n)",
        int((rb_aa | promo_aa).sum()),
        len(rb_aa),
        float(promo_eff.mean()),
        n_eff,
    )


# ---------------------------------------------------------------- section


def table(result: DesignResult) -> list[str]:
    """Markdown table of one design."""
    lines = [
        f"### {result.title}",
        "",
        "| method | A/A false-positive rate [95% MC CI] | power | median n/arm at decision | mean n/arm |"
        " median ÷ fixed n | mean ÷ fixed n |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += ["| " + " | ".join(row.cells(result.planned_n)) + " |" for row in result.rows]
    return lines + [""] + [f"- {note}" for note in result.notes] + [""]


def run(args: argparse.Namespace) -> str:
    """The Statistics section of docs/benchmarks.md: the whole decision rule as the scheduled analysis uses it
    (scripts/bench_decisions.py); the helpers above (read schedules, gbstats evaluated in place) serve it."""
    from scripts.bench_decisions import run as whole_rule

    return whole_rule(args)
