"""Property-based fuzzing of the HTTP APIs: the real handlers (assign, assign/batch, observations,
observations/batch, experiments, transitions) on moto with generated inputs (wrong types, missing fields, huge and
tiny numbers, NaN/Infinity, unicode and control characters in ids, oversized and deeply nested bodies, duplicate
ids in a batch, random bytes).

Properties, for every input: no response >= 500 and no exception out of the handler (Lambda would answer 500 with
a traceback in the logs); a 4xx names what is wrong; no successful DynamoDB write for a rejected request or item.

`make test` runs a few dozen inputs per API; `make fuzz` (pytest -m fuzz) runs KANARIA_FUZZ_EXAMPLES (default
1,000) per API and prints the figures (KANARIA_FUZZ_REPORT=path also writes them as JSON).
"""

from __future__ import annotations

import importlib
import json
import os
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from kanaria import names
from tests.support.aws import FakeLambdaContext, create_tables, http_event, put_profiles

PREFIX = "fz"
CALLER = "arn:aws:iam::123456789012:user/fuzzer"
EXPERIMENT = "exp-fz"
CI_EXAMPLES = 25
FUZZ_EXAMPLES = int(os.environ.get("KANARIA_FUZZ_EXAMPLES", "1000"))
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
COMMON = dict(
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)


# --- the world ---------------------------------------------------------------------------------------------------


class World:
    """Handlers on one moto account for the whole module, and what the fuzzing saw."""

    def __init__(self) -> None:
        self.writes: list[str] = []  # successful DynamoDB writes of the current input
        self.status: dict[str, Counter] = defaultdict(Counter)  # API -> status class -> count
        self.inputs: Counter = Counter()
        self.rejected_writes: Counter = Counter()  # must stay 0
        self.accepted_ids: set[str] = set()
        self.handlers: dict[str, Callable] = {}

    def call(
        self,
        api: str,
        handler: str,
        method: str,
        path: str,
        body: str | None,
        path_parameters: dict[str, str] | None = None,
        route_key: str | None = None,
    ) -> tuple[int, Any]:
        """One request; asserts the properties shared by every API; returns (status, decoded body)."""
        event = http_event(method, path, None, CALLER, path_parameters, route_key=route_key)
        event["body"] = body
        self.writes.clear()
        self.inputs[api] += 1
        response = self.handlers[handler](event, FakeLambdaContext())  # an exception here is a 500 + traceback
        status = int(response["statusCode"])
        self.status[api][f"{status // 100}xx"] += 1
        assert status < 500, (api, status, response.get("body"), (body or "")[:300])
        decoded = json.loads(response["body"]) if response.get("body") else None
        if status >= 400:
            assert decoded["error"]["message"] and decoded["error"]["code"], decoded
            if self.writes:
                self.rejected_writes[api] += len(self.writes)
            assert not self.writes, (api, status, self.writes, decoded)
        return status, decoded


def _record_writes(world: World) -> None:
    session = boto3.DEFAULT_SESSION

    def after_call(model: Any, http_response: Any = None, **_: Any) -> None:
        if model.name in WRITES and http_response is not None and http_response.status_code == 200:
            world.writes.append(model.name)

    session.events.register("after-call.dynamodb", after_call)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    environment = {
        names.ENV_EXPERIMENTS_TABLE: names.table_name(PREFIX, "experiments"),
        names.ENV_ASSIGNMENTS_TABLE: names.table_name(PREFIX, "assignments"),
        names.ENV_OBSERVATIONS_TABLE: names.table_name(PREFIX, "observations"),
        names.ENV_AGGREGATES_TABLE: names.table_name(PREFIX, "aggregates"),
        names.ENV_PROFILES_PARAMETER: names.profiles_parameter(PREFIX),
        "AWS_DEFAULT_REGION": "ap-northeast-1",
        "POWERTOOLS_LOG_LEVEL": "CRITICAL",
    }
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for key, value in environment.items():
            patch.setenv(key, value)
        boto3.setup_default_session()
        create_tables(PREFIX)
        put_profiles(PREFIX)
        from aws_lambda_powertools.utilities import parameters

        from kanaria.handlers import env

        parameters.clear_caches()
        env.api_environment.cache_clear()
        built = World()
        _record_writes(built)
        for name in ("experiments", "assign", "observations"):
            built.handlers[name] = importlib.reload(importlib.import_module(f"kanaria.handlers.{name}")).handler
        status, body = built.call(
            "setup", "experiments", "POST", "/experiments", json.dumps(_definition()), route_key="POST /experiments"
        )
        assert status == 201, body
        status, body = built.call(
            "setup",
            "experiments",
            "POST",
            f"/experiments/{EXPERIMENT}/transitions",
            json.dumps({"action": "start"}),
            {"experiment_id": EXPERIMENT},
            "POST /experiments/{experiment_id}/transitions",
        )
        assert status == 200, body
        yield built
        _report(built)
        boto3.DEFAULT_SESSION = None


