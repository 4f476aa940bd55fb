"""Scorer parts on crafted responses: facts, grounding (forbidden and invented facts), format, titles, LLM grader."""

from __future__ import annotations

import pytest

from kanaria.domain.profiles import DEFAULT_PROFILES
from kanaria.evaluation.grader import GraderSpec, grade_part, parse_grade
from kanaria.evaluation.scoring import entities, score_format, score_response
from tests.unit.evaluation.support import case

ORDER_TARGET = DEFAULT_PROFILES["order_status"].quality_target  # 0.95
GOOD = "『進撃の巨人』34巻は発送済みで、3月16日にお届け予定です。追跡番号は4821-9930-1174です。"


def test_a_grounded_complete_answer_scores_one_and_passes():
    score = score_response(case(), GOOD, ORDER_TARGET)
    assert score.composite == 1.0 and score.passed and score.critical == ()


def test_a_hallucinated_delivery_date_fails_order_status():
    response = GOOD + "もし遅れた場合でも3月18日までには必ず届きます。"
    score = score_response(case(), response, ORDER_TARGET)
    grounding = score.part("grounding")
    assert grounding.score == 0.0 and grounding.critical
    assert "invented date 03-18" in grounding.detail
    # facts 1.0*0.40 + grounding 0*0.30 + format 1.0*0.15 + titles 1.0*0.15 = 0.70 (weights sum to 1.0)
    assert score.composite == pytest.approx(0.70)
    assert not score.passed


def test_an_invented_order_id_fails_even_when_the_composite_would_pass_a_low_target():
    response = GOOD + "注文番号は503-0000000-1111111です。"
    score = score_response(case(), response, 0.5)
    assert "invented order_id 503-0000000-1111111" in score.part("grounding").detail
    assert score.composite >= 0.5 and not score.passed  # critical violation fails the case whatever the target


def test_a_date_in_the_context_in_another_notation_is_not_invented():
    # the context says 2025-03-14; writing it as 3月14日 is grounded
    score = score_response(case(), GOOD + "3月14日に発送しました。", ORDER_TARGET)
    assert score.part("grounding").score == 1.0 and score.passed


def test_a_listed_forbidden_fact_fails_even_when_it_is_in_the_history():
    trap = case(history=[{"role": "user", "content": "前の注文は3月10日に届きました"}], forbidden_facts=["3月10日"])
    score = score_response(trap, GOOD + "お届けは3月10日です。", ORDER_TARGET)
    assert "forbidden fact '3月10日'" in score.part("grounding").detail and not score.passed


def test_a_romanised_title_fails_where_the_query_used_kanji():
    response = GOOD.replace("『進撃の巨人』", "Attack on Titan")
    score = score_response(case(), response, ORDER_TARGET)
    titles = score.part("titles")
    assert titles.score == 0.0 and titles.critical
    assert "'進撃の巨人' written as 'Attack on Titan'" in titles.detail
    assert not score.passed


def test_a_title_kept_with_a_translation_beside_it_is_fine_and_case_matters():
    score = score_response(case(), GOOD.replace("『進撃の巨人』", "『進撃の巨人』(Attack on Titan)"), ORDER_TARGET)
    assert score.part("titles").score == 1.0
    one_piece = case(
        query="ONE PIECEの新刊は？", titles=[{"written": "ONE PIECE", "variants": ["One Piece", "ワンピース"]}]
    )
    assert score_response(one_piece, GOOD + "One Pieceの新刊です。", 0.5).part("titles").critical


def test_a_title_in_brackets_is_detected_without_being_listed():
    plain = case(titles=[])
    assert score_response(plain, GOOD.replace("『進撃の巨人』", "この作品の"), ORDER_TARGET).part("titles").score == 0.5


def test_missing_required_fact_scores_the_share_found():
    response = "『進撃の巨人』34巻は発送済みです。追跡番号は4821-9930-1174です。"
    score = score_response(case(), response, ORDER_TARGET)
    assert score.part("required_facts").score == pytest.approx(2 / 3)
    assert "missing: 3月16日" in score.part("required_facts").detail
    # 1 - 0.40 * (1/3) = 0.8667 < 0.95
    assert score.composite == pytest.approx(1 - 0.4 / 3, abs=1e-6) and not score.passed


