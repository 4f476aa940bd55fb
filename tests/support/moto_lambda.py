"""moto 5.2.5 adaptations for the rollout tests (each asserted unadapted first by
tests/integration/test_rollout_moto_support.py, so an upgrade that changes moto fails loudly there). The rollout
world also applies kanaria_tools.rehearsal.moto_adaptations.atomic_dynamodb_writes, pinned in the rehearsal's tests.

1. in_process_lambdas: run this repository's Lambda handlers in the test process when moto invokes a function.
2. early_callback_outcomes: a SendTaskSuccess/SendTaskFailure that arrives before the waitForTaskToken wait is
   armed (while the Lambda that received the token is still running, which AWS allows) is stored by moto but
   never wakes its heartbeat wait, which then reports States.HeartbeatTimeout. The adaptation wakes it.

Known and NOT adapted (tests assert around it): StopExecution does not interrupt a callback wait; the stopped
execution ends when the wait's heartbeat/timeout elapses, as FAILED (States.Timeout) instead of ABORTED.
SendTaskFailure drops `cause` (only `error` reaches the Catch).

In-process Lambdas: moto's Step Functions executes `arn:aws:states:::lambda:invoke` by calling moto's own Lambda Invoke. Without
docker, `mock_aws(config={"lambda": {"use_docker": False}})` serves Invoke from LambdaSimpleBackend, which echoes
the request body and never runs code, and needs no function to exist. `in_process_lambdas` patches that one
method so that a function name routes to a Python handler, with the Lambda Python runtime's error contract: an
unhandled exception becomes FunctionError "Unhandled" with {"errorType": <class name>, "errorMessage": ...},
which Step Functions turns into the error name its Retry/Catch match.

tests/integration/test_rollout_moto_support.py asserts the unpatched behaviour first, so an upgrade of moto that
changes it fails loudly there instead of quietly here.
"""

from __future__ import annotations

import contextlib
import json
import threading
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

MOTO_VERSION = "5.2.5"
MOCK_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
    "core": {"reset_boto3_session": False},  # keep botocore's loaded service models between tests (~1.5 s each)
}
ACCOUNT = "123456789012"

Handler = Callable[[dict[str, Any], Any], Any]


def check_moto_version() -> None:
    """Fail loudly on any other moto: the patch below was written against MOTO_VERSION's internals."""
    import moto

    if moto.__version__ != MOTO_VERSION:
        raise AssertionError(
            f"tests/support/moto_lambda.py is pinned to moto {MOTO_VERSION}, found {moto.__version__}: re-check "
            "moto.awslambda_simple.models.LambdaSimpleBackend.invoke and the Step Functions lambda integration, "
            "then run tests/integration/test_rollout_moto_support.py"
        )


def function_arn(name: str, region: str = "ap-northeast-1") -> str:
    """The ARN a state machine definition uses for a function name."""
    return f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"


@dataclass
class FakeContext:
    """Enough of LambdaContext for Powertools (inject_lambda_context)."""

    function_name: str
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""

    def __post_init__(self) -> None:
        self.invoked_function_arn = self.invoked_function_arn or function_arn(self.function_name)

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


@dataclass(frozen=True)
class Invocation:
    """One routed invocation, for assertions."""

    function_name: str
    event: Any
    result: Any = None
    error: dict[str, Any] | None = None


def _name(function_name: str) -> str:
    """Function name from a name, an ARN or a qualified ARN."""
    name = function_name.split(":function:", 1)[-1]
    return name.split(":", 1)[0]


@contextlib.contextmanager
def in_process_lambdas(handlers: Mapping[str, Handler]) -> Iterator[list[Invocation]]:
    """Within an active mock_aws(config=MOCK_CONFIG): route Invoke of these function names to the handlers."""
    check_moto_version()
    from moto.awslambda_simple.models import LambdaSimpleBackend

    invocations: list[Invocation] = []
    lock = threading.Lock()
    original = LambdaSimpleBackend.invoke

    def invoke(
        self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: dict[str, str]
    ) -> bytes:
        name = _name(function_name)
        handler = handlers.get(name)
        if handler is None:
            raise AssertionError(f"no in-process handler for Lambda function {name!r} (known: {sorted(handlers)})")
        event = json.loads(body) if body else {}
        try:
            result = handler(event, FakeContext(name))
        except Exception as exc:  # noqa: BLE001 - the Lambda runtime's contract: any unhandled error -> FunctionError
            error = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_tb(exc.__traceback__),
            }
            with lock:
                invocations.append(Invocation(name, event, error=error))
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(error).encode()
        with lock:
            invocations.append(Invocation(name, event, result=result))
        return json.dumps(result).encode()

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
    try:
        yield invocations
    finally:
        LambdaSimpleBackend.invoke = original  # type: ignore[method-assign]


@contextlib.contextmanager
def early_callback_outcomes() -> Iterator[None]:
    """Within mock_aws: an outcome notified before the heartbeat endpoint exists wakes the heartbeat wait."""
    check_moto_version()
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    original = CallbackEndpoint.setup_heartbeat_endpoint

    def setup_heartbeat_endpoint(self: Any, heartbeat_seconds: int) -> Any:
        endpoint = original(self, heartbeat_seconds)
        if self.get_outcome() is not None:
            endpoint.notify()
        return endpoint

    CallbackEndpoint.setup_heartbeat_endpoint = setup_heartbeat_endpoint  # type: ignore[method-assign]
    try:
        yield
    finally:
        CallbackEndpoint.setup_heartbeat_endpoint = original  # type: ignore[method-assign]
