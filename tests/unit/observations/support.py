"""Helpers of the observation tests (and of the bench, kanaria_tools.bench.moto_env): tables in moto (TABLE_SPECS key schema),
the functions' environment, handler loading, experiments, HTTP events."""

from __future__ import annotations

import copy
import importlib
import json
import random
from datetime import datetime, timedelta, timezone
from typing import Any

from kanaria import names
from kanaria.dal.experiment_store import DynamoExperimentRepository
from kanaria.domain.records import ExperimentRecord
from kanaria.logic.experiments import create_experiment, transition
from kanaria_tools.lambda_api import http_event as api_http_event
from tests.support import aws
from tests.support.aws import FakeLambdaContext  # noqa: F401 - re-exported for the observation tests

PREFIX = "obs"
CALLER = "arn:aws:iam::123456789012:user/chatbot"
CANARY_ROLE = "arn:aws:iam::123456789012:role/service/chatbot-canary"  # the canary deployment's role
CANARY_CALLER = "arn:aws:sts::123456789012:assumed-role/chatbot-canary/task-0001"  # a session of it
NOW = datetime.now(timezone.utc).replace(microsecond=0)  # handlers use the real clock


def create_tables(prefix: str = PREFIX) -> dict[str, Any]:
    """Every Kanaria table with the construct's key schema, in the active moto mock."""
    return aws.create_tables(prefix)


def environment(prefix: str = PREFIX, topic_arn: str = "") -> dict[str, str]:
    """Environment of the observations and analysis functions."""
    env = {
        names.ENV_EXPERIMENTS_TABLE: names.table_name(prefix, "experiments"),
        names.ENV_ASSIGNMENTS_TABLE: names.table_name(prefix, "assignments"),
        names.ENV_OBSERVATIONS_TABLE: names.table_name(prefix, "observations"),
        names.ENV_AGGREGATES_TABLE: names.table_name(prefix, "aggregates"),
        names.ENV_PROFILES_PARAMETER: names.profiles_parameter(prefix),
        names.ENV_CANARY_OBSERVER_ROLE_ARNS: CANARY_ROLE,
    }
    if topic_arn:
        env[names.ENV_ALERTS_TOPIC_ARN] = topic_arn
    return env


def put_profiles(prefix: str = PREFIX) -> None:
    """Default profiles in SSM, as the stack stores them."""
    aws.put_profiles(prefix)


def fresh_handler(module_name: str) -> Any:
    """Import a handler module anew (its cached environment, clients and Powertools parameters are per execution
    environment); call it inside the moto mock, after the environment is set."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    return importlib.reload(importlib.import_module(module_name))


def definition(**changes: Any) -> dict[str, Any]:
    """A valid two-variant experiment definition with `changes` applied."""
    base: dict[str, Any] = {
        "id": "exp-obs",
        "description": "Haiku for chitchat",
        "hypothesis": "Claude 3 Haiku keeps quality within 0.02 at a fraction of the cost",
        "intents": ["chitchat", "recommendation"],
        "control": "A",
        "variants": [
            {"id": "A", "weight": 0.5},
            {"id": "B", "weight": 0.5, "overrides": {"model_id": "anthropic.claude-3-haiku-20240307-v1:0"}},
        ],
        "primary_metric": "quality_score",
        "guardrails": [{"metric": "latency_p99_ms", "max_degradation": 0.1}],
        "decision": {"mde": 0.02},
    }
    merged = copy.deepcopy(base)
    merged.update(changes)
    return merged


def running_experiment(prefix: str = PREFIX, **changes: Any) -> ExperimentRecord:
    """Create and start an experiment in the experiments table."""
    repo = DynamoExperimentRepository(names.table_name(prefix, "experiments"))
    record = create_experiment(repo, definition(**changes), CALLER, NOW - timedelta(days=1))
    return transition(repo, record.experiment.id, "start", CALLER, NOW - timedelta(days=1))


def observation(i: int, rng: random.Random | None = None, **changes: Any) -> dict[str, Any]:
    """A valid observation body (random metrics when rng is given)."""
    rng = rng or random.Random(i)
    body: dict[str, Any] = {
        "observation_id": f"obs-{i:06d}",
        "experiment_id": "exp-obs",
        "variant_id": "A",
        "unit": f"session-{i}",
        "intent": "chitchat",
        "timestamp": (NOW - timedelta(minutes=rng.randint(0, 3000))).isoformat(),
        "quality_score": round(rng.random(), 4),
        "relevance_score": rng.random(),
        "latency_ms": round(rng.lognormvariate(6.5, 0.6), 2),
        "input_tokens": rng.randint(50, 3000),
        "output_tokens": rng.randint(10, 800),
        "error": rng.random() < 0.05,
        "hallucination": rng.random() < 0.03,
        "task_completed": rng.random() < 0.7,
        "csat": rng.randint(1, 4),
    }
    if rng.random() < 0.3:
        del body["csat"]
    body.update(changes)
    return body


def http_event(method: str, path: str, body: Any, raw_body: str | None = None, caller: str = CALLER) -> dict[str, Any]:
    """API Gateway HTTP API (payload 2.0) event of an IAM-authorized route, from the chatbot's identity."""
    event = api_http_event(method, path, body, caller)
    if raw_body is not None:
        event["body"] = raw_body
    return event