def _report(world: World) -> None:
    figures = {
        api: {
            "inputs": world.inputs[api],
            "responses": dict(sorted(world.status[api].items())),
            "writes_from_rejected_inputs": world.rejected_writes[api],
        }
        for api in sorted(world.inputs)
        if not api.startswith("setup")
    }
    print("\nfuzz figures: " + json.dumps(figures, indent=1))
    if os.environ.get("KANARIA_FUZZ_REPORT"):
        with open(os.environ["KANARIA_FUZZ_REPORT"], "w", encoding="utf-8") as out:
            json.dump(figures, out, indent=2)


def _definition(**changes: Any) -> dict[str, Any]:
    base = {
        "id": EXPERIMENT,
        "description": "fuzzing",
        "hypothesis": "nothing breaks",
        "intents": ["chitchat", "recommendation"],
        "control": "A",
        "variants": [{"id": "A", "weight": 0.5}, {"id": "B", "weight": 0.5, "overrides": {"temperature": 0.6}}],
        "primary_metric": "quality_score",
        "decision": {"mde": 0.02},
    }
    return {**base, **changes}


# --- strategies --------------------------------------------------------------------------------------------------

NASTY_TEXT = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "a\x00b",
            "\u202eevil",
            "\u200b",
            "\ufeffbom",
            "\n",
            "\t\t",
            "a b",
            "💥",
            "null",
            "../../etc",
            "' OR 1=1 --",
            "%s%s",
            "\ud7ff",
            "A",
            "B",
            EXPERIMENT,
            "exp-missing",
            "CHITCHAT",
            "*",
        ]
    ),
    st.sampled_from([65, 257, 70_000]).map(lambda n: "x" * n),
)  # just over the limits, and far over
TEXT = st.one_of(NASTY_TEXT, st.text(max_size=40), st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**63, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e-13, -0.0, 5e-324, 1.7e308, 0.5]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)


def _maybe(
    valid: st.SearchStrategy, weird: st.SearchStrategy = JSON_VALUES
) -> tuple[st.SearchStrategy, st.SearchStrategy]:
    """A field: its valid values and its weird ones (wrong types, out of range, nasty text)."""
    return valid, weird


@st.composite
def _object(draw: Any, fields: dict[str, tuple[st.SearchStrategy, st.SearchStrategy]]) -> dict[str, Any]:
    """A JSON object that is valid but for a few mutations: fields made weird, dropped, or unknown ones added
    (about a third of the objects are not mutated at all, so accepted inputs are exercised too)."""
    keys = list(fields)
    mutated = set(draw(st.lists(st.sampled_from(keys), max_size=draw(st.sampled_from([0, 0, 1, 1, 2, 4, len(keys)])))))
    body = {}
    for key in keys:
        valid, weird = fields[key]
        if key not in mutated:
            body[key] = draw(valid)
        elif draw(st.integers(0, 3)) < 3:  # (hypothesis starts from 0: the common case is the small draw)
            body[key] = draw(weird)
        # else: dropped
    if draw(st.integers(0, 9)) == 9:
        body[draw(TEXT)] = draw(JSON_VALUES)
    return body


def _timestamps() -> st.SearchStrategy:
    now = datetime.now(timezone.utc)
    recent = st.integers(0, 3000).map(lambda m: (now - timedelta(minutes=m)).isoformat())
    weird = st.sampled_from(
        [
            "0001-01-01T00:00:00+00:00",
            "1970-01-01T00:00:00Z",
            "9999-12-31T23:59:59+00:00",
            "2026-02-30T00:00:00Z",
            "yesterday",
            (now + timedelta(days=1)).isoformat(),
            now.replace(tzinfo=None).isoformat(),
            "",
            0,
            1.5e9,
        ]
    )
    return recent, st.one_of(weird, JSON_VALUES)


def _observation_ids() -> tuple[st.SearchStrategy, st.SearchStrategy]:
    return st.uuids().map(lambda u: f"obs-{u.hex}"), st.one_of(NASTY_TEXT, st.text(max_size=200), JSON_VALUES)


