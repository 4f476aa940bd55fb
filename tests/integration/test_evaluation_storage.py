"""Offline evaluation against moto: the runner Lambda's plan/evaluate/report steps (what the state machine's Map
drives), the evaluations table's EVAL/LATEST items, `latest_for`, and the stage-0 gate reading them. The runner's
model calls go to the tooling's offline adapter instead of Bedrock."""

from __future__ import annotations

import importlib
import json

import boto3
import pytest
from moto import mock_aws

from kanaria import names
from kanaria.dal.evaluations import (
    LATEST,
    EvaluationBucket,
    eval_record_key,
    history_for,
    latest_for,
    parse_s3_uri,
    report_from_json,
    save_summaries,
)
from kanaria.errors import NotFoundError, ValidationError
from kanaria.evaluation.gate import stage0
from kanaria_tools.offline_model import offline_invoker
from tests.support.aws import PREFIX, FakeLambdaContext, create_tables
from tests.unit.evaluation.support import EXAMPLES, SAMPLE_DATASET, sample_dataset

BUCKET = "test-evaluations"


@pytest.fixture
def aws(monkeypatch):
    """Tables and a versioned bucket in moto, the runner handler freshly imported with its environment and the
    offline adapter (answering the sample dataset) as its model invoker."""
    with mock_aws():
        tables = create_tables()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        monkeypatch.setenv(names.ENV_EVALUATIONS_TABLE, names.table_name(PREFIX, "evaluations"))
        monkeypatch.setenv(names.ENV_EVALUATION_BUCKET, BUCKET)
        module = importlib.reload(importlib.import_module("kanaria.handlers.evaluation"))
        invoker = offline_invoker(sample_dataset())
        monkeypatch.setattr(module, "model_invoker", lambda: invoker)
        yield tables["evaluations"], EvaluationBucket(BUCKET, s3), module


def _request(**settings):
    configs = [json.loads((EXAMPLES / name).read_text()) for name in ("sonnet.json", "haiku.json")]
    return {
        "dataset_key": "datasets/manga_store_v1.jsonl",
        "configurations": configs,
        "settings": {"chunk_size": 25, **settings},
    }


def _execute(module, request):
    """Plan, one evaluate per chunk (the Map state), report: as the state machine passes state."""
    context = FakeLambdaContext(function_name="kanaria-evaluation")
    state = module.handler({"action": "plan", "request": request}, context)
    results = [
        module.handler(
            {"action": "evaluate", "run_id": state["run_id"], "request": state["request"], "chunk": chunk}, context
        )
        for chunk in state["chunks"]
    ]
    done = module.handler(
        {"action": "report", "run_id": state["run_id"], "created_at": state["created_at"], "request": state["request"]},
        context,
    )
    return state, results, done


def test_state_machine_steps_store_report_and_latest_per_config_hash(aws):
    table, bucket, module = aws
    uri = bucket.put_dataset("manga_store_v1", SAMPLE_DATASET.read_text(encoding="utf-8"))
    _, _, version_id = parse_s3_uri(uri)
    state, results, done = _execute(module, _request())
    assert state["request"]["dataset_version_id"] == version_id  # the plan pinned the object version
    assert [c["start"] for c in state["chunks"]] == [0, 25, 50] and sum(r["records"] for r in results) == 120
    # a newer dataset upload does not change what this run evaluated
    bucket.put_dataset("manga_store_v1", SAMPLE_DATASET.read_text(encoding="utf-8") + "\n")

    haiku_hash = done["configurations"]["haiku-3.5"]["config_hash"]
    assert done["configurations"] == {
        "sonnet-3.5-v2": {"config_hash": done["configurations"]["sonnet-3.5-v2"]["config_hash"], "passed": True},
        "haiku-3.5": {"config_hash": haiku_hash, "passed": False},
    }
    report_text, _ = bucket.read_text(f"reports/{state['run_id']}/report.json")
    report = report_from_json(report_text)
    assert report.dataset.uri.endswith(f"?versionId={version_id}")
    for name in ("report.md", "records.jsonl"):
        assert bucket.read_text(f"reports/{state['run_id']}/{name}")[0]
    with pytest.raises(NotFoundError):  # the Lambda draws no chart: matplotlib stays out of its asset
        bucket.read_text(f"reports/{state['run_id']}/chart.svg")

    latest = latest_for(haiku_hash, table)
    assert latest is not None and latest.run_id == state["run_id"] and latest.report_uri == done["report_uri"]
    assert latest.per_intent["recommendation"].passed is False
    item = table.get_item(Key={"config_hash": haiku_hash, "record": eval_record_key(latest)})["Item"]
    assert item["record"].startswith(f"EVAL#{state['created_at']}#manga_store_v1@")
    # per-intent resolved hashes are stored too (what `kanaria assign` reports for a variant and intent)
    chitchat_hash = report.configurations[1].intent_hashes["chitchat"]
    assert set(latest_for(chitchat_hash, table).per_intent) == {"chitchat"}

    # the rollout's stage 0 reads LATEST: Haiku may serve chitchat and order_status, not recommendation
    assert stage0(latest, haiku_hash, ["chitchat", "order_status"], allow_offline=True).passed
    refused = stage0(latest_for(haiku_hash, table), haiku_hash, ["recommendation"], allow_offline=True)
    assert not refused.passed and refused.reasons[0].startswith("recommendation: pass rate 60% < required 80%")
    assert (
        stage0(latest_for("0000000000000000", table), "0000000000000000", ["chitchat"])
        .reasons[0]
        .startswith("no offline evaluation")
    )


def test_latest_only_moves_forward(aws):
    table, bucket, module = aws
    bucket.put_dataset("manga_store_v1", SAMPLE_DATASET.read_text(encoding="utf-8"))
    _, _, done = _execute(module, _request(intents=["chitchat"]))
    haiku_hash = done["configurations"]["haiku-3.5"]["config_hash"]
    newest = latest_for(haiku_hash, table)
    older = newest.model_copy(update={"run_id": "older", "created_at": "2000-01-01T00:00:00Z"})
    assert save_summaries([older], table) == []  # EVAL item written, LATEST kept
    assert latest_for(haiku_hash, table).run_id == newest.run_id
    assert [s.run_id for s in history_for(haiku_hash, table)] == ["older", newest.run_id]
    assert table.get_item(Key={"config_hash": haiku_hash, "record": LATEST})["Item"]["passed"] is True


def test_bad_requests_and_missing_datasets(aws):
    _, bucket, module = aws
    context = FakeLambdaContext()
    with pytest.raises(NotFoundError):
        module.handler({"action": "plan", "request": _request()}, context)
    with pytest.raises(ValidationError) as err:
        module.handler({"action": "plan", "request": {**_request(), "configurations": []}}, context)
    assert err.value.field == "configurations"
    with pytest.raises(ValidationError) as err:
        module.handler({"action": "evaluate", "request": _request()}, context)
    assert err.value.field == "run_id"
    bucket.put_dataset("manga_store_v1", "{broken\n")
    with pytest.raises(ValidationError) as err:
        module.handler({"action": "plan", "request": _request()}, context)
    assert err.value.field == "manga_store_v1:1"
