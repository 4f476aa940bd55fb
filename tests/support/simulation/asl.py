"""A small interpreter of the rollout state machine's real ASL (state_machines/canary_rollout.asl.json): Task (Lambda
invoke, invoke.waitForTaskToken, SNS publish), Choice, Wait, Pass, Succeed and Fail, with Parameters, ResultSelector,
ResultPath, OutputPath, Retry and Catch as Step Functions applies them, so the ASL's error routing is part of what
the simulation checks. It runs as one actor: Lambda tasks run the real handler code in-line (a crash of the
Lambda is Sandbox.Timedout), waits and retry delays are virtual time in which other actors may act."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from tests.support.simulation.scheduler import Fault, Point

if TYPE_CHECKING:
    from tests.support.simulation.world import InvokeResult, World

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
LAMBDA_CALLBACK = "arn:aws:states:::lambda:invoke.waitForTaskToken"
SNS_PUBLISH = "arn:aws:states:::sns:publish"
ENDED = {"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"}


class TaskFailed(Exception):
    """A state failed with a Step Functions error name and cause."""

    def __init__(self, error: str, cause: str):
        super().__init__(f"{error}: {cause[:200]}")
        self.error = error
        self.cause = cause


@dataclass
class Execution:
    """One execution's status as the Step Functions API reports it."""

    arn: str
    name: str
    input_text: str
    status: str = "RUNNING"
    error: str = ""
    cause: str = ""
    expunged: bool = False  # past its retention: DescribeExecution answers ExecutionDoesNotExist
    tokens: dict[str, Any] = field(default_factory=dict)  # pending task token -> answer (None until answered)

    def stop(self, error: str, cause: str) -> None:
        if self.status == "RUNNING":
            self.status, self.error, self.cause = "ABORTED", error, cause
            self.tokens.clear()


# --- paths and intrinsics ------------------------------------------------------------------------------------


def read_path(path: str, data: Any, context: dict[str, Any]) -> Any:
    """A reference path ($, $.a.b, $$.Execution.Id)."""
    root, rest = (context, path[2:]) if path.startswith("$$") else (data, path[1:])
    value = root
    for part in [p for p in rest.split(".") if p]:
        if not isinstance(value, dict) or part not in value:
            raise TaskFailed("States.Runtime", f"The JSONPath '{path}' could not be found in the input")
        value = value[part]
    return value


def write_path(data: Any, path: str | None, value: Any) -> Any:
    """ResultPath: $ replaces, null keeps the input, $.a.b sets (creating objects on the way)."""
    if path is None:
        return data
    if path == "$":
        return value
    result = copy.deepcopy(data) if isinstance(data, dict) else {}
    target = result
    parts = path[2:].split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value
    return result


_INTRINSIC = re.compile(r"^(States\.\w+)\((.*)\)$", re.S)


def _split_args(text: str) -> list[str]:
    args, depth, quoted, start, at = [], 0, False, 0, 0
    while at < len(text):
        char = text[at]
        if char == "\\" and quoted:
            at += 2
            continue
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            args.append(text[start:at].strip())
            start = at + 1
        at += 1
    if text[start:].strip():
        args.append(text[start:].strip())
    return args


def evaluate(expression: str, data: Any, context: dict[str, Any]) -> Any:
    """A ".$" value: a path or an intrinsic function (States.Format, States.JsonToString)."""
    match = _INTRINSIC.match(expression.strip())
    if match is None:
        return read_path(expression, data, context)
    name, args = match.group(1), [_argument(a, data, context) for a in _split_args(match.group(2))]
    if name == "States.JsonToString":
        return json.dumps(args[0], separators=(",", ":"))
    if name == "States.Format":
        template, values = args[0], iter(args[1:])
        return re.sub(r"\{\}", lambda _: _text(next(values)), template)
    raise NotImplementedError(name)


