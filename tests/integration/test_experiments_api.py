"""Experiments and assignment API handlers against moto DynamoDB/SSM (real handler code, HTTP API events)."""

from __future__ import annotations

import importlib
import threading

import pytest
from moto import mock_aws

from tests.support.aws import CALLER, api_environment, call, create_tables, item_count, put_profiles
from tests.unit.assignment.conftest import definition


@pytest.fixture
def api(monkeypatch):
    """Tables, profiles and freshly imported handlers (their cached clients bound to this mock)."""
    with mock_aws():
        for key, value in api_environment().items():
            monkeypatch.setenv(key, value)
        tables = create_tables()
        put_profiles()
        from kanaria.handlers import env

        env.api_environment.cache_clear()
        experiments = importlib.reload(importlib.import_module("kanaria.handlers.experiments"))
        assign = importlib.reload(importlib.import_module("kanaria.handlers.assign"))
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()
        yield tables, experiments.handler, assign.handler


def _create_running(handler, **changes):
    status, body = call(handler, "POST", "/experiments", definition(**changes))
    assert status == 201, body
    status, body = call(handler, "POST", f"/experiments/{body['experiment']['id']}/transitions", {"action": "start"})
    assert status == 200, body
    return body


def test_create_get_list_and_audit_trail(api):
    tables, experiments, _ = api
    status, created = call(experiments, "POST", "/experiments", definition())
    assert status == 201 and created["status"] == "draft" and created["version"] == 1
    call(experiments, "POST", "/experiments/exp-temp/transitions", {"action": "start", "expected_version": 1})
    status, fetched = call(experiments, "GET", "/experiments/exp-temp")
    assert status == 200 and fetched["status"] == "running" and fetched["version"] == 2
    assert [(a["action"], a["actor"], a["version"]) for a in fetched["audit"]] == [
        ("create", CALLER, 1),
        ("start", CALLER, 2),
    ]
    assert fetched["audit"][1]["detail"] == {"from": "draft", "to": "running"}
    status, listed = call(experiments, "GET", "/experiments")
    assert [e["experiment"]["id"] for e in listed["experiments"]] == ["exp-temp"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (definition(variants=[{"id": "A", "weight": 0.6}, {"id": "B", "weight": 0.6}]), "variants"),
        (
            definition(variants=[{"id": "A", "weight": 0.5}, {"id": "B", "weight": 0.5, "overrides": {"top_p": 3}}]),
            "variants.1.overrides.top_p",
        ),
        ([1, 2, 3], "experiment"),
    ],
)
def test_bad_definition_is_400_naming_the_field_and_writes_nothing(api, body, field):
    tables, experiments, _ = api
    status, response = call(experiments, "POST", "/experiments", body)
    assert status == 400 and response["error"]["field"] == field
    assert item_count(tables["experiments"]) == 0


def test_malformed_json_is_400_naming_the_body(api):
    tables, experiments, _ = api
    status, response = call(experiments, "POST", "/experiments", raw_body="{not json")
    assert status == 400 and response["error"]["field"] == "body"
    assert item_count(tables["experiments"]) == 0


def test_duplicate_id_and_overlapping_namespace_are_409(api):
    _, experiments, _ = api
    assert call(experiments, "POST", "/experiments", definition(namespace="layer"))[0] == 201
    status, response = call(experiments, "POST", "/experiments", definition(namespace="layer"))
    assert status == 409 and response["error"]["field"] == "id"
    status, response = call(experiments, "POST", "/experiments", definition(id="exp-other", namespace="layer"))
    assert status == 409 and response["error"]["field"] == "namespace_segment"
    ok = definition(id="exp-other", namespace="layer", namespace_segment=[0, 5000])
    assert call(experiments, "POST", "/experiments", ok)[0] == 409  # still overlaps [0, 10000)


