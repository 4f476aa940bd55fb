"""Golden dataset parsing: the shipped sample is consistent; a bad line is named by line and field."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from kanaria.domain.profiles import DEFAULT_PROFILES
from kanaria.errors import ValidationError
from kanaria.evaluation.configs import parse_configuration
from kanaria.evaluation.dataset import dataset_name, parse_dataset
from kanaria.evaluation.scoring import score_response
from tests.unit.evaluation.support import EXAMPLES, SAMPLE_DATASET, sample_dataset


def test_sample_dataset_has_ten_cases_per_profiled_intent():
    dataset = sample_dataset()
    counts = Counter(c.intent for c in dataset.cases)
    assert counts == {i: 10 for i in DEFAULT_PROFILES if i != "_fallback"}
    assert dataset.version.startswith("manga_store_v1@") and len(dataset.version) == len("manga_store_v1@") + 12


def test_every_reference_answer_scores_one_on_its_own_case():
    for case in sample_dataset().cases:
        score = score_response(case, case.reference_answer, DEFAULT_PROFILES[case.intent].quality_target)
        assert score.composite == 1.0 and score.passed, (case.case_id, score.parts)


def test_sample_keeps_japanese_titles_as_written():
    titles = {t.written for c in sample_dataset().cases for t in c.titles}
    assert {"進撃の巨人", "ONE PIECE"} <= titles


def _lines(*docs):
    return "\n".join(json.dumps(d, ensure_ascii=False) for d in docs) + "\n"


def _valid(**fields):
    doc = json.loads(SAMPLE_DATASET.read_text(encoding="utf-8").splitlines()[0])
    doc.update(fields)
    return doc


def test_a_missing_field_names_its_line_and_field():
    bad = _valid(case_id="x2")
    del bad["query"]
    with pytest.raises(ValidationError) as err:
        parse_dataset(_lines(_valid(), bad), "mini")
    assert err.value.field == "mini:2.query" and err.value.reason == "required field is missing"


@pytest.mark.parametrize(
    "line, field, words",
    [
        ("{not json", "mini:1", "not valid JSON"),
        ('["a list"]', "mini:1", "JSON object"),
    ],
)
def test_a_line_that_is_not_an_object(line, field, words):
    with pytest.raises(ValidationError) as err:
        parse_dataset(line + "\n", "mini")
    assert err.value.field == field and words in err.value.reason


def test_duplicate_ids_blank_facts_and_contradictions_are_refused():
    with pytest.raises(ValidationError) as err:
        parse_dataset(_lines(_valid(), _valid()), "mini")
    assert err.value.field == "mini:2:case_id" and "first on line 1" in err.value.reason
    with pytest.raises(ValidationError) as err:
        parse_dataset(_lines(_valid(required_facts=["ok", " "])), "mini")
    assert err.value.field == "mini:1.required_facts.1"
    with pytest.raises(ValidationError) as err:
        parse_dataset(_lines(_valid(forbidden_facts=["発送済み"])), "mini")
    assert err.value.field == "mini:1.forbidden_facts.0"


def test_empty_dataset_unknown_intent_filter_and_bad_names():
    with pytest.raises(ValidationError):
        parse_dataset("\n\n", "mini")
    with pytest.raises(ValidationError) as err:
        sample_dataset().only(["faq"])
    assert err.value.field == "intent"
    assert dataset_name("s3/datasets/manga_store_v1.jsonl") == "manga_store_v1"
    with pytest.raises(ValidationError):
        dataset_name("bad name!.jsonl")


def test_configuration_forms_and_hashes():
    sonnet = parse_configuration(json.loads((EXAMPLES / "sonnet.json").read_text()))
    assert sonnet.resolved("chitchat").max_tokens == 128 and sonnet.resolved("recommendation").max_tokens == 1024
    assert sonnet.intent_hash("chitchat") != sonnet.intent_hash("recommendation")
    single = parse_configuration(json.loads((EXAMPLES / "haiku-order-status.json").read_text()))
    assert {single.intent_hash(i) for i in ("chitchat", "order_status")} == {single.config_hash()}
    flat = parse_configuration({"name": "flat", **single.parameters.model_dump()})
    assert flat.config_hash() == single.config_hash()
    from kanaria.domain.profiles import bedrock_config

    from_assign = parse_configuration({"name": "assigned", "config": bedrock_config(single.parameters)})
    assert from_assign.config_hash() == single.config_hash()
    with pytest.raises(ValidationError) as err:
        parse_configuration({"name": "both", "parameters": single.parameters.model_dump(), "overrides": {}}, "b.json")
    assert err.value.field.startswith("b.json")
    with pytest.raises(ValidationError) as err:
        parse_configuration({"name": "x", "overrides": {"temperature": 3}}, "t.json")
    assert err.value.field == "t.json.overrides.temperature"


@pytest.mark.parametrize(
    "query, language",
    [
        ("When will it arrive?", "en"),
        ("ONE PIECEの新刊", "ja"),
        ("ｱﾘｶﾞﾄｳ", "ja"),
        ("進撃", "ja"),
        ("SPY x FAMILY?", "en"),
    ],
)
def test_a_case_language_is_declared_or_detected_from_the_query(query, language):
    from tests.unit.evaluation.support import case

    assert case(query=query).lang == language
    assert case(query=query, language="fr").lang == "fr"
    with pytest.raises(ValueError):
        case(query=query, language="english")


def test_the_prompt_names_a_non_japanese_customers_language():
    from kanaria.evaluation.prompting import system_prompt
    from tests.unit.evaluation.support import case

    parameters = parse_configuration(json.loads((EXAMPLES / "haiku.json").read_text())).resolved("order_status")
    assert "回答言語: 英語 (English)" in system_prompt(case(query="When will it arrive?"), parameters)
    assert "回答言語" not in system_prompt(case(), parameters)  # Japanese prompts are unchanged
