"""Build a versioned golden dataset from JSONL and CSV sources: every row validated (errors name the source, line
and field; nothing is written), duplicates dropped by a normalised text hash, an optional stratified sample per
(intent, language), and a manifest with the counts and hashes.

CSV columns are GoldenCase fields. Text columns as text; list-of-text columns (`required_facts`, `forbidden_facts`,
`tags`) as a JSON array or `|`-separated text; object columns (`page_context`, `history`, `titles`,
`expected_format`) as JSON. An empty cell is an absent field.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from pydantic import BaseModel, ConfigDict, Field

from kanaria.errors import ValidationError, validate
from kanaria.evaluation.dataset import MAX_CASES, GoldenCase, parse_dataset

MANIFEST_SCHEMA = "kanaria.golden-manifest/1"
DESIGN_TARGET_PER_INTENT = 200  # the evaluation design's "200+ test cases per intent"
MAX_REPORTED_ERRORS = 100
_LIST_COLUMNS = frozenset({"required_facts", "forbidden_facts", "tags"})
_JSON_COLUMNS = frozenset({"page_context", "history", "titles", "expected_format"})
_COLUMNS = frozenset(GoldenCase.model_fields)


@dataclass(frozen=True)
class Source:
    """One input file: its name (as errors cite it) and its text."""

    name: str
    text: str

    @property
    def kind(self) -> str:
        """The format by the file name: csv or jsonl."""
        return "csv" if self.name.lower().endswith(".csv") else "jsonl"

    @property
    def sha256(self) -> str:
        """SHA-256 of the source's bytes (UTF-8)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Row:
    """A validated case and where it came from."""

    case: GoldenCase
    where: str  # "<source>:<line>"
    text_hash: str


class ImportOptions(BaseModel):
    """How to build the dataset: at most `per_stratum` cases per (intent, language) (None: all), sampled with
    `seed`; `target_per_intent` is the size the manifest checks every intent against."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_stratum: int | None = Field(default=None, ge=1, le=MAX_CASES)
    seed: int = 0
    target_per_intent: int = Field(default=DESIGN_TARGET_PER_INTENT, ge=1, le=MAX_CASES)


@dataclass
class _Problems:
    """Every row error, the first one raised (so one run shows what to fix)."""

    details: list[dict[str, str]] = field(default_factory=list)

    def add(self, where: str, exc: ValidationError) -> None:
        found = exc.details or [{"field": exc.field or where, "reason": exc.reason}]
        room = MAX_REPORTED_ERRORS - len(self.details)
        self.details.extend({"field": str(d["field"]), "reason": str(d["reason"])} for d in found[: max(room, 0)])

    def raise_if_any(self) -> None:
        if self.details:
            first = self.details[0]
            more = f" (and {len(self.details) - 1} more, in details)" if len(self.details) > 1 else ""
            raise ValidationError(first["reason"] + more, field=first["field"], details=self.details)


class Duplicate(BaseModel):
    """A dropped case: `case_id` had the same normalised text as `kept`."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    where: str
    kept: str


class SourceEntry(BaseModel):
    """One source of a built dataset: its name, the SHA-256 of its bytes and the rows read from it."""

    model_config = ConfigDict(frozen=True)

    name: str
    sha256: str
    rows: int


class Manifest(BaseModel):
    """What a built dataset holds and how it was built (no timestamp: the same inputs give the same bytes)."""

    model_config = ConfigDict(frozen=True)

    schema_id: str = MANIFEST_SCHEMA
    name: str
    version: str
    sha256: str
    cases: int
    per_intent: dict[str, int]
    per_language: dict[str, int]
    per_stratum: dict[str, int]  # "<intent>/<language>"
    sources: list[SourceEntry]
    options: ImportOptions
    rows_read: int
    duplicates: list[Duplicate]
    sampled_out: int
    below_target: dict[str, int]  # intents with fewer cases than options.target_per_intent
    case_hashes: dict[str, str]  # case_id -> normalised text hash


def normalised_text(case: GoldenCase) -> str:
    """What makes two cases the same test: intent, query and history (NFKC, case-folded, spaces collapsed) and the
    page context (canonical JSON), so one question asked about two different orders is two cases."""

    def norm(text: str) -> str:
        return " ".join(unicodedata.normalize("NFKC", text).casefold().split())

    turns = [f"{t.role}:{norm(t.content)}" for t in case.history]
    context = json.dumps(case.page_context, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "\n".join([case.intent, norm(case.query), *turns, norm(context)])


def text_hash(case: GoldenCase) -> str:
    """First 16 hex digits of the SHA-256 of the case's normalised text."""
    return hashlib.sha256(normalised_text(case).encode("utf-8")).hexdigest()[:16]


Document = tuple[str, Any]  # ("<source>:<line>", the parsed row, or the ValidationError it raised)


def _jsonl_documents(source: Source) -> Iterator[Document]:
    for number, line in enumerate(source.text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source.name}:{number}"
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as exc:
            yield where, ValidationError(f"not valid JSON ({exc.msg} at column {exc.colno})", field=where)


def _cell(column: str, value: str, where: str) -> Any:
    if column in _JSON_COLUMNS or (column in _LIST_COLUMNS and value.lstrip().startswith("[")):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"not valid JSON ({exc.msg})", field=f"{where}.{column}") from None
    if column in _LIST_COLUMNS:
        return [part.strip() for part in value.split("|") if part.strip()]
    return value


def _csv_row(columns: list[str], cells: list[str], where: str) -> Any:
    if len(cells) != len(columns):
        return ValidationError(f"{len(cells)} cells for {len(columns)} columns", field=where)
    try:
        return {col: _cell(col, value, where) for col, value in zip(columns, cells) if value.strip()}
    except ValidationError as exc:
        return exc


