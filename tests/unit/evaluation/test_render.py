"""Markdown and SVG rendering of a report."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from kanaria.evaluation.configs import parse_configuration
from kanaria.evaluation.render import render_markdown, render_svg, result_row
from kanaria.evaluation.report import build_report
from tests.unit.evaluation.support import record, sample_dataset

SVG = "{http://www.w3.org/2000/svg}"


def _report():
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
    return build_report(
        run_id="r<&>",
        created_at="2025-06-01T00:00:00Z",
        dataset=dataset,
        configurations=configs,
        records=records,
        intent_mix={"chitchat": 0.5, "recommendation": 0.5},
        requests_per_month=1000,
    )


def test_markdown_rows_and_sections():
    report = _report()
    row = result_row(report.cell("a", "chitchat"))
    assert row == (
        "| chitchat | a | 5 | 0.890 / 0.78 | 80% (80%) | PASS | 700 | 1100 | 1100 | $0.001000 | $0.001250 "
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


def test_svg_is_well_formed_with_one_panel_per_intent_and_escaped_text():
    root = ET.fromstring(render_svg(_report()))
    panels = [r for r in root.iter(f"{SVG}rect") if r.attrib.get("fill") == "#fafafa"]
    assert len(panels) == 2
    assert "r<&>" in root.findtext(f"{SVG}title")
    points = [c for c in root.iter(f"{SVG}circle") if c.find(f"{SVG}title") is not None]
    assert len(points) == 4
