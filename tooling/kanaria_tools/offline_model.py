"""The offline adapter (a fake model): a deterministic stand-in for bedrock-runtime Converse, for `kanaria evaluate`,
the local rehearsal and the tests. Tooling only: the deployed evaluation runner calls Bedrock and refuses "offline:"
model ids.

Model ids "offline:<bedrock model id>" pick a simulated model family from the id (haiku, sonnet, opus). It
answers from the golden case's reference answer and degrades it the way that family tends to: omitting required
facts (Haiku often on recommendations), inventing a date or price, romanising a title, breaking the list format,
and it reports usage and latency like Bedrock does. The same (model, case, sampling parameters) always gives
the same response. The behaviour numbers below are invented for rehearsal, not measurements of real models.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable

from botocore.exceptions import ClientError

from kanaria.errors import ValidationError
from kanaria.evaluation.bedrock import ModelInvoker
from kanaria.evaluation.configs import OFFLINE_PREFIX
from kanaria.evaluation.dataset import Dataset, GoldenCase
from kanaria.evaluation.grader import GRADER_MARKER
from kanaria.evaluation.scoring import normalize

_SENTENCE = re.compile(r"[^。！？\n]*[。！？]?")
_LIST_MARKER = re.compile(r"^\s*(?:[-*・•●◆]|\d{1,2}\s*[.)．、]|[①-⑳])\s*")


@dataclass(frozen=True)
class Family:
    """Simulated behaviour of a model family: error rates (per intent where it matters), speed, verbosity."""

    omit: dict[str, float]  # per required fact
    invent: dict[str, float]  # per response, scaled by (0.5 + temperature)
    romanise: float  # per title
    format_break: float  # per response
    first_token_ms: float
    ms_per_output_token: float
    ms_per_input_token: float
    latency_sigma: float  # log-normal spread
    default_omit: float = 0.05
    default_invent: float = 0.01
    padding: tuple[str, ...] = field(default=())  # chatty additions (tokens, length)


FAMILIES: dict[str, Family] = {
    "haiku": Family(
        omit={
            "order_status": 0.01,
            "shipping_info": 0.02,
            "product_search": 0.05,
            "manga_qa": 0.06,
            "recommendation": 0.40,
            "chitchat": 0.02,
        },
        invent={
            "order_status": 0.01,
            "shipping_info": 0.02,
            "product_search": 0.03,
            "manga_qa": 0.04,
            "recommendation": 0.03,
            "chitchat": 0.0,
        },
        romanise=0.06,
        format_break=0.04,
        first_token_ms=260,
        ms_per_output_token=3.2,
        ms_per_input_token=0.08,
        latency_sigma=0.22,
    ),
    "sonnet": Family(
        omit={
            "order_status": 0.005,
            "shipping_info": 0.01,
            "product_search": 0.02,
            "manga_qa": 0.03,
            "recommendation": 0.06,
            "chitchat": 0.01,
        },
        invent={
            "order_status": 0.005,
            "shipping_info": 0.005,
            "product_search": 0.01,
            "manga_qa": 0.02,
            "recommendation": 0.01,
            "chitchat": 0.0,
        },
        romanise=0.01,
        format_break=0.03,
        first_token_ms=520,
        ms_per_output_token=7.5,
        ms_per_input_token=0.15,
        latency_sigma=0.2,
        padding=("ほかにもご不明な点があればお気軽にお尋ねください。",),
    ),
    "opus": Family(
        omit={"recommendation": 0.04},
        invent={},
        romanise=0.005,
        format_break=0.02,
        first_token_ms=900,
        ms_per_output_token=16.0,
        ms_per_input_token=0.3,
        latency_sigma=0.2,
        default_omit=0.01,
        default_invent=0.003,
        padding=("ほかにもご不明な点があればお気軽にお尋ねください。",),
    ),
}


def approx_tokens(text: str) -> int:
    """Token estimate: ~4 ASCII characters or ~1 Japanese character per token."""
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    return max(1, math.ceil(ascii_chars / 4 + (len(text) - ascii_chars)))


def family_of(model_id: str) -> Family:
    """Family of an offline model id; unknown families are a client error like Bedrock's."""
    name = model_id.removeprefix(OFFLINE_PREFIX).lower()
    for key, family in FAMILIES.items():
        if key in name:
            return family
    raise ClientError(
        {
            "Error": {
                "Code": "ValidationException",
                "Message": f"offline adapter: no simulated family (haiku, sonnet, opus) in {model_id!r}",
            }
        },
        "Converse",
    )


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _segments(text: str) -> list[str]:
    """Lines, each split into sentences (delimiters kept)."""
    out: list[str] = []
    for line in text.split("\n"):
        pieces = [p for p in _SENTENCE.findall(line) if p]
        out.extend(pieces or [""])
        out.append("\n")
    return out[:-1]


