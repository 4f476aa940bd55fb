"""Quality score of one response, in explained parts, and the composite compared with the intent's target.

Parts (weight; applies when):
    required_facts  0.40  the case lists required facts     share of them found in the response
    grounding       0.30  always                            1 unless a forbidden fact or an invented date, order
                                                            id, tracking number or price appears (critical)
    format          0.15  always                            list style and length (0.5 each); 0 when truncated
    titles          0.15  the query names a title           per title: 1 written as in the query, 0.5 absent,
                                                            0 replaced by a romanised/translated form (critical)
    judge           0.20  an LLM grader is configured       the grader's 1-5 rubric score mapped to 0-1
composite = sum(weight * score) / sum(weight) over the parts that apply. A case passes when the composite meets
the intent's quality target and no critical violation occurred.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable

from pydantic import BaseModel, ConfigDict, Field

from kanaria.evaluation.dataset import ExpectedFormat, GoldenCase

SCORER_VERSION = "rules-v1"
WEIGHTS: dict[str, float] = {"required_facts": 0.40, "grounding": 0.30, "format": 0.15, "titles": 0.15, "judge": 0.20}
PASS_EPSILON = 1e-9

_SPACE = re.compile(r"\s+")
_DATE_FULL = re.compile(r"(?<!\d)(\d{4})\s*[年/.\-]\s*(\d{1,2})\s*[月/.\-]\s*(\d{1,2})\s*日?")
_DATE_MONTH_DAY = re.compile(r"(?<!\d)(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_NAME = (
    r"(January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?"
)
# English dates: "March 16", "Mar. 16th", "16 March"; capitalised month names only ("you may 3" is not a date)
_DATE_EN = re.compile(
    rf"\b{_MONTH_NAME}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b|\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH_NAME}(?!\w)"
)
_ORDER_ID = re.compile(r"(?<!\d)\d{3}-\d{7}-\d{7}(?!\d)")
_TRACKING = re.compile(r"(?<![\d-])\d{4}-?\d{4}-?\d{4}(?![\d-])")
_PRICE = re.compile(r"¥\s*(\d{1,3}(?:,\d{3})+|\d+)|(\d{1,3}(?:,\d{3})+|\d+)\s*(?:円|yen\b)", re.IGNORECASE)
_BULLET = re.compile(r"^\s*[-*・•●◆]\s*\S")
_NUMBERED = re.compile(r"^\s*(?:\d{1,2}\s*[.)．、]|[①-⑳])\s*\S")


class ScorePart(BaseModel):
    """One explained part of the score (score None when the part does not apply to the case)."""

    model_config = ConfigDict(frozen=True)

    name: str
    weight: float
    score: float | None
    detail: str = ""
    critical: bool = False


class CaseScore(BaseModel):
    """Composite of the parts, the target it was compared with, and whether the case passed."""

    model_config = ConfigDict(frozen=True)

    parts: tuple[ScorePart, ...]
    composite: float
    quality_target: float
    passed: bool
    critical: tuple[str, ...] = Field(default=(), description="violations that fail the case whatever the composite")

    def part(self, name: str) -> ScorePart:
        """One part by name."""
        return next(p for p in self.parts if p.name == name)


def normalize(text: str) -> str:
    """Comparison form for facts: NFKC, case-folded, without whitespace."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", text)).casefold()


