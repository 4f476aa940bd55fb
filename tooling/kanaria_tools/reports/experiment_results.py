"""An experiment's results per look, from the stored analysis results: the primary metric's effect and relative
lift with intervals (the method's own: always-valid intervals when the method reads at any time, the look's
group-sequential interval for obf), per intent, the sample-ratio check and every guardrail's status; the effect
over the looks as a figure.

The relative lift's interval uses the same critical value as the effect's interval (its half-width over its
standard error) on the delta-method standard error of T/C - 1 with independent arms, so it has the effect
interval's coverage and includes the control mean's uncertainty. Per intent, the intent's aggregates are read
by the same engine with the experiment's design (intervals at the experiment's alpha, not split over intents).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from kanaria.errors import ValidationError

OVERALL = "all intents"
INTENT_MARKERS = ("s", "^", "v", "D", "P", "X", "<", ">")


@dataclass(frozen=True)
class Interval:
    """An estimate with a two-sided interval (None where undefined)."""

    estimate: float | None
    low: float | None = None
    high: float | None = None

    def text(self, percent: bool = False) -> str:
        """'0.030 [0.011, 0.049]' or '+3.5% [+1.3%, +5.8%]'."""

        def fmt(value: float | None) -> str:
            if value is None:
                return "-"
            return f"{value:+.1%}" if percent else f"{value:+.4g}"

        if self.low is None or self.high is None:
            return fmt(self.estimate)
        return f"{fmt(self.estimate)} [{fmt(self.low)}, {fmt(self.high)}]"


@dataclass(frozen=True)
class IntentEffect:
    """The primary metric on one intent."""

    intent: str
    n_control: int
    n_treatment: int
    effect: Interval
    lift: Interval


@dataclass(frozen=True)
class LookSummary:
    """One analysis look of one treatment against control."""

    label: str
    minute: float
    decision: str
    units: dict[str, int]
    effect: Interval
    lift: Interval
    control_value: float | None
    treatment_value: float | None
    significant: bool | None
    srm_p: float | None
    srm_mismatch: bool | None
    guardrails: tuple[tuple[str, str], ...]
    intents: tuple[IntentEffect, ...]


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _mean_and_variance(agg: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """The mean of one arm and the variance of that mean, from sufficient statistics."""
    if not agg or not agg.get("n"):
        return None
    n = float(agg["n"])
    if "successes" in agg:
        p = float(agg["successes"]) / n
        return p, p * (1 - p) / n
    if "sum" not in agg or "sum_sq" not in agg or n < 2:
        return None
    mean = float(agg["sum"]) / n
    variance = max(float(agg["sum_sq"]) - n * mean * mean, 0.0) / (n - 1)
    return mean, variance / n


def relative_lift(
    test: Mapping[str, Any], control: Mapping[str, Any] | None, treatment: Mapping[str, Any] | None
) -> Interval:
    """T/C - 1 with the effect interval's critical value on the delta-method standard error."""
    c, t = _mean_and_variance(control), _mean_and_variance(treatment)
    if c is None or t is None or c[0] == 0:
        return Interval(None)
    (mc, vc), (mt, vt) = c, t
    lift = mt / mc - 1
    ci = test.get("ci") or [None, None]
    low, high = _finite(ci[0]), _finite(ci[1])
    se_effect = math.sqrt(vc + vt)
    if low is None or high is None or se_effect == 0:
        return Interval(lift)
    critical = (high - low) / 2 / se_effect
    se_lift = math.sqrt(vt / mc**2 + mt**2 * vc / mc**4)
    return Interval(lift, lift - critical * se_lift, lift + critical * se_lift)


def _effect(test: Mapping[str, Any]) -> Interval:
    ci = test.get("ci") or [None, None]
    return Interval(_finite(test.get("effect")), _finite(ci[0]), _finite(ci[1]))


