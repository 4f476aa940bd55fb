"""Optional judge model: model id, prompt and rubric pinned by one hash, so a change of judge shows in reports."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kanaria.domain.profiles import ModelParameters, config_hash
from kanaria.evaluation.dataset import GoldenCase
from kanaria.evaluation.prompting import converse_request
from kanaria.evaluation.scoring import WEIGHTS, ScorePart

JUDGE_MARKER = "[kanaria-judge]"  # first token of every judge system prompt (the offline adapter keys on it)
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


class JudgeSpec(BaseModel):
    """The judge: model, inference settings, prompt template and rubric (all part of `judge_hash`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str = Field(min_length=1, max_length=256)
    prompt: str = Field(default=DEFAULT_PROMPT, min_length=1, max_length=8000)
    rubric: str = Field(default=DEFAULT_RUBRIC, min_length=1, max_length=8000)
    temperature: float = Field(default=0.0, ge=0.0, le=1.0)
    max_tokens: int = Field(default=300, ge=16, le=4096)

    @property
    def judge_hash(self) -> str:
        """Stable hash of everything that decides the judge's verdicts."""
        return config_hash(self.model_dump(mode="json"))


class Verdict(BaseModel):
    """The judge's parsed answer: score 0-1 (from 1-5) or the reason it could not be parsed."""

    model_config = ConfigDict(frozen=True)

    score: float | None
    reason: str


def judge_request(spec: JudgeSpec, case: GoldenCase, response: str) -> dict[str, Any]:
    """The Converse request asking the judge to grade `response` against the case's reference."""
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
    system = f"{JUDGE_MARKER} あなたはマンガストアのチャットボット回答を採点する評価者です。 judge {spec.judge_hash}"
    return converse_request(parameters, system, [{"role": "user", "content": [{"text": user}]}])


def parse_verdict(text: str) -> Verdict:
    """First JSON object with an integer score 1-5 in the judge's text; a Verdict without score otherwise."""
    match = _JSON_OBJECT.search(text)
    if match is None:
        return Verdict(score=None, reason=f"no JSON object in judge output: {text[:80]!r}")
    try:
        document = json.loads(match.group(0))
    except json.JSONDecodeError as exc:
        return Verdict(score=None, reason=f"judge output is not JSON ({exc.msg})")
    raw = document.get("score") if isinstance(document, dict) else None
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= 5:
        return Verdict(score=None, reason=f"judge score must be an integer 1-5, got {raw!r}")
    return Verdict(score=(raw - 1) / 4, reason=str(document.get("reason", ""))[:300])


def judge_part(spec: JudgeSpec, verdict: Verdict) -> ScorePart:
    """The judge's verdict as a score part (not applicable when unparseable; the reason says so)."""
    detail = f"{spec.model_id} [{spec.judge_hash}]: {verdict.reason}"
    return ScorePart(name="judge", weight=WEIGHTS["judge"], score=verdict.score, detail=detail)