def _drop_fact(text: str, fact: str) -> str:
    """The text without the sentences (or list lines) that carry `fact`."""
    key = normalize(fact)
    kept = [s for s in _segments(text) if s == "\n" or key not in normalize(s)]
    joined = "".join(kept)
    return re.sub(r"\n{2,}", "\n", joined).strip()


def _invented(case: GoldenCase, rng: random.Random) -> str:
    """A plausible fact that is not in the case: a delivery/release date, or a price for product questions."""
    grounding = normalize(case.grounding_text())
    for _ in range(50):
        month, day = rng.randint(1, 12), rng.randint(1, 28)
        price = rng.randrange(480, 2400, 10)
        if case.intent == "product_search" and normalize(f"{price:,}円") not in grounding:
            return f"価格は{price:,}円です。"
        if normalize(f"{month}月{day}日") not in grounding:
            if case.intent in {"order_status", "shipping_info"}:
                return f"お届け予定日は{month}月{day}日です。"
            return f"次の巻は{month}月{day}日発売予定です。"
    return "お届け予定日は2月30日です。"  # pragma: no cover - an impossible date, still flagged


def _flatten(text: str) -> str:
    """A list turned into run-on prose (format break)."""
    lines = [_LIST_MARKER.sub("", line).strip() for line in text.splitlines() if line.strip()]
    return "".join(line if line.endswith(("。", "！", "？")) else line + "、" for line in lines).rstrip("、") + "。"


def simulate_answer(case: GoldenCase, model_id: str, inference: dict[str, Any], extra: dict[str, Any]) -> str:
    """The simulated model's answer to `case` (deterministic in model, case and sampling parameters)."""
    family = family_of(model_id)
    temperature = float(inference.get("temperature", 0.5))
    rng = _rng(model_id, case.case_id, temperature, inference.get("topP"), extra.get("top_k"))
    text = case.reference_answer
    for fact in case.required_facts:
        if rng.random() < family.omit.get(case.intent, family.default_omit):
            text = _drop_fact(text, fact) or "申し訳ありません、その情報は確認できませんでした。"
    for title in case.titles:
        if title.variants and rng.random() < family.romanise:
            text = text.replace(title.written, title.variants[0])
    if rng.random() < family.format_break:
        if case.expected_format.style != "prose":
            text = _flatten(text)
        else:
            text = text + "\n" + "なお、" + text  # repeats itself: over length
    if rng.random() < family.invent.get(case.intent, family.default_invent) * (0.5 + temperature):
        text = text.rstrip() + "\n" + _invented(case, rng)
    for line in family.padding:
        if len(text) + len(line) <= case.expected_format.max_chars:
            text = text.rstrip() + "\n" + line
    return text


def _text_of(message: dict[str, Any]) -> str:
    return "".join(block.get("text", "") for block in message.get("content", []))