def observations() -> st.SearchStrategy:
    return _object(
        {
            "observation_id": _observation_ids(),
            "experiment_id": _maybe(st.just(EXPERIMENT), st.one_of(NASTY_TEXT, JSON_VALUES)),
            "variant_id": _maybe(st.sampled_from(["A", "B"]), st.one_of(NASTY_TEXT, JSON_VALUES)),
            "unit": _maybe(st.uuids().map(lambda u: f"session-{u.hex[:12]}"), st.one_of(NASTY_TEXT, JSON_VALUES)),
            "intent": _maybe(
                st.sampled_from(["chitchat", "recommendation", "order_status"]), st.one_of(NASTY_TEXT, JSON_VALUES)
            ),
            "timestamp": _timestamps(),
            "target": _maybe(st.sampled_from(["canary", "primary"]), st.one_of(NASTY_TEXT, JSON_VALUES)),
            "quality_score": _maybe(st.floats(0, 1), NUMBERS),
            "latency_ms": _maybe(st.floats(0, 60_000), NUMBERS),
            "input_tokens": _maybe(st.integers(0, 5000), NUMBERS),
            "output_tokens": _maybe(st.integers(0, 5000), NUMBERS),
            "cost_usd": _maybe(st.sampled_from([0.0, 1e-13, 0.0042, 999.9]), NUMBERS),
            "csat": _maybe(st.integers(1, 4), NUMBERS),
            "error": _maybe(st.booleans(), JSON_VALUES),
            "throttled": _maybe(st.booleans(), JSON_VALUES),
        }
    )


def assign_requests() -> st.SearchStrategy:
    return _object(
        {
            "experiment_id": _maybe(st.just(EXPERIMENT), st.one_of(NASTY_TEXT, JSON_VALUES)),
            "unit": _maybe(
                st.uuids().map(lambda u: f"user-{u.hex[:12]}"),
                st.one_of(NASTY_TEXT, st.text(max_size=300), JSON_VALUES),
            ),
            "intent": _maybe(st.sampled_from(["chitchat", "recommendation", None]), st.one_of(NASTY_TEXT, JSON_VALUES)),
        }
    )


def definitions() -> st.SearchStrategy:
    variant = _object(
        {
            "id": _maybe(st.sampled_from(["A", "B", "C"]), NASTY_TEXT),
            "weight": _maybe(st.floats(0, 1), NUMBERS),
            "overrides": _maybe(st.fixed_dictionaries({"temperature": st.floats(0, 1)}), JSON_VALUES),
        }
    )
    return _object(
        {
            "id": _maybe(st.uuids().map(lambda u: f"exp-{u.hex[:10]}"), st.one_of(NASTY_TEXT, JSON_VALUES)),
            "description": _maybe(st.text(min_size=1, max_size=50), st.one_of(NASTY_TEXT, JSON_VALUES)),
            "hypothesis": _maybe(st.text(min_size=1, max_size=50), st.one_of(NASTY_TEXT, JSON_VALUES)),
            "intents": _maybe(st.just(["chitchat"]), st.one_of(st.lists(NASTY_TEXT, max_size=3), JSON_VALUES)),
            "control": _maybe(st.just("A"), NASTY_TEXT),
            "variants": _maybe(
                st.just([{"id": "A", "weight": 0.5}, {"id": "B", "weight": 0.5}]), st.lists(variant, max_size=4)
            ),
            "primary_metric": _maybe(st.just("quality_score"), NASTY_TEXT),
            "decision": _maybe(st.just({"mde": 0.02}), st.dictionaries(TEXT, JSON_VALUES, max_size=3)),
            "traffic": _maybe(st.just(1.0), NUMBERS),
            "guardrails": _maybe(st.just([]), JSON_VALUES),
        }
    )


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth if depth % 2 else '{"a":' * depth + "1" + "}" * depth


def raw_bodies(documents: st.SearchStrategy) -> st.SearchStrategy:
    """A request body as sent on the wire: mostly JSON of the generated document, sometimes something else."""
    encoded = documents.map(lambda d: json.dumps(d, allow_nan=True, ensure_ascii=False))
    broken = st.one_of(
        st.none(),
        st.just(""),
        st.text(max_size=100),
        st.binary(max_size=50).map(lambda b: b.decode("latin-1")),
        st.sampled_from([10, 33, 100, 1_000, 100_000]).map(_nested),
        st.sampled_from(["NaN", "Infinity", '{"a": NaN}', "[1e999]", '"\\ud800"', "{" * 3, "1" * 5000]),
        st.integers(1, 3).map(lambda mb: json.dumps({"description": "x" * (mb * 1_000_000)})),
        JSON_VALUES.map(lambda v: json.dumps(v, allow_nan=True)),
    )
    return st.integers(0, 9).flatmap(lambda k: broken if k >= 7 else encoded)


