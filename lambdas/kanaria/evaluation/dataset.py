"""Golden dataset: one JSON object per line, validated per line (errors name the line and the field)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kanaria.errors import ValidationError, validate

CASE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
INTENT_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
DATASET_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
LANGUAGE_PATTERN = r"^[a-z]{2}$"  # ISO 639-1
MAX_CASES = 5000
# Hiragana, katakana (full and half width) and CJK ideographs: a query with any of them is Japanese.
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")


def detect_language(text: str) -> str:
    """Japanese ("ja") when the text has Japanese script, else English ("en"): the store's two customer languages."""
    return "ja" if _JAPANESE.search(text) else "en"


class Turn(BaseModel):
    """One earlier message of the conversation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["user", "assistant"]
    content: str = Field(min_length=1, max_length=4000)


class Title(BaseModel):
    """A work's title as the query wrote it, and the forms that must not replace it (romanised, translated)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    written: str = Field(min_length=1, max_length=200)
    variants: tuple[str, ...] = Field(default=(), max_length=10)


class ExpectedFormat(BaseModel):
    """Shape of a good answer: list style, length bounds in characters, list items."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    style: Literal["prose", "bullets", "numbered"] = "prose"
    min_chars: int = Field(default=1, ge=0, le=20_000)
    max_chars: int = Field(default=2000, ge=1, le=20_000)
    min_items: int = Field(default=0, ge=0, le=50, description="bullets/numbered: at least this many items")

    @model_validator(mode="after")
    def _bounds(self) -> "ExpectedFormat":
        if self.min_chars > self.max_chars:
            raise ValueError("max_chars: must be at least min_chars")
        if self.style == "prose" and self.min_items:
            raise ValueError("min_items: only for bullets or numbered")
        return self


class GoldenCase(BaseModel):
    """One golden test case."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: str = Field(pattern=CASE_ID_PATTERN)
    intent: str = Field(pattern=INTENT_PATTERN)
    query: str = Field(min_length=1, max_length=4000)
    page_context: dict[str, Any] = Field(default_factory=dict, description="what the page showed (order, product)")
    history: tuple[Turn, ...] = Field(default=(), max_length=20)
    reference_answer: str = Field(min_length=1, max_length=8000)
    required_facts: tuple[str, ...] = Field(default=(), max_length=20, description="must appear in the answer")
    forbidden_facts: tuple[str, ...] = Field(
        default=(), max_length=20, description="must not appear (e.g. a date or an order id absent from the context)"
    )
    titles: tuple[Title, ...] = Field(default=(), max_length=10, description="titles to keep as written")
    expected_format: ExpectedFormat = Field(default_factory=ExpectedFormat)
    tags: tuple[str, ...] = Field(default=(), max_length=10)
    language: str | None = Field(
        default=None, pattern=LANGUAGE_PATTERN, description="ISO 639-1 code; absent: detected from the query"
    )

    @model_validator(mode="after")
    def _consistent(self) -> "GoldenCase":
        for i, fact in enumerate(self.required_facts):
            if not fact.strip():
                raise ValueError(f"required_facts.{i}: must not be blank")
        for i, fact in enumerate(self.forbidden_facts):
            if not fact.strip():
                raise ValueError(f"forbidden_facts.{i}: must not be blank")
            if fact in self.required_facts:
                raise ValueError(f"forbidden_facts.{i}: {fact!r} is also a required fact")
        return self

    @property
    def lang(self) -> str:
        """The case's language: as declared, else detected from the query."""
        return self.language or detect_language(self.query)

    def grounding_text(self) -> str:
        """Everything the answer may take facts from: query, page context, history and the reference answer."""
        parts = [self.query, json.dumps(self.page_context, ensure_ascii=False), self.reference_answer]
        parts.extend(turn.content for turn in self.history)
        return "\n".join(parts)


class Dataset(BaseModel):
    """A parsed golden dataset and its identity (name + content digest)."""

    model_config = ConfigDict(frozen=True)

    name: str
    sha256: str
    cases: tuple[GoldenCase, ...]
    uri: str | None = None  # s3://bucket/key?versionId=... when read from S3

    @property
    def version(self) -> str:
        """Dataset version used in record keys: '<name>@<first 12 hex digits of the content's SHA-256>'."""
        return f"{self.name}@{self.sha256[:12]}"

    def intents(self) -> list[str]:
        """Intents present, in first-seen order."""
        return list(dict.fromkeys(c.intent for c in self.cases))

    def only(self, intents: Iterable[str] | None) -> "Dataset":
        """The dataset restricted to some intents (same identity); ValidationError for an intent it lacks."""
        if not intents:
            return self
        wanted = list(dict.fromkeys(intents))
        missing = [i for i in wanted if i not in self.intents()]
        if missing:
            raise ValidationError(
                f"the dataset has no case for intent(s) {', '.join(missing)}; it has {', '.join(self.intents())}",
                field="intent",
            )
        return self.model_copy(update={"cases": tuple(c for c in self.cases if c.intent in wanted)})


def dataset_name(filename: str) -> str:
    """Dataset name from a file or object name: the base name without .jsonl."""
    base = filename.rstrip("/").rsplit("/", 1)[-1]
    name = base.removesuffix(".jsonl").removesuffix(".json")
    if not DATASET_NAME_PATTERN.match(name):
        raise ValidationError(f"dataset name {name!r} must match {DATASET_NAME_PATTERN.pattern}", field="dataset")
    return name


def parse_dataset(text: str, name: str, uri: str | None = None) -> Dataset:
    """Parse JSON lines; blank lines are skipped; the first bad line raises ValidationError '<name>:<line>:<field>'."""
    cases: list[GoldenCase] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            document = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"not valid JSON ({exc.msg} at column {exc.colno})", field=where) from None
        if not isinstance(document, dict):
            raise ValidationError("each line must be a JSON object", field=where)
        case = validate(GoldenCase, document, prefix=where)
        if case.case_id in seen:
            raise ValidationError(
                f"duplicate case_id {case.case_id!r} (first on line {seen[case.case_id]})", field=f"{where}:case_id"
            )
        seen[case.case_id] = number
        cases.append(case)
        if len(cases) > MAX_CASES:
            raise ValidationError(f"more than {MAX_CASES} cases; split the dataset", field=where)
    if not cases:
        raise ValidationError("the dataset has no cases", field=name)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Dataset(name=name, sha256=digest, cases=tuple(cases), uri=uri)
