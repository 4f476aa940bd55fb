"""The evaluation chart (matplotlib): one panel per intent with 95% intervals of quality and cost (checked against
scipy's t-interval), the target line, valid SVG with the run id as text, and no label overlapping or clipped even
with many configurations and intents (the hand-written SVG collided in three panels and was cut off at the right)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from scipy import stats

from kanaria.evaluation.configs import parse_configuration
from kanaria.evaluation.report import build_report
from kanaria_tools.reports.evaluation_chart import evaluation_figure, mean_interval, render_svg
from kanaria_tools.reports.figure_check import label_problems
from tests.unit.evaluation.support import record, sample_dataset
from tests.unit.evaluation.test_render import report_with_records

SVG = "{http://www.w3.org/2000/svg}"


def test_the_interval_is_scipys_t_interval() -> None:
    values = [1.0, 0.9, 0.85, 0.7, 1.0]
    mean, half = mean_interval(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert (mean - half, mean + half) == pytest.approx((low, high))
    assert mean_interval([0.9]) is None


def test_one_panel_per_intent_with_intervals_and_the_run_in_the_svg() -> None:
    report, records = report_with_records()
    figure = evaluation_figure(report, records)
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title(loc="left") for ax in panels] == ["chitchat (n = 5 cases)", "recommendation (n = 5 cases)"]
    assert all(len(ax.collections) >= 2 for ax in panels)  # the x and y interval bars of the points
    root = ET.fromstring(render_svg(report, records))
    texts = "".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))
    assert "r<&>" in texts and "gate FAIL" in texts
    assert label_problems(figure) == []


def test_many_configurations_and_intents_leave_every_label_readable() -> None:
    dataset = sample_dataset()
    intents = sorted({c.intent for c in dataset.cases})
    names = [f"configuration-with-a-long-name-{i}" for i in range(6)]
    configs = [
        parse_configuration({"name": n, "overrides": {"model_id": "anthropic.claude-3-5-haiku-20241022-v1:0"}})
        for n in names
    ]
    records = [
        record(n, intent, q, q >= 0.8, latency=300 + 100 * k, cost=f"0.00{k + 1}")
        for k, n in enumerate(names)
        for intent in intents
        for q in (1.0, 0.9, 0.85, 0.7, 0.95)
    ]
    report = build_report(
        run_id="crowded",
        created_at="2025-06-01T00:00:00Z",
        dataset=dataset.only(intents),
        configurations=configs,
        records=records,
        intent_mix={i: 1 / len(intents) for i in intents},
        requests_per_month=1000,
    )
    assert label_problems(evaluation_figure(report, records)) == []
