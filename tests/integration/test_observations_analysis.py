"""The scheduled analysis Lambda against moto: one Query per experiment, versioned results, alerts, SRM pause."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from moto import mock_aws

from kanaria import names
from kanaria.dal.experiment_store import DynamoAssignmentStore, DynamoExperimentRepository
from kanaria.dal.observations import DynamoAnalysisStore
from kanaria.domain.assignment import pick_variant
from kanaria.domain.experiment import Status
from kanaria.domain.observation import AGG_SHARDS
from tests.unit.observations.support import (
    NOW,
    PREFIX,
    FakeLambdaContext,
    call,
    fresh_handler,
    observation,
    running_experiment,
    seeded_moto,
)

SCHEDULED_EVENT = {
    "version": "0",
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-03-02T12:00:00Z",
    "region": "ap-northeast-1",
    "resources": ["arn:aws:events:ap-northeast-1:123456789012:rule/kanaria-analysis"],
    "detail": {},
}


@pytest.fixture
def world(monkeypatch):
    """Tables, profiles, alert topic (drained through an SQS subscription), the two handlers, a DynamoDB call log."""
    with mock_aws():
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic = sns.create_topic(Name=f"{PREFIX}-alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        tables = seeded_moto(monkeypatch, topic_arn=topic)
        calls: list[str] = []
        boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
        observations = fresh_handler("kanaria.handlers.observations")
        analysis = fresh_handler("kanaria.handlers.analysis")

        def alerts() -> list[dict]:
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            for m in messages:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
            return [
                {"subject": json.loads(m["Body"]).get("Subject"), **json.loads(json.loads(m["Body"])["Message"])}
                for m in messages
            ]

        yield {"tables": tables, "observations": observations, "analysis": analysis, "alerts": alerts, "calls": calls}
        boto3.DEFAULT_SESSION = None


def _expose(record, units_per_variant: dict[str, int]) -> None:
    """Exposure counters as DynamoAssignmentStore.count_exposure leaves them (one ADD per unit, summed here)."""
    store = DynamoAssignmentStore(names.table_name(PREFIX, "assignments"), names.table_name(PREFIX, "aggregates"))
    day = NOW.strftime("%Y-%m-%d")
    store.count_exposure(record.experiment.id, "A", "chitchat", day, 0, True)  # the real item shape...
    table = boto3.resource("dynamodb").Table(names.table_name(PREFIX, "aggregates"))
    for variant, units in units_per_variant.items():  # ...and bulk counts in that shape
        for shard in range(2):
            table.put_item(
                Item={
                    "experiment_id": record.experiment.id,
                    "sk": f"EXPOSURE#{variant}#chitchat#{day}#{shard:02d}",
                    "exposures": units,
                    "units": units // 2,
                    "variant": variant,
                    "intent": "chitchat",
                    "day": day,
                }
            )


def _record(world, record, count: int, start: int = 0, **changes) -> None:
    bodies = []
    for i in range(start, start + count):
        body = observation(i, **changes)
        body["variant_id"] = pick_variant(record.experiment, body["unit"], record.weights)
        bodies.append(body)
    for chunk in range(0, len(bodies), 100):
        status, result = call(
            world["observations"].handler, "/observations/batch", {"observations": bodies[chunk : chunk + 100]}
        )
        assert status == 200 and result["rejected"] == 0, result


def _run(world) -> dict:
    return world["analysis"].handler(
        dict(SCHEDULED_EVENT, id=str(uuid.uuid4())), FakeLambdaContext(function_name="obs-analysis")
    )


def test_results_are_versioned_and_a_first_decision_is_alerted(world):
    record = running_experiment()
    _expose(record, {"A": 40, "B": 40})
    _record(world, record, 40)
    world["calls"].clear()
    first = _run(world)
    [outcome] = first["analysed"]
    assert outcome["experiment_id"] == "exp-obs" and outcome["stored"] and outcome["decision_changed"]
    assert world["calls"].count("Query") == 1  # counters of the experiment: one (single-page) Query
    results = DynamoAnalysisStore(names.table_name(PREFIX, "aggregates"))
    latest = results.latest_result("exp-obs")
    assert latest["decision"] == outcome["decision"] and latest["result"]["experiment_id"] == "exp-obs"
    snapshot = latest["snapshot"]
    assert snapshot["aggregates"]["A"]["units"] == 40 and snapshot["aggregates"]["B"]["units"] == 40
    assert snapshot["aggregates"]["A"]["observations"] + snapshot["aggregates"]["B"]["observations"] == 40
    [alert] = world["alerts"]()
    assert alert["kind"] == "decision_changed" and alert["decision"] == outcome["decision"]
    assert alert["subject"].startswith("Kanaria: exp-obs decision")

    second = _run(world)
    assert second["analysed"][0]["decision_changed"] is False and world["alerts"]() == []
    stored = world["tables"]["aggregates"].query(
        KeyConditionExpression=boto3.dynamodb.conditions.Key("experiment_id").eq("exp-obs")
        & boto3.dynamodb.conditions.Key("sk").begins_with("RESULT#")
    )["Items"]
    assert len(stored) == 3  # two versions + LATEST
    assert not any(i["sk"].startswith("RESULT#") for i in results.counters("exp-obs"))


def test_sample_ratio_mismatch_pauses_and_alerts(world):
    record = running_experiment()
    _expose(record, {"A": 1000, "B": 700})
    outcome = _run(world)["analysed"][0]
    assert outcome["srm_mismatch"] and outcome["paused"]
    repo = DynamoExperimentRepository(names.table_name(PREFIX, "experiments"))
    assert repo.get("exp-obs").status is Status.PAUSED
    assert repo.audit_trail("exp-obs")[-1].actor == "kanaria-analysis"
    kinds = {a["kind"]: a for a in world["alerts"]()}
    assert kinds["srm_mismatch"]["paused"] is True and kinds["srm_mismatch"]["units"] == {"A": 1000, "B": 700}
    assert _run(world) == {"analysed": []}  # paused experiments are not analysed


def test_metrics_per_experiment(world, capsys):
    running_experiment()
    capsys.readouterr()
    _run(world)
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"AnalysisRuns"' in line]
    assert (
        emf
        and emf[0]["experiment_id"] == "exp-obs"
        and emf[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["experiment_id"]]
    )
    assert emf[0]["SrmMismatch"] in (0.0, [0.0])


def test_read_cost_is_bounded_by_counter_items_not_observations(world):
    record = running_experiment()
    _expose(record, {"A": 10, "B": 10})
    store = DynamoAnalysisStore(names.table_name(PREFIX, "aggregates"))
    sizes = []
    for start in (0, 32):
        _record(world, record, 32, start=start, timestamp=NOW.isoformat())
        sizes.append(len(store.counters("exp-obs")))
    # at most one counter item per (variant, intent, day, shard) + the exposure items, however many observations
    bound = 2 * 1 * 1 * AGG_SHARDS + 5
    assert sizes[0] <= sizes[1] <= bound < 64  # fewer items than observations, and a ceiling independent of them


def test_group_sequential_history_carries_over_between_scheduled_runs(world):
    # Given an O'Brien-Fleming experiment read by the schedule twice, with more data in between
    record = running_experiment(decision={"mde": 0.05, "method": "obf", "planned_n_per_variant": 48})
    _expose(record, {"A": 40, "B": 40})
    _record(world, record, 40)
    _run(world)
    results = DynamoAnalysisStore(names.table_name(PREFIX, "aggregates"))
    first = results.latest_result("exp-obs")
    # Then the first read (past the first planned look, t = 0.25) has no earlier looks: its schedule is that look
    assert first["snapshot"]["experiment"]["looks"] == []
    first_looks = first["result"]["evidence"]["sequential"]["looks"]
    assert len(first_looks) == 1 and first_looks[0] == pytest.approx(
        first["result"]["evidence"]["information_fraction"]
    )
    _record(world, record, 60, start=40)
    _run(world)
    second = results.latest_result("exp-obs")
    # And the second read gets the first read's looks, so alpha already spent is not spent again
    assert second["snapshot"]["experiment"]["looks"] == first_looks
    second_looks = second["result"]["evidence"]["sequential"]["looks"]
    assert second_looks[:-1] == first_looks and second_looks[-1] > first_looks[-1]
    assert second["snapshot"]["experiment"]["bandit"] is False