def _intent_effects(snapshot: Mapping[str, Any], metric: str, control: str, treatment: str) -> tuple[IntentEffect, ...]:
    """The primary metric per intent: the intent's aggregates read by the engine with the experiment's design."""
    from kanaria.analysis import analyze_snapshot

    effects = []
    for intent, per_variant in sorted((snapshot.get("intents") or {}).items()):
        if control not in per_variant or treatment not in per_variant:
            continue
        body = {"experiment": snapshot["experiment"], "aggregates": per_variant}
        try:
            test = (analyze_snapshot(body).metrics.get(metric) or {}).get(treatment) or {}
        except ValidationError:
            continue  # too little data on this intent for the engine to read
        c_agg, t_agg = per_variant[control].get(metric), per_variant[treatment].get(metric)
        effects.append(
            IntentEffect(
                intent,
                int((c_agg or {}).get("n") or 0),
                int((t_agg or {}).get("n") or 0),
                _effect(test),
                relative_lift(test, c_agg, t_agg),
            )
        )
    return tuple(effects)


def summarise_look(label: str, minute: float, stored: Mapping[str, Any], control: str, treatment: str) -> LookSummary:
    """One look from a stored analysis ({decision, result, snapshot}: what `kanaria report --json` prints)."""
    result = stored.get("result") or {}
    snapshot = stored.get("snapshot") or {}
    metric = (snapshot.get("experiment") or {}).get("primary_metric") or result.get("evidence", {}).get(
        "primary_metric", ""
    )
    test = (result.get("metrics") or {}).get(metric, {}).get(treatment) or {}
    aggregates = snapshot.get("aggregates") or {}
    srm = result.get("srm") or {}
    guardrails = tuple(
        (str(g.get("metric")), str(g.get("status")))
        for g in (result.get("evidence") or {}).get("guardrails", {}).get(treatment, [])
    )
    return LookSummary(
        label=label,
        minute=minute,
        decision=str(stored.get("decision") or result.get("decision") or "-"),
        units={v: int(a.get("units") or 0) for v, a in aggregates.items()},
        effect=_effect(test),
        lift=relative_lift(
            test, (aggregates.get(control) or {}).get(metric), (aggregates.get(treatment) or {}).get(metric)
        ),
        control_value=_finite(test.get("control_value")),
        treatment_value=_finite(test.get("treatment_value")),
        significant=test.get("significant"),
        srm_p=_finite(srm.get("p_value")),
        srm_mismatch=srm.get("mismatch"),
        guardrails=guardrails,
        intents=_intent_effects(snapshot, metric, control, treatment) if snapshot.get("experiment") else (),
    )


def _srm(look: LookSummary) -> str:
    if look.srm_mismatch is None:
        return "not tested"
    verdict = "MISMATCH" if look.srm_mismatch else "ok"
    return f"{verdict} (p = {look.srm_p:.3g})" if look.srm_p is not None else verdict


