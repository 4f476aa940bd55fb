"""`kanaria report`: the latest stored result as tables; missing results and bad ids exit 2."""

from __future__ import annotations

import json
import random

import pytest
from moto import mock_aws

from kanaria.analysis import analyze_snapshot
from kanaria.dal.observations import DynamoAnalysisStore
from kanaria.domain.experiment import Status, parse_experiment
from kanaria.domain.observation import Observation, prepare_write, resolve_cost
from kanaria.domain.profiles import DEFAULT_PROFILES
from kanaria.domain.records import ExperimentRecord
from kanaria.logic.analysis_run import build_snapshot
from kanaria.names import table_name
from kanaria_tools.cli.main import main
from tests.unit.observations.support import NOW, PREFIX, create_tables, definition, observation


@pytest.fixture
def stored():
    with mock_aws():
        create_tables()
        rng = random.Random(5)
        record = ExperimentRecord(parse_experiment(definition()), Status.RUNNING, 2, "t", "t", "op")
        items = []
        for i in range(400):
            body = observation(i, rng, variant_id="AB"[i % 2])
            obs = Observation.model_validate(body)
            write = prepare_write(obs, resolve_cost(obs, "anthropic.claude-3-haiku-20240307-v1:0"), None, NOW)
            items.append({**write.counter_key, **write.counter_attributes, **write.increments})
        items += [{"sk": f"EXPOSURE#{v}#chitchat#d#00", "variant": v, "intent": "chitchat", "units": 200} for v in "AB"]
        snapshot = build_snapshot(record, items, DEFAULT_PROFILES)
        result = analyze_snapshot(snapshot).to_json()
        DynamoAnalysisStore(table_name(PREFIX, "aggregates")).put_result(
            "exp-obs", NOW.isoformat(), result["decision"], result, snapshot
        )
        yield result


def test_report_prints_variants_tests_and_decision(stored, capsys):
    assert main(["report", "exp-obs", "--prefix", PREFIX]) == 0
    text = capsys.readouterr().out
    assert f"Decision: {stored['decision']}" in text
    assert "A (control)" in text and "\nB " in text and "Sample ratio: ok" in text
    assert "quality_score" in text and "two_proportion_z" in text and "Guardrails" in text
    assert "latency p50/p95/p99 ms" in text


def test_report_json(stored, capsys):
    assert main(["report", "exp-obs", "--prefix", PREFIX, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["decision"] == stored["decision"] and body["snapshot"]["aggregates"]["A"]["units"] == 200


def test_missing_result_and_bad_id_exit_2(stored, capsys):
    assert main(["report", "exp-none", "--prefix", PREFIX]) == 2
    assert json.loads(capsys.readouterr().err)["error"]["field"] == "experiment_id"
    assert main(["report", "Bad Id", "--prefix", PREFIX]) == 2
    assert json.loads(capsys.readouterr().err)["error"]["code"] == "validation_error"


def test_unreachable_table_is_an_operational_error(stored, capsys):
    assert main(["report", "exp-obs", "--prefix", "nope"]) == 1
    assert json.loads(capsys.readouterr().err)["error"]["code"] == "operational_error"
