"""Lambda: a deployed function whose handler is in the kanaria package runs in this process (environment set
around the call, Lambda context, stdout as its log stream, EMF records as CloudWatch metrics)."""

from __future__ import annotations

import base64
import contextlib
import importlib
import io
import json
import os
import sys
import threading
import time
import traceback
import uuid
from datetime import datetime, timezone
from typing import Any, Iterator

from kanaria_tools.rehearsal.moto_adaptations.catalogue import AdaptationError
from kanaria_tools.rehearsal.moto_adaptations.patching import Hooks, Invocation, Patcher


class _ThreadRoutedStdout(io.TextIOBase):
    """sys.stdout replacement: writes from a thread running an in-process Lambda go to that invocation's log."""

    def __init__(self, real: Any):
        self._real = real
        self._local = threading.local()

    @contextlib.contextmanager
    def capture(self) -> Iterator[io.StringIO]:
        buffer = io.StringIO()
        previous = getattr(self._local, "buffer", None)
        self._local.buffer = buffer
        try:
            yield buffer
        finally:
            self._local.buffer = previous

    def retarget(self, real: Any) -> None:
        """Where writes outside an invocation go."""
        if real is not self:
            self._real = real

    def write(self, text: str) -> int:
        buffer = getattr(self._local, "buffer", None)
        return (buffer or self._real).write(text)

    def flush(self) -> None:
        if getattr(self._local, "buffer", None) is None:
            self._real.flush()

    def isatty(self) -> bool:
        return self._real.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._real, "encoding", "utf-8")

    def fileno(self) -> int:
        return self._real.fileno()


class FakeLambdaContext:
    """The attributes of a Lambda context object that handlers and Powertools read."""

    def __init__(self, fn: Any, request_id: str, deadline: float):
        self.function_name = fn.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = fn.function_arn
        self.memory_limit_in_mb = int(fn.memory_size)
        self.aws_request_id = request_id
        self.log_group_name = fn.logs_group_name
        self.log_stream_name = f"{datetime.now(timezone.utc):%Y/%m/%d}/[$LATEST]{request_id.replace('-', '')}"
        self.tenant_id = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_INVOKE_LOCK = threading.RLock()
_ADDED_ENVIRONMENT: dict[str, str | None] = {}  # key -> value before the adaptations (None: absent)


def _lambda_environment(fn: Any) -> dict[str, str]:
    return {
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
        "AWS_REGION": fn.region,
        "AWS_DEFAULT_REGION": fn.region,
        "_HANDLER": str(fn.handler),
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon in the rehearsal
        **{k: str(v) for k, v in (fn.environment_vars or {}).items()},
    }


def _add_environment_keys(environment: dict[str, str]) -> None:
    for key, value in environment.items():
        if key not in _ADDED_ENVIRONMENT:
            _ADDED_ENVIRONMENT[key] = os.environ.get(key)
        if key not in os.environ:
            os.environ[key] = value


def _restore_environment() -> None:
    for key, value in _ADDED_ENVIRONMENT.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    _ADDED_ENVIRONMENT.clear()


def prepare_environment(account_id: str, region: str) -> int:
    """Add every in-process function's environment keys now (before concurrent traffic); returns how many."""
    from moto.awslambda.models import lambda_backends

    with _INVOKE_LOCK:
        count = 0
        for fn in lambda_backends[account_id][region].list_functions():
            if str(fn.handler or "").startswith("kanaria."):
                _add_environment_keys(_lambda_environment(fn))
                count += 1
        return count


def _adapt_lambda(patcher: Patcher, hooks: Hooks) -> None:
    from moto.awslambda import models as lambda_models

    stdout = _ThreadRoutedStdout(sys.stdout)
    original_invoke = lambda_models.LambdaFunction._invoke_lambda

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        if not str(self.handler or "").startswith("kanaria."):
            return original_invoke(self, event)
        return _invoke_in_process(self, event, stdout, hooks)

    patcher.setattr(lambda_models.LambdaFunction, "_invoke_lambda", _invoke_lambda)