def test_illegal_transition_and_stale_version_are_409_and_change_nothing(api):
    _, experiments, _ = api
    call(experiments, "POST", "/experiments", definition())
    status, response = call(experiments, "POST", "/experiments/exp-temp/transitions", {"action": "pause"})
    assert status == 409 and "draft" in response["error"]["reason"]
    call(experiments, "POST", "/experiments/exp-temp/transitions", {"action": "start"})
    status, response = call(
        experiments, "POST", "/experiments/exp-temp/transitions", {"action": "pause", "expected_version": 1}
    )
    assert status == 409 and response["error"]["field"] == "expected_version"
    _, fetched = call(experiments, "GET", "/experiments/exp-temp")
    assert fetched["status"] == "running" and fetched["version"] == 2 and len(fetched["audit"]) == 2


def test_two_operators_racing_on_one_version_cannot_both_win(api):
    # DynamoDB transactions are atomic; moto's are not across threads (a loser's write could land beside the
    # winner's), so the race runs with the rehearsal's dynamodb-atomic-writes adaptation, as in AWS.
    from kanaria_tools.rehearsal.moto_adaptations import atomic_dynamodb_writes

    _, experiments, _ = api
    _create_running(experiments)
    results: list[int] = []
    barrier = threading.Barrier(2)

    def operator(action: str) -> None:
        barrier.wait()
        results.append(
            call(experiments, "POST", "/experiments/exp-temp/transitions", {"action": action, "expected_version": 2})[0]
        )

    threads = [threading.Thread(target=operator, args=(a,)) for a in ("pause", "complete")]
    with atomic_dynamodb_writes():
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(results) == [200, 409]
    _, fetched = call(experiments, "GET", "/experiments/exp-temp")
    assert fetched["version"] == 3 and len(fetched["audit"]) == 3


def test_unknown_experiment_is_404(api):
    _, experiments, assign = api
    assert call(experiments, "GET", "/experiments/nope")[0] == 404
    status, response = call(assign, "POST", "/assign", {"experiment_id": "nope", "unit": "u1"})
    assert status == 404 and response["error"]["field"] == "experiment_id"


def test_assign_refuses_a_draft_and_bad_requests_writing_nothing(api):
    tables, experiments, assign = api
    call(experiments, "POST", "/experiments", definition())
    status, response = call(
        assign, "POST", "/assign", {"experiment_id": "exp-temp", "unit": "u1", "intent": "recommendation"}
    )
    assert status == 409 and "not running" in response["error"]["reason"]
    call(experiments, "POST", "/experiments/exp-temp/transitions", {"action": "start"})
    for body, field in (
        ({"experiment_id": "exp-temp"}, "unit"),
        ({"experiment_id": "exp-temp", "unit": "has space"}, "unit"),
        ({"experiment_id": "exp-temp", "unit": "u1", "colour": 1}, "colour"),
    ):
        status, response = call(assign, "POST", "/assign", body)
        assert status == 400 and response["error"]["field"] == field
    assert item_count(tables["assignments"]) == 0 and item_count(tables["aggregates"]) == 0


def test_assignment_matches_embedded_client_and_counts_exposures(api):
    tables, experiments, assign = api
    _create_running(experiments)
    from kanaria.client import EmbeddedClient

    client = EmbeddedClient([definition()])
    for i in range(40):
        status, body = call(
            assign, "POST", "/assign", {"experiment_id": "exp-temp", "unit": f"u{i}", "intent": "recommendation"}
        )
        assert status == 200
        local = client.assign("exp-temp", f"u{i}", "recommendation")
        assert (body["variant"], body["config_hash"]) == (local.variant, local.config_hash)
    # a returning unit is an exposure but not a new unit
    call(assign, "POST", "/assign", {"experiment_id": "exp-temp", "unit": "u0", "intent": "recommendation"})
    counters = tables["aggregates"].scan()["Items"]
    assert sum(int(c["exposures"]) for c in counters) == 41
    assert sum(int(c["units"]) for c in counters) == 40
    assert item_count(tables["assignments"]) == 40