class OfflineBedrockRuntime:
    """`converse(**request)` with Bedrock's response shape; `throttle_every=n` throttles every n-th first call."""

    def __init__(self, cases: Iterable[GoldenCase], *, throttle_every: int = 0):
        self._by_query: dict[str, list[GoldenCase]] = {}
        for case in cases:
            self._by_query.setdefault(case.query, []).append(case)
        self._throttle_every = throttle_every
        self._calls = 0
        self._throttled: set[str] = set()
        self._lock = threading.Lock()  # the runner calls from several threads

    def _case(self, system: str, last_message: str) -> GoldenCase:
        candidates = self._by_query.get(last_message) or [
            case for query, cases in self._by_query.items() if last_message.endswith("\n" + query) for case in cases
        ]
        if len(candidates) > 1:
            candidates = [
                c for c in candidates if json.dumps(c.page_context, ensure_ascii=False, sort_keys=True) in system
            ] or candidates
        if not candidates:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ValidationException",
                        "Message": "offline adapter: the query is not a golden case",
                    }
                },
                "Converse",
            )
        return candidates[0]

    def _maybe_throttle(self, key: str) -> None:
        with self._lock:
            self._calls += 1
            throttle = self._throttle_every and self._calls % self._throttle_every == 0 and key not in self._throttled
            if throttle:
                self._throttled.add(key)
        if throttle:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Too many requests (offline)"}}, "Converse"
            )

    def converse(self, **request: Any) -> dict[str, Any]:
        """Answer like Bedrock Converse: output message, stopReason, usage and metrics.latencyMs."""
        model_id = request["modelId"]
        family = family_of(model_id)
        system = "".join(block.get("text", "") for block in request.get("system", []))
        message_list = request["messages"]
        last = _text_of(message_list[-1])
        inference = request.get("inferenceConfig", {})
        extra = request.get("additionalModelRequestFields", {})
        self._maybe_throttle(f"{model_id}|{hashlib.sha256(last.encode()).hexdigest()}")
        if system.startswith(GRADER_MARKER):
            text, rng = _grade(last), _rng(model_id, "judge", last)
        else:
            case = self._case(system, last)
            text = simulate_answer(case, model_id, inference, extra)
            rng = _rng(model_id, case.case_id, "latency")
        input_tokens = approx_tokens(system) + sum(approx_tokens(_text_of(m)) for m in message_list)
        output_tokens = approx_tokens(text)
        stop_reason = "end_turn"
        max_tokens = int(inference.get("maxTokens", 4096))
        if output_tokens > max_tokens:
            text, output_tokens, stop_reason = _truncate(text, max_tokens), max_tokens, "max_tokens"
        latency = (
            family.first_token_ms
            + input_tokens * family.ms_per_input_token
            + output_tokens * family.ms_per_output_token
        ) * math.exp(rng.gauss(0.0, family.latency_sigma))
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": stop_reason,
            "usage": {
                "inputTokens": input_tokens,
                "outputTokens": output_tokens,
                "totalTokens": input_tokens + output_tokens,
            },
            "metrics": {"latencyMs": int(round(latency))},
        }


def _truncate(text: str, max_tokens: int) -> str:
    out = []
    for ch in text:
        out.append(ch)
        if approx_tokens("".join(out)) >= max_tokens:
            break
    return "".join(out)


def _between(text: str, tag: str) -> str:
    match = re.search(f"<{tag}>(.*?)</{tag}>", text, re.S)
    return match.group(1) if match else ""


def _bigrams(text: str) -> set[str]:
    folded = normalize(text)
    return {folded[i : i + 2] for i in range(len(folded) - 1)}


def check_offline_models(configurations: Iterable[Any], dataset: Dataset, judge: Any | None = None) -> None:
    """Refuse, as bad input naming the field, an "offline:" model id the adapter has no family for (before any
    case runs: otherwise every call of that configuration fails as Bedrock would)."""
    intents = sorted({case.intent for case in dataset.cases})
    for configuration in configurations:
        form = "parameters" if configuration.parameters is not None else "overrides"
        for model_id in configuration.model_ids(intents):
            _check_family(model_id, f"{configuration.name}.{form}.model_id")
    if judge is not None:
        _check_family(judge.model_id, "--judge.model_id")


def _check_family(model_id: str, field: str) -> None:
    if model_id.startswith(OFFLINE_PREFIX):
        try:
            family_of(model_id)
        except ClientError as exc:
            raise ValidationError(exc.response["Error"]["Message"], field=field) from None


def _grade(prompt: str) -> str:
    """Offline grader: 1-5 from the character-bigram overlap (Dice) of the response with the reference."""
    reference, response = _bigrams(_between(prompt, "reference")), _bigrams(_between(prompt, "response"))
    dice = 2 * len(reference & response) / (len(reference) + len(response)) if reference and response else 0.0
    score = 1 + round(4 * dice)
    return json.dumps({"score": score, "reason": f"reference overlap {dice:.2f} (offline judge)"}, ensure_ascii=False)


def offline_invoker(dataset: Dataset, *, throttle_every: int = 0, **kwargs: Any) -> ModelInvoker:
    """An invoker answering "offline:" model ids from `dataset` (and real ones from Bedrock, as deployed)."""
    return ModelInvoker(offline=OfflineBedrockRuntime(dataset.cases, throttle_every=throttle_every), **kwargs)