def looks_table(looks: Sequence[LookSummary], control: str, treatment: str) -> list[str]:
    """Markdown: one row per look with the effect, the lift, SRM and every guardrail's status."""
    lines = [
        f"| look | units {control} / {treatment} | {control} | {treatment} | effect [interval] | relative lift "
        "[interval] | decision | SRM | guardrails |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for look in looks:
        guards = ", ".join(f"{m} {s}" for m, s in look.guardrails) or "-"
        lines.append(
            f"| {look.label} | {look.units.get(control, 0)} / {look.units.get(treatment, 0)} | "
            f"{_value(look.control_value)} | {_value(look.treatment_value)} | {look.effect.text()} | "
            f"{look.lift.text(percent=True)} | {look.decision} | {_srm(look)} | {guards} |"
        )
    return lines


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def intents_table(look: LookSummary) -> list[str]:
    """Markdown: the primary metric per intent at one look."""
    if not look.intents:
        return []
    lines = [
        "| intent | n control / treatment | effect [interval] | relative lift [interval] |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {e.intent} | {e.n_control} / {e.n_treatment} | {e.effect.text()} | {e.lift.text(percent=True)} |"
        for e in look.intents
    ]
    return lines


def guardrails_table(result: Mapping[str, Any], treatment: str) -> list[str]:
    """Markdown: every guardrail check of the treatment with its estimate, interval, limit and status."""
    guardrails = (result.get("evidence") or {}).get("guardrails", {}).get(treatment) or []
    if not guardrails:
        return []
    lines = [
        "| guardrail | status | check | estimate [interval] | limit | check status |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for g in guardrails:
        for check in g.get("checks") or [{}]:
            ci = check.get("ci") or [None, None]
            estimate = Interval(_finite(check.get("estimate")), _finite(ci[0]), _finite(ci[1])).text()
            relative = " (relative)" if check.get("relative") else ""
            lines.append(
                f"| {g.get('metric')} | {g.get('status')} | {check.get('bound', '-')} | {estimate} | "
                f"{_value(_finite(check.get('limit')))}{relative} | {check.get('status', '-')} |"
            )
    return lines


def effect_figure(looks: Sequence[LookSummary], metric: str, mde: float | None, title: str) -> Figure:
    """The effect (treatment - control) and the relative lift per look with their intervals, per intent too."""
    figure = Figure(figsize=(10, 6.5), layout="constrained")
    effect_ax, lift_ax = figure.subplots(2, 1, sharex=True)
    figure.suptitle(title, fontsize=11, fontweight="bold")
    minutes = [look.minute for look in looks]
    _errorbars(effect_ax, minutes, [look.effect for look in looks], "black", "o", 0.0)
    _errorbars(lift_ax, minutes, [look.lift for look in looks], "black", "o", 0.0, scale=100)
    handles: list[Line2D] = [Line2D([], [], color="black", marker="o", label=OVERALL)]
    intents = sorted({e.intent for look in looks for e in look.intents})
    spread = 0.25 * (minutes[1] - minutes[0] if len(minutes) > 1 else 10) / max(1, len(intents))
    for index, intent in enumerate(intents):
        colour, marker = f"C{index % 10}", INTENT_MARKERS[index % len(INTENT_MARKERS)]
        offset = (index + 1) * spread / 2
        points = [(look.minute, e.lift) for look in looks for e in look.intents if e.intent == intent]
        _errorbars(lift_ax, [m for m, _ in points], [i for _, i in points], colour, marker, offset, scale=100)
        handles.append(Line2D([], [], color=colour, marker=marker, linestyle="none", label=intent))
    for ax in (effect_ax, lift_ax):
        ax.axhline(0, color="#555555", linewidth=0.8)
        ax.grid(axis="y", color="#e5e5e5")
    if mde is not None:
        effect_ax.axhline(mde, color="#3b6fb6", linestyle="--", linewidth=1)
        handles.append(Line2D([], [], color="#3b6fb6", linestyle="--", label=f"minimum effect of interest ({mde:g})"))
    effect_ax.set_title(f"{metric}: treatment - control per look (interval of the method)", loc="left", fontsize=10)
    lift_ax.set_title("relative lift per look (%), overall and per intent", loc="left", fontsize=10)
    lift_ax.set_xlabel("experiment minutes (analysis looks)")
    figure.legend(handles=handles, loc="outside lower center", ncols=min(4, len(handles)), fontsize=9, frameon=False)
    return figure


def _errorbars(
    ax: Any,
    xs: Sequence[float],
    intervals: Sequence[Interval],
    colour: str,
    marker: str,
    offset: float,
    scale: float = 1,
) -> None:
    """Points with interval bars; looks without an estimate are left out (never joined across)."""
    points = [(x + offset, i) for x, i in zip(xs, intervals, strict=True) if i.estimate is not None]
    if not points:
        return
    x = [p for p, _ in points]
    y = [i.estimate * scale for _, i in points]  # type: ignore[operator]
    low = [(i.estimate - i.low) * scale if i.low is not None else 0 for _, i in points]  # type: ignore[operator]
    high = [(i.high - i.estimate) * scale if i.high is not None else 0 for _, i in points]  # type: ignore[operator]
    ax.errorbar(x, y, yerr=[low, high], color=colour, marker=marker, linestyle="none", capsize=3)
