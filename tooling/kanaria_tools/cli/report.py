"""`kanaria report EXPERIMENT_ID`: the latest stored analysis as readable tables (variants, tests, decision), from
the deployed aggregates table or, offline, from a rehearsal's result.json (`--result`), which also holds every
analysis look (the effect and relative lift per look with their intervals)."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

from kanaria.domain.experiment import ID_PATTERN
from kanaria.errors import NotFoundError, OperationalError, ValidationError
from kanaria.names import DEFAULT_PREFIX, table_name
from kanaria_tools.cli.options import add_aws_options, add_output_option

VARIANT_COLUMNS = (
    ("quality_score", "quality"),
    ("relevance_score", "relevance"),
    ("csat", "csat"),
    ("task_completed", "completed"),
    ("error", "errors"),
    ("hallucination", "halluc."),
    ("escalated", "escalated"),
    ("cost_usd", "cost $"),
)


def register(subparsers: Any) -> None:
    """Add the `report` subcommand."""
    parser = subparsers.add_parser(
        "report",
        help="print the latest analysis of an experiment",
        description="Reads RESULT#LATEST from the aggregates table of the deployment, or the experiment's analysis "
        "from a rehearsal's result.json (--result; no AWS account needed).",
    )
    parser.add_argument("experiment_id")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="deployment prefix (default: %(default)s)")
    parser.add_argument(
        "--result",
        type=Path,
        help="a rehearsal's result.json (e.g. .rehearsals/latest run): read the analysis from it, offline",
    )
    parser.add_argument("--json", action="store_true", help="print the stored result and snapshot as JSON")
    add_output_option(parser, default="text")
    add_aws_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fetch the latest result and print it."""
    if not re.match(ID_PATTERN, args.experiment_id):
        raise ValidationError(f"must match {ID_PATTERN}, got {args.experiment_id!r}", field="experiment_id")
    as_json = args.json or args.output == "json"
    if args.result is not None:
        body, looks = from_rehearsal(args.result, args.experiment_id)
        if as_json:
            json.dump({**body, "looks": looks}, sys.stdout, indent=2, sort_keys=True)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(render(body) + render_looks(looks))
        return 0
    from kanaria_tools.aws import session

    session()  # no region: refused as bad input before the table is read
    body = _from_table(args.prefix, args.experiment_id)
    if as_json:
        json.dump(body, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(body))
    return 0


def _from_table(prefix: str, experiment_id: str) -> dict[str, Any]:
    """The latest stored result of the deployment's aggregates table."""
    from botocore.exceptions import BotoCoreError, ClientError

    from kanaria.dal.observations import DynamoAnalysisStore

    try:
        latest = DynamoAnalysisStore(table_name(prefix, "aggregates")).latest_result(experiment_id)
    except (ClientError, BotoCoreError) as exc:
        raise OperationalError(f"cannot read the aggregates table: {exc}", field="prefix") from None
    if latest is None:
        raise NotFoundError(
            f"no analysis stored for {experiment_id!r} under prefix {prefix!r} yet "
            "(the scheduled analysis runs every few minutes)",
            field="experiment_id",
        )
    return latest.as_dict()


def from_rehearsal(path: Path, experiment_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The experiment's last stored analysis and every look, from a rehearsal's result.json."""
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(f"no such file: {path}", field="result") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(f"not a rehearsal's result.json: {exc}", field="result") from None
    phases = summary.get("phases") if isinstance(summary, dict) else None
    if not isinstance(phases, list):
        raise ValidationError("not a rehearsal's result.json: it has no phases", field="result")
    experiments = [p for p in phases if isinstance(p, dict) and p.get("kind") == "experiment"]
    phase = next((p for p in experiments if p.get("name") == experiment_id), None)
    if phase is None:
        found = ", ".join(str(p.get("name")) for p in experiments) or "none"
        raise NotFoundError(
            f"the rehearsal ran no experiment {experiment_id!r} (it ran: {found})", field="experiment_id"
        )
    detail = phase.get("detail") or {}
    if not detail.get("analysis"):
        raise NotFoundError(
            f"the rehearsal stored no analysis of {experiment_id!r} (was the analysis function deployed?)",
            field="experiment_id",
        )
    looks = [
        {**look, "control": detail.get("control"), "treatment": detail.get("treatment")}
        for look in detail.get("looks") or []
    ]
    return detail["analysis"], looks


def render_looks(looks: Sequence[dict[str, Any]]) -> str:
    """Every analysis look: the primary metric's effect and relative lift with their intervals, SRM, guardrails."""
    if not looks:
        return ""
    from kanaria_tools.reports.experiment_results import summarise_look

    rows = []
    for look in looks:
        s = summarise_look(
            str(look["label"]), float(look["minute"]), look["stored"], look["control"], look["treatment"]
        )
        srm = "not tested" if s.srm_mismatch is None else ("MISMATCH" if s.srm_mismatch else "ok")
        guards = ", ".join(f"{m} {status}" for m, status in s.guardrails) or "-"
        units = " / ".join(str(s.units.get(v, 0)) for v in (look["control"], look["treatment"]))
        rows.append([s.label, units, s.effect.text(), s.lift.text(percent=True), s.decision, srm, guards])
    header = ["look", "units control / treatment", "effect [interval]", "relative lift [interval]", "decision", "SRM"]
    return "\nLooks (primary metric, treatment vs control)\n" + _table([*header, "guardrails"], rows)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rows = [list(map(str, r)) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]) + "\n"


