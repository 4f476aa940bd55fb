"""The Converse request for one golden case: system prompt (prompt version, page context, format), history, query."""

from __future__ import annotations

import json
from typing import Any

from kanaria.domain.profiles import ModelParameters
from kanaria.evaluation.dataset import ExpectedFormat, GoldenCase

# The evaluation prompt is generic: the chatbot's own prompt templates (selected by system_prompt_version) live in
# the chatbot, so the version is stated in the prompt and hashed with the configuration, not expanded here.
SYSTEM_TEMPLATE = (
    "あなたはマンガ専門オンラインストアのアシスタントです（prompt {version}, intent {intent}）。\n"
    "ルール: ページ情報と会話にない日付・注文番号・価格・追跡番号を作らないこと。"
    "作品名はお客様が書いた表記のまま使うこと。\n"
    "回答形式: {format}\n"
    "ページ情報(JSON):\n{context}"
)
_STYLE = {"prose": "文章", "bullets": "箇条書き", "numbered": "番号付きリスト"}
_LANGUAGE_NAMES = {"en": "英語 (English)"}


def format_instruction(expected: ExpectedFormat) -> str:
    """The expected format in words (a product requirement, so it belongs in the prompt)."""
    items = f"（{expected.min_items}項目以上）" if expected.min_items else ""
    return f"{_STYLE[expected.style]}{items}、{expected.max_chars}文字以内"


def system_prompt(case: GoldenCase, parameters: ModelParameters) -> str:
    """System prompt of a case; leading assistant turns of the history are appended (Converse starts with user)."""
    text = SYSTEM_TEMPLATE.format(
        version=parameters.system_prompt_version,
        intent=case.intent,
        format=format_instruction(case.expected_format),
        context=json.dumps(case.page_context, ensure_ascii=False, sort_keys=True),
    )
    if case.lang != "ja":  # the template is Japanese: say which language the customer wrote in
        text += f"\n回答言語: {_LANGUAGE_NAMES.get(case.lang, case.lang)}（お客様の言語で答えること）"
    leading = []
    for turn in case.history:
        if turn.role != "assistant":
            break
        leading.append(turn.content)
    if leading:
        text += "\n直前のアシスタントの発言:\n" + "\n".join(leading)
    return text


def messages(case: GoldenCase) -> list[dict[str, Any]]:
    """History then the query as alternating Converse messages (same-role neighbours merged)."""
    turns = list(case.history)
    while turns and turns[0].role == "assistant":
        turns.pop(0)
    out: list[dict[str, Any]] = []
    for role, content in [*((t.role, t.content) for t in turns), ("user", case.query)]:
        if out and out[-1]["role"] == role:
            out[-1]["content"][0]["text"] += "\n" + content
        else:
            out.append({"role": role, "content": [{"text": content}]})
    return out


def converse_request(parameters: ModelParameters, system: str, message_list: list[dict[str, Any]]) -> dict[str, Any]:
    """Keyword arguments of bedrock-runtime Converse for the resolved configuration's inference parameters.

    top_k goes in additionalModelRequestFields (Anthropic); frequency_penalty has no Anthropic equivalent on
    Bedrock and is not sent (it stays part of the configuration hash)."""
    inference: dict[str, Any] = {
        "maxTokens": parameters.max_tokens,
        "temperature": parameters.temperature,
        "topP": parameters.top_p,
    }
    if parameters.stop_sequences:
        inference["stopSequences"] = list(parameters.stop_sequences)
    request: dict[str, Any] = {
        "modelId": parameters.model_id,
        "system": [{"text": system}],
        "messages": message_list,
        "inferenceConfig": inference,
    }
    if parameters.top_k:
        request["additionalModelRequestFields"] = {"top_k": parameters.top_k}
    return request


def case_request(case: GoldenCase, parameters: ModelParameters) -> dict[str, Any]:
    """The Converse request for a case under a resolved configuration."""
    return converse_request(parameters, system_prompt(case, parameters), messages(case))