def _as_written(text: str) -> str:
    """Comparison form for titles: NFKC without whitespace, case kept (ONE PIECE is not One Piece)."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", text))


def entities(text: str) -> set[tuple[str, str]]:
    """Checkable facts in a text as (kind, canonical value): dates (month-day), order ids, tracking numbers, prices."""
    rest = unicodedata.normalize("NFKC", text)
    found: set[tuple[str, str]] = set()
    for match in _ORDER_ID.finditer(rest):
        found.add(("order_id", match.group(0)))
    rest = _ORDER_ID.sub(" ", rest)
    for match in _DATE_FULL.finditer(rest):
        month, day = int(match.group(2)), int(match.group(3))
        if 1 <= month <= 12 and 1 <= day <= 31:
            found.add(("date", f"{month:02d}-{day:02d}"))
    rest = _DATE_FULL.sub(" ", rest)
    for match in _DATE_MONTH_DAY.finditer(rest):
        month, day = int(match.group(1)), int(match.group(2))
        if 1 <= month <= 12 and 1 <= day <= 31:
            found.add(("date", f"{month:02d}-{day:02d}"))
    found |= _english_dates(rest)
    rest = _DATE_EN.sub(" ", rest)
    for match in _TRACKING.finditer(rest):
        found.add(("tracking_number", match.group(0).replace("-", "")))
    rest = _TRACKING.sub(" ", rest)
    for match in _PRICE.finditer(rest):
        found.add(("price", (match.group(1) or match.group(2)).replace(",", "")))
    return found


def _english_dates(text: str) -> set[tuple[str, str]]:
    """("date", "MM-DD") of every English month-day date in the text."""
    found: set[tuple[str, str]] = set()
    for match in _DATE_EN.finditer(text):
        name, day = (match.group(1), match.group(2)) if match.group(1) else (match.group(4), match.group(3))
        if 1 <= int(day) <= 31:
            found.add(("date", f"{_MONTHS.index(name[:3].lower()) + 1:02d}-{int(day):02d}"))
    return found


def score_required_facts(case: GoldenCase, response: str) -> ScorePart:
    """Share of the required facts present in the response."""
    weight = WEIGHTS["required_facts"]
    if not case.required_facts:
        return ScorePart(name="required_facts", weight=weight, score=None, detail="no required facts")
    text = normalize(response)
    missing = [fact for fact in case.required_facts if normalize(fact) not in text]
    found = len(case.required_facts) - len(missing)
    detail = f"{found}/{len(case.required_facts)} present"
    if missing:
        detail += "; missing: " + ", ".join(missing)
    return ScorePart(name="required_facts", weight=weight, score=found / len(case.required_facts), detail=detail)


def score_grounding(case: GoldenCase, response: str) -> ScorePart:
    """0 (critical) when a forbidden fact or an entity absent from the context, history and reference appears."""
    text = normalize(response)
    violations = [f"forbidden fact {fact!r}" for fact in case.forbidden_facts if normalize(fact) in text]
    known = entities(case.grounding_text())
    invented = sorted(entities(response) - known)
    violations += [f"invented {kind} {value}" for kind, value in invented]
    if violations:
        return ScorePart(
            name="grounding", weight=WEIGHTS["grounding"], score=0.0, detail="; ".join(violations), critical=True
        )
    return ScorePart(name="grounding", weight=WEIGHTS["grounding"], score=1.0, detail="no forbidden or invented facts")


def _items(response: str, pattern: re.Pattern[str]) -> int:
    return sum(1 for line in response.splitlines() if pattern.match(line))


def score_format(expected: ExpectedFormat, response: str, stop_reason: str = "") -> ScorePart:
    """0.5 for the list style, 0.5 for the length; 0 when the model stopped at max_tokens (truncated)."""
    weight = WEIGHTS["format"]
    if stop_reason == "max_tokens":
        return ScorePart(name="format", weight=weight, score=0.0, detail="truncated at max_tokens")
    length = len(response.strip())
    notes = []
    length_ok = expected.min_chars <= length <= expected.max_chars
    if not length_ok:
        notes.append(f"{length} chars outside {expected.min_chars}-{expected.max_chars}")
    if expected.style == "prose":
        style_ok = True
    else:
        pattern = _BULLET if expected.style == "bullets" else _NUMBERED
        needed = max(expected.min_items, 2)
        count = _items(response, pattern)
        style_ok = count >= needed
        if not style_ok:
            notes.append(f"{count} {expected.style} items, expected at least {needed}")
    score = 0.5 * style_ok + 0.5 * length_ok
    return ScorePart(
        name="format", weight=weight, score=score, detail="; ".join(notes) or f"{expected.style}, {length} chars"
    )


def query_titles(case: GoldenCase) -> list[tuple[str, tuple[str, ...]]]:
    """Titles the query writes: the case's listed titles found in the query, plus any 『…』 title in it."""
    query = _as_written(case.query)
    titles = [(t.written, t.variants) for t in case.titles if _as_written(t.written) in query]
    listed = {_as_written(w) for w, _ in titles}
    for match in re.finditer(r"『([^』]{1,100})』", case.query):
        if _as_written(match.group(1)) not in listed:
            titles.append((match.group(1), ()))
            listed.add(_as_written(match.group(1)))
    return titles


def score_titles(case: GoldenCase, response: str) -> ScorePart:
    """Titles kept as the query wrote them; a romanised or translated form in their place is critical."""
    weight = WEIGHTS["titles"]
    titles = query_titles(case)
    if not titles:
        return ScorePart(name="titles", weight=weight, score=None, detail="the query names no title")
    text = _as_written(response)
    folded = normalize(response)
    scores, notes, replaced = [], [], []
    for written, variants in titles:
        if _as_written(written) in text:
            scores.append(1.0)
            continue
        used = [v for v in variants if normalize(v) in folded]
        if used:
            scores.append(0.0)
            replaced.append(f"{written!r} written as {used[0]!r}")
        else:
            scores.append(0.5)
            notes.append(f"{written!r} not mentioned")
    detail = "; ".join(replaced + notes) or f"{len(titles)} title(s) as written"
    return ScorePart(
        name="titles", weight=weight, score=sum(scores) / len(scores), detail=detail, critical=bool(replaced)
    )


def composite(parts: Iterable[ScorePart]) -> float:
    """Weighted mean of the applicable parts (0 when none applies)."""
    applicable = [p for p in parts if p.score is not None]
    total = sum(p.weight for p in applicable)
    return sum(p.weight * p.score for p in applicable if p.score is not None) / total if total else 0.0


def score_response(
    case: GoldenCase,
    response: str,
    quality_target: float,
    *,
    stop_reason: str = "",
    grader_part: ScorePart | None = None,
) -> CaseScore:
    """Every part, the composite, and pass = composite >= target and nothing critical."""
    parts = [
        score_required_facts(case, response),
        score_grounding(case, response),
        score_format(case.expected_format, response, stop_reason),
        score_titles(case, response),
    ]
    if grader_part is not None:
        parts.append(grader_part)
    value = composite(parts)
    critical = tuple(f"{p.name}: {p.detail}" for p in parts if p.critical)
    passed = value + PASS_EPSILON >= quality_target and not critical
    return CaseScore(
        parts=tuple(parts), composite=round(value, 6), quality_target=quality_target, passed=passed, critical=critical
    )