def _cell(stats: dict[str, Any] | None) -> str:
    """Mean or rate of a metric with its n."""
    if not stats or not stats.get("n"):
        return "-"
    value = stats["successes"] / stats["n"] if "successes" in stats else stats["sum"] / stats["n"]
    return f"{_fmt(value)} (n={_fmt(stats['n'])})"


def render(latest: dict[str, Any]) -> str:
    """The report text for a stored result (pure, for tests)."""
    result, snapshot = latest["result"], latest.get("snapshot") or {}
    experiment = snapshot.get("experiment", {})
    control = experiment.get("control")
    out = [f"Experiment {latest['experiment_id']}  (analysis of {latest['computed_at']})\n"]
    decision = result.get("decision", "-")
    winner = f"  winner: {result['winner']}" if result.get("winner") else ""
    actions = f"  actions: {', '.join(result['actions'])}" if result.get("actions") else ""
    out.append(f"Decision: {decision}{winner}{actions}\n")
    for reason in result.get("evidence", {}).get("reasons", []):
        out.append(f"  - {reason}\n")
    srm = result.get("srm") or {}
    verdict = {True: "MISMATCH", False: "ok", None: "not tested"}[srm.get("mismatch")]
    out.append(f"Sample ratio: {verdict} (p = {_fmt(srm.get('p_value'), 3)}, threshold {_fmt(srm.get('threshold'))})\n")
    out.append(
        f"Primary metric: {experiment.get('primary_metric', '-')}, method {experiment.get('method', '-')}, "
        f"alpha {_fmt(experiment.get('alpha'))}\n\n"
    )

    aggregates = snapshot.get("aggregates", {})
    expected = srm.get("expected") or {}
    rows = []
    for variant, agg in aggregates.items():
        latency = agg.get("latency_ms") or {}
        pcts = "/".join(_fmt(latency.get(p), 4) for p in ("p50", "p95", "p99"))
        rows.append(
            [
                f"{variant}{' (control)' if variant == control else ''}",
                _fmt(agg.get("units")),
                _fmt(expected.get(variant), 6),
                _fmt(agg.get("observations")),
                pcts,
                *(_cell(agg.get(metric)) for metric, _ in VARIANT_COLUMNS),
            ]
        )
    out.append("Variants\n")
    out.append(
        _table(
            [
                "variant",
                "units",
                "expected",
                "observations",
                "latency p50/p95/p99 ms",
                *(label for _, label in VARIANT_COLUMNS),
            ],
            rows,
        )
    )

    tests = [
        [
            metric,
            variant,
            _fmt(t.get("control_value")),
            _fmt(t.get("treatment_value")),
            _fmt(t.get("effect")),
            f"[{_fmt((t.get('ci') or [None, None])[0])}, {_fmt((t.get('ci') or [None, None])[1])}]",
            _fmt(t.get("p_value"), 3),
            _fmt(t.get("significant")),
            t.get("test", "-"),
        ]
        for metric, per_variant in sorted(result.get("metrics", {}).items())
        for variant, t in sorted(per_variant.items())
        if t.get("n_control") or t.get("n_treatment")
    ]
    out.append("\nTests (treatment vs control)\n")
    out.append(_table(["metric", "variant", "control", "treatment", "effect", "CI", "p", "significant", "test"], tests))

    guardrails = [
        [variant, g["metric"], g["status"]]
        for variant, results in sorted(result.get("evidence", {}).get("guardrails", {}).items())
        for g in results
    ]
    if guardrails:
        out.append("\nGuardrails\n")
        out.append(_table(["variant", "metric", "status"], guardrails))
    flagged = snapshot.get("flagged") or {}
    if any(flagged.values()):
        out.append(
            "\nFlagged observations (not counted): "
            + ", ".join(f"{kind} {variant}={n}" for kind, per in flagged.items() for variant, n in per.items())
            + "\n"
        )
    return "".join(out)