def _argument(text: str, data: Any, context: dict[str, Any]) -> Any:
    if text.startswith("'"):
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return evaluate(text, data, context)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def parameters(template: Any, data: Any, context: dict[str, Any]) -> Any:
    """Parameters / ResultSelector: keys ending in .$ are evaluated, the rest copied (recursively)."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = evaluate(value, data, context)
            else:
                out[key] = parameters(value, data, context)
        return out
    if isinstance(template, list):
        return [parameters(v, data, context) for v in template]
    return copy.deepcopy(template)


def matches(error: str, names: list[str]) -> bool:
    """Retry/Catch ErrorEquals: exact names, States.ALL (not States.Runtime), States.TaskFailed."""
    if error in names:
        return True
    if "States.ALL" in names:
        return error != "States.Runtime"
    return "States.TaskFailed" in names and error not in {"States.Timeout", "States.Runtime"}


# --- the interpreter -----------------------------------------------------------------------------------------


class Interpreter:
    """Runs one execution of the definition in the calling actor."""

    def __init__(
        self,
        world: World,
        definition: dict[str, Any],
        execution: Execution,
        functions: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]],
        topic_arn: str,
    ):
        self.world = world
        self.definition = definition
        self.execution = execution
        self.functions = functions  # "${RolloutStepsFunctionArn}" -> handler
        self.topic_arn = topic_arn
        self.states_visited: list[str] = []

    def run(self, document: Any) -> None:
        """From StartAt to a terminal state (or until stopped)."""
        name: str | None = self.definition["StartAt"]
        data = document
        while name is not None:
            if self.execution.status != "RUNNING":
                return  # stopped (StopExecution): nothing after the state in flight runs
            state = self.definition["States"][name]
            self.states_visited.append(name)
            try:
                name, data = self._state(name, state, data)
            except TaskFailed as failure:
                self._end("FAILED", failure.error, failure.cause)
                return

    def _end(self, status: str, error: str = "", cause: str = "") -> None:
        if self.execution.status == "RUNNING":
            self.execution.status, self.execution.error, self.execution.cause = status, error, cause
            self.execution.tokens.clear()

    def _context(self, token: str | None = None) -> dict[str, Any]:
        context: dict[str, Any] = {"Execution": {"Id": self.execution.arn, "Name": self.execution.name}}
        if token is not None:
            context["Task"] = {"Token": token}
        return context

    def _state(self, name: str, state: dict[str, Any], data: Any) -> tuple[str | None, Any]:
        kind = state["Type"]
        if kind == "Succeed":
            self._end("SUCCEEDED")
            return None, data
        if kind == "Fail":
            cause = state.get("Cause") or (read_path(state["CausePath"], data, {}) if "CausePath" in state else "")
            raise TaskFailed(state.get("Error", "States.Fail"), cause)
        if kind == "Pass":
            result = state.get("Result", data)
            return state.get("Next"), self._output(state, data, result)
        if kind == "Wait":
            seconds = state.get("Seconds") or read_path(state["SecondsPath"], data, {})
            self.world.sched.wait(
                f"{name} {seconds}s", lambda: self.execution.status != "RUNNING", timeout=float(seconds)
            )
            return state["Next"], data
        if kind == "Choice":
            for rule in state["Choices"]:
                if _choice(rule, data):
                    return rule["Next"], data
            if "Default" not in state:
                raise TaskFailed("States.NoChoiceMatched", f"no choice matched in {name}")
            return state["Default"], data
        if kind == "Task":
            return self._task(name, state, data)
        raise NotImplementedError(kind)

    def _output(self, state: dict[str, Any], data: Any, result: Any) -> Any:
        if "ResultSelector" in state:
            result = parameters(state["ResultSelector"], result, {})
        output = write_path(data, state.get("ResultPath", "$"), result)
        output_path = state.get("OutputPath", "$")
        return output if output_path == "$" else read_path(output_path, output, {})

    def _task(self, name: str, state: dict[str, Any], data: Any) -> tuple[str | None, Any]:
        attempts: dict[int, int] = {}
        while True:
            try:
                result = self._attempt(name, state, data)
                return state.get("Next"), self._output(state, data, result)
            except TaskFailed as failure:
                if self.execution.status != "RUNNING":
                    return None, data
                delay = self._retry_delay(state.get("Retry", []), failure.error, attempts)
                if delay is not None:
                    self.world.sched.wait(
                        f"{name} retry after {failure.error}", lambda: self.execution.status != "RUNNING", timeout=delay
                    )
                    continue
                for catcher in state.get("Catch", []):
                    if matches(failure.error, catcher["ErrorEquals"]):
                        error = {"Error": failure.error, "Cause": failure.cause}
                        return catcher["Next"], write_path(data, catcher.get("ResultPath", "$"), error)
                raise

    def _retry_delay(self, retriers: list[dict[str, Any]], error: str, attempts: dict[int, int]) -> float | None:
        for index, retrier in enumerate(retriers):
            if not matches(error, retrier["ErrorEquals"]):
                continue
            done = attempts.get(index, 0)
            if done >= retrier.get("MaxAttempts", 3):
                return None
            attempts[index] = done + 1
            delay = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** done
            delay = min(delay, retrier.get("MaxDelaySeconds", delay))
            if retrier.get("JitterStrategy") == "FULL":
                delay = self.world.rng.uniform(0, delay)
            return delay
        return None

    def _attempt(self, name: str, state: dict[str, Any], data: Any) -> Any:
        resource = state["Resource"]
        token = self.world.new_token(self.execution) if resource == LAMBDA_CALLBACK else None
        payload = parameters(state.get("Parameters", {}), data, self._context(token))
        if resource == SNS_PUBLISH:
            return self._publish(payload)
        role, function = self.functions[payload["FunctionName"]]
        result = self._invoke(name, role, function, payload["Payload"])
        if resource == LAMBDA_INVOKE:
            return {"Payload": result, "StatusCode": 200}
        assert token is not None
        return self._await_token(state, data, token)

    def _invoke(self, name: str, role: str, function: Callable[[dict[str, Any]], Any], payload: Any) -> Any:
        """Lambda invoke as the optimized integration sees it: throttled before, response lost after."""
        fault = self.world.sched.park(
            Point("call", f"lambda.Invoke {name}", service="lambda", faults=(Fault.THROTTLE, Fault.LOST))
        )
        if self.execution.status != "RUNNING":
            raise TaskFailed("States.Aborted", "the execution was stopped before this task started")
        if fault is Fault.THROTTLE:
            raise TaskFailed("Lambda.TooManyRequestsException", "Rate Exceeded.")
        outcome: InvokeResult = self.world.invoke(function, payload, kind=name, role=role)
        if fault is Fault.LOST:
            raise TaskFailed("Lambda.SdkClientException", "Unable to execute HTTP request: Read timed out")
        if not outcome.ok:
            raise TaskFailed(
                outcome.error_type, json.dumps({"errorType": outcome.error_type, "errorMessage": outcome.message})
            )
        return outcome.payload

    def _await_token(self, state: dict[str, Any], data: Any, token: str) -> Any:
        timeout = float(state.get("TimeoutSeconds") or read_path(state["TimeoutSecondsPath"], data, {}))
        heartbeat_path = state.get("HeartbeatSecondsPath")
        heartbeat = read_path(heartbeat_path, data, {}) if heartbeat_path else state.get("HeartbeatSeconds")
        limit, error = (timeout, "States.Timeout")
        if heartbeat and float(heartbeat) < timeout:
            limit, error = float(heartbeat), "States.HeartbeatTimeout"
        answered = self.world.sched.wait(
            "RequestApproval: waiting for the task token",
            lambda: self.execution.tokens.get(token) is not None or self.execution.status != "RUNNING",
            timeout=limit,
        )
        answer = self.execution.tokens.pop(token, None)
        if self.execution.status != "RUNNING":
            raise TaskFailed("States.Aborted", "stopped")
        if not answered or answer is None:
            raise TaskFailed(error, "the task token was not answered in time")
        kind, value = answer
        if kind == "success":
            return value
        raise TaskFailed(value[0], value[1])

    def _publish(self, payload: dict[str, Any]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        from tests.support.simulation.fake_aws import FakeSns

        try:
            return FakeSns(self.world).publish(
                TopicArn=payload["TopicArn"], Subject=payload.get("Subject"), Message=payload["Message"]
            )
        except ClientError as exc:
            raise TaskFailed(f"SNS.{exc.response['Error']['Code']}Exception", str(exc)) from None
        except BotoCoreError as exc:
            raise TaskFailed("States.Timeout", str(exc)) from None


def _choice(rule: dict[str, Any], data: Any) -> bool:
    if "Or" in rule:
        return any(_choice(r, data) for r in rule["Or"])
    if "And" in rule:
        return all(_choice(r, data) for r in rule["And"])
    if "Not" in rule:
        return not _choice(rule["Not"], data)
    try:
        value = read_path(rule["Variable"], data, {})
    except TaskFailed:
        raise TaskFailed("States.Runtime", f"Invalid path '{rule['Variable']}'") from None
    if "StringEquals" in rule:
        return value == rule["StringEquals"]
    if "BooleanEquals" in rule:
        return value is rule["BooleanEquals"]
    if "NumericEquals" in rule:
        return value == rule["NumericEquals"]
    raise NotImplementedError(rule)
