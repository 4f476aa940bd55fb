"""docs/infrastructure.md's canary alarm table says what infra/constructs/canary_alarms.py builds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aws_cdk import aws_cloudwatch as cw

from infra.constructs.canary_alarms import ALARM_SPECS, MIN_EVENTS, MIN_SAMPLES

DOC = Path(__file__).resolve().parents[2] / "docs" / "infrastructure.md"
MISSING = {"not breaching": cw.TreatMissingData.NOT_BREACHING, "missing": cw.TreatMissingData.MISSING}


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| `kanaria-(canary-[a-z0-9-]+)` \|", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in line.strip().strip("|").split("|")]
    return rows


def _period_seconds(expression_cell: str) -> int:
    amount, unit = re.findall(r"\((\d+) (min|hour)\)\s*$", expression_cell)[-1]
    return int(amount) * (60 if unit == "min" else 3600)


def test_every_alarm_has_one_row():
    # Given the documented table / When read / Then it lists exactly the alarms the construct builds
    assert set(_rows()) == set(ALARM_SPECS)


@pytest.mark.parametrize("kind", sorted(ALARM_SPECS))
def test_row_matches_the_construct(kind: str):
    spec = ALARM_SPECS[kind]
    _, expression, threshold, evaluation, missing = _rows()[kind]
    assert _period_seconds(expression) == spec.period.to_seconds()
    assert float(re.search(r"> ([0-9.]+)", threshold).group(1)) == spec.threshold
    assert evaluation == f"{spec.datapoints_to_alarm} of {spec.evaluation_periods}"
    assert MISSING[missing] == spec.treat_missing_data


def test_documented_floors_are_the_constructs():
    # Given the alarm section of the doc / When its sample and event floors are read / Then they are the construct's
    section = DOC.read_text(encoding="utf-8").split("### Canary alarms")[1].split("Composite alarms")[0]
    floors = {
        int(n)
        for pattern in (r">= (\d+)", r"floors? (\d+)", r"and (\d+) [a-z]+ \(")
        for n in re.findall(pattern, section)
    }
    assert floors == {MIN_SAMPLES, MIN_EVENTS}
