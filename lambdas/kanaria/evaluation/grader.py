"""The LLM grader of the offline evaluation (LLM-as-a-judge, optional): model id, prompt and rubric pinned by one hash,
so a change of grader shows in reports.

The stored names keep the LLM-as-a-judge vocabulary: the score part "judge", `judge_hash` in records, reports and
summaries, and the `judge` run setting (`--judge` on the CLI)."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kanaria.domain.profiles import ModelParameters, config_hash
from kanaria.errors import ValidationError
from kanaria.evaluation.configs import endpoint_name, is_sagemaker
from kanaria.evaluation.dataset import GoldenCase
from kanaria.evaluation.prompting import converse_request
from kanaria.evaluation.scoring import WEIGHTS, ScorePart

GRADER_MARKER = "[kanaria-judge]"  # first token of every grader system prompt (the offline adapter keys on it)
DEFAULT_RUBRIC = (
    "5: 参照回答の要点をすべて正しく含み、質問に直接答え、自然な日本語。\n"
    "4: 要点はほぼ含むが、軽微な欠落や冗長さがある。\n"
    "3: 部分的に答えているが、重要な要点が一つ欠ける。\n"
    "2: 質問への答えになっていない部分が多い、または不正確。\n"
    "1: 無関係、誤り、または作り話を含む。"
)
DEFAULT_PROMPT = (
    "<question>{query}</question>\n<context>{context}</context>\n<reference>{reference}</reference>\n"
    "<response>{response}</response>\n評価基準:\n{rubric}\n"
    '{{"score": 1-5, "reason": "..."}} のJSONだけで答えてください。'
)
_JSON_OBJECT = re.compile(r"\{.*\}", re.S)


class GraderSpec(BaseModel):
    """The grader: model, inference settings, prompt template and rubric (all part of `judge_hash`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str = Field(min_length=1, max_length=256)
    prompt: str = Field(default=DEFAULT_PROMPT, min_length=1, max_length=8000)
    rubric: str = Field(default=DEFAULT_RUBRIC, min_length=1, max_length=8000)
    temperature: float = Field(default=0.0, ge=0.0, le=1.0)
    max_tokens: int = Field(default=300, ge=16, le=4096)

    @field_validator("model_id")
    @classmethod
    def _valid_endpoint(cls, value: str) -> str:
        if is_sagemaker(value):
            try:
                endpoint_name(value)
            except ValidationError as exc:
                raise ValueError(exc.reason) from None
        return value

    @property
    def judge_hash(self) -> str:
        """Stable hash of everything that decides the grader's grades (stored as `judge_hash`)."""
        return config_hash(self.model_dump(mode="json"))


class Grade(BaseModel):
    """The grader's parsed answer: score 0-1 (from 1-5) or the reason it could not be parsed."""

    model_config = ConfigDict(frozen=True)

    score: float | None
    reason: str


def grading_request(spec: GraderSpec, case: GoldenCase, response: str) -> dict[str, Any]:
    """The Converse request asking the grader to grade `response` against the case's reference."""
    user = spec.prompt.format(
        query=case.query,
        context=json.dumps(case.page_context, ensure_ascii=False, sort_keys=True),
        reference=case.reference_answer,
        response=response,
        rubric=spec.rubric,
    )
    parameters = ModelParameters(
        model_id=spec.model_id,
        temperature=spec.temperature,
        top_k=0,
        top_p=1.0,
        max_tokens=spec.max_tokens,
        stop_sequences=(),
    )
    system = f"{GRADER_MARKER} あなたはマンガストアのチャットボット回答を採点する評価者です。 judge {spec.judge_hash}"
    return converse_request(parameters, system, [{"role": "user", "content": [{"text": user}]}])


def parse_grade(text: str) -> Grade:
    """First JSON object with an integer score 1-5 in the grader's text; a Grade without score otherwise."""
    match = _JSON_OBJECT.search(text)
    if match is None:
        return Grade(score=None, reason=f"no JSON object in judge output: {text[:80]!r}")
    try:
        document = json.loads(match.group(0))
    except json.JSONDecodeError as exc:
        return Grade(score=None, reason=f"judge output is not JSON ({exc.msg})")
    raw = document.get("score") if isinstance(document, dict) else None
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= 5:
        return Grade(score=None, reason=f"judge score must be an integer 1-5, got {raw!r}")
    return Grade(score=(raw - 1) / 4, reason=str(document.get("reason", ""))[:300])


def grade_part(spec: GraderSpec, grade: Grade) -> ScorePart:
    """The grade as the "judge" score part (not applicable when unparseable; the reason says so)."""
    detail = f"{spec.model_id} [{spec.judge_hash}]: {grade.reason}"
    return ScorePart(name="judge", weight=WEIGHTS["judge"], score=grade.score, detail=detail)
