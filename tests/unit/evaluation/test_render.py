"""Markdown rendering of a report (the chart: tests/unit/reports/test_evaluation_chart.py)."""

from __future__ import annotations

from kanaria.evaluation.configs import parse_configuration
from kanaria.evaluation.render import render_markdown, result_row
from kanaria.evaluation.report import build_report
from tests.unit.evaluation.support import record, sample_dataset


def report_with_records():
    """Two configurations on two intents, five cases each: the report and its records."""
    return _build()


def _report():
    return _build()[0]


def _build():
    dataset = sample_dataset().only(["chitchat", "recommendation"])
    configs = [
        parse_configuration({"name": n, "overrides": {"model_id": "anthropic.claude-3-5-haiku-20241022-v1:0"}})
        for n in ("a", "b")
    ]
    records = [
        record(n, i, q, q >= 0.8, latency=lat, cost=cost)
        for n, cost in (("a", "0.001"), ("b", "0.002"))
        for i in ("chitchat", "recommendation")
        for q, lat in ((1.0, 300), (0.9, 500), (0.85, 700), (0.7, 900), (1.0, 1100))
    ]
    report = build_report(
        run_id="r<&>",
        created_at="2025-06-01T00:00:00Z",
        dataset=dataset,
        configurations=configs,
        records=records,
        intent_mix={"chitchat": 0.5, "recommendation": 0.5},
        requests_per_month=1000,
    )
    return report, records


def test_markdown_rows_and_sections():
    report = _report()
    row = result_row(report.cell("a", "chitchat"))
    assert row == (
        "| chitchat | a | 5 | 0.890 / 0.78 | 80% (80%) | PASS | 700 | max 1100 | max 1100 | $0.001000 | $0.001250 "
        "| 100 / 50 | 5.93 | 1,236 |"
    )
    text = render_markdown(report)
    for heading in (
        "## Results per intent",
        "## Pareto frontier",
        "## Recommended routing",
        "## Monthly cost projection",
    ):
        assert heading in text
    assert "| a (all intents) | $1.00 | $0.00 |" in text and "| b (all intents) | $2.00 | $1.00 |" in text
    assert "chart.svg" not in text  # the deployed report has no chart; the tooling links the one it draws
    assert "![Mean quality vs mean cost per intent](chart.svg)" in render_markdown(report, "chart.svg")