def _invoke_in_process(fn: Any, event: Any, stdout: _ThreadRoutedStdout, hooks: Hooks) -> tuple[str, bool, str]:
    if isinstance(event, (str, bytes)):
        event = json.loads(event or "{}")
    environment = _lambda_environment(fn)
    if not _INVOKE_LOCK.acquire(timeout=hooks.invoke_lock_timeout):
        raise AdaptationError(
            f"in-process Lambda {fn.function_name} waited {hooks.invoke_lock_timeout:.0f}s for another invocation "
            "(a function synchronously invoking another through the emulator deadlocks in-process execution)"
        )
    started = time.monotonic()
    record = Invocation(fn.function_name, event)
    try:
        # Other threads (the rehearsal, the SDK building clients) iterate os.environ concurrently: a key removed or
        # added under them fails their iteration. So keys are only ever added once (prepare_environment() adds
        # every function's keys up front) and never removed while the adaptations are applied; between
        # invocations a key keeps the last function's value. revert() removes what was added.
        _add_environment_keys(environment)
        os.environ.update(environment)
        # sys.stdout is the routing proxy while a function runs (test runners swap sys.stdout between phases, so it
        # is installed per invocation); loggers the function creates keep the proxy and stay routed afterwards.
        real_stdout = sys.stdout
        if real_stdout is not stdout:
            stdout.retarget(real_stdout)
            sys.stdout = stdout
        try:
            with stdout.capture() as buffer:
                payload = _run_handler(fn, event, started, hooks, record, buffer)
        finally:
            sys.stdout = real_stdout
    finally:
        _INVOKE_LOCK.release()
    logs = buffer.getvalue()
    record.seconds = time.monotonic() - started
    record.logs = logs
    if record.error is None:
        record.result = json.loads(payload)
    _extract_emf(logs, fn.account_id, fn.region, hooks)
    fn.logs_backend.ensure_log_group(fn.logs_group_name)  # as moto's docker path does
    fn.save_logs(logs)
    if hooks.on_invoke is not None:
        hooks.on_invoke(record)
    return payload, record.error is not None, logs


def _run_handler(fn: Any, event: Any, started: float, hooks: Hooks, record: Invocation, buffer: io.StringIO) -> str:
    """The function's handler called with a Lambda context, its log lines printed as Lambda prints them; the
    result payload, or the error payload Lambda returns when the handler raised."""
    request_id = str(uuid.uuid4())
    module_name, _, attribute = str(fn.handler).rpartition(".")
    try:
        module = importlib.import_module(module_name)
        handler = getattr(module, attribute)
        context = FakeLambdaContext(fn, request_id, started + float(fn.timeout))
        print(f"START RequestId: {request_id} Version: $LATEST")
        if hooks.before_invoke is not None:
            hooks.before_invoke(fn.function_name, event)
        result = handler(event, context)
        payload = json.dumps(result, default=str)
    except Exception as exc:  # noqa: BLE001 - the function's error, returned like Lambda does
        record.error = f"{type(exc).__name__}: {exc}"
        payload = json.dumps(
            {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "requestId": request_id,
                "stackTrace": traceback.format_exception(exc)[-6:],
            }
        )
        traceback.print_exc(file=buffer)
    seconds = time.monotonic() - started
    if seconds > float(fn.timeout):
        # The emulator is slower than AWS (every SDK call is an HTTP round trip into moto), so an over-long run is
        # reported, not failed.
        record.warning = f"ran {seconds:.1f}s, over its {float(fn.timeout):.0f}s timeout (in the emulator; AWS would have stopped it)"
        print(f"WARNING {record.warning}")
    print(f"END RequestId: {request_id}")
    print(f"REPORT RequestId: {request_id}\tDuration: {seconds * 1000:.2f} ms")
    return payload


def _extract_emf(logs: str, account_id: str, region: str, hooks: Hooks) -> None:
    """lambda-emf-metrics: what CloudWatch Logs does with Embedded Metric Format lines."""
    from moto.cloudwatch.models import cloudwatch_backends

    backend = cloudwatch_backends[account_id][region]
    for line in logs.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        for namespace, data in emf_metric_data(record, hooks.metric_time() if hooks.metric_time else None):
            for datum in data:
                # moto stores naive UTC timestamps (what its API path produces); an aware one breaks comparisons.
                datum["Timestamp"] = datum["Timestamp"].astimezone(timezone.utc).replace(tzinfo=None)
            backend.put_metric_data(namespace, data)


def emf_metric_data(
    record: dict[str, Any], timestamp: datetime | None = None
) -> list[tuple[str, list[dict[str, Any]]]]:
    """PutMetricData batches equivalent to one EMF record (public for tests)."""
    meta = record.get("_aws") or {}
    when = timestamp or datetime.fromtimestamp(int(meta.get("Timestamp", time.time() * 1000)) / 1000, tz=timezone.utc)
    batches = []
    for directive in meta.get("CloudWatchMetrics", []):
        namespace = directive.get("Namespace")
        data = []
        for dimension_set in directive.get("Dimensions", [[]]) or [[]]:
            dimensions = [{"Name": d, "Value": str(record[d])} for d in dimension_set if d in record]
            for metric in directive.get("Metrics", []):
                name = metric.get("Name")
                if name not in record:
                    continue
                values = record[name] if isinstance(record[name], list) else [record[name]]
                datum: dict[str, Any] = {
                    "MetricName": name,
                    "Dimensions": dimensions,
                    "Timestamp": when,
                    "Values": [float(v) for v in values],
                }
                if metric.get("Unit"):
                    datum["Unit"] = metric["Unit"]
                data.append(datum)
        if namespace and data:
            batches.append((namespace, data))
    return batches


def encode_log_result(logs: str) -> str:
    """Base64 tail of a log as Lambda returns it with LogType=Tail (public for the runner)."""
    return base64.b64encode(logs[-4096:].encode("utf-8")).decode("ascii")
