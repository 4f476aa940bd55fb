"""Evaluate (configuration, case) tasks: call the model, score, price. The Lambda evaluates one chunk of cases and
the CLI all of them, both through `evaluate_tasks` (threads bounded by `concurrency`)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Mapping

from kanaria.domain import pricing
from kanaria.domain.profiles import DEFAULT_PROFILES, IntentProfile, profile_for
from kanaria.evaluation.bedrock import ModelInvoker, ThrottledError, priced_model_id
from kanaria.evaluation.configs import EvalConfiguration, endpoint_name, is_sagemaker
from kanaria.evaluation.dataset import Dataset, GoldenCase
from kanaria.evaluation.grader import GraderSpec, grade_part, grading_request, parse_grade
from kanaria.evaluation.prompting import case_request
from kanaria.evaluation.records import CaseRecord
from kanaria.evaluation.scoring import ScorePart, score_response

MAX_CONCURRENCY = 16


@dataclass(frozen=True)
class Task:
    """One configuration on one case."""

    configuration: EvalConfiguration
    config_hash: str
    case: GoldenCase


def plan_tasks(
    dataset: Dataset,
    configurations: list[EvalConfiguration],
    profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES,
    *,
    start: int = 0,
    end: int | None = None,
) -> list[Task]:
    """Every configuration on cases[start:end], configuration-major (the order records are reported in)."""
    cases = dataset.cases[start:end]
    return [Task(c, c.config_hash(profiles), case) for c in configurations for case in cases]


def chunk_bounds(count: int, chunk_size: int) -> list[tuple[int, int]]:
    """[start, end) bounds covering `count` items in chunks of `chunk_size`."""
    return [(start, min(start + chunk_size, count)) for start in range(0, count, chunk_size)]


def _cost(model_id: str, input_tokens: int, output_tokens: int, latency_ms: float) -> Decimal | None:
    """The call's price: the Bedrock token table, or the endpoint's declared billing for "sagemaker:" ids."""
    priced = priced_model_id(model_id)
    if is_sagemaker(priced):
        endpoint = pricing.endpoint_price_for(endpoint_name(priced))
        return (
            None if endpoint is None else pricing.endpoint_call_cost(endpoint, input_tokens, output_tokens, latency_ms)
        )
    price = pricing.price_for(priced)
    return None if price is None else pricing.call_cost(price, input_tokens, output_tokens)


def evaluate_task(
    task: Task,
    invoker: ModelInvoker,
    grader: GraderSpec | None = None,
    profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES,
) -> CaseRecord:
    """Call the configuration's model on the case, score the response (and ask the grader), price the call."""
    case = task.case
    parameters = task.configuration.resolved(case.intent, profiles)
    target = profile_for(case.intent, profiles).quality_target
    base = dict(
        config_name=task.configuration.name,
        config_hash=task.config_hash,
        intent_hash=task.configuration.intent_hash(case.intent, profiles),
        model_id=parameters.model_id,
        case_id=case.case_id,
        intent=case.intent,
        quality_target=target,
        judge_hash=grader.judge_hash if grader else None,
    )
    part: ScorePart | None = None
    try:
        response = invoker.converse(case_request(case, parameters))
        if grader is not None:
            graded = invoker.converse(grading_request(grader, case, response.text))
            part = grade_part(grader, parse_grade(graded.text))
    except ThrottledError as exc:
        # Recorded, not raised: the case fails and the report counts it; any other error stops the run.
        return CaseRecord(
            **base, composite=0.0, passed=False, error=str(exc), attempts=exc.attempts, throttles=exc.attempts
        )
    score = score_response(case, response.text, target, stop_reason=response.stop_reason, grader_part=part)
    return CaseRecord(
        **base,
        composite=score.composite,
        passed=score.passed,
        parts=score.parts,
        critical=score.critical,
        response=response.text,
        stop_reason=response.stop_reason,
        input_tokens=response.input_tokens,
        output_tokens=response.output_tokens,
        latency_ms=round(response.latency_ms, 3),
        cost_usd=_cost(parameters.model_id, response.input_tokens, response.output_tokens, response.latency_ms),
        attempts=response.attempts,
        throttles=response.throttles,
    )


def evaluate_tasks(
    tasks: list[Task],
    invoker: ModelInvoker,
    grader: GraderSpec | None = None,
    *,
    concurrency: int = 4,
    profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES,
) -> list[CaseRecord]:
    """Evaluate tasks with at most `concurrency` calls in flight; records in task order."""
    workers = max(1, min(concurrency, MAX_CONCURRENCY, len(tasks) or 1))
    if workers == 1:
        return [evaluate_task(t, invoker, grader, profiles) for t in tasks]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kanaria-eval") as pool:
        return list(pool.map(lambda t: evaluate_task(t, invoker, grader, profiles), tasks))
