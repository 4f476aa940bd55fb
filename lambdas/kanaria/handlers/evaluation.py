"""Offline evaluation runner, the three Task states of the evaluation state machine:

    {"action": "plan",     "request": RunRequest}                      -> {run_id, created_at, request, chunks}
    {"action": "evaluate", "run_id", "request", "chunk": {index, start, end}} -> {index, records, passed, errors}
    {"action": "report",   "run_id", "created_at", "request"}          -> {run_id, report_uri, configurations}

The Map state runs "evaluate" per chunk with bounded concurrency; records go to S3 (never through the state
payload). Model calls go to Bedrock, or to a SageMaker endpoint for "sagemaker:<endpoint name>" model ids: "offline:"
model ids need the offline adapter, which only the local tooling has (`kanaria evaluate`, the rehearsal), so the
evaluate step refuses them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import cache
from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from kanaria.dal.evaluations import EvaluationBucket, s3_uri, store_report
from kanaria.errors import ValidationError, validate
from kanaria.evaluation.bedrock import ModelInvoker
from kanaria.evaluation.dataset import Dataset, dataset_name, parse_dataset
from kanaria.evaluation.pipeline import (
    RunRequest,
    assemble_report,
    evaluate_chunk,
    iso,
    new_run_id,
    parse_run_request,
    plan_chunks,
)
from kanaria.evaluation.render import render_markdown
from kanaria.handlers.env import EvaluationEnvironment, load_environment
from kanaria.handlers.observability import observability

logger, tracer, _ = observability()


class Chunk(BaseModel):
    """Case-index range of one Map item."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(ge=0)
    start: int = Field(ge=0)
    end: int = Field(ge=1)


class StepEvent(BaseModel):
    """The event of any of the three steps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["plan", "evaluate", "report"]
    request: dict[str, Any]
    run_id: str | None = None
    created_at: str | None = None
    chunk: Chunk | None = None


@cache
def environment() -> EvaluationEnvironment:
    """Parsed once per execution environment."""
    return load_environment(EvaluationEnvironment)


@cache
def _bucket() -> EvaluationBucket:
    return EvaluationBucket(environment().evaluation_bucket)


@cache
def model_invoker() -> ModelInvoker:
    """Bedrock and SageMaker (each client created on first use, once per execution environment)."""
    return ModelInvoker()


def _dataset(request: RunRequest) -> Dataset:
    text, version_id = _bucket().read_text(request.dataset_key, request.dataset_version_id)
    uri = s3_uri(_bucket().bucket, request.dataset_key, version_id)
    return parse_dataset(text, dataset_name(request.dataset_key), uri=uri).only(request.settings.intents)


def plan(request: RunRequest, now: datetime) -> dict[str, Any]:
    """Validate the dataset, pin its object version, and split it into chunks."""
    text, version_id = _bucket().read_text(request.dataset_key, request.dataset_version_id)
    dataset = parse_dataset(text, dataset_name(request.dataset_key)).only(request.settings.intents)
    pinned = request.model_copy(update={"dataset_version_id": version_id})
    run_id = request.run_id or new_run_id(now)
    chunks = plan_chunks(dataset, request.settings.chunk_size)
    logger.info(
        "evaluation planned",
        run_id=run_id,
        cases=len(dataset.cases),
        chunks=len(chunks),
        dataset_version=dataset.version,
    )
    return {"run_id": run_id, "created_at": iso(now), "request": pinned.model_dump(mode="json"), "chunks": chunks}


@tracer.capture_method
def evaluate(run_id: str, request: RunRequest, chunk: Chunk) -> dict[str, Any]:
    """Evaluate one chunk and write its records to S3."""
    dataset = _dataset(request)
    records = evaluate_chunk(
        dataset, request.parsed_configurations(), chunk.start, chunk.end, model_invoker(), request.settings
    )
    key = _bucket().put_chunk_records(run_id, chunk.index, records)
    return {
        "index": chunk.index,
        "key": key,
        "records": len(records),
        "passed": sum(r.passed for r in records),
        "errors": sum(r.error is not None for r in records),
    }


@tracer.capture_method
def report(run_id: str, created_at: str, request: RunRequest) -> dict[str, Any]:
    """Aggregate every chunk's records, store the report and move each configuration's LATEST pointer."""
    dataset = _dataset(request)
    configurations = request.parsed_configurations()
    records = _bucket().read_run_records(run_id)
    result = assemble_report(run_id, created_at, dataset, configurations, records, request.settings)
    stored = store_report(_bucket(), environment().evaluations_table, result, records, render_markdown(result))
    logger.info("evaluation reported", run_id=run_id, report_uri=stored.report_uri, records=len(records))
    return {
        "run_id": run_id,
        "report_uri": stored.report_uri,
        "configurations": {
            c.name: {"config_hash": c.config_hash, "passed": stored.summaries[c.config_hash].passed}
            for c in result.configurations
        },
    }


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = validate(StepEvent, event)
    request = parse_run_request(step.request)
    if step.action == "plan":
        return plan(request, datetime.now(timezone.utc))
    if not step.run_id:
        raise ValidationError(f"required for action {step.action!r}", field="run_id")
    if step.action == "evaluate":
        if step.chunk is None:
            raise ValidationError("required for action 'evaluate'", field="chunk")
        return evaluate(step.run_id, request, step.chunk)
    return report(step.run_id, step.created_at or iso(datetime.now(timezone.utc)), request)
