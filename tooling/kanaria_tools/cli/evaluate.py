"""`kanaria evaluate`: run configurations on a golden dataset locally, print the table, write the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from kanaria.errors import ValidationError
from kanaria_tools.cli.options import STDIN, add_aws_options, number, one_stdin, read_json, read_text


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `evaluate` subcommand."""
    parser = subparsers.add_parser(
        "evaluate",
        help="compare model configurations on a golden dataset (quality, cost, latency) and write a report",
        description="Model ids starting with 'offline:' use the offline adapter (no AWS); 'sagemaker:<endpoint>' "
        "calls that SageMaker endpoint and others call Bedrock, with your AWS credentials. Writes report.md, "
        "report.json, chart.svg and records.jsonl.",
    )
    parser.add_argument("--dataset", type=Path, metavar="FILE.jsonl", help="golden dataset (JSON lines); required")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        type=Path,
        metavar="CONFIG.json",
        help="configuration file (repeat; at least one): {name, parameters|overrides}",
    )
    parser.add_argument(
        "--intent",
        action="append",
        default=[],
        metavar="INTENT",
        help="only these intents (repeat; default: all in the dataset)",
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="report directory (default: reports/evaluations/<run id>)"
    )
    parser.add_argument(
        "--judge", type=Path, metavar="JUDGE.json", help="judge model spec {model_id[, prompt, rubric]}"
    )
    parser.add_argument("--latency-limit-ms", type=float, help="routing: p95 latency limit (default 3000)")
    parser.add_argument("--monthly-budget", type=float, metavar="USD", help="routing: monthly budget (default: none)")
    parser.add_argument("--requests-per-month", type=int, help="projection volume (default 30,000,000)")
    parser.add_argument("--intent-mix", type=Path, metavar="MIX.json", help='{"intent": share, ...} summing to 1')
    parser.add_argument("--concurrency", type=int, default=4, help="model calls in flight (1-16, default 4)")
    parser.add_argument("--run-id", help="run id (default: timestamp + random)")
    parser.add_argument(
        "--throttle-every",
        type=number(ge=0, integer=True),
        default=0,
        metavar="N",
        help="offline adapter: throttle every N-th call once (exercises the retries)",
    )
    parser.add_argument("--bucket", help="also store the report in this evaluation bucket (needs --table)")
    parser.add_argument("--table", help="evaluations table to write each configuration's result to (needs --bucket)")
    add_aws_options(parser)
    parser.set_defaults(func=run)
    from kanaria_tools.cli import dataset

    dataset.register(parser.add_subparsers(dest="evaluate_command", metavar="{dataset}"))


def _settings(args: argparse.Namespace) -> Any:
    from kanaria.errors import validate
    from kanaria.evaluation.grader import GraderSpec
    from kanaria.evaluation.pipeline import RunSettings
    from kanaria.evaluation.report import check_mix

    fields: dict[str, Any] = {"intents": tuple(args.intent), "concurrency": args.concurrency}
    if args.judge is not None:
        fields["judge"] = validate(GraderSpec, read_json(args.judge, "--judge"), prefix="--judge")
    if args.intent_mix is not None:
        fields["intent_mix"] = check_mix(read_json(args.intent_mix, "--intent-mix"))
    for flag, key in (
        ("latency_limit_ms", "latency_limit_ms"),
        ("monthly_budget", "monthly_budget_usd"),
        ("requests_per_month", "requests_per_month"),
    ):
        if getattr(args, flag) is not None:
            fields[key] = getattr(args, flag)
    return validate(RunSettings, fields, prefix="options")


def _inputs(args: argparse.Namespace) -> tuple[Any, Any, list[Any]]:
    """Settings, dataset and configurations, all checked (offline model ids included) before any model call."""
    from kanaria.evaluation.configs import check_unique, parse_configuration
    from kanaria.evaluation.dataset import dataset_name, parse_dataset
    from kanaria_tools.offline_model import check_offline_models

    if args.dataset is None:
        raise ValidationError("required: the golden dataset to evaluate", field="--dataset")
    if not args.config:
        raise ValidationError("required: at least one configuration file", field="--config")
    if (args.bucket is None) != (args.table is None):
        raise ValidationError("give both --bucket and --table to store the report, or neither", field="--bucket")
    one_stdin([args.dataset, *args.config, args.judge or "", args.intent_mix or ""], "--dataset")
    text = read_text(args.dataset, "--dataset")
    settings = _settings(args)
    name = "stdin" if str(args.dataset) == STDIN else args.dataset.name
    dataset = parse_dataset(text, dataset_name(name)).only(settings.intents)
    configurations = [
        parse_configuration(read_json(path, "--config"), where="stdin" if str(path) == STDIN else path.name)
        for path in args.config
    ]
    check_unique(configurations)
    check_offline_models(configurations, dataset, settings.judge)
    return settings, dataset, configurations


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the results table and the routing, write the report files."""
    from datetime import datetime, timezone

    from kanaria.dal.evaluations import records_jsonl
    from kanaria.evaluation.pipeline import assemble_report, evaluate_all, iso, new_run_id
    from kanaria.evaluation.render import CHART_FILE, render_markdown, results_table, routing_table
    from kanaria_tools.offline_model import offline_invoker
    from kanaria_tools.reports.evaluation_chart import render_svg

    settings, dataset, configurations = _inputs(args)
    now = datetime.now(timezone.utc)
    run_id = args.run_id or new_run_id(now)
    invoker = offline_invoker(dataset, throttle_every=args.throttle_every)
    records = evaluate_all(dataset, configurations, invoker, settings)
    report = assemble_report(run_id, iso(now), dataset, configurations, records, settings)
    out_dir = args.out or Path("reports") / "evaluations" / run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown, svg = render_markdown(report, CHART_FILE), render_svg(report, records)
    (out_dir / "report.md").write_text(markdown, encoding="utf-8")
    (out_dir / CHART_FILE).write_text(svg, encoding="utf-8")
    (out_dir / "report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    (out_dir / "records.jsonl").write_text(records_jsonl(records), encoding="utf-8")
    out = sys.stdout
    out.write(
        f"run {run_id} on {dataset.version} ({len(dataset.cases)} cases x {len(configurations)} configurations)\n\n"
    )
    out.write(results_table(report.cells) + "\n\n" + routing_table(report) + "\n\n")
    for config in report.configurations:
        out.write(f"{config.name}: config_hash {config.config_hash}\n")
    if args.bucket:
        _store(args, report, records, markdown, svg)
    out.write(f"report: {out_dir / 'report.md'}\n")
    return 0


def _store(args: argparse.Namespace, report: Any, records: Any, markdown: str, svg: str) -> None:
    from kanaria.dal.evaluations import EvaluationBucket, store_report

    stored = store_report(EvaluationBucket(args.bucket), args.table, report, records, markdown, svg)
    sys.stdout.write(f"stored: {stored.report_uri}; LATEST moved for {', '.join(stored.moved) or 'none'}\n")
