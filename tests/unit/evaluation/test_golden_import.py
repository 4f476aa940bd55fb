"""Building a golden dataset from JSONL and CSV: every bad row named by file, line and field; duplicates dropped by
a normalised text hash; a seeded sample per (intent, language); a manifest whose counts and hashes match the
written dataset; and the shipped manga_store_v2 rebuilt from its sources byte for byte."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from kanaria.errors import ValidationError
from kanaria.evaluation.dataset import parse_dataset
from kanaria_tools.golden_import import ImportOptions, Source, build, read_rows, text_hash
from tests.unit.evaluation.support import ROOT, SAMPLE_DATASET

GOLDEN = ROOT / "datasets" / "golden"


def _case(case_id: str, intent: str = "chitchat", query: str = "Hi there!", **fields) -> dict:
    return {"case_id": case_id, "intent": intent, "query": query, "reference_answer": "Hello!", **fields}


def _jsonl(name: str, cases: list[dict]) -> Source:
    return Source(name, "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases))


def _csv(name: str, header: list[str], rows: list[list[str]]) -> Source:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return Source(name, out.getvalue())


def test_csv_cells_become_case_fields_and_the_language_is_written_out():
    source = _csv(
        "en.csv",
        ["case_id", "intent", "query", "reference_answer", "required_facts", "tags", "page_context", "language"],
        [
            ["sh-1", "shipping_info", "Is shipping free?", "Free over ¥3,980.", "¥3,980|free", '["en"]', "{}", ""],
            ["sh-2", "shipping_info", "送料は？", "450円です。", '["450円"]', "", '{"page": "help"}', ""],
        ],
    )
    first, second = (row.case for row in read_rows([source]))
    assert first.required_facts == ("¥3,980", "free") and first.tags == ("en",) and first.language == "en"
    assert second.required_facts == ("450円",) and second.page_context == {"page": "help"} and second.language == "ja"


def test_every_bad_row_is_named_by_file_line_and_field():
    jsonl = Source("a.jsonl", json.dumps(_case("ok-1")) + "\n{not json\n" + json.dumps(_case("x", intent="Bad")) + "\n")
    csv_source = _csv(
        "b.csv",
        ["case_id", "intent", "query", "reference_answer", "expected_format"],
        [["ok-2", "chitchat", "multi\nline\nquery", "Hello!", ""], ["bad-1", "chitchat", "Hi", "", '{"style": "x"}']],
    )
    with pytest.raises(ValidationError) as caught:
        read_rows([jsonl, csv_source])
    fields = [d["field"] for d in caught.value.details]
    # the quoted three-line cell makes the next row start on line 5
    assert fields == ["a.jsonl:2", "a.jsonl:3.intent", "b.csv:5.reference_answer", "b.csv:5.expected_format.style"]
    assert caught.value.field == "a.jsonl:2" and "(and 3 more, in details)" in caught.value.reason


def test_an_unknown_csv_column_is_refused_on_the_header_line():
    with pytest.raises(ValidationError) as caught:
        read_rows([_csv("c.csv", ["case_id", "intent", "question"], [["a", "chitchat", "hi"]])])
    assert caught.value.field == "c.csv:1" and "question" in caught.value.reason


def test_a_reused_case_id_for_another_case_is_refused_naming_both_places():
    sources = [_jsonl("a.jsonl", [_case("cc-1")]), _jsonl("b.jsonl", [_case("cc-1", query="Good morning")])]
    with pytest.raises(ValidationError) as caught:
        read_rows(sources)
    assert caught.value.field == "b.jsonl:1.case_id" and "(a.jsonl:1)" in caught.value.reason


def test_duplicates_by_normalised_text_are_dropped_the_first_kept():
    cases = [
        _case("cc-1", query="Hi there!"),
        _case("cc-2", query="  ｈｉ   THERE! "),  # full width, case and spaces: the same question
        _case("os-1", "order_status", "Where is my order?", page_context={"order": {"order_id": "A"}}),
        _case("os-2", "order_status", "Where is my order?", page_context={"order": {"order_id": "B"}}),
        _case("cc-1", query="Hi there!"),  # the same case again (a source imported twice)
    ]
    built = build([_jsonl("a.jsonl", cases)], "deduped")
    assert [d.model_dump() for d in built.manifest.duplicates] == [
        {"case_id": "cc-2", "where": "a.jsonl:2", "kept": "cc-1"},
        {"case_id": "cc-1", "where": "a.jsonl:5", "kept": "cc-1"},
    ]
    assert list(built.manifest.case_hashes) == ["cc-1", "os-1", "os-2"]  # another order is another case
    assert built.manifest.rows_read == 5 and built.manifest.cases == 3


def _many(intent: str, tag: str, query: str, count: int) -> list[dict]:
    return [_case(f"{intent[:2]}-{tag}-{i}", intent, f"{query} {i}") for i in range(count)]


def test_stratified_sampling_caps_each_intent_and_language_reproducibly():
    cases = (
        _many("chitchat", "en", "hello", 30)
        + _many("chitchat", "ja", "こんにちは", 12)
        + _many("manga_qa", "en", "who", 4)
    )
    options = ImportOptions(per_stratum=10, seed=7)
    built = build([_jsonl("a.jsonl", cases)], "sampled", options)
    assert built.manifest.per_stratum == {"chitchat/en": 10, "chitchat/ja": 10, "manga_qa/en": 4}
    assert built.manifest.sampled_out == 22 and built.manifest.per_language == {"en": 14, "ja": 10}
    again = build([_jsonl("a.jsonl", cases)], "sampled", options)
    assert again.text == built.text and again.manifest == built.manifest
    other_seed = build([_jsonl("a.jsonl", cases)], "sampled", ImportOptions(per_stratum=10, seed=8))
    assert other_seed.manifest.case_hashes != built.manifest.case_hashes
    # a stratum's draw does not depend on the others
    alone = build([_jsonl("a.jsonl", _many("chitchat", "en", "hello", 30))], "sampled", options)
    en = {k for k in built.manifest.case_hashes if k.startswith("ch-en")}
    assert set(alone.manifest.case_hashes) == en


def test_the_manifest_matches_the_written_dataset():
    source = Source(str(SAMPLE_DATASET), SAMPLE_DATASET.read_text(encoding="utf-8"))
    built = build([source], "copy", ImportOptions(target_per_intent=10))
    dataset = parse_dataset(built.text, "copy")
    assert built.manifest.version == dataset.version and built.manifest.sha256 == dataset.sha256
    assert built.manifest.per_intent == dict(sorted(Counter(c.intent for c in dataset.cases).items()))
    assert built.manifest.below_target == {} and built.manifest.sources[0].rows == 60
    assert built.manifest.case_hashes == {c.case_id: text_hash(c) for c in dataset.cases}
    assert build([source], "copy").manifest.below_target == dict.fromkeys(built.manifest.per_intent, 10)


def test_no_source_and_too_many_cases_are_refused():
    with pytest.raises(ValidationError) as none:
        build([], "x")
    assert none.value.field == "sources"
    with pytest.raises(ValidationError) as big:
        build([_jsonl("a.jsonl", _many("chitchat", "en", "hello", 5001))], "x")
    assert big.value.field == "--per-stratum"


def test_the_shipped_v2_is_v1_plus_the_english_source_rebuilt_byte_for_byte():
    sources = [
        Source("datasets/golden/manga_store_v1.jsonl", SAMPLE_DATASET.read_text(encoding="utf-8")),
        Source(
            "datasets/golden/sources/manga_store_en.csv",
            (GOLDEN / "sources" / "manga_store_en.csv").read_text(encoding="utf-8"),
        ),
    ]
    built = build(sources, "manga_store_v2")
    assert (GOLDEN / "manga_store_v2.jsonl").read_text(encoding="utf-8") == built.text
    shipped = json.loads((GOLDEN / "manga_store_v2.manifest.json").read_text(encoding="utf-8"))
    assert shipped == json.loads(built.manifest.model_dump_json())
    per_stratum = built.manifest.per_stratum
    assert {k: v for k, v in per_stratum.items() if k.endswith("/en")} == {
        f"{i}/en": 3
        for i in ("chitchat", "manga_qa", "order_status", "product_search", "recommendation", "shipping_info")
    }
    assert built.manifest.per_language == {"en": 18, "ja": 60}


def test_every_shipped_reference_answer_passes_its_own_case():
    from kanaria.domain.profiles import DEFAULT_PROFILES, profile_for
    from kanaria.evaluation.scoring import score_response

    for path in (GOLDEN / "manga_store_v1.jsonl", GOLDEN / "manga_store_v2.jsonl"):
        dataset = parse_dataset(path.read_text(encoding="utf-8"), Path(path).stem)
        failing = [
            c.case_id
            for c in dataset.cases
            if not score_response(c, c.reference_answer, profile_for(c.intent, DEFAULT_PROFILES).quality_target).passed
        ]
        assert failing == [], path.name
