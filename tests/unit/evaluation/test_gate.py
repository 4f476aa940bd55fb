"""Stage-0 gate: a candidate without a passing evaluation for the intents it serves does not start, and says why."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kanaria.evaluation.configs import parse_configuration
from kanaria.evaluation.dataset import parse_dataset
from kanaria.evaluation.gate import stage0
from kanaria.evaluation.report import build_report, summaries_by_hash
from tests.unit.evaluation.support import SAMPLE_DATASET, record

HASH = "cand0123456789ab"


def _records(model_id="anthropic.claude-3-5-haiku-20241022-v1:0"):
    """Candidate passes chitchat 5/5 and order_status 5/5, fails recommendation 3/5 (60% < 80%)."""
    rs = [record("cand", "chitchat", 1.0, True, config_hash=HASH, model_id=model_id) for _ in range(5)]
    rs += [
        record("cand", "order_status", 1.0, True, config_hash=HASH, model_id=model_id, target=0.95) for _ in range(5)
    ]
    rs += [
        record("cand", "recommendation", q, q >= 0.8, config_hash=HASH, model_id=model_id, target=0.8)
        for q in (0.9, 0.9, 0.85, 0.6, 0.5)
    ]
    return rs


def test_a_failing_candidate_is_refused_with_the_reason():
    result = stage0(_records(), HASH, ["chitchat", "recommendation"])
    assert not result.passed
    assert result.reasons == ("recommendation: pass rate 60% < required 80% (per-case quality target 0.80)",)
    assert "stage 0 refused for cand0123456789ab" in result.message()


def test_a_candidate_passing_every_served_intent_starts():
    result = stage0(_records(), HASH, ["chitchat", "order_status"])
    assert result.passed and result.reasons == ()


def test_no_evaluation_or_an_unevaluated_intent_is_refused():
    assert stage0(None, HASH, ["chitchat"]).reasons[0].startswith(f"no offline evaluation of configuration {HASH}")
    assert not stage0(_records(), "otherhash123456", ["chitchat"]).passed
    result = stage0(_records(), HASH, ["chitchat", "manga_qa"])
    assert result.reasons == ("manga_qa: not evaluated",)
    # None = every profiled intent: four are missing and recommendation fails
    assert len(stage0(_records(), HASH, None).reasons) == 4


def test_offline_adapter_evaluations_gate_real_rollouts_only_when_allowed():
    offline = _records(model_id="offline:anthropic.claude-3-5-haiku-20241022-v1:0")
    refused = stage0(offline, HASH, ["chitchat"])
    assert refused.reasons == ("the evaluation used the offline adapter, not the real model",)
    assert stage0(offline, HASH, ["chitchat"], allow_offline=True).passed


def test_gate_reads_a_report_and_its_stored_summary_alike_and_checks_age():
    dataset = parse_dataset(SAMPLE_DATASET.read_text(encoding="utf-8"), "manga_store_v1")
    config = parse_configuration(
        {
            "name": "cand",
            "parameters": {
                "model_id": "anthropic.claude-3-5-haiku-20241022-v1:0",
                "temperature": 0.2,
                "top_k": 40,
                "top_p": 0.8,
                "max_tokens": 256,
            },
        }
    )
    records = [
        r.model_copy(update={"config_hash": config.config_hash(), "intent_hash": config.config_hash()})
        for r in _records()
    ]
    report = build_report(
        run_id="r1", created_at="2025-06-01T00:00:00Z", dataset=dataset, configurations=[config], records=records
    )
    summary = summaries_by_hash(report, "s3://b/reports/r1/report.json")[config.config_hash()]
    for evidence in (report, summary):
        result = stage0(evidence, config.config_hash(), ["recommendation"])
        assert result.reasons == ("recommendation: pass rate 60% < required 80% (per-case quality target 0.80)",)
    ok = stage0(summary, config.config_hash(), ["chitchat"])
    assert ok.passed and ok.report_uri == "s3://b/reports/r1/report.json" and ok.run_id == "r1"
    stale = stage0(
        summary,
        config.config_hash(),
        ["chitchat"],
        now=datetime(2025, 9, 1, tzinfo=timezone.utc),
        max_age=timedelta(days=30),
    )
    assert not stale.passed and "older than" in stale.reasons[0]


def test_per_intent_hashes_of_an_overrides_configuration_are_gated_on_their_own_intents():
    dataset = parse_dataset(SAMPLE_DATASET.read_text(encoding="utf-8"), "manga_store_v1")
    config = parse_configuration(
        {"name": "cand", "overrides": {"model_id": "anthropic.claude-3-5-haiku-20241022-v1:0"}}
    )
    records = [
        r.model_copy(update={"config_hash": config.config_hash(), "intent_hash": config.intent_hash(r.intent)})
        for r in _records()
    ]
    report = build_report(
        run_id="r2", created_at="2025-06-01T00:00:00Z", dataset=dataset, configurations=[config], records=records
    )
    summaries = summaries_by_hash(report)
    chitchat_hash = config.intent_hash("chitchat")
    assert set(summaries[chitchat_hash].per_intent) == {"chitchat"}
    assert stage0(report, chitchat_hash, ["chitchat"]).passed
    assert not stage0(report, config.config_hash(), ["chitchat", "recommendation"]).passed


def test_refusal_raises_a_validation_error_and_evidence_fits_the_rollout_request():
    import pytest

    from kanaria.domain import rollout_plan
    from kanaria.errors import ValidationError

    refused = stage0(_records(), HASH, ["chitchat", "recommendation"])
    with pytest.raises(ValidationError) as err:
        refused.raise_if_refused()
    assert err.value.field == "offline_evaluation" and "recommendation: pass rate 60%" in err.value.reason
    evidence = rollout_plan.OfflineEvaluation.model_validate(refused.as_offline_evaluation())
    assert evidence.passed is False and evidence.per_intent["recommendation"].passed is False
    assert evidence.per_intent["chitchat"].threshold == 0.78
    stage0(_records(), HASH, ["chitchat"]).raise_if_refused()  # passing: no error