def test_sticky_across_a_weight_change(api):
    tables, experiments, assign = api
    _create_running(experiments)
    first = {
        f"u{i}": call(
            assign, "POST", "/assign", {"experiment_id": "exp-temp", "unit": f"u{i}", "intent": "recommendation"}
        )[1]["variant"]
        for i in range(60)
    }
    # When the weights move to 10/90 mid-experiment (e.g. a bandit writes them back)
    from dataclasses import replace

    from kanaria.dal.experiment_store import DynamoExperimentRepository
    from kanaria.domain.records import AuditEntry

    repo = DynamoExperimentRepository(api_environment()["EXPERIMENTS_TABLE"])
    record = repo.get("exp-temp")
    repo.replace(
        replace(record, weights={"A": 0.1, "B": 0.9}, version=3),
        2,
        AuditEntry("exp-temp", 3, "t", "bandit", "weights", {}),
    )
    again = {
        u: call(assign, "POST", "/assign", {"experiment_id": "exp-temp", "unit": u, "intent": "recommendation"})[1]
        for u in first
    }
    # Then every unit keeps its first variant, marked sticky
    assert {u: b["variant"] for u, b in again.items()} == first
    assert {b["reason"] for b in again.values()} == {"sticky"}
    # while new units follow the new weights
    new = [
        call(assign, "POST", "/assign", {"experiment_id": "exp-temp", "unit": f"n{i}", "intent": "recommendation"})[1][
            "variant"
        ]
        for i in range(200)
    ]
    assert new.count("B") > 150


def test_rollback_moves_units_to_control_excluded_with_reason(api):
    tables, experiments, assign = api
    _create_running(experiments)
    variants = {
        f"u{i}": call(
            assign, "POST", "/assign", {"experiment_id": "exp-temp", "unit": f"u{i}", "intent": "recommendation"}
        )[1]["variant"]
        for i in range(40)
    }
    treated = [u for u, v in variants.items() if v == "B"]
    assert treated
    status, body = call(experiments, "POST", "/experiments/exp-temp/variants/B/stop", {"reason": "canary_rollback"})
    assert status == 200 and body["stopped_variants"] == {"B": "canary_rollback"}
    exposures_before = sum(int(c["exposures"]) for c in tables["aggregates"].scan()["Items"])
    for unit in treated:
        _, body = call(
            assign, "POST", "/assign", {"experiment_id": "exp-temp", "unit": unit, "intent": "recommendation"}
        )
        assert body["variant"] == "A" and body["excluded"] is True and body["reassigned_reason"] == "canary_rollback"
        stored = tables["assignments"].get_item(Key={"pk": f"exp-temp#{unit}"})["Item"]
        assert stored["excluded"] is True and stored["previous_variant"] == "B"
    # excluded units are not counted as exposures of control
    assert sum(int(c["exposures"]) for c in tables["aggregates"].scan()["Items"]) == exposures_before
    control_unit = next(u for u, v in variants.items() if v == "A")
    _, body = call(
        assign, "POST", "/assign", {"experiment_id": "exp-temp", "unit": control_unit, "intent": "recommendation"}
    )
    assert body["variant"] == "A" and body["excluded"] is False
    assert call(experiments, "POST", "/experiments/exp-temp/variants/A/stop", {})[0] == 400


def test_batch_reports_bad_items_individually(api):
    _, experiments, assign = api
    _create_running(experiments)
    status, body = call(
        assign,
        "POST",
        "/assign/batch",
        {
            "requests": [
                {"experiment_id": "exp-temp", "unit": "u1", "intent": "recommendation"},
                {"experiment_id": "missing", "unit": "u2"},
            ]
        },
    )
    assert status == 200
    assert body["results"][0]["ok"] is True and body["results"][1]["error"]["code"] == "not_found"
    status, body = call(assign, "POST", "/assign/batch", {"requests": [{"experiment_id": "x", "unit": "u"}] * 101})
    assert status == 400 and body["error"]["field"] == "requests"