def _batch(items: st.SearchStrategy, key: str, max_items: int) -> st.SearchStrategy:
    """A batch: mostly a list of items (with exact duplicates), sometimes an oversized or malformed one."""
    lists = st.lists(items, min_size=0, max_size=max_items).flatmap(
        lambda xs: st.lists(st.sampled_from(xs), max_size=3).map(lambda dups: xs + dups) if xs else st.just(xs)
    )
    oversized = st.integers(101, 150).map(lambda n: [{"unit": str(i)} for i in range(n)])
    return _object({key: (lists, st.one_of(oversized, JSON_VALUES))})  # mutated: oversized or not a list


# --- the properties ------------------------------------------------------------------------------------------------


def _check_assign(world: World, body: str | None) -> None:
    status, decoded = world.call("assign", "assign", "POST", "/assign", body)
    if status == 200 and decoded.get("in_experiment") is not None:
        assert decoded["experiment_id"] == EXPERIMENT


def _check_assign_batch(world: World, body: str | None) -> None:
    status, decoded = world.call("assign/batch", "assign", "POST", "/assign/batch", body)
    if status != 200:
        return
    accepted = [r for r in decoded["results"] if r["ok"]]
    rejected = [r for r in decoded["results"] if not r["ok"]]
    assert all(r["error"]["field"] for r in rejected), rejected
    if not accepted:
        if world.writes:
            world.rejected_writes["assign/batch"] += len(world.writes)
        assert not world.writes, world.writes
    else:
        assert len(world.writes) <= 3 * len(accepted), (world.writes, len(accepted))


def _check_observation(world: World, body: str | None) -> None:
    status, decoded = world.call("observations", "observations", "POST", "/observations", body)
    if status in (200, 201):
        assert len(world.writes) == (1 if status == 201 else 0), world.writes
        _check_stored(decoded["observation_id"])


def _check_observation_batch(world: World, body: str | None) -> None:
    status, decoded = world.call("observations/batch", "observations", "POST", "/observations/batch", body)
    if status != 200:
        return
    new = [r for r in decoded["results"] if r["ok"] and not r["duplicate"]]
    rejected = [r for r in decoded["results"] if not r["ok"]]
    assert all(r["error"]["field"] for r in rejected), rejected
    if len(world.writes) > len(new):
        world.rejected_writes["observations/batch"] += len(world.writes) - len(new)
    assert len(world.writes) == len(new), (world.writes, len(new))  # one transaction per new item, none else
    assert decoded["recorded"] == len(new)
    for result in new:
        _check_stored(result["observation_id"])


def _check_stored(observation_id: str) -> None:
    """What was recorded is normalised: no 0E-12, no -0, timestamps in the window."""
    table = boto3.resource("dynamodb").Table(names.table_name(PREFIX, "observations"))
    item = table.get_item(Key={"observation_id": observation_id})["Item"]
    for key, value in item.items():
        assert "E" not in str(value) or key in {"digest"}, (key, value)
        assert not str(value).startswith("-0"), (key, value)


def _check_create(world: World, body: str | None) -> None:
    status, decoded = world.call(
        "experiments", "experiments", "POST", "/experiments", body, route_key="POST /experiments"
    )
    if status == 201:
        assert world.writes, "an accepted experiment is stored"


def _check_transition(world: World, experiment_id: str, body: str | None) -> None:
    world.call(
        "transitions",
        "experiments",
        "POST",
        f"/experiments/{experiment_id}/transitions",
        body,
        {"experiment_id": experiment_id},
        "POST /experiments/{experiment_id}/transitions",
    )


TRANSITIONS = _object(
    {
        "action": _maybe(st.sampled_from(["start", "pause", "resume"]), NASTY_TEXT),
        "expected_version": _maybe(st.one_of(st.none(), st.none(), st.integers(1, 5)), NUMBERS),
    }
)
TRANSITION_TARGETS = st.one_of(st.just("exp-fz-other"), st.just("exp-fz-other"), NASTY_TEXT, st.text(max_size=80))

CASES: dict[str, tuple[st.SearchStrategy, Callable[..., None]]] = {
    "assign": (raw_bodies(assign_requests()), _check_assign),
    "assign/batch": (raw_bodies(_batch(assign_requests(), "requests", 12)), _check_assign_batch),
    "observations": (raw_bodies(observations()), _check_observation),
    "observations/batch": (raw_bodies(_batch(observations(), "observations", 12)), _check_observation_batch),
    "experiments": (raw_bodies(definitions()), _check_create),
}


