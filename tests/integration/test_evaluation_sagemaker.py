"""A SageMaker endpoint beside an offline Bedrock model, on moto: through `kanaria evaluate` (the CLI) and through
the runner Lambda's plan/evaluate/report steps (what the state machine drives)."""

from __future__ import annotations

import importlib
import json

import boto3
import pytest
from moto import mock_aws

from kanaria import names
from kanaria.dal.evaluations import EvaluationBucket, report_from_json
from kanaria.evaluation.dataset import parse_dataset
from kanaria_tools.cli.main import main
from tests.support.aws import PREFIX, FakeLambdaContext, chat_answer, create_tables, queue_endpoint_answers
from tests.unit.evaluation.support import EXAMPLES, SAMPLE_DATASET

BUCKET = "test-evaluations"
MODEL_D = EXAMPLES / "sagemaker-model-d.json"


def _order_status_answers() -> list[dict]:
    """The reference answer of every order_status case, as the endpoint's answer (one per call, in case order)."""
    dataset = parse_dataset(SAMPLE_DATASET.read_text(encoding="utf-8"), "manga_store_v1")
    return [chat_answer(c.reference_answer) for c in dataset.cases if c.intent == "order_status"]


def test_cli_evaluates_a_sagemaker_endpoint_beside_bedrock(tmp_path, capsys):
    with mock_aws():
        queue_endpoint_answers(_order_status_answers())
        code = main(
            [
                "evaluate",
                "--dataset",
                str(SAMPLE_DATASET),
                "--config",
                str(MODEL_D),
                "--config",
                str(EXAMPLES / "haiku.json"),
                "--intent",
                "order_status",
                "--concurrency",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "report.json").read_text())
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    model_d = [r for r in records if r["config_name"] == "model-d-ft"]
    assert len(model_d) == 10 and all(r["model_id"] == "sagemaker:kanaria-manga-ft" for r in model_d)
    assert all(r["input_tokens"] == 900 and r["output_tokens"] == 120 and r["error"] is None for r in model_d)
    assert all(float(r["cost_usd"]) > 0 for r in model_d)  # priced per instance-hour by latency
    cell = next(c for c in report["cells"] if c["config"] == "model-d-ft" and c["intent"] == "order_status")
    assert cell["pass_rate"] == 1.0  # the reference answers pass their own cases
    assert "model-d-ft" in capsys.readouterr().out


def test_cli_refuses_a_bad_endpoint_name_naming_the_file_and_field(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "d", "overrides": {"model_id": "sagemaker:no_underscores"}}))
    code = main(["evaluate", "--dataset", str(SAMPLE_DATASET), "--config", str(bad), "--out", str(tmp_path / "o")])
    assert code == 2
    error = json.loads(capsys.readouterr().err)["error"]
    assert error["field"] == "bad.json.overrides.model_id" and "sagemaker:<endpoint name>" in error["reason"]
    assert not (tmp_path / "o").exists()


@pytest.fixture
def runner(monkeypatch):
    """Tables and a versioned bucket in moto, the runner handler freshly imported with its own model invoker."""
    with mock_aws():
        create_tables()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        monkeypatch.setenv(names.ENV_EVALUATIONS_TABLE, names.table_name(PREFIX, "evaluations"))
        monkeypatch.setenv(names.ENV_EVALUATION_BUCKET, BUCKET)
        module = importlib.reload(importlib.import_module("kanaria.handlers.evaluation"))
        yield EvaluationBucket(BUCKET, s3), module


def test_runner_steps_evaluate_a_sagemaker_endpoint(runner):
    bucket, module = runner
    bucket.put_dataset("manga_store_v1", SAMPLE_DATASET.read_text(encoding="utf-8"))
    queue_endpoint_answers(_order_status_answers())
    request = {
        "dataset_key": "datasets/manga_store_v1.jsonl",
        "configurations": [json.loads(MODEL_D.read_text())],
        "settings": {"intents": ["order_status"], "chunk_size": 5, "concurrency": 1},
    }
    context = FakeLambdaContext(function_name="kanaria-evaluation")
    state = module.handler({"action": "plan", "request": request}, context)
    results = [
        module.handler(
            {"action": "evaluate", "run_id": state["run_id"], "request": state["request"], "chunk": c}, context
        )
        for c in state["chunks"]
    ]
    assert [r["records"] for r in results] == [5, 5] and sum(r["errors"] for r in results) == 0
    done = module.handler(
        {"action": "report", "run_id": state["run_id"], "created_at": state["created_at"], "request": state["request"]},
        context,
    )
    assert done["configurations"]["model-d-ft"]["passed"] is True
    report = report_from_json(bucket.read_text(f"reports/{state['run_id']}/report.json")[0])
    cell = next(c for c in report.cells if c.config == "model-d-ft" and c.intent == "order_status")
    assert cell.mean_cost_usd is not None and cell.mean_cost_usd > 0


def test_runner_refuses_a_bad_endpoint_name_before_any_call(runner):
    _, module = runner
    request = {
        "dataset_key": "datasets/manga_store_v1.jsonl",
        "configurations": [{"name": "d", "overrides": {"model_id": "sagemaker:"}}],
    }
    from kanaria.errors import ValidationError

    with pytest.raises(ValidationError) as caught:
        module.handler({"action": "plan", "request": request}, FakeLambdaContext(function_name="kanaria-evaluation"))
    assert caught.value.field == "configurations.0.overrides.model_id"