def _csv_documents(source: Source) -> Iterator[Document]:
    reader = csv.reader(io.StringIO(source.text, newline=""))
    header = next(reader, None)
    columns = [c.strip() for c in header or []]
    unknown = [c for c in columns if c not in _COLUMNS]
    if not columns or unknown:
        reason = f"unknown column(s) {', '.join(unknown)}; columns are GoldenCase fields" if unknown else "no header"
        yield f"{source.name}:1", ValidationError(reason, field=f"{source.name}:1")
        return
    start = reader.line_num + 1
    for cells in reader:
        where = f"{source.name}:{start}"
        start = reader.line_num + 1  # a quoted cell may span lines: the next row starts after this one
        if any(c.strip() for c in cells):
            yield where, _csv_row(columns, cells, where)


def read_rows(sources: Sequence[Source]) -> list[Row]:
    """Every source's cases validated; ValidationError naming the first bad '<source>:<line>.<field>' (every
    problem in its details) when any row is bad, or a case_id is reused for a different case."""
    problems = _Problems()
    rows: list[Row] = []
    first_seen: dict[str, Row] = {}
    for source in sources:
        for where, document in _csv_documents(source) if source.kind == "csv" else _jsonl_documents(source):
            try:
                row = _row(document, where)
            except ValidationError as exc:
                problems.add(where, exc)
                continue
            earlier = first_seen.setdefault(row.case.case_id, row)
            if earlier.text_hash != row.text_hash:
                reason = f"case_id {row.case.case_id!r} is already a different case ({earlier.where})"
                problems.add(where, ValidationError(reason, field=f"{where}.case_id"))
                continue
            rows.append(row)
    problems.raise_if_any()
    return rows


def _row(document: Any, where: str) -> Row:
    if isinstance(document, ValidationError):
        raise document
    if not isinstance(document, dict):
        raise ValidationError("each row must be a JSON object", field=where)
    case = validate(GoldenCase, document, prefix=where)
    if case.language is None:  # written out explicitly, so the built dataset says what it was stratified by
        case = case.model_copy(update={"language": case.lang})
    return Row(case=case, where=where, text_hash=text_hash(case))


def deduplicate(rows: Sequence[Row]) -> tuple[list[Row], list[Duplicate]]:
    """The first row of every normalised text, and the rows dropped as its duplicates."""
    kept: dict[str, Row] = {}
    dropped: list[Duplicate] = []
    for row in rows:
        first = kept.get(row.text_hash)
        if first is None:
            kept[row.text_hash] = row
        else:
            dropped.append(Duplicate(case_id=row.case.case_id, where=row.where, kept=first.case.case_id))
    return list(kept.values()), dropped


def stratum(case: GoldenCase) -> str:
    """The sampling stratum of a case: "<intent>/<language>"."""
    return f"{case.intent}/{case.lang}"


def stratified_sample(rows: Sequence[Row], per_stratum: int | None, seed: int) -> list[Row]:
    """At most `per_stratum` rows of every (intent, language), drawn without replacement by a generator seeded
    per stratum (adding a stratum does not change another's draw); input order kept."""
    if per_stratum is None:
        return list(rows)
    groups: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(stratum(row.case), []).append(index)
    chosen: set[int] = set()
    for name, indices in groups.items():
        if len(indices) <= per_stratum:
            chosen.update(indices)
        else:
            chosen.update(random.Random(f"{seed}:{name}").sample(indices, per_stratum))
    return [row for index, row in enumerate(rows) if index in chosen]


def dataset_text(rows: Sequence[Row]) -> str:
    """The built dataset's JSON lines (defaults left out, so a line reads like a hand-written one)."""
    lines = [json.dumps(r.case.model_dump(mode="json", exclude_defaults=True), ensure_ascii=False) for r in rows]
    return "".join(line + "\n" for line in lines)


@dataclass(frozen=True)
class Built:
    """A built dataset: its text and its manifest."""

    text: str
    manifest: Manifest


def build(sources: Sequence[Source], name: str, options: ImportOptions | None = None) -> Built:
    """Validate, deduplicate and sample the sources into one dataset named `name`, with its manifest."""
    options = options or ImportOptions()
    if not sources:
        raise ValidationError("give at least one source file", field="sources")
    rows = read_rows(sources)
    unique, duplicates = deduplicate(rows)
    sampled = stratified_sample(unique, options.per_stratum, options.seed)
    if len(sampled) > MAX_CASES:
        raise ValidationError(
            f"{len(sampled)} cases after deduplication and sampling, more than {MAX_CASES}: sample with "
            "--per-stratum or split the dataset",
            field="--per-stratum",
        )
    text = dataset_text(sampled)
    dataset = parse_dataset(text, name)  # what `kanaria evaluate` will read: the same validation, once more
    per_intent = Counter(c.intent for c in dataset.cases)
    return Built(
        text=text,
        manifest=Manifest(
            name=name,
            version=dataset.version,
            sha256=dataset.sha256,
            cases=len(dataset.cases),
            per_intent=dict(sorted(per_intent.items())),
            per_language=dict(sorted(Counter(c.lang for c in dataset.cases).items())),
            per_stratum=dict(sorted(Counter(stratum(c) for c in dataset.cases).items())),
            sources=[
                SourceEntry(name=s.name, sha256=s.sha256, rows=sum(r.where.startswith(f"{s.name}:") for r in rows))
                for s in sources
            ],
            options=options,
            rows_read=len(rows),
            duplicates=duplicates,
            sampled_out=len(unique) - len(sampled),
            below_target={i: n for i, n in sorted(per_intent.items()) if n < options.target_per_intent},
            case_hashes={r.case.case_id: r.text_hash for r in sampled},
        ),
    )