def _run(world: World, api: str, examples: int) -> None:
    if api == "transitions":
        _transition_target(world)

        @settings(max_examples=examples, **COMMON)
        @given(target=TRANSITION_TARGETS, body=raw_bodies(TRANSITIONS))
        def transitions(target: str, body: str | None) -> None:
            _check_transition(world, target, body)

        transitions()
        return
    strategy, check = CASES[api]

    @settings(max_examples=examples, **COMMON)
    @given(body=strategy)
    def property_holds(body: str | None) -> None:
        check(world, body)

    property_holds()


def _transition_target(world: World) -> None:
    """A second experiment for the transitions to push around (pause/resume/start on it, never complete)."""
    if world.inputs["setup-transitions"]:
        return
    world.inputs["setup-transitions"] += 1
    status, _ = world.call(
        "setup",
        "experiments",
        "POST",
        "/experiments",
        json.dumps(_definition(id="exp-fz-other")),
        route_key="POST /experiments",
    )
    assert status in (201, 409)


APIS = ["assign", "assign/batch", "observations", "observations/batch", "experiments", "transitions"]


@pytest.mark.parametrize("api", APIS)
def test_api_never_answers_5xx_and_rejected_inputs_write_nothing(world: World, api: str) -> None:
    _run(world, api, CI_EXAMPLES)


@pytest.mark.fuzz
@pytest.mark.parametrize("api", APIS)
def test_fuzz_large(world: World, api: str) -> None:
    _run(world, api, FUZZ_EXAMPLES)


# --- the findings, pinned -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [33, 1_000, 100_000])
def test_deeply_nested_json_is_a_400_on_every_api(world: World, depth: int) -> None:
    for api, handler, path in (
        ("assign", "assign", "/assign"),
        ("observations", "observations", "/observations"),
        ("experiments", "experiments", "/experiments"),
    ):
        status, decoded = world.call(api, handler, "POST", path, _nested(depth))
        assert status == 400 and decoded["error"]["field"] == "body" and "nested deeper" in decoded["error"]["reason"]


def test_nan_and_infinity_tokens_are_not_json(world: World) -> None:
    for raw in ('{"quality_score": NaN}', "[Infinity]", '{"a": -Infinity}'):
        status, decoded = world.call("observations", "observations", "POST", "/observations", raw)
        assert status == 400 and decoded["error"]["field"] == "body"


def _valid_observation(**changes: Any) -> dict[str, Any]:
    body = {
        "observation_id": f"obs-{uuid.uuid4().hex}",
        "experiment_id": EXPERIMENT,
        "variant_id": "A",
        "unit": f"session-{uuid.uuid4().hex[:8]}",
        "intent": "chitchat",
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "quality_score": 0.8,
    }
    return {**body, **changes}


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+00:00", "1970-01-01T00:00:00+00:00"])
def test_observations_outside_the_time_window_are_refused(world: World, timestamp: str) -> None:
    status, decoded = world.call(
        "observations", "observations", "POST", "/observations", json.dumps(_valid_observation(timestamp=timestamp))
    )
    assert status == 400 and decoded["error"]["field"] == "timestamp" and "days before" in decoded["error"]["reason"]


@pytest.mark.parametrize("unit", ["a\x00b", "user\u202e1", "\u200bzero-width", "bom\ufeff"])
def test_control_and_bidi_characters_are_refused_in_ids(world: World, unit: str) -> None:
    status, decoded = world.call(
        "observations", "observations", "POST", "/observations", json.dumps(_valid_observation(unit=unit))
    )
    assert status == 400 and decoded["error"]["field"] == "unit"
    status, decoded = world.call(
        "assign", "assign", "POST", "/assign", json.dumps({"experiment_id": EXPERIMENT, "unit": unit})
    )
    assert status == 400 and decoded["error"]["field"] == "unit"
    status, decoded = world.call(
        "observations", "observations", "POST", "/observations", json.dumps(_valid_observation(intent=f"chit{unit}"))
    )
    assert status == 400 and decoded["error"]["field"] == "intent"


def test_values_that_round_to_zero_are_stored_as_zero(world: World) -> None:
    body = _valid_observation(cost_usd=1e-13, latency_ms=1e-9, quality_score=-0.0)
    status, decoded = world.call("observations", "observations", "POST", "/observations", json.dumps(body))
    assert status == 201, decoded
    item = (
        boto3.resource("dynamodb")
        .Table(names.table_name(PREFIX, "observations"))
        .get_item(Key={"observation_id": body["observation_id"]})["Item"]
    )
    assert {str(item["cost_usd"]), str(item["latency_ms"]), str(item["quality_score"])} == {"0"}, item
