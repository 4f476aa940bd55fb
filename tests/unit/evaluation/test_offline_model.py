"""The offline adapter: deterministic, Bedrock-shaped, with per-family behaviour the report can tell apart."""

from __future__ import annotations

from kanaria.evaluation.bedrock import ModelInvoker
from kanaria.evaluation.configs import parse_configuration
from kanaria.evaluation.pipeline import RunSettings, evaluate_all, evaluate_chunk
from kanaria.evaluation.prompting import case_request
from kanaria_tools.offline_model import OfflineBedrockRuntime, approx_tokens
from tests.unit.evaluation.support import HAIKU, SONNET, sample_dataset


def _configs():
    return [
        parse_configuration({"name": "sonnet", "overrides": {"model_id": SONNET}}),
        parse_configuration({"name": "haiku", "overrides": {"model_id": HAIKU}}),
    ]


def test_responses_have_bedrock_shape_and_are_deterministic():
    dataset = sample_dataset()
    runtime = OfflineBedrockRuntime(dataset.cases)
    request = case_request(dataset.cases[0], _configs()[1].resolved(dataset.cases[0].intent))
    first, second = runtime.converse(**request), runtime.converse(**request)
    assert first == second
    assert first["stopReason"] == "end_turn" and first["metrics"]["latencyMs"] > 0
    assert first["usage"]["totalTokens"] == first["usage"]["inputTokens"] + first["usage"]["outputTokens"]


def test_haiku_is_faster_and_cheaper_but_drops_recommendation_facts():
    dataset = sample_dataset()
    records = evaluate_all(
        dataset, _configs(), ModelInvoker(offline=OfflineBedrockRuntime(dataset.cases)), RunSettings(concurrency=4)
    )
    by = {(r.config_name, r.intent): [] for r in records}
    for r in records:
        by[(r.config_name, r.intent)].append(r)

    def rate(config, intent):
        rs = by[(config, intent)]
        return sum(r.passed for r in rs) / len(rs)

    assert rate("haiku", "recommendation") < 0.8 <= rate("sonnet", "recommendation")
    assert rate("haiku", "chitchat") >= 0.8 and rate("haiku", "order_status") >= 0.9
    haiku_latency = sorted(r.latency_ms for r in records if r.config_name == "haiku")
    sonnet_latency = sorted(r.latency_ms for r in records if r.config_name == "sonnet")
    assert haiku_latency[len(haiku_latency) // 2] < sonnet_latency[len(sonnet_latency) // 2]
    assert sum(r.cost_usd for r in records if r.config_name == "haiku") < sum(
        r.cost_usd for r in records if r.config_name == "sonnet"
    )


def test_a_chunk_gives_the_same_records_as_the_whole_run():
    dataset = sample_dataset()
    invoker = ModelInvoker(offline=OfflineBedrockRuntime(dataset.cases))
    whole = evaluate_all(dataset, _configs(), invoker, RunSettings())
    chunk = evaluate_chunk(dataset, _configs(), 10, 20, invoker, RunSettings())
    expected = [r for r in whole if r.case_id in {c.case_id for c in dataset.cases[10:20]}]
    assert chunk == expected


def test_low_max_tokens_truncates():
    dataset = sample_dataset()
    runtime = OfflineBedrockRuntime(dataset.cases)
    tight = parse_configuration({"name": "tight", "overrides": {"model_id": HAIKU, "max_tokens": 10}})
    rec = next(c for c in dataset.cases if c.intent == "recommendation")
    response = runtime.converse(**case_request(rec, tight.resolved(rec.intent)))
    assert response["stopReason"] == "max_tokens" and response["usage"]["outputTokens"] == 10


def test_token_estimate():
    assert approx_tokens("abcd" * 10) == 10
    assert approx_tokens("進撃の巨人") == 5
