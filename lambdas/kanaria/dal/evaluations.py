"""Offline evaluation storage: datasets, per-chunk records and reports in S3; per-config-hash summaries in the
evaluations table.

Evaluations table (config_hash + record):
    <config_hash>  EVAL#<created_at>#<dataset version>   one item per run that evaluated this configuration
    <config_hash>  LATEST                                 copy of the newest EVAL item (conditional on created_at)
Both carry `summary` (EvaluationSummary as JSON text) plus a few plain attributes for console reading.

Bucket layout (versioned):
    datasets/<name>.jsonl                    golden datasets (the object version pins what a run read)
    runs/<run_id>/records/<chunk>.jsonl      CaseRecords written by the runner Lambda, one object per chunk
    reports/<run_id>/report.json|report.md|records.jsonl   (+ chart.svg when the tooling stored one)
"""

from __future__ import annotations

import json
from typing import Any, Iterable, NamedTuple, Sequence
from urllib.parse import parse_qs, urlparse

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from kanaria.dal.pages import query_items
from kanaria.errors import NotFoundError, ValidationError
from kanaria.evaluation.records import CaseRecord
from kanaria.evaluation.report import EvaluationReport, EvaluationSummary, summaries_by_hash

LATEST = "LATEST"
EVAL_PREFIX = "EVAL#"
DATASETS_PREFIX = "datasets/"
REPORT_FILES = ("report.json", "report.md", "records.jsonl")  # chart.svg only when the tooling drew one


def eval_record_key(summary: EvaluationSummary) -> str:
    """Sort key of a run's item: EVAL#<created_at>#<dataset version>."""
    return f"{EVAL_PREFIX}{summary.created_at}#{summary.dataset_version}"


def s3_uri(bucket: str, key: str, version_id: str | None = None) -> str:
    """s3://bucket/key[?versionId=...]."""
    return f"s3://{bucket}/{key}" + (f"?versionId={version_id}" if version_id else "")


def parse_s3_uri(uri: str) -> tuple[str, str, str | None]:
    """(bucket, key, version id) of an s3:// URI."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise ValidationError(f"not an s3://bucket/key URI: {uri!r}", field="dataset")
    version = parse_qs(parsed.query).get("versionId", [None])[0]
    return parsed.netloc, parsed.path.lstrip("/"), version


def _table(table: Any) -> Any:
    return boto3.resource("dynamodb").Table(table) if isinstance(table, str) else table


def _item(summary: EvaluationSummary, record: str) -> dict[str, Any]:
    return {
        "config_hash": summary.config_hash,
        "record": record,
        "config_name": summary.config_name,
        "run_id": summary.run_id,
        "created_at": summary.created_at,
        "dataset_version": summary.dataset_version,
        "passed": summary.passed,
        "offline": summary.offline,
        "intents": sorted(summary.per_intent),
        "report_uri": summary.report_uri or "-",
        "summary": summary.model_dump_json(),
    }


def save_summaries(summaries: Iterable[EvaluationSummary], table: Any) -> list[str]:
    """Write each summary's EVAL item and move its LATEST pointer unless a newer run already holds it; returns the
    config hashes whose LATEST now points at these summaries."""
    target = _table(table)
    moved = []
    for summary in summaries:
        target.put_item(Item=_item(summary, eval_record_key(summary)))
        try:
            target.put_item(
                Item=_item(summary, LATEST),
                ConditionExpression="attribute_not_exists(config_hash) OR created_at <= :at",
                ExpressionAttributeValues={":at": summary.created_at},
            )
            moved.append(summary.config_hash)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise  # a newer evaluation holds LATEST otherwise: keep it
    return moved


def latest_for(config_hash: str, table: Any) -> EvaluationSummary | None:
    """The newest evaluation of a configuration (strongly consistent read), or None. `table` is a boto3 Table or
    the table's name."""
    item = _table(table).get_item(Key={"config_hash": config_hash, "record": LATEST}, ConsistentRead=True).get("Item")
    return EvaluationSummary.model_validate_json(item["summary"]) if item else None


def history_for(config_hash: str, table: Any) -> list[EvaluationSummary]:
    """Every evaluation of a configuration, oldest first."""
    items = query_items(
        _table(table),
        KeyConditionExpression=Key("config_hash").eq(config_hash) & Key("record").begins_with(EVAL_PREFIX),
    )
    return [EvaluationSummary.model_validate_json(i["summary"]) for i in items]


