"""Builders for evaluation tests: golden cases, case records and report cells with only the fields a test cares about."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from kanaria.evaluation.dataset import Dataset, GoldenCase, parse_dataset
from kanaria.evaluation.records import CaseRecord
from kanaria.evaluation.report import CellMetrics
from kanaria.evaluation.scoring import ScorePart

ROOT = Path(__file__).resolve().parents[3]
SAMPLE_DATASET = ROOT / "datasets" / "golden" / "manga_store_v1.jsonl"
EXAMPLES = ROOT / "examples" / "evaluation"
SONNET = "offline:anthropic.claude-3-5-sonnet-20241022-v2:0"
HAIKU = "offline:anthropic.claude-3-5-haiku-20241022-v1:0"


def sample_dataset() -> Dataset:
    """The shipped manga store golden dataset."""
    return parse_dataset(SAMPLE_DATASET.read_text(encoding="utf-8"), "manga_store_v1")


def case(**fields: Any) -> GoldenCase:
    """An order_status case (an order shipped on 3/14, arriving 3/16) with any field replaced."""
    body: dict[str, Any] = {
        "case_id": "os-test",
        "intent": "order_status",
        "query": "注文した『進撃の巨人』34巻はいつ届きますか？",
        "page_context": {
            "order": {
                "order_id": "503-4417821-0093315",
                "status": "発送済み",
                "shipped_at": "2025-03-14",
                "estimated_delivery": "2025-03-16",
                "tracking_number": "4821-9930-1174",
            }
        },
        "reference_answer": "『進撃の巨人』34巻は発送済みで、3月16日にお届け予定です。追跡番号は4821-9930-1174です。",
        "required_facts": ["発送済み", "3月16日", "4821-9930-1174"],
        "titles": [{"written": "進撃の巨人", "variants": ["Shingeki no Kyojin", "Attack on Titan"]}],
        "expected_format": {"style": "prose", "max_chars": 200},
    }
    body.update(fields)
    return GoldenCase.model_validate(body)


def record(
    config: str,
    intent: str,
    composite: float,
    passed: bool,
    *,
    latency: float | None = 100.0,
    tokens: tuple[int, int] = (100, 50),
    cost: str | None = "0.001",
    error: str | None = None,
    hallucinated: bool = False,
    model_id: str = "anthropic.claude-3-5-haiku-20241022-v1:0",
    config_hash: str | None = None,
    target: float = 0.78,
) -> CaseRecord:
    """A CaseRecord with chosen outcome numbers (a failed call when `error`)."""
    parts = (ScorePart(name="grounding", weight=0.3, score=0.0 if hallucinated else 1.0, critical=hallucinated),)
    failed_call = error is not None
    return CaseRecord(
        config_name=config,
        config_hash=config_hash or f"hash-{config}",
        intent_hash=config_hash or f"hash-{config}",
        model_id=model_id,
        case_id=f"{intent}-{composite}-{latency}",
        intent=intent,
        quality_target=target,
        composite=composite,
        passed=passed,
        parts=() if failed_call else parts,
        input_tokens=0 if failed_call else tokens[0],
        output_tokens=0 if failed_call else tokens[1],
        latency_ms=None if failed_call else latency,
        cost_usd=None if failed_call or cost is None else Decimal(cost),
        error=error,
    )


def cell(
    config: str, intent: str, *, quality: float, cost: float | None, p95: float, passed: bool = True
) -> CellMetrics:
    """Report cell with the fields Pareto and routing read."""
    return CellMetrics(
        config=config,
        intent=intent,
        n=10,
        passed_cases=10 if passed else 5,
        errors=0,
        hallucinations=0,
        throttles=0,
        mean_quality=quality,
        pass_rate=1.0 if passed else 0.5,
        latency_p50_ms=p95 / 2,
        latency_p95_ms=p95,
        latency_p99_ms=p95,
        mean_input_tokens=100,
        mean_output_tokens=50,
        mean_cost_usd=cost,
        cost_per_satisfactory_usd=cost,
        token_efficiency=None,
        latency_quality_ratio=None,
        quality_target=0.8,
        min_pass_rate=0.8,
        gate_passed=passed,
        gate_reasons=() if passed else ("pass rate 50% < required 80%",),
    )