def test_parts_that_do_not_apply_are_left_out_of_the_weights():
    chitchat = case(
        intent="chitchat",
        query="こんにちは",
        required_facts=[],
        titles=[],
        reference_answer="こんにちは！",
        expected_format={"style": "prose", "max_chars": 10},
    )
    score = score_response(chitchat, "こんにちは！今日はどんなマンガをお探しですか？", 0.78)
    assert score.part("required_facts").score is None and score.part("titles").score is None
    # grounding 1.0*0.30 + format 0.5*0.15 over weights 0.45 = 0.8333
    assert score.composite == pytest.approx(0.375 / 0.45, abs=1e-6) and score.passed


def test_format_style_length_and_truncation():
    bullets = case().expected_format.model_copy(update={"style": "bullets", "min_items": 3, "max_chars": 50})
    assert score_format(bullets, "・一\n・二\n・三").score == 1.0
    assert score_format(bullets, "・一\n・二").score == 0.5
    assert score_format(bullets, "一、二、三" * 20).score == 0.0
    assert score_format(bullets, "・一\n・二\n・三", stop_reason="max_tokens").detail == "truncated at max_tokens"


def test_entities_are_canonical():
    found = entities("503-1234567-7654321 / 2025年3月4日 / 3/4ではない / 12月1日 / ¥1,320 / 450円 / 4821-9930-1174")
    assert found == {
        ("order_id", "503-1234567-7654321"),
        ("date", "03-04"),
        ("date", "12-01"),
        ("price", "1320"),
        ("price", "450"),
        ("tracking_number", "482199301174"),
    }


def test_grader_part_is_pinned_by_hash_and_weighs_in():
    spec = GraderSpec(model_id="anthropic.claude-3-5-sonnet-20241022-v2:0")
    changed = spec.model_copy(update={"rubric": spec.rubric + "\n0: 採点不能"})
    assert spec.judge_hash != changed.judge_hash and len(spec.judge_hash) == 16
    grade = parse_grade('前置き {"score": 3, "reason": "一部欠落"} 後書き')
    assert grade.score == 0.5
    part = grade_part(spec, grade)
    assert spec.judge_hash in part.detail
    score = score_response(case(), GOOD, ORDER_TARGET, grader_part=part)
    # (0.40 + 0.30 + 0.15 + 0.15 + 0.20*0.5) / 1.20
    assert score.composite == pytest.approx(1.1 / 1.2, abs=1e-6)


@pytest.mark.parametrize("text", ["no json", '{"score": 7}', '{"score": "4"}', "{bad json}"])
def test_unparseable_grader_output_does_not_apply(text):
    assert parse_grade(text).score is None


def test_english_dates_and_yen_prices_are_checkable_facts():
    text = "It shipped on March 14, arrives Mar. 16th or the 2nd of April; ¥528 each, 3,980 yen in all. You may 3x it."
    assert entities(text) == {
        ("date", "03-14"),
        ("date", "03-16"),
        ("date", "04-02"),
        ("price", "528"),
        ("price", "3980"),
    }
    assert entities("Marvel 5, may 3, May I help?") == set()  # not month names: no dates


def test_an_invented_english_delivery_date_fails_grounding():
    english = case(
        query="When will my Attack on Titan vol. 34 arrive?",
        reference_answer="It shipped on March 14 and is due on March 16. Tracking number 4821-9930-1174.",
        required_facts=["March 16"],
        titles=[],
    )
    good = score_response(english, "It is due on March 16 (tracking 4821-9930-1174).", ORDER_TARGET)
    invented = score_response(english, "It is due on March 16, at the latest March 18.", ORDER_TARGET)
    assert good.part("grounding").score == 1.0
    assert invented.part("grounding").critical and "invented date 03-18" in invented.part("grounding").detail