class EvaluationBucket:
    """The evaluation bucket: datasets, chunk records, report artifacts."""

    def __init__(self, bucket: str, s3_client: Any | None = None):
        self.bucket = bucket
        self._s3 = s3_client or boto3.client("s3")

    def put_dataset(self, name: str, text: str) -> str:
        """Upload a dataset as datasets/<name>.jsonl; returns its versioned URI."""
        key = f"{DATASETS_PREFIX}{name}.jsonl"
        response = self._s3.put_object(
            Bucket=self.bucket, Key=key, Body=text.encode("utf-8"), ContentType="application/x-ndjson"
        )
        return s3_uri(self.bucket, key, response.get("VersionId"))

    def put_dataset_manifest(self, name: str, manifest_json: str) -> str:
        """Upload a built dataset's manifest beside it as datasets/<name>.manifest.json; returns its versioned URI."""
        key = f"{DATASETS_PREFIX}{name}.manifest.json"
        response = self._s3.put_object(
            Bucket=self.bucket, Key=key, Body=manifest_json.encode("utf-8"), ContentType="application/json"
        )
        return s3_uri(self.bucket, key, response.get("VersionId"))

    def read_text(self, key: str, version_id: str | None = None) -> tuple[str, str | None]:
        """(text, version id) of an object; NotFoundError when it (or that version) does not exist."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            response = self._s3.get_object(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in {"NoSuchKey", "NoSuchVersion", "404", "InvalidArgument"}:
                raise NotFoundError(f"no object {s3_uri(self.bucket, key, version_id)}", field="dataset") from None
            raise
        return response["Body"].read().decode("utf-8"), response.get("VersionId")

    def put_chunk_records(self, run_id: str, index: int, records: Sequence[CaseRecord]) -> str:
        """Write one chunk's records; returns the key."""
        key = f"runs/{run_id}/records/{index:05d}.jsonl"
        self._s3.put_object(
            Bucket=self.bucket, Key=key, Body=records_jsonl(records).encode("utf-8"), ContentType="application/x-ndjson"
        )
        return key

    def read_run_records(self, run_id: str) -> list[CaseRecord]:
        """Every chunk's records of a run, in chunk order."""
        keys: list[str] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"runs/{run_id}/records/"):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        records: list[CaseRecord] = []
        for key in sorted(keys):
            text, _ = self.read_text(key)
            records.extend(CaseRecord.model_validate_json(line) for line in text.splitlines() if line.strip())
        return records

    def put_report(
        self, report: EvaluationReport, records: Sequence[CaseRecord], markdown: str, svg: str | None = None
    ) -> str:
        """Write the report's artifacts under reports/<run_id>/ (chart.svg when the tooling drew one); returns the
        report.json URI."""
        prefix = f"reports/{report.run_id}/"
        bodies = {
            "report.json": (report.model_dump_json(indent=2), "application/json"),
            "report.md": (markdown, "text/markdown; charset=utf-8"),
            "records.jsonl": (records_jsonl(records), "application/x-ndjson"),
        }
        if svg is not None:
            bodies["chart.svg"] = (svg, "image/svg+xml")
        for name, (body, content_type) in bodies.items():
            self._s3.put_object(
                Bucket=self.bucket, Key=prefix + name, Body=body.encode("utf-8"), ContentType=content_type
            )
        return s3_uri(self.bucket, prefix + "report.json")


class StoredReport(NamedTuple):
    """Where a report went: its report.json URI, each configuration's summary, the hashes whose LATEST moved."""

    report_uri: str
    summaries: dict[str, EvaluationSummary]
    moved: list[str]


def store_report(
    bucket: EvaluationBucket,
    table: Any,
    report: EvaluationReport,
    records: Sequence[CaseRecord],
    markdown: str,
    svg: str | None = None,
) -> StoredReport:
    """The report's artifacts into the bucket, then each configuration's summary (citing them) into the table."""
    report_uri = bucket.put_report(report, records, markdown, svg)
    summaries = summaries_by_hash(report, report_uri)
    return StoredReport(report_uri, summaries, save_summaries(summaries.values(), table))


def records_jsonl(records: Sequence[CaseRecord]) -> str:
    """CaseRecords as JSON lines (Decimal costs as strings)."""
    return "".join(r.model_dump_json() + "\n" for r in records)


def report_from_json(text: str) -> EvaluationReport:
    """A stored report.json."""
    return EvaluationReport.model_validate(json.loads(text))