def call(handler: Any, path: str, body: Any, raw_body: str | None = None, caller: str = CALLER) -> tuple[int, Any]:
    """POST to a handler as `caller` (the chatbot's identity; CANARY_CALLER: the canary deployment's); (status,
    JSON body)."""
    response = handler(http_event("POST", path, body, raw_body, caller), FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def seeded_moto(monkeypatch: Any, topic_arn: str = "") -> dict[str, Any]:
    """Inside mock_aws: moto made atomic, the functions' environment, the tables and the profiles; the tables."""
    atomic_fast_moto(monkeypatch)
    for key, value in environment(topic_arn=topic_arn).items():
        monkeypatch.setenv(key, value)
    tables = create_tables()
    put_profiles()
    return tables


def atomic_fast_moto(monkeypatch: Any) -> None:
    """Make moto's DynamoDB behave like DynamoDB under concurrency, and fast enough for hundreds of transactions.

    moto deep-copies every table a TransactWriteItems names (O(table size) per call) so it can roll a cancelled
    transaction back; that copy is also not thread-safe. Here each backend call holds one lock (DynamoDB applies
    every request atomically) and a transaction snapshots only the items it names, the only ones it can change.
    Conditions, ADD semantics and cancellation reasons stay moto's own.
    """
    import copy as copy_module
    import threading
    from types import SimpleNamespace

    import moto.dynamodb.models as models
    from moto.dynamodb.models import DynamoDBBackend, DynamoType
    from moto.dynamodb.models.table import Table

    lock = threading.RLock()
    monkeypatch.setattr(
        models,
        "copy",
        SimpleNamespace(
            deepcopy=lambda value, *a: value if isinstance(value, Table) else copy_module.deepcopy(value, *a)
        ),
    )
    transact = DynamoDBBackend.transact_write_items

    def transact_with_item_rollback(self, transact_items):
        saved = []
        for entry in transact_items:
            op = next(iter(entry.values()))
            table = self.get_table(op["TableName"])
            key = op.get("Item") or op["Key"]
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            saved.append((table, hash_key, range_key, copy_module.deepcopy(table.get_item(hash_key, range_key))))
        try:
            return transact(self, transact_items)
        except BaseException:
            for table, hash_key, range_key, item in saved:
                container = table.items[hash_key] if range_key is not None else table.items
                slot = range_key if range_key is not None else hash_key
                if item is None:
                    container.pop(slot, None)
                else:
                    container[slot] = item
            raise

    def locked(method):
        def call_locked(self, *args, **kwargs):
            with lock:
                return method(self, *args, **kwargs)

        return call_locked

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", locked(transact_with_item_rollback))
    for name in ("put_item", "update_item", "get_item", "query", "scan", "delete_item", "batch_get_item"):
        monkeypatch.setattr(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name)))
