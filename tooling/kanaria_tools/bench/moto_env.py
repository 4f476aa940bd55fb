"""A fake AWS account for the bench (moto in-process): environment, tables, profiles, a running experiment, a log
of every AWS request, and HTTP API invocations of the real handlers.

The tables, the functions' environment and the handler loading are the observation tests' own
(tests/unit/observations/support.py), so the bench measures what the tests check.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping

PREFIX = "bench"
CALLER = "arn:aws:iam::123456789012:user/bench"
REGION = "ap-northeast-1"

FAKE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_METRICS_NAMESPACE": "Kanaria",
    "POWERTOOLS_SERVICE_NAME": "kanaria-bench",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_DEV": "false",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
}


@contextlib.contextmanager
def fake_aws(extra_env: Mapping[str, str] | None = None) -> Iterator[None]:
    """moto for every AWS service, fake credentials, quiet Powertools; the environment is restored afterwards."""
    import boto3
    from moto import mock_aws

    changes = {**FAKE_ENVIRONMENT, **(extra_env or {})}
    saved = {k: os.environ.get(k) for k in (*changes, "AWS_PROFILE", "AWS_ENDPOINT_URL")}
    os.environ.update(changes)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            boto3.setup_default_session()
            yield
    finally:
        boto3.DEFAULT_SESSION = None
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def table_environment(prefix: str = PREFIX) -> dict[str, str]:
    """Table and parameter names of the observations and analysis functions (as in the observation tests)."""
    from tests.unit.observations.support import environment

    return environment(prefix)


def create_tables(prefix: str = PREFIX) -> dict[str, Any]:
    """Every Kanaria table with the CDK construct's key schema (infra.constructs.tables.TABLE_SPECS), in moto."""
    from tests.unit.observations.support import create_tables as create

    return create(prefix)


def put_profiles(prefix: str = PREFIX) -> None:
    """The default intent profiles in SSM, as the stack stores them."""
    from tests.unit.observations.support import put_profiles as put

    put(prefix)


def fresh_handler(module_name: str) -> Any:
    """A handler module imported anew (its cached environment and clients are per execution environment)."""
    from tests.unit.observations.support import fresh_handler as fresh

    return fresh(module_name)


def start_experiment(definition: Mapping[str, Any], prefix: str = PREFIX) -> Any:
    """Create and start an experiment through the real repository and lifecycle; returns the running record."""
    from kanaria import names
    from kanaria.dal.experiment_store import DynamoExperimentRepository
    from kanaria.logic.experiments import create_experiment, transition

    repo = DynamoExperimentRepository(names.table_name(prefix, "experiments"))
    started = datetime.now(timezone.utc) - timedelta(days=10)
    create_experiment(repo, dict(definition), CALLER, started)
    return transition(repo, definition["id"], "start", CALLER, started)


class CallLog:
    """Every AWS request of every botocore client created from now on (the handler's DynamoDB clients, Powertools'
    own SSM client), as (service, operation, serialized request)."""

    def __init__(self, patch: Any) -> None:
        import botocore.session

        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        original = botocore.session.Session.create_client
        record = self._record

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            client.meta.events.register("before-call", record)
            return client

        patch.setattr(botocore.session.Session, "create_client", create_client)

    def _record(self, event_name: str = "", params: Any = None, **_: Any) -> None:
        _event, service, operation = event_name.split(".", 2)
        self.calls.append((service, operation, params or {}))

    def clear(self) -> None:
        """Forget what was recorded so far."""
        self.calls.clear()

    def count(self) -> Counter[str]:
        """Requests per "service.Operation"."""
        return Counter(f"{service}.{operation}" for service, operation, _ in self.calls)

    def transact_items(self) -> int:
        """Item actions inside the TransactWriteItems requests."""
        total = 0
        for _, operation, params in self.calls:
            if operation == "TransactWriteItems":
                body = params.get("body") or b"{}"  # the serialized request (JSON protocol)
                total += len(json.loads(body).get("TransactItems", []))
        return total


def fast_moto_transactions(patch: Any) -> None:
    """moto deep-copies every table a TransactWriteItems names (O(table) per request); the observation tests'
    `atomic_fast_moto` snapshots only the named items instead (same semantics, see its docstring)."""
    from tests.unit.observations.support import atomic_fast_moto

    atomic_fast_moto(patch)


def scan_all(table: Any) -> list[dict[str, Any]]:
    """Every item of a table (paginated Scan)."""
    from kanaria.dal.pages import scan_items

    return scan_items(table)


def invoke(handler: Any, path: str, body: Any) -> tuple[int, Any]:
    """POST an IAM-authorized HTTP API event to a handler (EMF output swallowed); (status, JSON body)."""
    from kanaria_tools.lambda_api import http_event
    from tests.unit.observations.support import FakeLambdaContext

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No application metrics to publish" when a batch holds only duplicates
        response = handler(
            http_event("POST", path, body, CALLER), FakeLambdaContext(function_name=f"{PREFIX}-observations")
        )
    return response["statusCode"], json.loads(response["body"])
