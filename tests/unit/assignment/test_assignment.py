"""Deterministic, weighted, monotone and namespace-aware assignment (pure domain)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from kanaria.client import EmbeddedClient
from kanaria.domain.assignment import INTENT_NOT_TARGETED, OUTSIDE_SEGMENT, OUTSIDE_TRAFFIC, assign, bucket
from kanaria.domain.experiment import parse_experiment
from kanaria.domain.profiles import DEFAULT_PROFILES
from tests.unit.assignment.conftest import definition

UNITS = [f"session-{i}" for i in range(100_000)]


def test_bucket_is_sha256_of_salt_and_unit_into_10000_buckets():
    # Given an independent computation of the documented formula
    digest = hashlib.sha256(b"exp-temp:session-42").digest()
    expected = int.from_bytes(digest[:8], "big") % 10_000
    # Then the domain function agrees, and stays in range
    assert bucket("exp-temp", "session-42") == expected
    assert all(0 <= bucket("s", u) < 10_000 for u in UNITS[:1000])


def test_assignment_is_identical_in_a_separate_process():
    # Given assignments computed here
    experiment = parse_experiment(definition())
    here = {u: assign(experiment, u, "recommendation", DEFAULT_PROFILES).variant for u in UNITS[:500]}
    # When another interpreter (fresh hash seed) computes them
    script = (
        "import json,sys\n"
        "from kanaria.domain.experiment import parse_experiment\n"
        "from kanaria.domain.assignment import assign\n"
        "from kanaria.domain.profiles import DEFAULT_PROFILES\n"
        "d=json.loads(sys.stdin.read())\n"
        "e=parse_experiment(d['definition'])\n"
        "print(json.dumps({u: assign(e,u,'recommendation',DEFAULT_PROFILES).variant for u in d['units']}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps({"definition": definition(), "units": UNITS[:500]}),
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    # Then every unit gets the same variant
    assert json.loads(out.stdout) == here
    assert set(here.values()) == {"A", "B"}


@pytest.mark.parametrize("weights", [(0.5, 0.5), (0.9, 0.1), (0.2, 0.3, 0.5)])
def test_split_of_100000_units_is_within_one_point_of_weights(weights):
    variants = [{"id": chr(65 + i), "weight": w} for i, w in enumerate(weights)]
    experiment = parse_experiment(definition(variants=variants))
    counts: dict[str, int] = {}
    for unit in UNITS:
        variant = assign(experiment, unit, "recommendation", DEFAULT_PROFILES).variant
        counts[variant] = counts.get(variant, 0) + 1
    for v in variants:
        assert abs(counts[v["id"]] / len(UNITS) - v["weight"]) < 0.01, counts


def test_treatment_ramp_5_25_50_100_is_monotone():
    # Given the treatment's share growing 5% -> 25% -> 50% -> 100%
    previous: set[str] = set()
    for share in (0.05, 0.25, 0.5, 1.0):
        experiment = parse_experiment(
            definition(variants=[{"id": "A", "weight": 1 - share}, {"id": "B", "weight": share}])
        )
        treated = {
            u for u in UNITS[:20_000] if assign(experiment, u, "recommendation", DEFAULT_PROFILES).variant == "B"
        }
        # Then every unit treated before is still treated, and the share is right
        assert previous <= treated
        assert abs(len(treated) / 20_000 - share) < 0.015
        previous = treated


def test_traffic_ramp_is_monotone_and_stratified_per_intent():
    rates = [0.05, 0.25, 0.5, 1.0]
    previous: set[str] = set()
    for rate in rates:
        experiment = parse_experiment(definition(traffic={"default": rate, "per_intent": {"product_search": 0.05}}))
        admitted = {
            u for u in UNITS[:20_000] if assign(experiment, u, "recommendation", DEFAULT_PROFILES).in_experiment
        }
        assert previous <= admitted
        assert abs(len(admitted) / 20_000 - rate) < 0.015
        previous = admitted
        search = sum(assign(experiment, u, "product_search", DEFAULT_PROFILES).in_experiment for u in UNITS[:20_000])
        assert abs(search / 20_000 - 0.05) < 0.01


def test_experiments_in_different_namespaces_assign_independently():
    first = parse_experiment(definition(id="exp-one", namespace="ns-one"))
    second = parse_experiment(definition(id="exp-two", namespace="ns-two"))
    pairs: dict[tuple[str, str], int] = {}
    for unit in UNITS[:40_000]:
        key = (
            assign(first, unit, "recommendation", DEFAULT_PROFILES).variant,
            assign(second, unit, "recommendation", DEFAULT_PROFILES).variant,
        )
        pairs[key] = pairs.get(key, 0) + 1
    # Independence: each of the 4 combinations holds ~25% of units
    assert set(pairs) == {("A", "A"), ("A", "B"), ("B", "A"), ("B", "B")}
    assert all(abs(n / 40_000 - 0.25) < 0.01 for n in pairs.values()), pairs


def test_experiments_in_one_namespace_get_disjoint_traffic():
    first = parse_experiment(definition(id="exp-one", namespace="layer", namespace_segment=[0, 5000]))
    second = parse_experiment(definition(id="exp-two", namespace="layer", namespace_segment=[5000, 10000]))
    in_first = {u for u in UNITS[:20_000] if assign(first, u, "recommendation", DEFAULT_PROFILES).in_experiment}
    in_second = {u for u in UNITS[:20_000] if assign(second, u, "recommendation", DEFAULT_PROFILES).in_experiment}
    assert not in_first & in_second
    assert abs(len(in_first) / 20_000 - 0.5) < 0.015 and abs(len(in_second) / 20_000 - 0.5) < 0.015
    outside = assign(first, next(iter(in_second)), "recommendation", DEFAULT_PROFILES)
    assert outside.reason == OUTSIDE_SEGMENT and outside.variant is None


def test_untargeted_intent_and_outside_traffic_get_control_config_without_variant():
    experiment = parse_experiment(definition(traffic=0.1))
    not_targeted = assign(experiment, "u1", "order_status", DEFAULT_PROFILES)
    assert not not_targeted.in_experiment and not_targeted.reason == INTENT_NOT_TARGETED
    assert not_targeted.config["inference"]["temperature"] == 0.15  # the order_status profile
    outside = next(
        a for u in UNITS if (a := assign(experiment, u, "recommendation", DEFAULT_PROFILES)).reason == OUTSIDE_TRAFFIC
    )
    assert outside.variant is None and outside.config["inference"]["temperature"] == 0.8


def test_resolved_config_is_profile_plus_overrides_with_stable_hash():
    experiment = parse_experiment(definition())
    unit_b = next(u for u in UNITS if assign(experiment, u, "recommendation", DEFAULT_PROFILES).variant == "B")
    unit_a = next(u for u in UNITS if assign(experiment, u, "recommendation", DEFAULT_PROFILES).variant == "A")
    b = assign(experiment, unit_b, "recommendation", DEFAULT_PROFILES)
    a = assign(experiment, unit_a, "recommendation", DEFAULT_PROFILES)
    assert b.config["inference"] == {
        "temperature": 0.6,
        "top_k": 250,
        "top_p": 0.95,
        "max_tokens": 1024,
        "stop_sequences": ["\n\nUser:", "\n\nHuman:"],
    }
    assert a.config["inference"]["temperature"] == 0.8
    assert a.config_hash != b.config_hash
    canonical = json.dumps(b.config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert b.config_hash == hashlib.sha256(canonical.encode()).hexdigest()[:16]


def test_unknown_intent_falls_back_to_conservative_profile():
    experiment = parse_experiment(definition(intents=["*"]))
    result = assign(experiment, "u1", "weather_smalltalk", DEFAULT_PROFILES)
    assert result.config["inference"]["temperature"] == 0.15
    assert result.config["system_prompt_version"] == "generic_v1"


def test_embedded_client_matches_domain_assign():
    client = EmbeddedClient([definition()])
    experiment = parse_experiment(definition())
    for unit in UNITS[:200]:
        assert client.assign("exp-temp", unit, "recommendation") == assign(
            experiment, unit, "recommendation", DEFAULT_PROFILES
        )
